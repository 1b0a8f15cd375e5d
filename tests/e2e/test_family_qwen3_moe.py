"""The qwen3_moe rule file (rules/qwen3_moe.yaml, extending rules/qwen3.yaml) on tiny
Qwen3MoeForCausalLM folders: config.json plus bf16 safetensors shards in name order, so that
experts.10 comes before experts.2 and the experts of one layer straddle shards; heads * head_dim !=
hidden_size, GQA.

Checked: lint clean, --model qwen3_moe / qwen3-moe served; forward names equal
tests/e2e/expected/qwen3_moe*.txt (written from MindFormers' MCore Qwen3-MoE table); weight1 /
weight2 equal an independent torch computation of MCore's expert layout (per expert [gate; up],
stacked in numeric expert order, permuted (0, 2, 1), flattened), linear_qkv and a dense layer's
linear_fc1 equal MCore's layouts (fc1_layout applies to dense layers too: the reference's plain
concat there is not reproduced); which layers are dense follows mlp_only_layers and
decoder_sparse_step; reverse gives the input back byte for byte, also from the .ckpt alone (the
names tell which layers are dense, the shapes give every size); the seed command line writes the
same bytes as --rules under both keys; lint --against round-trips; missing or surplus experts fail
naming them; a config.json as transformers 5 writes it (num_local_experts for num_experts)
converts the same.

The same rule file on a tiny model built and saved by transformers 5 itself (not written by
hand): interop.extended_families (tests/interop/extended/test_extended_families.py, optional:
it needs the Debian sid chroot of docs/interop.md), which imports this module's config,
tensors and expected computations.
"""
import json
import os
import sys
import unittest

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from family_lib import MCORE_TOP_NAMES  # noqa: E402
from family_lib import (FamilyTestCase, SOURCE, alone, assert_seed_form_writes_what_rules_write,  # noqa: E402
                        expected_names, randn, read_ckpt, read_hf_folder, record, run, seeded,
                        write_hf_folder)
from family_lib import convert as cw_convert  # noqa: E402
from test_family_qwen3 import FC1, QKV, experts_ms, models_listing_serves  # noqa: E402

RULES = os.path.join(SOURCE, "rules", "qwen3_moe.yaml")


def qwen3_moe_config(**overrides):
    """Qwen3-30B-A3B scaled down: 32 heads / 4 KV heads of 128 on 2048, 128 experts of 768, dense
    FFN 6144, every layer MoE -> 6 heads / 2 KV heads of 8 on 32, 4 experts of 12, dense FFN 56."""
    config = {"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe",
              "hidden_size": 32, "intermediate_size": 56, "moe_intermediate_size": 12,
              "num_attention_heads": 6, "num_key_value_heads": 2, "head_dim": 8,
              "num_hidden_layers": 2, "num_experts": 4, "num_experts_per_tok": 2,
              "norm_topk_prob": True, "decoder_sparse_step": 1, "mlp_only_layers": [],
              "output_router_logits": False, "router_aux_loss_coef": 0.001,
              "vocab_size": 48, "max_position_embeddings": 40960, "rms_norm_eps": 1e-6,
              "rope_theta": 1000000.0, "attention_bias": False, "tie_word_embeddings": False,
              "torch_dtype": "bfloat16"}
    config.update(overrides)
    return config


def dense_layers(config):
    """Qwen3MoeDecoderLayer's choice (transformers): dense when listed in mlp_only_layers, when
    there are no experts, or when (layer + 1) is not a multiple of decoder_sparse_step."""
    return [layer for layer in range(config["num_hidden_layers"])
            if layer in config["mlp_only_layers"] or config["num_experts"] == 0
            or (layer + 1) % config["decoder_sparse_step"] != 0]


