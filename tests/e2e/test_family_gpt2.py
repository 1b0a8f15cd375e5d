"""The gpt2 rule file (rules/gpt2.yaml) on tiny GPT-2 checkpoints in the layouts GPT-2 ships in:
the original release's single pytorch_model.bin (unprefixed names, causal-mask buffers) and
GPT2LMHeadModel exports (transformer. prefix, a tied lm_head.weight, sharded HF folders).

Checked: forward names equal tests/e2e/expected/gpt2.txt, the q/k/v split-and-transpose and the
bias split equal torch computations, every other tensor equals its source, reverse gives the input
back byte for byte (both spellings), --layers N converts the first N layers and lists every
dropped tensor, lm_head.weight is checked equal to wte and dropped, and the seed command line
(--model gpt / gpt2) writes the same bytes as --rules.
"""
import json
import os
import re
import sys
import unittest

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from family_lib import (FamilyTestCase, SOURCE, alone, expected_names, randn, read_any, read_bin, read_ckpt,  # noqa: E402
                        read_hf_folder, record, run, seeded, seed_convert, write_hf_folder)
from family_lib import convert as cw_convert  # noqa: E402

RULES = os.path.join(SOURCE, "rules", "gpt2.yaml")

# gpt2 (124M) has n_embd 768, n_head 12, n_inner 4 x n_embd, n_positions 1024, fp32 weights:
# the same ratios, tiny. head_dim 6.
CONFIG = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 24, "n_head": 4,
          "n_layer": 4, "n_positions": 8, "n_ctx": 8, "vocab_size": 40,
          "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new"}

# The MindSpore name of every HF name, written from the table of MindFormers'
# mindformers/models/gpt2/convert_weight.py (independently of the rule file); c_attn rows are
# checked separately.
TOP_NAMES = {"wte.weight": "backbone.embedding.word_embedding.embedding_table",
             "wpe.weight": "backbone.embedding.position_embedding.embedding_table",
             "ln_f.weight": "backbone.layernorm.gamma", "ln_f.bias": "backbone.layernorm.beta"}
LAYER_PARTS = {"ln_1.weight": "layernorm1.gamma", "ln_1.bias": "layernorm1.beta",
               "ln_2.weight": "layernorm2.gamma", "ln_2.bias": "layernorm2.beta",
               "attn.bias": "attention.beta", "attn.masked_bias": "attention.masked_beta",
               "attn.c_proj.weight": "attention.projection.weight",
               "attn.c_proj.bias": "attention.projection.bias",
               "mlp.c_fc.weight": "output.mapping.weight", "mlp.c_fc.bias": "output.mapping.bias",
               "mlp.c_proj.weight": "output.projection.weight",
               "mlp.c_proj.bias": "output.projection.bias"}
LAYER_NAME = re.compile(r"h\.(\d+)\.(.+)")


def ms_name(hf):
    """The MindSpore name of an unprefixed HF name (None for c_attn, which is split)."""
    if hf in TOP_NAMES:
        return TOP_NAMES[hf]
    m = LAYER_NAME.fullmatch(hf)
    return f"backbone.blocks.{m[1]}.{LAYER_PARTS[m[2]]}" if m[2] in LAYER_PARTS else None


def gpt2_tensors(dtype=torch.float32, layers=4, prefix="", buffers="uint8", lm_head=False, seed=0):
    """HF tensors of a GPT-2 in state_dict order. buffers: None (newer transformers keep the mask
    buffers out of the state dict), "uint8" (older releases) or "bool"."""
    g = seeded(seed)
    h, n, v, p = CONFIG["n_embd"], CONFIG["n_positions"], CONFIG["vocab_size"], CONFIG["n_positions"]
    t = {prefix + "wte.weight": randn(g, v, h, dtype=dtype),
         prefix + "wpe.weight": randn(g, p, h, dtype=dtype)}
    for layer in range(layers):
        b = f"{prefix}h.{layer}."
        t[b + "ln_1.weight"] = randn(g, h, dtype=dtype)
        t[b + "ln_1.bias"] = randn(g, h, dtype=dtype)
        if buffers:
            mask = torch.tril(torch.ones(n, n, dtype=torch.uint8)).view(1, 1, n, n)
            t[b + "attn.bias"] = mask if buffers == "uint8" else mask.bool()
            t[b + "attn.masked_bias"] = torch.tensor(-1e4, dtype=dtype)
        t[b + "attn.c_attn.weight"] = randn(g, h, 3 * h, dtype=dtype)  # Conv1D [in, out]
        t[b + "attn.c_attn.bias"] = randn(g, 3 * h, dtype=dtype)
        t[b + "attn.c_proj.weight"] = randn(g, h, h, dtype=dtype)
        t[b + "attn.c_proj.bias"] = randn(g, h, dtype=dtype)
        t[b + "ln_2.weight"] = randn(g, h, dtype=dtype)
        t[b + "ln_2.bias"] = randn(g, h, dtype=dtype)
        t[b + "mlp.c_fc.weight"] = randn(g, h, 4 * h, dtype=dtype)
        t[b + "mlp.c_fc.bias"] = randn(g, 4 * h, dtype=dtype)
        t[b + "mlp.c_proj.weight"] = randn(g, 4 * h, h, dtype=dtype)
        t[b + "mlp.c_proj.bias"] = randn(g, h, dtype=dtype)
    t[prefix + "ln_f.weight"] = randn(g, h, dtype=dtype)
    t[prefix + "ln_f.bias"] = randn(g, h, dtype=dtype)
    if lm_head:
        t["lm_head.weight"] = t[prefix + "wte.weight"].clone()
    return t


