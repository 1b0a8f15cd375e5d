"""The telechat rule files (rules/telechat_7b.yaml, rules/telechat_12b.yaml) on tiny TeleChat
checkpoints in the layout TeleChat ships in: HF folders of .bin shards named
pytorch_model_000NN-of-000MM.bin (underscore) listed in pytorch_model.bin.index.json. 7B files have
unprefixed names and no lm_head.weight, 12B files prefix everything but their untied lm_head.weight
with transformer.; a 7B file re-saved by save_pretrained carries the prefix without a head.

Checked: forward names equal tests/e2e/expected/telechat_{7b,12b}.txt, every tensor equals its
source (K/V stays fused), dtypes kept, reverse gives every spelling back byte for byte, the type is
detected from the names when --telechat_type is not given and a contradicting one fails, and the
seed command line (--model telechat [--telechat_type X], telechat_7b, telechat_12b) writes the
same bytes as --rules.
"""
import os
import re
import sys
import unittest

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from family_lib import (FamilyTestCase, SOURCE, alone, expected_names, randn, read_any, read_bin, read_ckpt,  # noqa: E402
                        record, run, seeded, seed_convert, write_hf_folder)
from family_lib import convert as cw_convert  # noqa: E402

RULES = {t: os.path.join(SOURCE, "rules", t + ".yaml") for t in ("telechat_7b", "telechat_12b")}

# TeleChat-7B: hidden 4096, 32 heads, 30 layers, FFN 3 x hidden, fp16. Tiny, same ratios.
CONFIG_7B = {"architectures": ["TelechatForCausalLM"], "model_type": "telechat", "hidden_size": 32,
             "n_head": 4, "n_layer": 3, "ffn_hidden_size": 96, "vocab_size": 48,
             "layer_norm_epsilon": 1e-5, "torch_dtype": "float16"}
# TeleChat-12B: hidden 5120, FFN 2.4 x hidden, untied head, bf16.
CONFIG_12B = {"architectures": ["TelechatForCausalLM"], "model_type": "telechat", "hidden_size": 40,
              "n_head": 5, "n_layer": 2, "ffn_hidden_size": 96, "vocab_size": 56,
              "layer_norm_epsilon": 1e-5, "torch_dtype": "bfloat16", "tie_word_embeddings": False}

# MindSpore names, written from the table of MindFormers' research/telechat/convert_weight.py
# (independently of the rule files).
TOP_NAMES = {"word_embeddings.weight": "model.tok_embeddings.embedding_weight",
             "ln_f.weight": "model.norm_out.weight"}
LAYER_PARTS = {"input_layernorm.weight": "attention_norm.weight",
               "self_attention.query.weight": "attention.wq.weight",
               "self_attention.key_value.weight": "attention.wk_v.weight",
               "self_attention.dense.weight": "attention.wo.weight",
               "self_attention.dense.bias": "attention.wo.bias",
               "post_attention_layernorm.weight": "ffn_norm.weight",
               "mlp.gate_proj.weight": "feed_forward.w1.weight",
               "mlp.up_proj.weight": "feed_forward.w3.weight",
               "mlp.down_proj.weight": "feed_forward.w2.weight",
               "mlp.down_proj.bias": "feed_forward.w2.bias"}


def ms_name(hf):
    bare = hf[len("transformer."):] if hf.startswith("transformer.") else hf
    if hf == "lm_head.weight":
        return hf
    if bare in TOP_NAMES:
        return TOP_NAMES[bare]
    m = re.fullmatch(r"h\.(\d+)\.(.+)", bare)
    return f"model.layers.{m[1]}.{LAYER_PARTS[m[2]]}"