def qwen3_moe_tensors(config, seed=0):
    g = seeded(seed)
    bf = torch.bfloat16
    h, d = config["hidden_size"], config["head_dim"]
    q, kv = config["num_attention_heads"] * d, config["num_key_value_heads"] * d
    t = {"model.embed_tokens.weight": randn(g, config["vocab_size"], h, dtype=bf),
         "model.norm.weight": randn(g, h, dtype=bf),
         "lm_head.weight": randn(g, config["vocab_size"], h, dtype=bf)}
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        shapes = {"input_layernorm.weight": [h], "post_attention_layernorm.weight": [h],
                  "self_attn.q_proj.weight": [q, h], "self_attn.k_proj.weight": [kv, h],
                  "self_attn.v_proj.weight": [kv, h], "self_attn.o_proj.weight": [h, q],
                  "self_attn.q_norm.weight": [d], "self_attn.k_norm.weight": [d]}
        if layer in dense_layers(config):
            f = config["intermediate_size"]
            shapes.update({"mlp.gate_proj.weight": [f, h], "mlp.up_proj.weight": [f, h],
                           "mlp.down_proj.weight": [h, f]})
        else:
            f = config["moe_intermediate_size"]
            shapes["mlp.gate.weight"] = [config["num_experts"], h]
            for e in range(config["num_experts"]):
                shapes.update({f"mlp.experts.{e}.gate_proj.weight": [f, h],
                               f"mlp.experts.{e}.up_proj.weight": [f, h],
                               f"mlp.experts.{e}.down_proj.weight": [h, f]})
        for name, shape in shapes.items():
            t[p + name] = randn(g, *shape, dtype=bf)
    return dict(sorted(t.items()))


# MCore names (mindformers/models/qwen3_moe/utils.py, written independently of the rule file).
TOP_NAMES = MCORE_TOP_NAMES
LAYER_RENAMES = {"input_layernorm.weight": "input_layernorm.weight",
                 "post_attention_layernorm.weight": "pre_mlp_layernorm.weight",
                 "self_attn.o_proj.weight": "self_attention.linear_proj.weight",
                 "self_attn.q_norm.weight": "self_attention.q_layernorm.weight",
                 "self_attn.k_norm.weight": "self_attention.k_layernorm.weight",
                 "mlp.down_proj.weight": "mlp.linear_fc2.weight",
                 "mlp.gate.weight": "mlp.router.weight"}


