"""The glm4_moe rule file (rules/glm4_moe.yaml, GLM-4.5) on tiny Glm4MoeForCausalLM folders:
config.json plus bf16 safetensors shards (the router's e_score_correction_bias fp32), GQA with
heads * head_dim != hidden_size, q/k/v biases, q_norm/k_norm (GLM-4.5) or not (GLM-4.5-Air), a
dense first layer, MoE layers with shared experts, and the MTP layer after the last one.

Checked: lint clean, --model glm4_moe / glm4.5 served; forward names equal
tests/e2e/expected/glm4_moe*.txt (written from MindFormers' MCore GLM-4.5 table); linear_qkv,
the dense and shared-expert linear_fc1 (over moe_intermediate_size * n_shared_experts rows) and
the experts' weight1 / weight2 equal independent torch computations of MCore's layouts; every MTP
tensor is dropped and listed; the router bias stays float32 under --dtype bf16 / fp16 in both
directions while everything else is cast; reverse gives the input back byte for byte (the dropped
MTP layer excepted), also from the .ckpt alone (with q_norm every size is read off the shapes;
without, the head count is asked for by name); the seed command line writes the same bytes as
--rules under both keys; lint --against round-trips.

The same rule file on a tiny model built and saved by transformers 5 itself (not written by
hand): interop.extended_families (tests/interop/extended/test_extended_families.py, optional:
it needs the Debian sid chroot of docs/interop.md), which imports this module's config,
tensors and expected computations.
"""
import json
import os
import re
import sys
import unittest

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from family_lib import MCORE_TOP_NAMES, deepseek_style_mlp_shapes  # noqa: E402
from family_lib import (FamilyTestCase, SOURCE, alone, assert_seed_form_writes_what_rules_write,  # noqa: E402
                        expected_names, randn, read_ckpt, read_hf_folder, record, run, seeded,
                        write_hf_folder)
from family_lib import convert as cw_convert  # noqa: E402
from test_family_qwen3 import FC1, QKV, experts_ms, models_listing_serves  # noqa: E402

RULES = os.path.join(SOURCE, "rules", "glm4_moe.yaml")


def glm4_moe_config(**overrides):
    """GLM-4.5 scaled down: 96 heads / 8 KV heads of 128 on 5120, 160 experts of 1536 plus one
    shared, first 3 layers dense, 92 layers + 1 MTP, q/k norms -> 6 heads / 2 KV heads of 8 on
    32, 4 experts of 12 plus one shared, first layer dense, 3 layers + 1 MTP."""
    config = {"architectures": ["Glm4MoeForCausalLM"], "model_type": "glm4_moe",
              "hidden_size": 32, "intermediate_size": 40, "moe_intermediate_size": 12,
              "num_attention_heads": 6, "num_key_value_heads": 2, "head_dim": 8,
              "num_hidden_layers": 3, "num_nextn_predict_layers": 1, "first_k_dense_replace": 1,
              "n_routed_experts": 4, "n_shared_experts": 1, "num_experts_per_tok": 2,
              "n_group": 1, "topk_group": 1, "norm_topk_prob": True,
              "routed_scaling_factor": 2.5, "use_qk_norm": True, "attention_bias": True,
              "partial_rotary_factor": 0.5, "vocab_size": 48, "max_position_embeddings": 131072,
              "rms_norm_eps": 1e-5, "rope_theta": 1000000, "tie_word_embeddings": False,
              "torch_dtype": "bfloat16"}
    config.update(overrides)
    return config