def expected_for(layers=4, buffers=True):
    """tests/e2e/expected/gpt2.txt (4 layers with buffers), narrowed to a variant."""
    out = []
    for name in expected_names("gpt2"):
        m = re.match(r"backbone\.blocks\.(\d+)\.", name)
        if m and int(m[1]) >= layers:
            continue
        if not buffers and name.endswith((".attention.beta", ".attention.masked_beta")):
            continue
        out.append(name)
    return sorted(out)


def file_bytes(path):
    with open(path, "rb") as f:
        return f.read()


class Gpt2Test(FamilyTestCase):
    def original(self, name="orig", with_config=True, **kw):
        """The original release's layout: one unprefixed pytorch_model.bin (with config.json)."""
        folder = self.path(name)
        os.makedirs(folder)
        named = gpt2_tensors(**kw)
        torch.save(named, os.path.join(folder, "pytorch_model.bin"))
        if with_config:
            with open(os.path.join(folder, "config.json"), "w") as f:
                json.dump(CONFIG, f)
        return os.path.join(folder, "pytorch_model.bin"), named

    def exported(self, name="export", fmt="bin", shards=2, **kw):
        """A GPT2LMHeadModel.save_pretrained folder: transformer. prefix, tied lm_head.weight."""
        folder = self.path(name)
        kw.setdefault("lm_head", True)
        named = gpt2_tensors(prefix="transformer.", **kw)
        write_hf_folder(folder, named, CONFIG, fmt=fmt, shards=shards)
        return folder, named

    def forward(self, src, out="f.ckpt", *extra):
        ckpt = self.path(out)
        cw_convert(RULES, src, ckpt, *extra)
        return ckpt

    def reverse(self, ckpt, out, *extra):
        back = self.path(out)
        cw_convert(RULES, ckpt, back, *extra, reverse=True)
        return back


    def check_tensors(self, got, named, prefix="", layers=4):
        """Every converted tensor against its source or an independent torch computation."""
        for hf, t in named.items():
            if hf == "lm_head.weight":
                continue
            bare = hf[len(prefix):]
            m = LAYER_NAME.fullmatch(bare)
            if m and int(m[1]) >= layers:
                continue
            if bare.endswith("attn.c_attn.weight"):
                q, k, v = torch.chunk(t, 3, dim=-1)  # Conv1D columns: q | k | v
                for i, part in enumerate((q, k, v), start=1):
                    want = part.t().contiguous()
                    self.assertEqual(got[f"backbone.blocks.{m[1]}.attention.dense{i}.weight"],
                                     record(want), hf)
            elif bare.endswith("attn.c_attn.bias"):
                for i, part in enumerate(torch.chunk(t, 3), start=1):
                    self.assertEqual(got[f"backbone.blocks.{m[1]}.attention.dense{i}.bias"],
                                     record(part.contiguous()), hf)
            else:
                self.assertEqual(got[ms_name(bare)], record(t), hf)


class Registry(Gpt2Test):
    def test_rule_file_lints_clean(self):
        self.assertIn(RULES + ": ok", run("lint", RULES).stdout)

    def test_gpt_and_gpt2_keys_are_served_by_gpt2_yaml(self):
        text = run("models").stdout
        m = re.search(r"^gpt2  \((.+)\)\n  keys: (.*)$", text, re.M)
        self.assertIsNotNone(m, text)
        self.assertEqual(os.path.basename(m[1]), "gpt2.yaml")
        self.assertEqual(m[2].split(", "), ["gpt", "gpt2"])

    def test_lint_against_both_spellings_round_trips(self):
        src, _ = self.original()
        self.assertIn(": ok", run("lint", RULES, "--against", src).stdout)
        folder, _ = self.exported()
        self.assertIn(": ok", run("lint", RULES, "--against", folder).stdout)
        self.assertIn(": ok", run("lint", RULES, "--against", src, "--set", "layers=2").stdout)


