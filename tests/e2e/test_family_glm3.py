"""The glm3 rule file (rules/glm3.yaml) on tiny ChatGLM3-6B-shaped folders: config.json plus fp16
pytorch_model-0000N-of-0000M.bin shards and pytorch_model.bin.index.json, with the rotary inv_freq
buffer, as the THUDM releases ship.

Checked for the default layout and every variant (qkv_concat=false, mlp_concat=false,
use_rearrange_rope=true, alone and combined): forward names equal tests/e2e/expected/glm3*.txt;
every split and row permutation equals an independent torch computation with the sizes of
config.json; dtypes stay fp16; reverse gives the input back byte for byte (inv_freq excepted, a
declared drop); the seed command line (--model glm-n|glm3|glm2) writes the same bytes as --rules;
unknown and missing tensors fail naming them.
"""
import json
import os
import sys
import unittest

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from family_lib import (SOURCE, alone, expected_names, randn, read_any, read_bin, read_ckpt,  # noqa: E402
                        record, run, seeded, seed_convert, write_hf_folder)
from family_lib import convert as cw_convert  # noqa: E402
from cw_testlib import TempDirTest  # noqa: E402

RULES = os.path.join(SOURCE, "rules", "glm3.yaml")
INV_FREQ = "transformer.rotary_pos_emb.inv_freq"


def glm3_config(**overrides):
    """ChatGLM3-6B scaled down: 32 heads / 2 MQA groups / kv_channels 128 / hidden 4096 / FFN 13696
    -> 8 heads / 2 groups / kv_channels 8 / hidden 64 / FFN 214 (3.34 x hidden). kv_channels 8
    gives heads of 8 rows, where "evens, then odds" and its inverse are different permutations."""
    config = {"architectures": ["ChatGLMModel"], "model_type": "chatglm", "num_layers": 2,
              "hidden_size": 64, "num_attention_heads": 8, "kv_channels": 8,
              "multi_query_attention": True, "multi_query_group_num": 2, "ffn_hidden_size": 214,
              "padded_vocab_size": 40, "seq_length": 8192, "layernorm_epsilon": 1e-5,
              "rmsnorm": True, "add_qkv_bias": True, "add_bias_linear": False,
              "post_layer_norm": True, "tie_word_embeddings": False, "torch_dtype": "float16"}
    config.update(overrides)
    return config


def sizes(config):
    """q, k, v row counts of query_key_value (docs/models.md, glm3)."""
    q = config["kv_channels"] * config["num_attention_heads"]
    kv_heads = (config["multi_query_group_num"] if config["multi_query_attention"]
                else config["num_attention_heads"])
    return q, config["kv_channels"] * kv_heads, config["kv_channels"] * kv_heads