def telechat_tensors(config, dtype, prefix="", head=False, seed=0):
    """HF tensors of a TelechatForCausalLM in state_dict order."""
    g = seeded(seed)
    h, f, v = config["hidden_size"], config["ffn_hidden_size"], config["vocab_size"]
    shapes = {"input_layernorm.weight": (h,), "self_attention.query.weight": (h, h),
              "self_attention.key_value.weight": (2 * h, h), "self_attention.dense.weight": (h, h),
              "self_attention.dense.bias": (h,), "post_attention_layernorm.weight": (h,),
              "mlp.gate_proj.weight": (f, h), "mlp.up_proj.weight": (f, h),
              "mlp.down_proj.weight": (h, f), "mlp.down_proj.bias": (h,)}
    t = {prefix + "word_embeddings.weight": randn(g, v, h, dtype=dtype)}
    for layer in range(config["n_layer"]):
        for part, shape in shapes.items():
            t[f"{prefix}h.{layer}.{part}"] = randn(g, *shape, dtype=dtype)
    t[prefix + "ln_f.weight"] = randn(g, h, dtype=dtype)
    if head:
        t["lm_head.weight"] = randn(g, v, h, dtype=dtype)
    return t


def shard_name(i, n):
    return f"pytorch_model_{i:05d}-of-{n:05d}.bin"


# The variants: (config, dtype, prefix, head, expected list, type the names fit).
VARIANTS = {
    "7b": (CONFIG_7B, torch.float16, "", False, "telechat_7b", "telechat_7b"),
    "7b_resaved": (CONFIG_7B, torch.float16, "transformer.", False, "telechat_7b", "telechat_7b"),
    "7b_with_head": (CONFIG_7B, torch.float16, "", True, "telechat_7b", "telechat_7b"),
    "12b": (CONFIG_12B, torch.bfloat16, "transformer.", True, "telechat_12b", "telechat_12b"),
}


def file_bytes(path):
    with open(path, "rb") as f:
        return f.read()


class TelechatTest(FamilyTestCase):
    def build(self, variant, name=None, mutate=None):
        config, dtype, prefix, head, _, _ = VARIANTS[variant]
        folder = self.path(name or variant)
        named = telechat_tensors(config, dtype, prefix, head)
        if mutate:
            mutate(named)
        write_hf_folder(folder, named, config, fmt="bin", shards=4, shard_name=shard_name)
        return folder, named

    def source_records(self, folder):
        out = {}
        for name in sorted(os.listdir(folder)):
            if name.endswith(".bin"):
                out.update(read_bin(os.path.join(folder, name)))
        return out

    def forward(self, rules, src, out="f.ckpt", *extra):
        ckpt = self.path(out)
        cw_convert(RULES[rules], src, ckpt, *extra)
        return ckpt

    def reverse(self, rules, ckpt, out, *extra):
        back = self.path(out)
        cw_convert(RULES[rules], ckpt, back, *extra, reverse=True)
        return back



class Registry(TelechatTest):
    def test_rule_files_lint_clean(self):
        p = run("lint", *RULES.values())
        for path in RULES.values():
            self.assertIn(path + ": ok", p.stdout)

    def test_keys(self):
        text = run("models").stdout
        keys = {name: k.split(", ") for name, k in re.findall(r"^(\S+)  \(.+\)\n  keys: (.*)$", text, re.M)}
        self.assertEqual(keys["telechat_12b"], ["telechat", "telechat_12b"])
        self.assertEqual(keys["telechat_7b"], ["telechat_7b"])

    def test_lint_against_every_variant_round_trips(self):
        for variant, (_, _, _, _, _, fits) in VARIANTS.items():
            folder, _ = self.build(variant)
            for rules in ("telechat_12b", fits):
                with self.subTest(variant=variant, rules=rules):
                    self.assertIn(": ok", run("lint", RULES[rules], "--against", folder).stdout)