class Forward(Gpt2Test):
    def test_original_bin_forward_names_and_tensors(self):
        src, named = self.original()
        got = read_ckpt(self.forward(src))
        self.assertEqual(sorted(got), expected_for())
        self.check_tensors(got, named)
        self.assertEqual(got["backbone.blocks.0.attention.beta"][0], "U8")
        self.assertEqual(got["backbone.blocks.3.attention.masked_beta"][:2], ("F32", []))

    def test_exported_prefixed_folder_is_detected_and_lm_head_checked_and_dropped(self):
        folder, named = self.exported(dtype=torch.float16, buffers="bool")
        got = read_ckpt(self.forward(folder))
        self.assertEqual(sorted(got), expected_for())
        self.check_tensors(got, named, prefix="transformer.")
        self.assertEqual({d for d, _, _ in got.values()}, {"F16", "BOOL"}, "dtypes kept")
        plan = run("plan", "--rules", RULES, "--input", folder).stdout
        self.assertIn("parameter hf_prefix = 'transformer.' (detected from the input names)", plan)

    def test_prefixed_safetensors_without_buffers_or_head(self):
        folder, named = self.exported(fmt="safetensors", shards=1, buffers=None, lm_head=False)
        got = read_ckpt(self.forward(folder))
        self.assertEqual(sorted(got), expected_for(buffers=False))
        self.check_tensors(got, named, prefix="transformer.")

    def test_the_same_model_in_both_spellings_gives_the_same_ckpt(self):
        src, _ = self.original(buffers=None)
        folder, _ = self.exported(buffers=None, lm_head=False, shards=3)
        self.assertEqual(file_bytes(self.forward(src, "a.ckpt")), file_bytes(self.forward(folder, "b.ckpt")))

    def test_lm_head_that_differs_from_wte_fails_naming_it(self):
        folder = self.path("bad")
        named = gpt2_tensors(prefix="transformer.", lm_head=True)
        named["lm_head.weight"][2, 3] += 1
        write_hf_folder(folder, named, CONFIG, fmt="bin", shards=1)
        out = self.path("out")
        os.mkdir(out)
        self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                           os.path.join(out, "x.ckpt")], 1, "lm_head.weight")
        self.assertEqual(os.listdir(out), [])

    def test_an_unknown_tensor_fails_naming_it(self):
        folder = self.path("extra")
        named = gpt2_tensors()
        named["h.1.attn.rotary.weight"] = torch.zeros(2)
        write_hf_folder(folder, named, CONFIG, fmt="bin", shards=1)
        self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                           self.path("x.ckpt")], 1, "h.1.attn.rotary.weight", "matches no rule")

    def test_a_missing_k_q_v_tensor_of_a_layer_fails_naming_it(self):
        folder = self.path("gap")
        named = gpt2_tensors()
        del named["h.2.attn.c_attn.weight"]
        write_hf_folder(folder, named, CONFIG, fmt="bin", shards=1)
        self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                           self.path("x.ckpt")], 1, "h.2.attn.c_attn.weight")

    def test_dtype_casts_floats_and_leaves_the_mask_alone(self):
        src, named = self.original()
        got = read_ckpt(self.forward(src, "h.ckpt", "--dtype", "fp16"))
        self.assertEqual(got["backbone.blocks.1.attention.beta"], record(named["h.1.attn.bias"]))
        self.assertEqual(got["backbone.blocks.1.layernorm2.gamma"],
                         record(named["h.1.ln_2.weight"].half()))
        self.assertEqual(got["backbone.blocks.1.attention.masked_beta"],
                         record(named["h.1.attn.masked_bias"].half()))