def glm3_tensors(config, seed=0):
    """HF tensors of a ChatGLMForConditionalGeneration in state_dict order, fp16."""
    g = seeded(seed)
    f16 = torch.float16
    hidden, ffn, d = config["hidden_size"], config["ffn_hidden_size"], config["kv_channels"]
    qkv = sum(sizes(config))
    vocab = config["padded_vocab_size"]
    t = {"transformer.embedding.word_embeddings.weight": randn(g, vocab, hidden, dtype=f16),
         # RotaryEmbedding(kv_channels // 2): 1 / 10000 ** (arange(0, dim, 2) / dim)
         INV_FREQ: (1.0 / 10000 ** (torch.arange(0, d // 2, 2).float() / (d // 2))).to(f16)}
    for layer in range(config["num_layers"]):
        p = f"transformer.encoder.layers.{layer}."
        t[p + "input_layernorm.weight"] = randn(g, hidden, dtype=f16)
        t[p + "self_attention.query_key_value.weight"] = randn(g, qkv, hidden, dtype=f16)
        if config["add_qkv_bias"]:
            t[p + "self_attention.query_key_value.bias"] = randn(g, qkv, dtype=f16)
        t[p + "self_attention.dense.weight"] = randn(g, hidden, sizes(config)[0], dtype=f16)
        t[p + "post_attention_layernorm.weight"] = randn(g, hidden, dtype=f16)
        t[p + "mlp.dense_h_to_4h.weight"] = randn(g, 2 * ffn, hidden, dtype=f16)
        t[p + "mlp.dense_4h_to_h.weight"] = randn(g, hidden, ffn, dtype=f16)
    t["transformer.encoder.final_layernorm.weight"] = randn(g, hidden, dtype=f16)
    t["transformer.output_layer.weight"] = randn(g, vocab, hidden, dtype=f16)
    return t


def evens_then_odds(t, heads, d):
    """use_rearrange_rope (docs/models.md, glm3): within each head of d rows, new row j is old row
    2j for j < d/2 and old row 2(j - d/2) + 1 after, written as an explicit row index."""
    order = [2 * j for j in range(d // 2)] + [2 * j + 1 for j in range(d // 2)]
    return t[[h * d + r for h in range(heads) for r in order]]


def expected_ms(tensors, config, qkv_concat=True, mlp_concat=True, rope=False):
    """The MindSpore tensors computed with torch from the glm3 layouts of docs/models.md (names from
    MindFormers' mindformers/models/glm2/convert_weight.py)."""
    q_rows, k_rows, v_rows = sizes(config)
    d, ffn = config["kv_channels"], config["ffn_hidden_size"]
    out = {}
    for name, value in tensors.items():
        if name == INV_FREQ:
            continue
        if name == "transformer.embedding.word_embeddings.weight":
            out["transformer.embedding.embedding_weight"] = value
        elif ".query_key_value." in name:
            q, k, v = torch.split(value, [q_rows, k_rows, v_rows], dim=0)
            if rope:
                q, k = evens_then_odds(q, q_rows // d, d), evens_then_odds(k, k_rows // d, d)
            if qkv_concat:
                out[name] = torch.cat([q, k, v], dim=0)
            else:
                for part, x in (("wq", q), ("wk", k), ("wv", v)):
                    out[name.replace("query_key_value", part)] = x
        elif ".dense_h_to_4h." in name and not mlp_concat:
            out[name.replace("dense_h_to_4h", "dense_left")] = value[:ffn]
            out[name.replace("dense_h_to_4h", "dense_right")] = value[ffn:]
        else:
            out[name] = value
    return {k: record(v) for k, v in out.items()}


VARIANTS = {  # name: (--set arguments, expected_ms keywords, expected name list)
    "default": ([], {}, "glm3"),
    "qkv_split": (["--set", "qkv_concat=false"], {"qkv_concat": False}, None),
    "mlp_split": (["--set", "mlp_concat=false"], {"mlp_concat": False}, None),
    "rope_fused": (["--set", "use_rearrange_rope=true"], {"rope": True}, "glm3"),
    "rope_split": (["--set", "qkv_concat=false", "--set", "mlp_concat=false",
                    "--set", "use_rearrange_rope=true"],
                   {"qkv_concat": False, "mlp_concat": False, "rope": True}, "glm3_split"),
    "all_split": (["--set", "qkv_concat=false", "--set", "mlp_concat=false"],
                  {"qkv_concat": False, "mlp_concat": False}, "glm3_split"),
}


class Glm3Test(TempDirTest):
    def make(self, config=None, drop=(), extra=None, shards=3):
        config = config or glm3_config()
        tensors = glm3_tensors(config)
        files = {k: v for k, v in tensors.items() if k not in drop}
        files.update(extra or {})
        folder = self.path(f"chatglm3_{len(os.listdir(self.tmp))}")
        write_hf_folder(folder, files, config, fmt="bin", shards=shards)
        return folder, config, tensors

    def source(self, folder):
        """Every tensor of the input shards, read with torch."""
        with open(os.path.join(folder, "pytorch_model.bin.index.json")) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        out = {}
        for s in shards:
            out.update(read_bin(os.path.join(folder, s)))
        return out

    def fail(self, folder, *extra):
        out = self.path("failed.ckpt")
        p = run("convert", "--rules", RULES, "--input", folder, "--output", out, *extra,
                check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertFalse(os.path.exists(out))
        return p.stderr

    def check_variant(self, variant, folder, config, tensors):
        args, keywords, names = VARIANTS[variant]
        ckpt, back = folder + f"_{variant}.ckpt", folder + f"_{variant}_back.bin"
        cw_convert(RULES, folder, ckpt, *args)
        got = read_ckpt(ckpt)
        want = expected_ms(tensors, config, **keywords)
        if names:
            self.assertEqual(sorted(got), sorted(expected_names(names)), variant)
        self.assertEqual(got, want, variant)
        self.assertTrue(all(dtype == "F16" for dtype, _, _ in got.values()))
        cw_convert(RULES, ckpt, back, "--config", os.path.join(folder, "config.json"), *args,
                   reverse=True)
        src = self.source(folder)
        del src[INV_FREQ]
        self.assertEqual(read_bin(back), src, variant)

    def test_reverse_from_the_ckpt_alone_where_the_shapes_give_the_sizes(self):
        folder, _, _ = self.make()
        src = self.source(folder)
        del src[INV_FREQ]
        for variant in ("default", "mlp_split"):
            args = VARIANTS[variant][0]
            ckpt = folder + f"_{variant}.ckpt"
            cw_convert(RULES, folder, ckpt, *args)
            back = self.path(f"alone_{variant}.bin")
            # The layout flags are the user's choice, not a size: they are given back.
            cw_convert(RULES, alone(self, ckpt), back, *args, reverse=True)
            self.assertEqual(read_bin(back), src, variant)

    def test_reverse_split_from_the_ckpt_alone_names_the_head_count_to_give(self):
        folder, _, _ = self.make()
        ckpt = folder + "_split.ckpt"
        cw_convert(RULES, folder, ckpt, *VARIANTS["qkv_split"][0])
        p = run("convert", "--rules", RULES, "--input", alone(self, ckpt), "--output",
                self.path("x.bin"), "--reverse", *VARIANTS["qkv_split"][0], check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("parameter heads has no value: give --set heads=... or a config.json with "
                      "num_attention_heads", p.stderr)
        self.assertFalse(os.path.exists(self.path("x.bin")))

    def test_default_keeps_query_key_value_and_dense_h_to_4h_fused(self):
        self.check_variant("default", *self.make())

    def test_every_variant_equals_torch_and_round_trips_exactly(self):
        made = self.make()
        for variant in VARIANTS:
            with self.subTest(variant=variant):
                self.check_variant(variant, *made)

    def test_split_sizes_follow_kv_channels_heads_and_groups(self):
        folder, config, _ = self.make()
        ckpt = self.path("split.ckpt")
        cw_convert(RULES, folder, ckpt, *VARIANTS["all_split"][0])
        got = read_ckpt(ckpt)
        p = "transformer.encoder.layers.1."
        # 8 heads x 8 rows for q, 2 groups x 8 rows for k and v; gate and up 214 rows each.
        self.assertEqual(got[p + "self_attention.wq.weight"][1], [64, 64])
        self.assertEqual(got[p + "self_attention.wk.weight"][1], [16, 64])
        self.assertEqual(got[p + "self_attention.wv.bias"][1], [16])
        self.assertEqual(got[p + "mlp.dense_left.weight"][1], [214, 64])
        self.assertEqual(got[p + "mlp.dense_right.weight"][1], [214, 64])

    def test_without_multi_query_attention_q_k_v_are_equal_thirds(self):
        config = glm3_config(multi_query_attention=False, num_attention_heads=4, hidden_size=32,
                             ffn_hidden_size=106)
        folder, config, tensors = self.make(config)
        self.assertEqual(sizes(config), (32, 32, 32))
        self.check_variant("rope_split", folder, config, tensors)
        self.check_variant("rope_fused", folder, config, tensors)

    def test_a_checkpoint_without_qkv_bias_converts(self):
        self.check_variant("qkv_split", *self.make(glm3_config(add_qkv_bias=False)))

    def test_seed_command_line_writes_the_same_bytes_as_rules(self):
        folder, _, _ = self.make()
        config = os.path.join(folder, "config.json")
        shard = os.path.join(folder, "pytorch_model-00001-of-00003.bin")
        cases = [("glm-n", [], []), ("glm-n", [], ["--qkv_concat"]),
                 ("glm3", VARIANTS["all_split"][0],
                  ["--qkv_concat", "false", "--mlp_concat", "false"]),
                 ("glm2", VARIANTS["rope_fused"][0], ["--use_rearrange_rope", "true"])]
        for model, rules_args, seed_args in cases:
            with self.subTest(model=model, seed_args=seed_args):
                a, b = self.path("a.ckpt"), self.path("b.ckpt")
                cw_convert(RULES, folder, a, *rules_args)
                # Any file of the folder stands for the folder
                # (docs/formats/safetensors.md, 'HF folders').
                seed_convert(model, shard, b, *seed_args)
                with open(a, "rb") as fa, open(b, "rb") as fb:
                    self.assertEqual(fa.read(), fb.read())
                back_a, back_b = self.path("back_a.bin"), self.path("back_b.bin")
                cw_convert(RULES, a, back_a, "--config", config, *rules_args, reverse=True)
                seed_convert(model, b, back_b, "--config", config, *seed_args, reverse=True)
                self.assertEqual(read_any(back_a), read_any(back_b))
                for p in (a, b, back_a, back_b):
                    os.remove(p)

    def test_lint_against_the_checkpoint_round_trips_every_variant(self):
        folder, _, _ = self.make()
        for variant, (args, _, _) in VARIANTS.items():
            with self.subTest(variant=variant):
                p = run("lint", RULES, "--against", folder, *args)
                self.assertEqual(p.stdout.strip(), RULES + ": ok")

    def test_inv_freq_is_a_declared_drop_that_plan_and_convert_report(self):
        folder, _, _ = self.make()
        plan = run("plan", "--rules", RULES, "--input", folder).stdout
        self.assertIn(INV_FREQ, plan[plan.index("not written"):])
        p = run("convert", "--rules", RULES, "--input", folder, "--output", self.path("x.ckpt"))
        self.assertIn("dropped " + INV_FREQ, p.stderr)

    def test_an_unknown_tensor_fails_naming_it(self):
        unknown = "transformer.prefix_encoder.embedding.weight"
        folder, _, _ = self.make(extra={unknown: torch.zeros(4, 64, dtype=torch.float16)})
        self.assertIn(unknown, self.fail(folder))

    def test_a_missing_qkv_bias_fails_naming_it(self):
        missing = "transformer.encoder.layers.1.self_attention.query_key_value.bias"
        folder, _, _ = self.make(drop=(missing,))
        self.assertIn(missing, self.fail(folder))

    def test_the_layer_count_comes_from_num_layers(self):
        folder, config, _ = self.make()
        config["num_layers"] = 3
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(config, f)
        self.assertIn("transformer.encoder.layers.2.", self.fail(folder))

    def test_split_sizes_that_disagree_with_the_tensor_fail_naming_it(self):
        folder, config, _ = self.make()
        config["multi_query_group_num"] = 4
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(config, f)
        self.assertIn("transformer.encoder.layers.0.self_attention.query_key_value.weight",
                      self.fail(folder, "--set", "qkv_concat=false"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