class Forward(TelechatTest):
    def test_every_variant_forward_names_tensors_and_dtypes(self):
        for variant, (_, dtype, prefix, head, expected, fits) in VARIANTS.items():
            with self.subTest(variant=variant):
                folder, named = self.build(variant)
                self.assertTrue(os.path.exists(os.path.join(folder, shard_name(1, 4))))
                got = read_ckpt(self.forward(fits, folder, variant + ".ckpt"))
                want = expected_names(expected) + (["lm_head.weight"] if head and fits == "telechat_7b" else [])
                self.assertEqual(sorted(got), sorted(want))
                for hf, t in named.items():
                    self.assertEqual(got[ms_name(hf)], record(t), hf)
                code = record(torch.zeros(1, dtype=dtype))[0]
                self.assertEqual({d for d, _, _ in got.values()}, {code}, "dtype kept")

    def test_the_type_and_prefix_are_detected_from_the_names(self):
        for variant, (_, _, prefix, _, _, fits) in VARIANTS.items():
            with self.subTest(variant=variant):
                folder, _ = self.build(variant)
                plan = run("plan", "--rules", RULES["telechat_12b"], "--input", folder).stdout
                self.assertIn(f"parameter telechat_type = '{fits}' (detected from the input names)", plan)
                self.assertIn(f"parameter hf_prefix = '{prefix}' (detected from the input names)", plan)

    def test_both_files_and_both_spellings_give_the_same_ckpt(self):
        a, _ = self.build("7b")
        b, _ = self.build("7b_resaved")
        first = file_bytes(self.forward("telechat_7b", a, "a.ckpt"))
        self.assertEqual(first, file_bytes(self.forward("telechat_12b", a, "b.ckpt")))
        self.assertEqual(first, file_bytes(self.forward("telechat_7b", b, "c.ckpt")))

    def test_a_telechat_type_the_names_contradict_fails_and_says_which_fits(self):
        seven, _ = self.build("7b")
        twelve, _ = self.build("12b")
        self.assert_fails(["--model", "telechat", "--telechat_type", "telechat_12b", "--input_path",
                           seven, "--output_path", self.path("x.ckpt")], 1,
                          "the input names fit telechat_type = 'telechat_7b', hf_prefix = ''")
        self.assert_fails(["--model", "telechat", "--telechat_type", "telechat_7b", "--input_path",
                           twelve, "--output_path", self.path("y.ckpt")], 1, "lm_head.weight",
                          "the input names fit telechat_type = 'telechat_12b', hf_prefix = 'transformer.'")
        self.assert_fails(["--model", "telechat_7b", "--input_path", twelve, "--output_path",
                           self.path("z.ckpt")], 1, "lm_head.weight")
        self.assert_fails(["--model", "telechat_7b", "--telechat_type", "telechat_12b", "--input_path",
                           seven, "--output_path", self.path("w.ckpt")], 2, "telechat_type takes 'telechat_7b'")
        self.assertFalse(any(n.endswith(".ckpt") for n in os.listdir(self.tmp)))

    def test_a_missing_tensor_of_a_layer_fails_naming_it(self):
        folder, _ = self.build("12b", "gap", lambda n: n.pop("transformer.h.1.self_attention.key_value.weight"))
        self.assert_fails(["convert", "--rules", RULES["telechat_12b"], "--input", folder, "--output",
                           self.path("x.ckpt")], 1, "transformer.h.1.self_attention.key_value.weight")

    def test_an_unknown_tensor_fails_naming_it(self):
        def add(named):
            named["h.0.self_attention.rotary_emb.inv_freq"] = torch.ones(4)
        folder, _ = self.build("7b", "extra", add)
        self.assert_fails(["convert", "--rules", RULES["telechat_7b"], "--input", folder, "--output",
                           self.path("x.ckpt")], 1, "h.0.self_attention.rotary_emb.inv_freq")

    def test_the_layer_count_comes_from_config_n_layer(self):
        folder, _ = self.build("7b", "short", lambda n: [n.pop(k) for k in list(n) if k.startswith("h.2.")])
        self.assert_fails(["convert", "--rules", RULES["telechat_7b"], "--input", folder, "--output",
                           self.path("x.ckpt")], 1, "h.2.input_layernorm.weight")

    def test_a_shard_the_index_lists_but_is_missing_fails_naming_it(self):
        folder, _ = self.build("12b", "lost")
        os.remove(os.path.join(folder, shard_name(3, 4)))
        self.assert_fails(["convert", "--rules", RULES["telechat_12b"], "--input", folder, "--output",
                           self.path("x.ckpt")], 3, shard_name(3, 4))


