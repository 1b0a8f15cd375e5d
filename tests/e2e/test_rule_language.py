"""The rule language on a Qwen3-MoE-shaped model (tests/data/rules/qwen3_moe_like.yaml): a list
parameter (mlp_only_layers) with membership, named conditions used by name and negated, a value
map (gate_proj/up_proj/down_proj <-> w1/w3/w2 in one rule), shapes declared per expert and solved
from the stacked tensors. Tiny synthetic weights; every output compared with torch computing the
same thing independently of the rule file."""
import json
import os
import sys
import unittest

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from family_lib import (FamilyTestCase, SOURCE, alone, randn, read_ckpt, read_hf_folder,  # noqa: E402
                        record, run, seeded, write_hf_folder)
from family_lib import convert as cw_convert  # noqa: E402

RULES = os.path.join(SOURCE, "tests/data/rules/qwen3_moe_like.yaml")

# Layer 0 is listed as dense; with decoder_sparse_step 2 layer 2 is dense too; 1 and 3 are MoE.
CONFIG = {"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe",
          "num_hidden_layers": 4, "vocab_size": 40, "hidden_size": 16, "num_attention_heads": 4,
          "num_key_value_heads": 2, "head_dim": 8, "intermediate_size": 24,
          "moe_intermediate_size": 12, "num_experts": 3, "mlp_only_layers": [0],
          "decoder_sparse_step": 2, "torch_dtype": "bfloat16"}
MS_PROJ = {"gate_proj": "w1", "up_proj": "w3", "down_proj": "w2"}


def dense_layers(config):
    """Qwen3MoeDecoderLayer's choice, written from transformers' condition."""
    return [layer for layer in range(config["num_hidden_layers"])
            if layer in config["mlp_only_layers"] or config["num_experts"] == 0
            or (layer + 1) % config["decoder_sparse_step"] != 0]


def tensors(config, seed=0):
    g = seeded(seed)
    h, v = config["hidden_size"], config["vocab_size"]
    q, kv = config["num_attention_heads"] * config["head_dim"], config["num_key_value_heads"] * config["head_dim"]
    bf = torch.bfloat16
    t = {"model.embed_tokens.weight": randn(g, v, h, dtype=bf)}
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        t[p + "input_layernorm.weight"] = randn(g, h, dtype=bf)
        for name, rows in (("q_proj", q), ("k_proj", kv), ("v_proj", kv)):
            t[p + f"self_attn.{name}.weight"] = randn(g, rows, h, dtype=bf)
        t[p + "self_attn.o_proj.weight"] = randn(g, h, q, dtype=bf)
        t[p + "self_attn.q_norm.weight"] = randn(g, config["head_dim"], dtype=bf)
        t[p + "self_attn.k_norm.weight"] = randn(g, config["head_dim"], dtype=bf)
        t[p + "post_attention_layernorm.weight"] = randn(g, h, dtype=bf)
        if layer in dense_layers(config):
            f = config["intermediate_size"]
            t[p + "mlp.gate_proj.weight"] = randn(g, f, h, dtype=bf)
            t[p + "mlp.up_proj.weight"] = randn(g, f, h, dtype=bf)
            t[p + "mlp.down_proj.weight"] = randn(g, h, f, dtype=bf)
        else:
            f = config["moe_intermediate_size"]
            t[p + "mlp.gate.weight"] = randn(g, config["num_experts"], h, dtype=bf)
            for e in range(config["num_experts"]):
                t[p + f"mlp.experts.{e}.gate_proj.weight"] = randn(g, f, h, dtype=bf)
                t[p + f"mlp.experts.{e}.up_proj.weight"] = randn(g, f, h, dtype=bf)
                t[p + f"mlp.experts.{e}.down_proj.weight"] = randn(g, h, f, dtype=bf)
    t["model.norm.weight"] = randn(g, h, dtype=bf)
    t["lm_head.weight"] = randn(g, v, h, dtype=bf)
    return t