class Layers(Gpt2Test):
    def test_layers_below_the_count_converts_the_first_layers_and_lists_every_drop(self):
        src, named = self.original()
        ckpt = self.path("two.ckpt")
        p = run("convert", "--rules", RULES, "--input", src, "--output", ckpt, "--set", "layers=2")
        got = read_ckpt(ckpt)
        self.assertEqual(sorted(got), expected_for(layers=2))
        self.check_tensors(got, named, layers=2)
        dropped = sorted(re.findall(r"^  dropped (\S+): dropped by its rule$", p.stderr, re.M))
        self.assertEqual(dropped, sorted(n for n in named if re.match(r"h\.[23]\.", n)))
        self.assertIn("loses information", p.stderr)
        # The reverse gives the first two layers back exactly.
        back = self.reverse(ckpt, "two.bin")
        self.assertEqual(read_bin(back), {k: v for k, v in read_bin(src).items()
                                          if not re.match(r"h\.[23]\.", k)})

    def test_seed_layers_flag_is_the_same_as_set(self):
        src, _ = self.original()
        a = self.forward(src, "a.ckpt", "--set", "layers=2")
        b = self.path("b.ckpt")
        seed_convert("gpt", src, b, "--layers", "2")
        self.assertEqual(file_bytes(a), file_bytes(b))

    def test_without_layers_or_config_every_layer_is_converted(self):
        src, named = self.original("noconfig", with_config=False)
        ckpt = self.path("all.ckpt")
        p = run("convert", "--rules", RULES, "--input", src, "--output", ckpt)
        self.assertNotIn("dropped", p.stderr)
        got = read_ckpt(ckpt)
        self.assertEqual(sorted(got), expected_for())
        plan = run("plan", "--rules", RULES, "--input", src).stdout
        self.assertIn("drops nothing: its when reads layers, which has no value", plan)

    def test_more_layers_than_the_checkpoint_has_is_an_error_naming_the_missing_ones(self):
        src, _ = self.original()
        self.assert_fails(["convert", "--rules", RULES, "--input", src, "--output",
                           self.path("x.ckpt"), "--set", "layers=6"], 1, "h.4.ln_1.weight")
        self.assert_fails(["--model", "gpt", "--input_path", src, "--output_path",
                           self.path("y.ckpt"), "--layers", "5"], 1, "h.4.")


class RoundTrip(Gpt2Test):
    def test_original_bin_reverse_from_the_ckpt_alone_is_byte_identical(self):
        src, _ = self.original()
        ckpt = alone(self, self.forward(src))
        back = self.reverse(ckpt, "back.bin")
        self.assertEqual(read_bin(back), read_bin(src))
        plan = run("plan", "--rules", RULES, "--input", ckpt, "--reverse").stdout
        for size in ("vocab", "positions", "hidden_size"):
            self.assertRegex(plan, rf"parameter {size} = \d+ \(solved from ")

    def test_prefixed_export_reverse_with_the_prefix_is_byte_identical_but_the_tied_head(self):
        folder, named = self.exported(dtype=torch.float16, buffers="bool")
        ckpt = self.forward(folder)
        back = self.reverse(ckpt, "back/", "--set", "hf_prefix=transformer.",
                            "--config", os.path.join(folder, "config.json"))
        source = {}
        for shard in sorted(os.listdir(folder)):
            if shard.endswith(".bin"):
                source.update(read_bin(os.path.join(folder, shard)))
        self.assertIn("lm_head.weight", source)
        del source["lm_head.weight"]  # declared drop: checked equal to wte
        self.assertEqual(read_any(back.rstrip("/")), source)

    def test_prefixed_safetensors_round_trips_to_safetensors(self):
        folder, _ = self.exported(fmt="safetensors", shards=2, buffers=None, lm_head=False)
        ckpt = self.forward(folder)
        back = self.reverse(ckpt, "back/", "--set", "hf_prefix=transformer.")
        self.assertEqual(read_hf_folder(back.rstrip("/")), read_hf_folder(folder))

    def test_reverse_without_the_prefix_writes_the_original_spelling(self):
        folder, _ = self.exported(buffers=None, lm_head=False)
        back = self.reverse(self.forward(folder), "plain.bin")
        src, _ = self.original(buffers=None)
        self.assertEqual(read_bin(back), read_bin(src))


class SeedCommandLine(Gpt2Test):
    def test_model_gpt_and_gpt2_write_the_same_bytes_as_rules_both_ways(self):
        src, _ = self.original()
        a = self.forward(src, "a.ckpt")
        for key in ("gpt", "gpt2"):
            b = self.path(key + ".ckpt")
            seed_convert(key, src, b)
            self.assertEqual(file_bytes(a), file_bytes(b), key)
        ra = self.reverse(a, "ra.bin")
        rb = self.path("rb.bin")
        seed_convert("gpt", a, rb, reverse=True)
        self.assertEqual(read_bin(ra), read_bin(rb))
        self.assertEqual(read_bin(rb), read_bin(src))

    def test_seed_reverse_takes_the_prefix_as_an_extra_flag(self):
        folder, _ = self.exported(buffers=None, lm_head=False, shards=1, fmt="safetensors")
        ckpt = self.forward(folder)
        back = self.path("back.safetensors")
        seed_convert("gpt2", ckpt, back, "--hf_prefix", "transformer.", reverse=True)
        self.assertEqual(read_any(back), read_hf_folder(folder))


if __name__ == "__main__":
    unittest.main(verbosity=2)
