"""The glm4 rule file (rules/glm4.yaml, GLM-4-0414) on tiny Glm4ForCausalLM folders: config.json
plus bf16 safetensors shards, GQA (8 heads, 2 KV heads), q/k/v biases, the fused gate_up_proj and
GLM-4's four norms per layer.

Checked: lint clean; --model glm4_0414 / glm4-0414 served, and not the key glm4 (the ChatGLM
converter's, glm-n); forward names equal tests/e2e/expected/glm4.txt (written from MindFormers'
MCore GLM-4 table); linear_qkv (and its bias) equals MCore's per-KV-group layout computed with
torch, linear_fc1 equals gate_up_proj split into its halves and row-interleaved, and with
fc1_layout=contiguous is gate_up_proj unchanged; the sandwich norms keep their names; reverse gives
the input back byte for byte for every layout; from the .ckpt alone the head counts are asked for
by name, and with heads given the rest is read off the shapes; the seed command line writes the
same bytes as --rules; lint --against round-trips.

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
from family_lib import MCORE_TOP_NAMES  # noqa: E402
from family_lib import (FamilyTestCase, SOURCE, alone, assert_seed_form_writes_what_rules_write,  # noqa: E402
                        expected_names, randn, read_ckpt, read_hf_folder, record, run, seeded,
                        write_hf_folder)
from family_lib import convert as cw_convert  # noqa: E402
from test_family_qwen3 import FC1, QKV, models_listing_serves  # noqa: E402

RULES = os.path.join(SOURCE, "rules", "glm4.yaml")
LAYOUTS = ("interleaved", "contiguous")


def glm4_config(**overrides):
    """GLM-4-32B-0414 scaled down: 48 heads / 2 KV heads of 128 on 6144, FFN 23040, q/k/v biases
    -> 8 heads / 2 KV heads of 4 on 32, FFN 40."""
    config = {"architectures": ["Glm4ForCausalLM"], "model_type": "glm4", "hidden_size": 32,
              "intermediate_size": 40, "num_attention_heads": 8, "num_key_value_heads": 2,
              "head_dim": 4, "num_hidden_layers": 2, "vocab_size": 48,
              "partial_rotary_factor": 0.5, "attention_bias": True, "attention_dropout": 0.0,
              "hidden_act": "silu", "max_position_embeddings": 32768, "rms_norm_eps": 1e-5,
              "rope_theta": 10000.0, "pad_token_id": 0, "eos_token_id": [1, 2],
              "tie_word_embeddings": False, "torch_dtype": "bfloat16"}
    config.update(overrides)
    return config


def glm4_tensors(config, seed=0):
    g = seeded(seed)
    bf = torch.bfloat16
    h, d, f = config["hidden_size"], config["head_dim"], config["intermediate_size"]
    q, kv = config["num_attention_heads"] * d, config["num_key_value_heads"] * d
    t = {"model.embed_tokens.weight": randn(g, config["vocab_size"], h, dtype=bf),
         "model.norm.weight": randn(g, h, dtype=bf),
         "lm_head.weight": randn(g, config["vocab_size"], h, dtype=bf)}
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        shapes = {"input_layernorm.weight": [h], "post_self_attn_layernorm.weight": [h],
                  "post_attention_layernorm.weight": [h], "post_mlp_layernorm.weight": [h],
                  "self_attn.q_proj.weight": [q, h], "self_attn.k_proj.weight": [kv, h],
                  "self_attn.v_proj.weight": [kv, h], "self_attn.o_proj.weight": [h, q],
                  "mlp.gate_up_proj.weight": [2 * f, h], "mlp.down_proj.weight": [h, f]}
        if config["attention_bias"]:
            shapes.update({"self_attn.q_proj.bias": [q], "self_attn.k_proj.bias": [kv],
                           "self_attn.v_proj.bias": [kv]})
        for name, shape in shapes.items():
            t[p + name] = randn(g, *shape, dtype=bf)
    return dict(sorted(t.items()))


# mindformers/models/glm4/utils.py weight_mapping, written independently of the rule file.
TOP_NAMES = MCORE_TOP_NAMES
LAYER_RENAMES = {"input_layernorm.weight": "input_layernorm.weight",
                 "post_self_attn_layernorm.weight": "post_self_attn_layernorm.weight",
                 "post_attention_layernorm.weight": "pre_mlp_layernorm.weight",
                 "post_mlp_layernorm.weight": "post_mlp_layernorm.weight",
                 "self_attn.o_proj.weight": "self_attention.linear_proj.weight",
                 "mlp.down_proj.weight": "mlp.linear_fc2.weight"}


def glm4_expected(t, config, qkv_layout="interleaved", fc1_layout="interleaved"):
    out = {TOP_NAMES[n]: v for n, v in t.items() if n in TOP_NAMES}
    sizes = (config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"])
    f = config["intermediate_size"]
    for layer in range(config["num_hidden_layers"]):
        src, dst = f"model.layers.{layer}.", f"decoder.layers.{layer}."
        out.update({dst + b: t[src + a] for a, b in LAYER_RENAMES.items()})
        for wb in ("weight", "bias"):
            if f"{src}self_attn.q_proj.{wb}" in t:
                out[f"{dst}self_attention.linear_qkv.{wb}"] = QKV[qkv_layout](
                    *[t[f"{src}self_attn.{p}_proj.{wb}"] for p in "qkv"], *sizes)
        gate_up = t[src + "mlp.gate_up_proj.weight"]  # Phi-3 MLP: [gate; up]
        out[dst + "mlp.linear_fc1.weight"] = FC1[fc1_layout](gate_up[:f], gate_up[f:])
    return {k: record(v) for k, v in out.items()}


def layout_args(qkv_layout, fc1_layout):
    return ["--set", f"qkv_layout={qkv_layout}", "--set", f"fc1_layout={fc1_layout}"]


class Glm4Test(FamilyTestCase):
    def make(self, shards=2, **overrides):
        config = glm4_config(**overrides)
        tensors = glm4_tensors(config)
        folder = self.path(f"glm4_{len(os.listdir(self.tmp))}")
        write_hf_folder(folder, tensors, config, fmt="safetensors", shards=shards)
        return folder, config, tensors

    def test_the_rule_file_lints_clean_and_serves_the_0414_keys_not_glm4(self):
        self.assertEqual(run("lint", RULES).stdout.strip(), RULES + ": ok")
        models_listing_serves(self, ["glm4_0414", "glm4-0414"], "glm4.yaml")
        # The reference key glm4 means the ChatGLM-architecture converter (glm-n), never this file.
        p = run("--model", "glm4", "--input_path", self.tmp, "--output_path", self.path("x.ckpt"),
                check=False)
        self.assertNotIn("glm4.yaml", p.stdout + p.stderr)

    def test_every_layout_with_and_without_biases_equals_torch_and_round_trips(self):
        for bias in (True, False):
            folder, config, tensors = self.make(attention_bias=bias)
            for qkv_layout, fc1_layout in itertools.product(LAYOUTS, LAYOUTS):
                with self.subTest(bias=bias, qkv=qkv_layout, fc1=fc1_layout):
                    args = layout_args(qkv_layout, fc1_layout)
                    tag = self.path(f"{bias}_{qkv_layout}_{fc1_layout}")
                    cw_convert(RULES, folder, tag + ".ckpt", *args)
                    got = read_ckpt(tag + ".ckpt")
                    self.assertEqual(sorted(got),
                                     sorted(expected_names("glm4" if bias else "glm4_nobias")))
                    self.assertEqual(got, glm4_expected(tensors, config, qkv_layout, fc1_layout))
                    cw_convert(RULES, tag + ".ckpt", tag + "_back/", "--config",
                               os.path.join(folder, "config.json"), *args, reverse=True)
                    self.assertEqual(read_hf_folder(tag + "_back"), read_hf_folder(folder))

    def test_contiguous_fc1_is_gate_up_proj_unchanged(self):
        folder, _, tensors = self.make()
        cw_convert(RULES, folder, self.path("c.ckpt"), "--set", "fc1_layout=contiguous")
        got = read_ckpt(self.path("c.ckpt"))
        for layer in range(2):
            self.assertEqual(got[f"decoder.layers.{layer}.mlp.linear_fc1.weight"],
                             record(tensors[f"model.layers.{layer}.mlp.gate_up_proj.weight"]))

    def test_interleaved_fc1_alternates_gate_and_up_rows(self):
        folder, config, tensors = self.make()
        cw_convert(RULES, folder, self.path("i.ckpt"))
        rec = read_ckpt(self.path("i.ckpt"))["decoder.layers.1.mlp.linear_fc1.weight"]
        fc1 = torch.frombuffer(bytearray(rec[2]), dtype=torch.bfloat16).reshape(rec[1])
        gate_up = tensors["model.layers.1.mlp.gate_up_proj.weight"]
        f = config["intermediate_size"]
        self.assertTrue(torch.equal(fc1[0::2], gate_up[:f]))
        self.assertTrue(torch.equal(fc1[1::2], gate_up[f:]))

    def test_reverse_from_the_ckpt_alone_asks_for_the_head_counts_then_reads_the_rest(self):
        folder, _, _ = self.make()
        for qkv_layout, fc1_layout in itertools.product(LAYOUTS, LAYOUTS):
            with self.subTest(qkv=qkv_layout, fc1=fc1_layout):
                args = layout_args(qkv_layout, fc1_layout)
                ckpt = self.path(f"alone_{qkv_layout}_{fc1_layout}.ckpt")
                cw_convert(RULES, folder, ckpt, *args)
                lone = alone(self, ckpt)
                # The interleave asks for its group count first, the concat for the q rows.
                asked = "kv_heads" if qkv_layout == "interleaved" else "heads"
                self.assert_fails(["convert", "--rules", RULES, "--input", lone, "--output",
                                   self.path("x/"), "--reverse", *args], 1,
                                  f"parameter {asked} has no value: give --set {asked}=... or a "
                                  "config.json with num_")
                self.assertFalse(os.path.exists(self.path("x")))
                back = self.path(f"alone_{qkv_layout}_{fc1_layout}_back/")
                # The head count is enough: head_dim is read off linear_proj, kv_heads off
                # linear_qkv.
                p = run("convert", "--rules", RULES, "--input", lone, "--output", back,
                        "--reverse", "--set", "heads=8", *args)
                self.assertEqual(read_hf_folder(back.rstrip("/")), read_hf_folder(folder))
                for solved in ("head_dim = 4", "kv_heads = 2", "intermediate_size = 40",
                               "hidden_size = 32", "vocab = 48"):
                    self.assertIn(f"parameter {solved} (solved from ", p.stderr)

    def test_seed_command_line_writes_the_same_bytes_as_rules_under_both_keys(self):
        folder, _, _ = self.make()
        assert_seed_form_writes_what_rules_write(self, RULES, ("glm4_0414", "glm4-0414"), folder,
                                                 read_hf_folder(folder))

    def test_lint_against_the_checkpoint_round_trips(self):
        folder, _, _ = self.make()
        for qkv_layout, fc1_layout in itertools.product(LAYOUTS, LAYOUTS):
            p = run("lint", RULES, "--against", folder, *layout_args(qkv_layout, fc1_layout))
            self.assertEqual(p.stdout.strip(), RULES + ": ok")

    def test_a_missing_sandwich_norm_fails_naming_it(self):
        folder, config, tensors = self.make(shards=1)
        missing = "model.layers.1.post_mlp_layernorm.weight"
        del tensors[missing]
        write_hf_folder(folder, tensors, config, shards=1)
        self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                           self.path("m.ckpt")], 1, missing)

    def test_a_gate_up_proj_of_the_wrong_width_fails_naming_it(self):
        folder, config, _ = self.make()
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(dict(config, intermediate_size=30), f)
        self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                           self.path("m.ckpt")], 1, "mlp.gate_up_proj.weight", "[80, 32]")


if __name__ == "__main__":
    unittest.main(verbosity=2)