def layer_tensors(g, config, p, t, moe):
    bf = torch.bfloat16
    h, d = config["hidden_size"], config["head_dim"]
    q, kv = config["num_attention_heads"] * d, config["num_key_value_heads"] * d
    shapes = {"input_layernorm.weight": [h], "post_attention_layernorm.weight": [h],
              "self_attn.q_proj.weight": [q, h], "self_attn.k_proj.weight": [kv, h],
              "self_attn.v_proj.weight": [kv, h], "self_attn.o_proj.weight": [h, q]}
    if config["attention_bias"]:
        shapes.update({"self_attn.q_proj.bias": [q], "self_attn.k_proj.bias": [kv],
                       "self_attn.v_proj.bias": [kv]})
    if config["use_qk_norm"]:
        shapes.update({"self_attn.q_norm.weight": [d], "self_attn.k_norm.weight": [d]})
    shapes.update(deepseek_style_mlp_shapes(config, moe))
    if moe:
        # fp32 on disk, as in the releases.
        t[p + "mlp.gate.e_score_correction_bias"] = randn(g, config["n_routed_experts"])
    for name, shape in shapes.items():
        t[p + name] = randn(g, *shape, dtype=bf)


def glm4_moe_tensors(config, seed=0):
    g = seeded(seed)
    bf = torch.bfloat16
    h, v = config["hidden_size"], config["vocab_size"]
    t = {"model.embed_tokens.weight": randn(g, v, h, dtype=bf),
         "model.norm.weight": randn(g, h, dtype=bf), "lm_head.weight": randn(g, v, h, dtype=bf)}
    for layer in range(config["num_hidden_layers"]):
        layer_tensors(g, config, f"model.layers.{layer}.", t,
                      moe=layer >= config["first_k_dense_replace"])
    for k in range(config["num_nextn_predict_layers"]):
        p = f"model.layers.{config['num_hidden_layers'] + k}."
        layer_tensors(g, config, p, t, moe=True)
        for name in ("enorm.weight", "hnorm.weight", "shared_head.norm.weight"):
            t[p + name] = randn(g, h, dtype=bf)
        t[p + "eh_proj.weight"] = randn(g, h, 2 * h, dtype=bf)
        t[p + "embed_tokens.weight"] = t["model.embed_tokens.weight"].clone()
        t[p + "shared_head.head.weight"] = t["lm_head.weight"].clone()
    return dict(sorted(t.items()))


def mtp_names(t, config):
    first = config["num_hidden_layers"]
    return sorted(n for n in t if re.match(r"model\.layers\.(\d+)\.", n)
                  and int(n.split(".")[2]) >= first)


# mindformers/models/glm4_moe/utils.py (and the MCore layouts), written independently of the
# rule file.
TOP_NAMES = MCORE_TOP_NAMES
LAYER_RENAMES = {"input_layernorm.weight": "input_layernorm.weight",
                 "post_attention_layernorm.weight": "pre_mlp_layernorm.weight",
                 "self_attn.o_proj.weight": "self_attention.linear_proj.weight",
                 "self_attn.q_norm.weight": "self_attention.q_layernorm.weight",
                 "self_attn.k_norm.weight": "self_attention.k_layernorm.weight",
                 "mlp.down_proj.weight": "mlp.linear_fc2.weight",
                 "mlp.gate.weight": "mlp.router.weight",
                 "mlp.gate.e_score_correction_bias": "mlp.router.expert_bias",
                 "mlp.shared_experts.down_proj.weight": "mlp.shared_experts.linear_fc2.weight"}