def expected_ms(t, config):
    """The MindSpore tensors, computed with torch from the HF ones."""
    out = {"model.tok_embeddings.embedding_weight": record(t["model.embed_tokens.weight"]),
           "model.norm_out.weight": record(t["model.norm.weight"]),
           "lm_head.weight": record(t["lm_head.weight"])}
    renames = {"input_layernorm": "attention_norm", "post_attention_layernorm": "ffn_norm",
               "self_attn.q_proj": "attention.wq", "self_attn.k_proj": "attention.wk",
               "self_attn.v_proj": "attention.wv", "self_attn.o_proj": "attention.wo",
               "self_attn.q_norm": "attention.q_layernorm", "self_attn.k_norm": "attention.k_layernorm"}
    for layer in range(config["num_hidden_layers"]):
        hf, ms = f"model.layers.{layer}.", f"model.layers.{layer}."
        for a, b in renames.items():
            out[ms + b + ".weight"] = record(t[hf + a + ".weight"])
        if layer in dense_layers(config):
            for proj, w in MS_PROJ.items():
                out[ms + f"feed_forward.{w}.weight"] = record(t[hf + f"mlp.{proj}.weight"])
        else:
            out[ms + "feed_forward.router.dense.weight"] = record(t[hf + "mlp.gate.weight"])
            for proj, w in MS_PROJ.items():
                stacked = torch.stack([t[hf + f"mlp.experts.{e}.{proj}.weight"]
                                       for e in range(config["num_experts"])])
                out[ms + f"feed_forward.ffn.{w}.weight"] = record(stacked)
    return out


class RuleLanguage(FamilyTestCase):
    def make(self, config=CONFIG):
        folder = self.path(f"hf{len(os.listdir(self.tmp))}")
        named = tensors(config)
        write_hf_folder(folder, named, config, fmt="safetensors", shards=2)
        return folder, named

    def test_the_rule_file_is_lint_clean_and_needs_no_slot_parameters(self):
        self.assertEqual(run("lint", RULES).stdout.strip(), RULES + ": ok")
        with open(RULES) as f:
            text = f.read()
        self.assertNotIn("mlp_only_layers.0", text)  # a list, not one parameter per slot
        self.assertEqual(text.count("(layer + 1) % sparse_step"), 1)  # the condition, once

    def test_forward_equals_torch_and_reverse_is_byte_identical(self):
        folder, named = self.make()
        ckpt = self.path("m.ckpt")
        cw_convert(RULES, folder, ckpt)
        self.assertEqual(read_ckpt(ckpt), expected_ms(named, CONFIG))
        back = self.path("back/")
        cw_convert(RULES, ckpt, back, "--config", os.path.join(folder, "config.json"), reverse=True)
        self.assertEqual(read_hf_folder(back.rstrip("/")), read_hf_folder(folder))

    def test_reverse_from_the_ckpt_alone_reads_the_layout_off_the_names_and_shapes(self):
        folder, _ = self.make()
        ckpt = self.path("m.ckpt")
        cw_convert(RULES, folder, ckpt)
        back = self.path("alone/")
        p = run("convert", "--rules", RULES, "--input", alone(self, ckpt), "--output", back,
                "--reverse")
        self.assertEqual(read_hf_folder(back.rstrip("/")), read_hf_folder(folder))
        for solved in ("experts = 3", "moe_intermediate_size = 12", "intermediate_size = 24",
                       "vocab = 40", "hidden_size = 16", "head_dim = 8"):
            self.assertIn(f"parameter {solved} (solved from ", p.stderr)

    def test_the_list_decides_which_layers_are_dense(self):
        config = dict(CONFIG, mlp_only_layers=[0, 1, 3])  # every layer dense but 2... which is
        # dense anyway with step 2: all four layers dense.
        folder, named = self.make(config)
        ckpt = self.path("m.ckpt")
        cw_convert(RULES, folder, ckpt)
        got = read_ckpt(ckpt)
        self.assertEqual(got, expected_ms(named, config))
        self.assertFalse(any(".ffn." in name for name in got))

    def test_a_layer_the_list_calls_dense_but_holding_experts_is_refused(self):
        folder, _ = self.make()
        config = dict(CONFIG, mlp_only_layers=[0, 1])
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(config, f)
        self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                           self.path("x.ckpt")], 1,
                          "model.layers.1.mlp.gate.weight", 'its when "moe_mlp" is false: layer = 1; '
                          "mlp_only_layers = [0, 1] (config mlp_only_layers)")

    def test_a_stacked_expert_of_the_wrong_width_names_the_stack_and_the_sizes(self):
        folder, named = self.make()
        ckpt = self.path("m.ckpt")
        cw_convert(RULES, folder, ckpt)
        p = self.assert_fails(["convert", "--rules", RULES, "--input", ckpt, "--output",
                               self.path("x/"), "--reverse", "--set", "moe_intermediate_size=6"],
                              1, '"model.layers.1.feed_forward.ffn.w1.weight" is [3, 12, 16]',
                              "moe_intermediate_size = 6 (--set)")
        self.assertFalse(os.path.exists(self.path("x")), p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