def qwen3_moe_expected(t, config, qkv_layout="interleaved", fc1_layout="interleaved"):
    out = {TOP_NAMES[n]: v for n, v in t.items() if n in TOP_NAMES}
    sizes = (config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"])
    for layer in range(config["num_hidden_layers"]):
        src, dst = f"model.layers.{layer}.", f"decoder.layers.{layer}."
        out.update({dst + b: t[src + a] for a, b in LAYER_RENAMES.items() if src + a in t})
        out[dst + "self_attention.linear_qkv.weight"] = QKV[qkv_layout](
            *[t[f"{src}self_attn.{p}_proj.weight"] for p in "qkv"], *sizes)
        if layer in dense_layers(config):
            out[dst + "mlp.linear_fc1.weight"] = FC1[fc1_layout](t[src + "mlp.gate_proj.weight"],
                                                                 t[src + "mlp.up_proj.weight"])
        else:
            out.update({dst + k: v for k, v in experts_ms(t, src, config["num_experts"]).items()})
    return {k: record(v) for k, v in out.items()}


class Qwen3MoeTest(FamilyTestCase):
    def make(self, shards=3, drop=(), extra=None, **overrides):
        config = qwen3_moe_config(**overrides)
        tensors = qwen3_moe_tensors(config)
        files = {k: v for k, v in tensors.items() if k not in drop}
        files.update(extra or {})
        folder = self.path(f"qwen3_moe_{len(os.listdir(self.tmp))}")
        write_hf_folder(folder, dict(sorted(files.items())), config, fmt="safetensors",
                        shards=shards)
        return folder, config, tensors

    def forward_and_back(self, folder, config, tensors, *args, names=None):
        tag = f"{folder}_{len(os.listdir(self.tmp))}"
        cw_convert(RULES, folder, tag + ".ckpt", *args)
        got = read_ckpt(tag + ".ckpt")
        if names:
            self.assertEqual(sorted(got), sorted(expected_names(names)))
        cw_convert(RULES, tag + ".ckpt", tag + "_back/", "--config",
                   os.path.join(folder, "config.json"), *args, reverse=True)
        self.assertEqual(read_hf_folder(tag + "_back"), read_hf_folder(folder))
        return tag + ".ckpt", got

    def test_the_rule_file_lints_clean_and_serves_both_keys(self):
        self.assertEqual(run("lint", RULES).stdout.strip(), RULES + ": ok")
        models_listing_serves(self, ["qwen3_moe", "qwen3-moe"], "qwen3_moe.yaml")

    def test_every_layer_moe_equals_torch_and_round_trips(self):
        folder, config, tensors = self.make()
        _, got = self.forward_and_back(folder, config, tensors, names="qwen3_moe")
        self.assertEqual(got, qwen3_moe_expected(tensors, config))
        self.assertEqual(got["decoder.layers.0.mlp.experts.weight1"][1], [4 * 32, 2 * 12])
        self.assertEqual(got["decoder.layers.0.mlp.experts.weight2"][1], [4 * 12, 32])

    def test_a_transformers_5_config_naming_the_expert_count_num_local_experts(self):
        """transformers 5's Qwen3MoeConfig keeps num_experts as num_local_experts, and the
        config.json its save_pretrained writes has only that key (found by
        interop.extended_families): the count is read from it, both ways."""
        folder, config, tensors = self.make(mlp_only_layers=[0])
        written = dict(config)
        written["num_local_experts"] = written.pop("num_experts")
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(written, f)
        p = run("plan", "--rules", RULES, "--input", folder)
        self.assertIn("experts = 4 (config num_local_experts)", p.stdout + p.stderr)
        _, got = self.forward_and_back(folder, config, tensors)
        self.assertEqual(got, qwen3_moe_expected(tensors, config))

    def test_eleven_experts_stack_in_numeric_order_across_shards(self):
        folder, config, tensors = self.make(num_experts=11, shards=5)
        names = list(read_hf_folder(folder))
        self.assertLess(names.index("model.layers.0.mlp.experts.10.gate_proj.weight"),
                        names.index("model.layers.0.mlp.experts.2.gate_proj.weight"))
        with open(os.path.join(folder, "model.safetensors.index.json")) as f:
            index = json.load(f)["weight_map"]
        self.assertGreater(len({index[f"model.layers.0.mlp.experts.{e}.up_proj.weight"]
                                for e in range(11)}), 1)
        _, got = self.forward_and_back(folder, config, tensors, names="qwen3_moe")
        self.assertEqual(got, qwen3_moe_expected(tensors, config))

    def test_weight1_block_of_an_expert_is_its_gate_and_up_transposed(self):
        """Rows e*H .. e*H+H-1 of weight1 are [gate_e^T | up_e^T] (gate in columns 0..F-1)."""
        folder, config, tensors = self.make()
        cw_convert(RULES, folder, self.path("m.ckpt"))
        got = read_ckpt(self.path("m.ckpt"))["decoder.layers.1.mlp.experts.weight1"]
        w1 = torch.frombuffer(bytearray(got[2]), dtype=torch.bfloat16).reshape(got[1])
        h, f = config["hidden_size"], config["moe_intermediate_size"]
        for e in range(config["num_experts"]):
            block = w1[e * h:(e + 1) * h]
            p = f"model.layers.1.mlp.experts.{e}."
            self.assertTrue(torch.equal(block[:, :f], tensors[p + "gate_proj.weight"].T))
            self.assertTrue(torch.equal(block[:, f:], tensors[p + "up_proj.weight"].T))

    def test_dense_layers_follow_mlp_only_layers_and_decoder_sparse_step(self):
        # 4 layers, step 2: layers 0 and 2 dense by the step, 3 listed; only 1 is MoE.
        folder, config, tensors = self.make(num_hidden_layers=4, decoder_sparse_step=2,
                                            mlp_only_layers=[3])
        self.assertEqual(dense_layers(config), [0, 2, 3])
        for fc1_layout in ("interleaved", "contiguous"):
            with self.subTest(fc1_layout=fc1_layout):
                _, got = self.forward_and_back(folder, config, tensors, "--set",
                                               f"fc1_layout={fc1_layout}", names="qwen3_moe_dense")
                self.assertEqual(got, qwen3_moe_expected(tensors, config, fc1_layout=fc1_layout))

    def test_a_dense_layers_fc1_is_interleaved_by_default_not_a_plain_concat(self):
        folder, config, tensors = self.make(mlp_only_layers=[0])
        cw_convert(RULES, folder, self.path("m.ckpt"))
        got = read_ckpt(self.path("m.ckpt"))["decoder.layers.0.mlp.linear_fc1.weight"]
        gate, up = (tensors[f"model.layers.0.mlp.{p}_proj.weight"] for p in ("gate", "up"))
        self.assertEqual(got, record(FC1["interleaved"](gate, up)))
        self.assertNotEqual(got, record(FC1["contiguous"](gate, up)))

    def test_the_attention_layouts_apply_as_for_qwen3(self):
        folder, config, tensors = self.make(mlp_only_layers=[1])
        _, got = self.forward_and_back(folder, config, tensors, "--set", "qkv_layout=contiguous",
                                       "--set", "fc1_layout=contiguous")
        self.assertEqual(got, qwen3_moe_expected(tensors, config, "contiguous", "contiguous"))

    def test_reverse_from_the_ckpt_alone_reads_layout_and_sizes_off_the_file(self):
        for overrides in ({}, {"num_hidden_layers": 4, "decoder_sparse_step": 2,
                               "mlp_only_layers": [3]}):
            with self.subTest(**overrides):
                folder, _, _ = self.make(**overrides)
                ckpt = self.path(f"alone_{len(os.listdir(self.tmp))}.ckpt")
                cw_convert(RULES, folder, ckpt)
                back = ckpt[:-5] + "_back/"
                p = run("convert", "--rules", RULES, "--input", alone(self, ckpt), "--output",
                        back, "--reverse")
                self.assertEqual(read_hf_folder(back.rstrip("/")), read_hf_folder(folder))
                for solved in ("experts = 4", "moe_intermediate_size = 12", "hidden_size = 32",
                               "head_dim = 8", "heads = 6", "kv_heads = 2", "vocab = 48"):
                    self.assertIn(f"parameter {solved} (solved from ", p.stderr)
                if overrides:
                    self.assertIn("parameter intermediate_size = 56 (solved from ", p.stderr)

    def test_seed_command_line_writes_the_same_bytes_as_rules_under_both_keys(self):
        folder, _, _ = self.make(mlp_only_layers=[0])
        assert_seed_form_writes_what_rules_write(self, RULES, ("qwen3_moe", "qwen3-moe"), folder,
                                                 read_hf_folder(folder))

    def test_lint_against_the_checkpoint_round_trips(self):
        for overrides in ({}, {"num_hidden_layers": 4, "decoder_sparse_step": 2}):
            folder, _, _ = self.make(**overrides)
            for args in ([], ["--set", "fc1_layout=contiguous", "--set", "qkv_layout=contiguous"]):
                p = run("lint", RULES, "--against", folder, *args)
                self.assertEqual(p.stdout.strip(), RULES + ": ok", args)

    def test_a_missing_expert_fails_naming_it(self):
        missing = "model.layers.1.mlp.experts.2.down_proj.weight"
        folder, _, _ = self.make(drop=(missing,))
        self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                           self.path("m.ckpt")], 1, missing)
        self.assertFalse(os.path.exists(self.path("m.ckpt")))

    def test_an_expert_beyond_num_experts_fails_naming_it(self):
        surplus = "model.layers.0.mlp.experts.4.up_proj.weight"
        folder, _, _ = self.make(extra={surplus: torch.zeros(12, 32, dtype=torch.bfloat16)})
        self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                           self.path("m.ckpt")], 1, surplus)

    def test_a_layer_listed_dense_but_holding_experts_is_refused(self):
        folder, config, _ = self.make()
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(dict(config, mlp_only_layers=[1]), f)
        self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                           self.path("m.ckpt")], 1, "model.layers.1.mlp.gate.weight",
                          'its when "moe_mlp" is false')

    def test_a_reverse_with_the_wrong_expert_width_names_the_stack(self):
        folder, _, _ = self.make()
        cw_convert(RULES, folder, self.path("m.ckpt"))
        self.assert_fails(["convert", "--rules", RULES, "--input", self.path("m.ckpt"),
                           "--output", self.path("x/"), "--reverse", "--set",
                           "moe_intermediate_size=6"], 1,
                          '"decoder.layers.0.mlp.experts.weight1" is [128, 24]',
                          "moe_intermediate_size = 6 (--set)")
        self.assertFalse(os.path.exists(self.path("x")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
