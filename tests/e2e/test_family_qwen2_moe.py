"""The qwen2_moe rule file (rules/qwen2_moe.yaml) on tiny Qwen2MoeForCausalLM folders: config.json
plus bf16 safetensors shards in name order (experts.10 before experts.2, the experts of one layer
in several shards), GQA with 2 KV groups of 4 heads, q/k/v biases, a shared expert and its gate.

Checked: lint clean, --model qwen2_moe served; forward names equal tests/e2e/expected/qwen2_moe*.txt
(written from the table of MindFormers r1.5 research/qwen2/convert_moe_weight.py); routed experts
equal torch.stack in numeric expert order, gate -> w1, down -> w2, up -> w3 (transposed (0, 2, 1)
with use_gmm, the default); w_qkv and its bias equal an independent torch computation of
qkv_concat_hf2mg's per-KV-group layout (the default); every other tensor keeps its bytes; reverse
gives the input back byte for byte for every combination of qkv_concat and use_gmm, also from the
.ckpt alone (fused q/k/v: a clear message naming the head counts, then exact with --set heads);
a gmm file reversed without use_gmm fails instead of transposing; dense layers (mlp_only_layers)
get llama's FFN names; the seed command line writes the same bytes as --rules; lint --against
round-trips.

The same rule file on a tiny model built and saved by transformers 5 itself (not written by
hand): interop.extended_families (tests/interop/extended/test_extended_families.py, optional:
it needs the Debian sid chroot of docs/interop.md), which imports this module's config,
tensors and expected computations.
"""
import itertools
import json
import os
import sys
import unittest

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from family_lib import (FamilyTestCase, SOURCE, alone, assert_seed_form_writes_what_rules_write,  # noqa: E402
                        expected_names, randn, read_ckpt, read_hf_folder, record, run, seeded,
                        write_hf_folder)
from family_lib import convert as cw_convert  # noqa: E402
from test_family_qwen3 import models_listing_serves, qkv_interleaved  # noqa: E402

RULES = os.path.join(SOURCE, "rules", "qwen2_moe.yaml")


def qwen2_moe_config(**overrides):
    """Qwen2-57B-A14B scaled down: 28 heads / 4 KV heads on 3584, 64 experts of 2560, a shared
    expert of 20480, every layer MoE -> 8 heads / 2 KV heads on 32 (head_dim 4), 4 experts of 12,
    a shared expert of 48."""
    config = {"architectures": ["Qwen2MoeForCausalLM"], "model_type": "qwen2_moe",
              "hidden_size": 32, "intermediate_size": 40, "moe_intermediate_size": 12,
              "shared_expert_intermediate_size": 48, "num_attention_heads": 8,
              "num_key_value_heads": 2, "num_hidden_layers": 2, "num_experts": 4,
              "num_experts_per_tok": 2, "norm_topk_prob": False, "decoder_sparse_step": 1,
              "mlp_only_layers": [], "output_router_logits": False,
              "router_aux_loss_coef": 0.001, "vocab_size": 48, "max_position_embeddings": 32768,
              "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "use_sliding_window": False,
              "tie_word_embeddings": False, "torch_dtype": "bfloat16"}
    config.update(overrides)
    return config


def dense_layers(config):
    """Qwen2MoeDecoderLayer's choice (transformers)."""
    return [layer for layer in range(config["num_hidden_layers"])
            if layer in config["mlp_only_layers"] or config["num_experts"] == 0
            or (layer + 1) % config["decoder_sparse_step"] != 0]