def glm4_moe_expected(t, config, dtype=None):
    """MCore tensors computed with torch; `dtype` is what --dtype asks (the bias stays fp32)."""
    out = {TOP_NAMES[n]: v for n, v in t.items() if n in TOP_NAMES}
    sizes = (config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"])
    for layer in range(config["num_hidden_layers"]):
        src, dst = f"model.layers.{layer}.", f"decoder.layers.{layer}."
        out.update({dst + b: t[src + a] for a, b in LAYER_RENAMES.items() if src + a in t})
        for wb in ("weight", "bias"):
            if f"{src}self_attn.q_proj.{wb}" in t:
                out[f"{dst}self_attention.linear_qkv.{wb}"] = QKV["interleaved"](
                    *[t[f"{src}self_attn.{p}_proj.{wb}"] for p in "qkv"], *sizes)
        if layer < config["first_k_dense_replace"]:
            out[dst + "mlp.linear_fc1.weight"] = FC1["interleaved"](
                t[src + "mlp.gate_proj.weight"], t[src + "mlp.up_proj.weight"])
            continue
        shared = src + "mlp.shared_experts."
        out[dst + "mlp.shared_experts.linear_fc1.weight"] = FC1["interleaved"](
            t[shared + "gate_proj.weight"], t[shared + "up_proj.weight"])
        out.update({dst + k: v for k, v in experts_ms(t, src, config["n_routed_experts"]).items()})
    if dtype is not None:
        out = {k: v.to(torch.float32 if k.endswith("expert_bias") else dtype)
               for k, v in out.items()}
    return {k: record(v) for k, v in out.items()}


class Glm4MoeTest(FamilyTestCase):
    def make(self, shards=3, **overrides):
        config = glm4_moe_config(**overrides)
        tensors = glm4_moe_tensors(config)
        folder = self.path(f"glm4_moe_{len(os.listdir(self.tmp))}")
        write_hf_folder(folder, tensors, config, fmt="safetensors", shards=shards)
        return folder, config, tensors

    def without_mtp(self, folder, config):
        src = read_hf_folder(folder)
        for name in mtp_names(src, config):
            del src[name]
        return src

    def test_the_rule_file_lints_clean_and_serves_both_keys(self):
        self.assertEqual(run("lint", RULES).stdout.strip(), RULES + ": ok")
        models_listing_serves(self, ["glm4_moe", "glm4.5"], "glm4_moe.yaml")

    def test_glm45_and_air_equal_torch_drop_the_mtp_layer_and_round_trip(self):
        for qk_norm, names in ((True, "glm4_moe"), (False, "glm4_moe_air")):
            with self.subTest(qk_norm=qk_norm):
                folder, config, tensors = self.make(use_qk_norm=qk_norm)
                ckpt = folder + ".ckpt"
                p = run("convert", "--rules", RULES, "--input", folder, "--output", ckpt)
                got = read_ckpt(ckpt)
                self.assertEqual(sorted(got), sorted(expected_names(names)))
                self.assertEqual(got, glm4_moe_expected(tensors, config))
                # Every MTP tensor is a declared, listed drop.
                mtp = mtp_names(tensors, config)
                self.assertIn("model.layers.3.eh_proj.weight", mtp)
                self.assertIn("model.layers.3.mlp.experts.3.down_proj.weight", mtp)
                dropped = re.findall(r"^  dropped ([^\s:]+)", p.stderr, re.M)
                self.assertEqual(sorted(dropped), mtp)
                cw_convert(RULES, ckpt, folder + "_back/", "--config",
                           os.path.join(folder, "config.json"), reverse=True)
                self.assertEqual(read_hf_folder(folder + "_back"), self.without_mtp(folder, config))

    def test_two_shared_experts_interleave_over_their_whole_width(self):
        folder, config, tensors = self.make(n_shared_experts=2)
        cw_convert(RULES, folder, folder + ".ckpt")
        got = read_ckpt(folder + ".ckpt")
        self.assertEqual(got, glm4_moe_expected(tensors, config))
        self.assertEqual(got["decoder.layers.1.mlp.shared_experts.linear_fc1.weight"][1],
                         [2 * 2 * 12, 32])

    def test_contiguous_layouts_round_trip(self):
        folder, config, tensors = self.make()
        args = ["--set", "qkv_layout=contiguous", "--set", "fc1_layout=contiguous"]
        cw_convert(RULES, folder, folder + ".ckpt", *args)
        got = read_ckpt(folder + ".ckpt")
        p = "decoder.layers.1.mlp.shared_experts.linear_fc1.weight"
        src = "model.layers.1.mlp.shared_experts."
        self.assertEqual(got[p], record(FC1["contiguous"](tensors[src + "gate_proj.weight"],
                                                          tensors[src + "up_proj.weight"])))
        cw_convert(RULES, folder + ".ckpt", folder + "_back/", "--config",
                   os.path.join(folder, "config.json"), *args, reverse=True)
        self.assertEqual(read_hf_folder(folder + "_back"), self.without_mtp(folder, config))

    def test_the_router_bias_stays_float32_whatever_dtype_says(self):
        folder, config, tensors = self.make()
        for dtype, code, torch_dtype in (("bf16", "BF16", torch.bfloat16),
                                         ("fp16", "F16", torch.float16)):
            with self.subTest(dtype=dtype):
                ckpt = self.path(f"{dtype}.ckpt")
                cw_convert(RULES, folder, ckpt, "--dtype", dtype)
                got = read_ckpt(ckpt)
                self.assertEqual(got, glm4_moe_expected(tensors, config, torch_dtype))
                for name, (got_dtype, _, _) in got.items():
                    self.assertEqual(got_dtype, "F32" if name.endswith("expert_bias") else code,
                                     name)
                back = self.path(f"{dtype}_back/")
                cw_convert(RULES, ckpt, back, "--config", os.path.join(folder, "config.json"),
                           "--dtype", dtype, reverse=True)
                for name, (got_dtype, _, _) in read_hf_folder(back.rstrip("/")).items():
                    self.assertEqual(got_dtype, "F32" if name.endswith("correction_bias") else code,
                                     name)

    def test_reverse_from_the_ckpt_alone(self):
        # GLM-4.5 (q_norm gives head_dim): every size off the shapes.
        folder, config, _ = self.make()
        cw_convert(RULES, folder, self.path("qk.ckpt"))
        back = self.path("qk_back/")
        p = run("convert", "--rules", RULES, "--input", alone(self, self.path("qk.ckpt")),
                "--output", back, "--reverse")
        self.assertEqual(read_hf_folder(back.rstrip("/")), self.without_mtp(folder, config))
        for solved in ("head_dim = 8", "heads = 6", "kv_heads = 2", "experts = 4",
                       "moe_intermediate_size = 12", "shared_experts = 1",
                       "intermediate_size = 40", "hidden_size = 32", "vocab = 48"):
            self.assertIn(f"parameter {solved} (solved from ", p.stderr)
        # GLM-4.5-Air (no per-head norm): the head count is asked for, then is enough.
        folder, config, _ = self.make(use_qk_norm=False)
        cw_convert(RULES, folder, self.path("air.ckpt"))
        lone = alone(self, self.path("air.ckpt"))
        self.assert_fails(["convert", "--rules", RULES, "--input", lone, "--output",
                           self.path("x/"), "--reverse"], 1,
                          "parameter kv_heads has no value: give --set kv_heads=... or a "
                          "config.json with num_key_value_heads")
        self.assertFalse(os.path.exists(self.path("x")))
        back = self.path("air_back/")
        cw_convert(RULES, lone, back, "--set", "heads=6", reverse=True)
        self.assertEqual(read_hf_folder(back.rstrip("/")), self.without_mtp(folder, config))

    def test_seed_command_line_writes_the_same_bytes_as_rules_under_both_keys(self):
        folder, config, _ = self.make()
        assert_seed_form_writes_what_rules_write(self, RULES, ("glm4_moe", "glm4.5"), folder,
                                                 self.without_mtp(folder, config))

    def test_lint_against_the_checkpoint_round_trips(self):
        for overrides in ({}, {"use_qk_norm": False, "n_shared_experts": 2}):
            folder, _, _ = self.make(**overrides)
            for args in ([], ["--set", "qkv_layout=contiguous", "--set", "fc1_layout=contiguous"]):
                p = run("lint", RULES, "--against", folder, *args)
                self.assertEqual(p.stdout.strip(), RULES + ": ok", (overrides, args))

    def test_a_dense_layer_past_first_k_dense_replace_is_refused(self):
        folder, config, _ = self.make()
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(dict(config, first_k_dense_replace=0), f)
        self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                           self.path("m.ckpt")], 1, "model.layers.0.mlp.gate_proj.weight",
                          'its when "dense_mlp and fc1_interleaved" is false')

    def test_a_missing_expert_fails_naming_it(self):
        folder, config, tensors = self.make(shards=1)
        missing = "model.layers.2.mlp.experts.1.gate_proj.weight"
        del tensors[missing]
        write_hf_folder(folder, tensors, config, shards=1)
        self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                           self.path("m.ckpt")], 1, missing)


if __name__ == "__main__":
    unittest.main(verbosity=2)
