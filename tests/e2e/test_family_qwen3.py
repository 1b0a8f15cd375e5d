"""The qwen3 rule file (rules/qwen3.yaml) on tiny Qwen3ForCausalLM folders: config.json plus bf16
safetensors shards, heads * head_dim != hidden_size (as Qwen3-4B: 32 x 128 on 2560), GQA with two
KV groups of three query heads, tied and untied heads.

Checked: the file lints clean and serves --model qwen3; forward names equal
tests/e2e/expected/qwen3*.txt (written from MindFormers' MCore Qwen3 table, not from the rule file);
the fused linear_qkv and linear_fc1 equal an independent torch computation of MCore's layouts
(both qkv_layout and both fc1_layout values, with and without attention_bias), every other tensor
keeps its bytes; reverse gives the input back byte for byte, also from the .ckpt alone (no
config.json: every size is read off the shapes); a tied head stays absent both ways; the seed
command line writes the same bytes as --rules; lint --against round-trips.

The MCore layout helpers below (written from MindFormers' parallel_core model_mixin: per-KV-group
q/k/v, row-interleaved gate/up, stacked and flattened experts) are shared with the other MCore
family tests (qwen3_moe, glm4, glm4_moe, deepseek3), which import them from this module.

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

RULES = os.path.join(SOURCE, "rules", "qwen3.yaml")
LAYOUTS = ("interleaved", "contiguous")


# ---- MCore layouts (MindFormers parallel_core/utils/model_mixin.py), computed with torch ----

def qkv_interleaved(q, k, v, heads, kv_heads, head_dim):
    """linear_qkv, default layout: q viewed [G, r*d, ...], k and v [G, d, ...], joined on axis 1
    and flattened: for each KV group its r = heads / kv_heads query heads, then its k head, then
    its v head. Works for weights [rows, H] and biases [rows]."""
    rest = list(q.shape[1:])
    r = heads // kv_heads
    joined = torch.cat([q.reshape(kv_heads, r * head_dim, *rest),
                        k.reshape(kv_heads, head_dim, *rest),
                        v.reshape(kv_heads, head_dim, *rest)], dim=1)
    return joined.reshape(-1, *rest)


def qkv_contiguous(q, k, v, *_):
    """linear_qkv with use_contiguous_weight_layout_attention: [Q; K; V]."""
    return torch.cat([q, k, v], dim=0)


def fc1_interleaved(gate, up):
    """linear_fc1, default layout: row 2j = gate row j, row 2j + 1 = up row j."""
    return torch.stack([gate, up], dim=1).reshape(2 * gate.shape[0], *gate.shape[1:])


def fc1_contiguous(gate, up):
    """linear_fc1 with use_interleaved_weight_layout_mlp False: [gate; up]."""
    return torch.cat([gate, up], dim=0)


QKV = {"interleaved": qkv_interleaved, "contiguous": qkv_contiguous}
FC1 = {"interleaved": fc1_interleaved, "contiguous": fc1_contiguous}


def experts_weight1(gates, ups):
    """mlp.experts.weight1: per expert concat(gate, up) on rows [2F, H], stacked [E, 2F, H],
    permuted (0, 2, 1) to [E, H, 2F], reshaped to [E * H, 2F]."""
    per_expert = [torch.cat([g, u], dim=0) for g, u in zip(gates, ups)]
    stacked = torch.stack(per_expert, dim=0).permute(0, 2, 1)
    e, h, f2 = stacked.shape
    return stacked.reshape(e * h, f2)


def experts_weight2(downs):
    """mlp.experts.weight2: down [H, F] stacked [E, H, F], permuted to [E, F, H], reshaped to
    [E * F, H]."""
    stacked = torch.stack(downs, dim=0).permute(0, 2, 1)
    e, f, h = stacked.shape
    return stacked.reshape(e * f, h)


def experts_ms(t, src, count):
    """weight1 and weight2 (names after the layer prefix) of the HF experts
    src + 'mlp.experts.{0..count-1}.'."""
    experts = [f"{src}mlp.experts.{e}." for e in range(count)]
    return {"mlp.experts.weight1": experts_weight1([t[e + "gate_proj.weight"] for e in experts],
                                                   [t[e + "up_proj.weight"] for e in experts]),
            "mlp.experts.weight2": experts_weight2([t[e + "down_proj.weight"] for e in experts])}


def models_listing_serves(test, keys, rule_file):
    """`convert_weight models` lists rule_file with exactly these keys."""
    out = run("models").stdout
    test.assertIn(f"  ({os.path.join(SOURCE, 'rules', rule_file)})\n  keys: {', '.join(keys)}\n",
                  out)


# ---- Qwen3 ----

def qwen3_config(**overrides):
    """Qwen3-4B scaled down: 32 heads / 8 KV heads of 128 on a hidden size of 2560, FFN 3.8 x
    hidden, tied -> 6 heads / 2 KV heads of 8 on a hidden size of 32 (heads * head_dim = 48),
    FFN 56."""
    config = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 32,
              "intermediate_size": 56, "num_attention_heads": 6, "num_key_value_heads": 2,
              "head_dim": 8, "num_hidden_layers": 2, "vocab_size": 48,
              "max_position_embeddings": 40960, "rms_norm_eps": 1e-6, "rope_theta": 1000000,
              "hidden_act": "silu", "attention_bias": False, "attention_dropout": 0.0,
              "use_sliding_window": False, "tie_word_embeddings": False,
              "torch_dtype": "bfloat16", "transformers_version": "4.51.0"}
    config.update(overrides)
    return config


def qwen3_tensors(config, seed=0, lm_head=True):
    """HF tensors of a Qwen3ForCausalLM, in name order (as a safetensors file stores them)."""
    g = seeded(seed)
    bf = torch.bfloat16
    h, d, ffn = config["hidden_size"], config["head_dim"], config["intermediate_size"]
    q, kv = config["num_attention_heads"] * d, config["num_key_value_heads"] * d
    t = {"model.embed_tokens.weight": randn(g, config["vocab_size"], h, dtype=bf),
         "model.norm.weight": randn(g, h, dtype=bf)}
    if lm_head:
        t["lm_head.weight"] = randn(g, config["vocab_size"], h, dtype=bf)
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        shapes = {"input_layernorm.weight": [h], "post_attention_layernorm.weight": [h],
                  "self_attn.q_proj.weight": [q, h], "self_attn.k_proj.weight": [kv, h],
                  "self_attn.v_proj.weight": [kv, h], "self_attn.o_proj.weight": [h, q],
                  "self_attn.q_norm.weight": [d], "self_attn.k_norm.weight": [d],
                  "mlp.gate_proj.weight": [ffn, h], "mlp.up_proj.weight": [ffn, h],
                  "mlp.down_proj.weight": [h, ffn]}
        if config["attention_bias"]:
            shapes.update({"self_attn.q_proj.bias": [q], "self_attn.k_proj.bias": [kv],
                           "self_attn.v_proj.bias": [kv], "self_attn.o_proj.bias": [h]})
        for name, shape in shapes.items():
            t[p + name] = randn(g, *shape, dtype=bf)
    return dict(sorted(t.items()))


# The MCore name of every renamed HF tensor (mindformers/models/qwen3/utils.py weight_mapping,
# written independently of the rule file): whole names, then the part after model.layers.N.
TOP_NAMES = MCORE_TOP_NAMES
LAYER_RENAMES = {"input_layernorm.weight": "input_layernorm.weight",
                 "post_attention_layernorm.weight": "pre_mlp_layernorm.weight",
                 "self_attn.o_proj.weight": "self_attention.linear_proj.weight",
                 "self_attn.o_proj.bias": "self_attention.linear_proj.bias",
                 "self_attn.q_norm.weight": "self_attention.q_layernorm.weight",
                 "self_attn.k_norm.weight": "self_attention.k_layernorm.weight",
                 "mlp.down_proj.weight": "mlp.linear_fc2.weight"}


def attention_ms(t, config, layer, qkv_layout, src_prefix, dst_prefix):
    """linear_qkv (and its bias) of one layer, from the HF q/k/v."""
    out = {}
    sizes = (config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"])
    for wb in ("weight", "bias"):
        names = [f"{src_prefix}self_attn.{p}_proj.{wb}" for p in "qkv"]
        if names[0] in t:
            out[f"{dst_prefix}self_attention.linear_qkv.{wb}"] = QKV[qkv_layout](
                *[t[n] for n in names], *sizes)
    return out


def qwen3_expected(t, config, qkv_layout="interleaved", fc1_layout="interleaved"):
    """The MCore tensors, computed with torch from the HF ones."""
    out = {TOP_NAMES[n]: v for n, v in t.items() if n in TOP_NAMES}
    for layer in range(config["num_hidden_layers"]):
        src, dst = f"model.layers.{layer}.", f"decoder.layers.{layer}."
        out.update({dst + b: t[src + a] for a, b in LAYER_RENAMES.items() if src + a in t})
        out.update(attention_ms(t, config, layer, qkv_layout, src, dst))
        out[dst + "mlp.linear_fc1.weight"] = FC1[fc1_layout](t[src + "mlp.gate_proj.weight"],
                                                             t[src + "mlp.up_proj.weight"])
    return {k: record(v) for k, v in out.items()}


def layout_args(qkv_layout, fc1_layout):
    return ["--set", f"qkv_layout={qkv_layout}", "--set", f"fc1_layout={fc1_layout}"]


class Qwen3Test(FamilyTestCase):
    def make(self, lm_head=True, shards=2, **overrides):
        config = qwen3_config(**overrides)
        tensors = qwen3_tensors(config, lm_head=lm_head)
        folder = self.path(f"qwen3_{len(os.listdir(self.tmp))}")
        write_hf_folder(folder, tensors, config, fmt="safetensors", shards=shards)
        return folder, config, tensors

    def round_trip(self, folder, config, tensors, *args, names=None):
        tag = f"{folder}_{len(os.listdir(self.tmp))}"
        ckpt = tag + ".ckpt"
        cw_convert(RULES, folder, ckpt, *args)
        got = read_ckpt(ckpt)
        if names:
            self.assertEqual(sorted(got), sorted(expected_names(names)))
        back = tag + "_back/"
        cw_convert(RULES, ckpt, back, "--config", os.path.join(folder, "config.json"), *args,
                   reverse=True)
        self.assertEqual(read_hf_folder(back.rstrip("/")), read_hf_folder(folder))
        return ckpt, got

    def test_the_rule_file_lints_clean_and_serves_qwen3(self):
        self.assertEqual(run("lint", RULES).stdout.strip(), RULES + ": ok")
        models_listing_serves(self, ["qwen3"], "qwen3.yaml")

    def test_the_sizes_are_those_of_a_qwen3_model_where_head_dim_is_not_hidden_over_heads(self):
        config = qwen3_config()
        self.assertNotEqual(config["num_attention_heads"] * config["head_dim"],
                            config["hidden_size"])
        self.assertGreater(config["num_key_value_heads"], 1)
        self.assertLess(config["num_key_value_heads"], config["num_attention_heads"])

    def test_default_layouts_equal_torch_and_round_trip(self):
        folder, config, tensors = self.make()
        _, got = self.round_trip(folder, config, tensors, names="qwen3")
        self.assertEqual(got, qwen3_expected(tensors, config))

    def test_every_layout_with_and_without_biases_equals_torch_and_round_trips(self):
        for bias in (False, True):
            folder, config, tensors = self.make(attention_bias=bias)
            for qkv_layout, fc1_layout in itertools.product(LAYOUTS, LAYOUTS):
                with self.subTest(bias=bias, qkv=qkv_layout, fc1=fc1_layout):
                    _, got = self.round_trip(folder, config, tensors,
                                             *layout_args(qkv_layout, fc1_layout),
                                             names="qwen3_bias" if bias else "qwen3")
                    self.assertEqual(got, qwen3_expected(tensors, config, qkv_layout, fc1_layout))

    def test_the_interleaved_row_order_of_a_small_example(self):
        """Rows numbered by hand: heads 4, kv_heads 2, head_dim 2 (q rows 0-7, k 8-11, v 12-15)
        -> 0 1 2 3 8 9 12 13 4 5 6 7 10 11 14 15; gate rows 0-3, up 4-7 -> 0 4 1 5 2 6 3 7."""
        rows = torch.arange(16.0)
        self.assertEqual(qkv_interleaved(rows[:8], rows[8:12], rows[12:], 4, 2, 2).tolist(),
                         [0, 1, 2, 3, 8, 9, 12, 13, 4, 5, 6, 7, 10, 11, 14, 15])
        self.assertEqual(fc1_interleaved(rows[:4], rows[4:8]).tolist(), [0, 4, 1, 5, 2, 6, 3, 7])
        # The converter on the same numbers: a 1-layer model whose q/k/v and gate/up rows hold
        # their row numbers.
        config = qwen3_config(hidden_size=2, num_attention_heads=4, num_key_value_heads=2,
                              head_dim=2, intermediate_size=4, num_hidden_layers=1, vocab_size=4)
        tensors = qwen3_tensors(config)
        p = "model.layers.0."
        numbered = torch.arange(16.0).to(torch.bfloat16)[:, None].repeat(1, 2)
        tensors[p + "self_attn.q_proj.weight"] = numbered[:8]
        tensors[p + "self_attn.k_proj.weight"] = numbered[8:12]
        tensors[p + "self_attn.v_proj.weight"] = numbered[12:]
        tensors[p + "mlp.gate_proj.weight"] = numbered[:4]
        tensors[p + "mlp.up_proj.weight"] = numbered[4:8]
        folder = self.path("numbered")
        write_hf_folder(folder, tensors, config, shards=1)
        cw_convert(RULES, folder, self.path("numbered.ckpt"))
        got = read_ckpt(self.path("numbered.ckpt"))
        qkv, fc1 = (torch.frombuffer(bytearray(got[f"decoder.layers.0.{name}.weight"][2]),
                                     dtype=torch.bfloat16).reshape(-1, 2)[:, 0]
                    for name in ("self_attention.linear_qkv", "mlp.linear_fc1"))
        self.assertEqual(qkv.tolist(), [0, 1, 2, 3, 8, 9, 12, 13, 4, 5, 6, 7, 10, 11, 14, 15])
        self.assertEqual(fc1.tolist(), [0, 4, 1, 5, 2, 6, 3, 7])

    def test_reverse_from_the_ckpt_alone_reads_every_size_off_the_shapes(self):
        for bias in (False, True):
            folder, _, _ = self.make(attention_bias=bias)
            for qkv_layout, fc1_layout in itertools.product(LAYOUTS, LAYOUTS):
                with self.subTest(bias=bias, qkv=qkv_layout, fc1=fc1_layout):
                    args = layout_args(qkv_layout, fc1_layout)
                    ckpt = self.path(f"m_{bias}_{qkv_layout}_{fc1_layout}.ckpt")
                    cw_convert(RULES, folder, ckpt, *args)
                    back = self.path(f"alone_{bias}_{qkv_layout}_{fc1_layout}/")
                    p = run("convert", "--rules", RULES, "--input", alone(self, ckpt), "--output",
                            back, "--reverse", *args)
                    self.assertEqual(read_hf_folder(back.rstrip("/")), read_hf_folder(folder))
                    for solved in ("head_dim = 8", "heads = 6", "kv_heads = 2",
                                   "intermediate_size = 56", "hidden_size = 32", "vocab = 48"):
                        self.assertIn(f"parameter {solved} (solved from ", p.stderr)

    def test_a_tied_model_has_no_head_on_either_side(self):
        folder, config, tensors = self.make(lm_head=False, tie_word_embeddings=True)
        ckpt, got = self.round_trip(folder, config, tensors, names="qwen3_tied")
        self.assertNotIn("output_layer.weight", got)
        self.assertEqual(got, qwen3_expected(tensors, config))
        back = self.path("tied_alone/")
        cw_convert(RULES, alone(self, ckpt), back, reverse=True)
        self.assertEqual(read_hf_folder(back.rstrip("/")), read_hf_folder(folder))
        self.assertNotIn("lm_head.weight", read_hf_folder(back.rstrip("/")))

    def test_a_tied_model_that_ships_its_head_keeps_it_both_ways(self):
        folder, config, tensors = self.make(tie_word_embeddings=True)
        _, got = self.round_trip(folder, config, tensors, names="qwen3")
        self.assertEqual(got["output_layer.weight"], record(tensors["lm_head.weight"]))

    def test_an_untied_model_without_its_head_fails_naming_it(self):
        folder, _, _ = self.make(lm_head=False)
        self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                           self.path("x.ckpt")], 1, "lm_head.weight")
        self.assertFalse(os.path.exists(self.path("x.ckpt")))

    def test_a_head_dim_that_is_not_the_configs_fails_naming_the_tensor(self):
        folder, _, _ = self.make()
        # hidden_size / heads would be 32 / 6: not even an integer. A wrong explicit head_dim is
        # refused on the q_norm shape.
        p = self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                               self.path("x.ckpt"), "--set", "head_dim=4"], 1,
                              "head_dim = 4 (--set)")
        self.assertRegex(p.stderr, r'tensor "model\.layers\.0\.self_attn\.[qk]_norm\.weight" '
                                   r'is \[8\], but rule \S+ declares \[head_dim\] = \[4\]')

    def test_seed_command_line_writes_the_same_bytes_as_rules(self):
        folder, _, _ = self.make(attention_bias=True)
        # The reference tool's form takes any rule parameter as --name value.
        for args, seed_args in (([], []), (layout_args("contiguous", "contiguous"),
                                           ["--qkv_layout", "contiguous", "--fc1_layout",
                                            "contiguous"])):
            assert_seed_form_writes_what_rules_write(self, RULES, ("qwen3",), folder,
                                                     read_hf_folder(folder), args, seed_args)

    def test_lint_against_the_checkpoint_round_trips(self):
        for overrides in ({}, {"attention_bias": True}):
            folder, _, _ = self.make(**overrides)
            for qkv_layout, fc1_layout in itertools.product(LAYOUTS, LAYOUTS):
                p = run("lint", RULES, "--against", folder, *layout_args(qkv_layout, fc1_layout))
                self.assertEqual(p.stdout.strip(), RULES + ": ok")
        folder, _, _ = self.make(lm_head=False, tie_word_embeddings=True)
        self.assertEqual(run("lint", RULES, "--against", folder).stdout.strip(), RULES + ": ok")

    def test_a_missing_v_proj_fails_naming_it(self):
        folder, config, tensors = self.make()
        missing = "model.layers.1.self_attn.v_proj.weight"
        del tensors[missing]
        write_hf_folder(folder, tensors, config, shards=1)
        os.remove(os.path.join(folder, "model.safetensors.index.json"))
        for f in os.listdir(folder):
            if f.startswith("model-"):
                os.remove(os.path.join(folder, f))
        self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                           self.path("x.ckpt")], 1, missing)

    def test_a_config_without_a_layer_fails_naming_the_missing_one(self):
        folder, config, _ = self.make()
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(dict(config, num_hidden_layers=3), f)
        self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                           self.path("x.ckpt")], 1, "model.layers.2.")


if __name__ == "__main__":
    unittest.main(verbosity=2)