def qwen2_moe_tensors(config, seed=0):
    g = seeded(seed)
    bf = torch.bfloat16
    h = config["hidden_size"]
    d = h // config["num_attention_heads"]
    q, kv = config["num_attention_heads"] * d, config["num_key_value_heads"] * d
    t = {"model.embed_tokens.weight": randn(g, config["vocab_size"], h, dtype=bf),
         "model.norm.weight": randn(g, h, dtype=bf),
         "lm_head.weight": randn(g, config["vocab_size"], h, dtype=bf)}
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        shapes = {"input_layernorm.weight": [h], "post_attention_layernorm.weight": [h],
                  "self_attn.q_proj.weight": [q, h], "self_attn.k_proj.weight": [kv, h],
                  "self_attn.v_proj.weight": [kv, h], "self_attn.q_proj.bias": [q],
                  "self_attn.k_proj.bias": [kv], "self_attn.v_proj.bias": [kv],
                  "self_attn.o_proj.weight": [h, q]}
        if layer in dense_layers(config):
            f = config["intermediate_size"]
            shapes.update({"mlp.gate_proj.weight": [f, h], "mlp.up_proj.weight": [f, h],
                           "mlp.down_proj.weight": [h, f]})
        else:
            f, s = config["moe_intermediate_size"], config["shared_expert_intermediate_size"]
            shapes.update({"mlp.gate.weight": [config["num_experts"], h],
                           "mlp.shared_expert.gate_proj.weight": [s, h],
                           "mlp.shared_expert.up_proj.weight": [s, h],
                           "mlp.shared_expert.down_proj.weight": [h, s],
                           "mlp.shared_expert_gate.weight": [1, h]})
            for e in range(config["num_experts"]):
                shapes.update({f"mlp.experts.{e}.gate_proj.weight": [f, h],
                               f"mlp.experts.{e}.up_proj.weight": [f, h],
                               f"mlp.experts.{e}.down_proj.weight": [h, f]})
        for name, shape in shapes.items():
            t[p + name] = randn(g, *shape, dtype=bf)
    return dict(sorted(t.items()))


# The reference's name_replace (written independently of the rule file): whole names, then the
# part after model.layers.N.
TOP_NAMES = {"model.embed_tokens.weight": "model.tok_embeddings.embedding_weight",
             "model.norm.weight": "model.norm_out.weight", "lm_head.weight": "lm_head.weight"}
LAYER_RENAMES = {"input_layernorm.weight": "attention_norm.weight",
                 "post_attention_layernorm.weight": "ffn_norm.weight",
                 "self_attn.o_proj.weight": "attention.wo.weight",
                 "mlp.gate.weight": "feed_forward.routed_experts.router.dense.weight",
                 "mlp.shared_expert.gate_proj.weight": "feed_forward.shared_experts.w1.weight",
                 "mlp.shared_expert.up_proj.weight": "feed_forward.shared_experts.w3.weight",
                 "mlp.shared_expert.down_proj.weight": "feed_forward.shared_experts.w2.weight",
                 "mlp.shared_expert_gate.weight": "feed_forward.shared_experts_gate.weight",
                 # Dense layers: llama's FFN names (the reference has none).
                 "mlp.gate_proj.weight": "feed_forward.w1.weight",
                 "mlp.up_proj.weight": "feed_forward.w3.weight",
                 "mlp.down_proj.weight": "feed_forward.w2.weight"}
ROUTED = {"gate_proj": "w1", "down_proj": "w2", "up_proj": "w3"}


def qwen2_moe_expected(t, config, qkv_concat=True, use_gmm=True):
    out = {TOP_NAMES[n]: v for n, v in t.items() if n in TOP_NAMES}
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    d = config["hidden_size"] // heads
    for layer in range(config["num_hidden_layers"]):
        src = dst = f"model.layers.{layer}."
        out.update({dst + b: t[src + a] for a, b in LAYER_RENAMES.items() if src + a in t})
        for wb in ("weight", "bias"):
            q, k, v = (t[f"{src}self_attn.{p}_proj.{wb}"] for p in "qkv")
            if qkv_concat:
                out[f"{dst}attention.w_qkv.{wb}"] = qkv_interleaved(q, k, v, heads, kv_heads, d)
            else:
                out.update({f"{dst}attention.wq.{wb}": q, f"{dst}attention.wk.{wb}": k,
                            f"{dst}attention.wv.{wb}": v})
        if layer in dense_layers(config):
            continue
        for proj, w in ROUTED.items():
            stacked = torch.stack([t[f"{src}mlp.experts.{e}.{proj}.weight"]
                                   for e in range(config["num_experts"])], dim=0)
            if use_gmm:
                stacked = stacked.permute(0, 2, 1)
            out[f"{dst}feed_forward.routed_experts.ffn.{w}.weight"] = stacked
    return {k: record(v) for k, v in out.items()}