class RoundTrip(TelechatTest):
    def test_every_variant_reverse_is_byte_identical(self):
        for variant, (_, _, prefix, _, _, fits) in VARIANTS.items():
            folder, _ = self.build(variant)
            ckpt = self.forward("telechat_12b", folder, variant + ".ckpt")
            extra = ["--config", os.path.join(folder, "config.json")]
            if prefix and fits == "telechat_7b":
                extra += ["--set", "hf_prefix=transformer."]
            for out in (variant + ".bin", variant + "_back/"):
                with self.subTest(variant=variant, out=out):
                    back = self.reverse(fits, ckpt, out, *extra)
                    self.assertEqual(read_any(back.rstrip("/")), self.source_records(folder))

    def test_every_variant_reverses_from_the_ckpt_alone(self):
        for variant, (_, _, prefix, _, _, fits) in VARIANTS.items():
            with self.subTest(variant=variant):
                folder, _ = self.build(variant)
                ckpt = alone(self, self.forward("telechat_12b", folder, variant + ".ckpt"))
                # The spelling of a re-saved 7B file is the user's choice, not in the weights.
                extra = ["--set", "hf_prefix=transformer."] if prefix and fits == "telechat_7b" else []
                back = self.reverse(fits, ckpt, variant + "_alone.bin", *extra)
                self.assertEqual(read_bin(back), self.source_records(folder))

    def test_seed_reverse_uses_the_telechat_type(self):
        for variant in ("7b", "12b"):
            with self.subTest(variant=variant):
                folder, _ = self.build(variant)
                ckpt = self.forward("telechat_12b", folder, variant + ".ckpt")
                back = self.path(variant + ".bin")
                extra = ["--config", os.path.join(folder, "config.json")]
                if variant == "7b":
                    extra += ["--telechat_type", "telechat_7b"]
                seed_convert("telechat", ckpt, back, *extra, reverse=True)
                self.assertEqual(read_bin(back), self.source_records(folder))

    def test_reverse_of_a_12b_as_7b_is_refused(self):
        folder, _ = self.build("12b")
        ckpt = self.forward("telechat_12b", folder)
        self.assert_fails(["convert", "--rules", RULES["telechat_7b"], "--input", ckpt, "--output",
                           self.path("x.bin"), "--reverse", "--set", "hf_prefix=transformer."],
                          1, "lm_head.weight")


class SeedCommandLine(TelechatTest):
    def test_seed_keys_write_the_same_bytes_as_rules(self):
        seven, _ = self.build("7b")
        twelve, _ = self.build("12b")
        a = file_bytes(self.forward("telechat_7b", seven, "a.ckpt"))
        b = file_bytes(self.forward("telechat_12b", twelve, "b.ckpt"))
        for name, src, want, extra in (
                ("type7", seven, a, ["--model", "telechat", "--telechat_type", "telechat_7b"]),
                ("detect7", seven, a, ["--model", "telechat"]),
                ("key7", seven, a, ["--model", "telechat_7b"]),
                ("type12", twelve, b, ["--model", "telechat", "--telechat_type", "telechat_12b"]),
                ("detect12", twelve, b, ["--model", "telechat"]),
                ("key12", twelve, b, ["--model", "telechat_12b"])):
            with self.subTest(name=name):
                out = self.path(name + ".ckpt")
                # Any file of the folder stands for the folder
                # (docs/formats/safetensors.md, 'HF folders').
                run(*extra, "--input_path", os.path.join(src, shard_name(2, 4)), "--output_path", out,
                    "--quiet")
                self.assertEqual(file_bytes(out), want)


if __name__ == "__main__":
    unittest.main(verbosity=2)