def variant_args(qkv_concat, use_gmm):
    return ["--set", f"qkv_concat={str(qkv_concat).lower()}", "--set",
            f"use_gmm={str(use_gmm).lower()}"]


class Qwen2MoeTest(FamilyTestCase):
    def make(self, shards=3, **overrides):
        config = qwen2_moe_config(**overrides)
        tensors = qwen2_moe_tensors(config)
        folder = self.path(f"qwen2_moe_{len(os.listdir(self.tmp))}")
        write_hf_folder(folder, tensors, config, fmt="safetensors", shards=shards)
        return folder, config, tensors

    def forward_and_back(self, folder, config, tensors, qkv_concat, use_gmm, names):
        tag = f"{folder}_{len(os.listdir(self.tmp))}"
        args = variant_args(qkv_concat, use_gmm)
        cw_convert(RULES, folder, tag + ".ckpt", *args)
        got = read_ckpt(tag + ".ckpt")
        self.assertEqual(sorted(got), sorted(expected_names(names)))
        self.assertEqual(got, qwen2_moe_expected(tensors, config, qkv_concat, use_gmm))
        cw_convert(RULES, tag + ".ckpt", tag + "_back/", "--config",
                   os.path.join(folder, "config.json"), *args, reverse=True)
        self.assertEqual(read_hf_folder(tag + "_back"), read_hf_folder(folder))
        return tag + ".ckpt"

    def test_the_rule_file_lints_clean_and_serves_qwen2_moe(self):
        self.assertEqual(run("lint", RULES).stdout.strip(), RULES + ": ok")
        models_listing_serves(self, ["qwen2_moe"], "qwen2_moe.yaml")

    def test_defaults_fuse_qkv_and_transpose_the_expert_stacks(self):
        folder, config, tensors = self.make()
        ckpt = self.forward_and_back(folder, config, tensors, True, True, "qwen2_moe")
        got = read_ckpt(ckpt)
        # Without any --set: the same file.
        cw_convert(RULES, folder, self.path("plain.ckpt"))
        self.assertEqual(read_ckpt(self.path("plain.ckpt")), got)
        self.assertEqual(got["model.layers.0.feed_forward.routed_experts.ffn.w1.weight"][1],
                         [4, 32, 12])

    def test_every_combination_of_qkv_concat_and_use_gmm_equals_torch_and_round_trips(self):
        folder, config, tensors = self.make(num_experts=11, shards=5)
        names = list(read_hf_folder(folder))
        self.assertLess(names.index("model.layers.0.mlp.experts.10.gate_proj.weight"),
                        names.index("model.layers.0.mlp.experts.2.gate_proj.weight"))
        for qkv_concat, use_gmm in itertools.product((True, False), (True, False)):
            with self.subTest(qkv_concat=qkv_concat, use_gmm=use_gmm):
                self.forward_and_back(folder, config, tensors, qkv_concat, use_gmm,
                                      "qwen2_moe" if qkv_concat else "qwen2_moe_split")

    def test_dense_layers_get_llama_ffn_names(self):
        folder, config, tensors = self.make(num_hidden_layers=3, mlp_only_layers=[0, 2])
        self.forward_and_back(folder, config, tensors, True, True, "qwen2_moe_dense")

    def test_reverse_from_the_ckpt_alone(self):
        folder, _, _ = self.make()
        for use_gmm in (True, False):
            ckpt = self.path(f"split_{use_gmm}.ckpt")
            args = variant_args(False, use_gmm)
            cw_convert(RULES, folder, ckpt, *args)
            back = self.path(f"split_{use_gmm}_back/")
            p = run("convert", "--rules", RULES, "--input", alone(self, ckpt), "--output", back,
                    "--reverse", *args)
            self.assertEqual(read_hf_folder(back.rstrip("/")), read_hf_folder(folder))
            for solved in ("experts = 4", "moe_intermediate_size = 12",
                           "shared_intermediate_size = 48", "hidden_size = 32", "vocab = 48"):
                self.assertIn(f"parameter {solved} (solved from ", p.stderr)

    def test_reverse_of_fused_qkv_from_the_ckpt_alone_names_the_head_count_to_give(self):
        folder, _, _ = self.make()
        ckpt = self.path("fused.ckpt")
        cw_convert(RULES, folder, ckpt)
        lone = alone(self, ckpt)
        # The interleave's group count is asked for first, then the head count; giving the head
        # count is enough (kv_heads is then read off w_qkv).
        self.assert_fails(["convert", "--rules", RULES, "--input", lone, "--output",
                           self.path("x/"), "--reverse"], 1,
                          "parameter kv_heads has no value: give --set kv_heads=... or a "
                          "config.json with num_key_value_heads")
        self.assert_fails(["convert", "--rules", RULES, "--input", lone, "--output",
                           self.path("x/"), "--reverse", "--set", "kv_heads=2"], 1,
                          "parameter heads has no value: give --set heads=... or a config.json "
                          "with num_attention_heads")
        self.assertFalse(os.path.exists(self.path("x")))
        back = self.path("fused_back/")
        p = run("convert", "--rules", RULES, "--input", lone, "--output", back, "--reverse",
                "--set", "heads=8")
        self.assertIn("parameter kv_heads = 2 (solved from ", p.stderr)
        self.assertEqual(read_hf_folder(back.rstrip("/")), read_hf_folder(folder))

    def test_a_gmm_file_reversed_without_use_gmm_fails_instead_of_transposing(self):
        folder, _, _ = self.make()
        cw_convert(RULES, folder, self.path("gmm.ckpt"))
        p = self.assert_fails(["convert", "--rules", RULES, "--input", self.path("gmm.ckpt"),
                               "--output", self.path("b/"), "--reverse", "--config",
                               os.path.join(folder, "config.json"), "--set", "use_gmm=false"], 1,
                              '"model.layers.0.feed_forward.routed_experts.ffn.w1.weight" is '
                              '[4, 32, 12], but rule')
        self.assertIn("another order", p.stderr)
        self.assertFalse(os.path.exists(self.path("b")))

    def test_seed_command_line_writes_the_same_bytes_as_rules(self):
        folder, _, _ = self.make()
        for rules_args, seed_args in (([], []),
                                      (variant_args(False, False),
                                       ["--qkv_concat", "false", "--use_gmm", "False"])):
            assert_seed_form_writes_what_rules_write(self, RULES, ("qwen2_moe",), folder,
                                                     read_hf_folder(folder), rules_args, seed_args)

    def test_lint_against_the_checkpoint_round_trips(self):
        folder, _, _ = self.make()
        for qkv_concat, use_gmm in itertools.product((True, False), (True, False)):
            p = run("lint", RULES, "--against", folder, *variant_args(qkv_concat, use_gmm))
            self.assertEqual(p.stdout.strip(), RULES + ": ok")

    def test_a_missing_expert_or_shared_gate_fails_naming_it(self):
        for missing in ("model.layers.1.mlp.experts.3.up_proj.weight",
                        "model.layers.0.mlp.shared_expert_gate.weight"):
            folder, config, tensors = self.make(shards=1)
            del tensors[missing]
            write_hf_folder(folder, tensors, config, shards=1)
            self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                               self.path("m.ckpt")], 1, missing)

    def test_a_missing_qkv_bias_fails_naming_it(self):
        folder, config, tensors = self.make(shards=1)
        del tensors["model.layers.1.self_attn.k_proj.bias"]
        write_hf_folder(folder, tensors, config, shards=1)
        self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                           self.path("m.ckpt")], 1, "model.layers.1.self_attn.k_proj.bias")

    def test_config_json_decides_the_expert_count(self):
        folder, config, _ = self.make()
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(dict(config, num_experts=5), f)
        self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                           self.path("m.ckpt")], 1, "model.layers.0.mlp.experts.4.")


if __name__ == "__main__":
    unittest.main(verbosity=2)
