"""The mixtral rule file (rules/mixtral.yaml) on tiny MixtralForCausalLM folders: config.json plus
bf16 safetensors shards whose tensors are stored in name order (as real safetensors files are), so
that experts.10 comes before experts.2 and the experts of one layer straddle shards.

Checked: forward names equal tests/e2e/expected/mixtral.txt; the stacked experts equal torch.stack
in numeric expert order (and its (0, 2, 1) transpose with use_gmm); renamed tensors keep their
bytes; reverse gives the input back byte for byte (also from the gmm layout); the seed command line
writes the same bytes as --rules; a missing or surplus expert fails naming the tensor.
"""
import json
import os
import sys
import unittest

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from family_lib import (SOURCE, expected_names, randn, read_any, read_ckpt,  # noqa: E402
                        read_hf_folder, record, run, seeded, seed_convert, write_hf_folder)
from family_lib import convert as cw_convert  # noqa: E402
from cw_testlib import TempDirTest  # noqa: E402

RULES = os.path.join(SOURCE, "rules", "mixtral.yaml")

# The MindSpore name of every HF name that is only renamed, from the table of MindFormers'
# research/mixtral/convert_weight.py (written independently of the rule file): whole names, then
# the part after "model.layers.{l}.".
TOP_NAMES = {"model.embed_tokens.weight": "model.tok_embeddings.embedding_weight",
             "model.norm.weight": "model.norm_out.weight", "lm_head.weight": "lm_head.weight"}
LAYER_PARTS = {"self_attn.q_proj.weight": "attention.wq.weight",
               "self_attn.k_proj.weight": "attention.wk.weight",
               "self_attn.v_proj.weight": "attention.wv.weight",
               "self_attn.o_proj.weight": "attention.wo.weight",
               "input_layernorm.weight": "attention_norm.weight",
               "post_attention_layernorm.weight": "ffn_norm.weight",
               "block_sparse_moe.gate.weight": "feed_forward.router.dense.weight"}


def mixtral_config(experts):
    """Mixtral-8x7B scaled down: 32 heads / 8 KV heads -> 8 / 2 (head_dim 4), FFN 3.5 x hidden."""
    return {"architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": 32,
            "intermediate_size": 112, "num_attention_heads": 8, "num_key_value_heads": 2,
            "num_hidden_layers": 2, "num_local_experts": experts, "num_experts_per_tok": 2,
            "vocab_size": 48, "rms_norm_eps": 1e-5, "rope_theta": 1000000.0,
            "tie_word_embeddings": False, "torch_dtype": "bfloat16"}


def mixtral_tensors(config, seed=0):
    """HF tensors of a MixtralForCausalLM in name order (the order of a safetensors file)."""
    g = seeded(seed)
    hidden, ffn = config["hidden_size"], config["intermediate_size"]
    heads, kv = config["num_attention_heads"], config["num_key_value_heads"]
    d = hidden // heads
    bf16 = torch.bfloat16
    t = {"model.embed_tokens.weight": randn(g, config["vocab_size"], hidden, dtype=bf16),
         "model.norm.weight": randn(g, hidden, dtype=bf16),
         "lm_head.weight": randn(g, config["vocab_size"], hidden, dtype=bf16)}
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        t[p + "self_attn.q_proj.weight"] = randn(g, heads * d, hidden, dtype=bf16)
        t[p + "self_attn.k_proj.weight"] = randn(g, kv * d, hidden, dtype=bf16)
        t[p + "self_attn.v_proj.weight"] = randn(g, kv * d, hidden, dtype=bf16)
        t[p + "self_attn.o_proj.weight"] = randn(g, hidden, heads * d, dtype=bf16)
        t[p + "input_layernorm.weight"] = randn(g, hidden, dtype=bf16)
        t[p + "post_attention_layernorm.weight"] = randn(g, hidden, dtype=bf16)
        t[p + "block_sparse_moe.gate.weight"] = randn(g, config["num_local_experts"], hidden,
                                                      dtype=bf16)
        for e in range(config["num_local_experts"]):
            q = f"{p}block_sparse_moe.experts.{e}."
            t[q + "w1.weight"] = randn(g, ffn, hidden, dtype=bf16)
            t[q + "w2.weight"] = randn(g, hidden, ffn, dtype=bf16)
            t[q + "w3.weight"] = randn(g, ffn, hidden, dtype=bf16)
    return dict(sorted(t.items()))


def expected_ms(tensors, config, use_gmm):
    """The MindSpore tensors computed with torch (docs/models.md, mixtral)."""
    out = {}
    for name, value in tensors.items():
        if name in TOP_NAMES:
            out[TOP_NAMES[name]] = value
        elif ".experts." not in name:
            layer, part = name[len("model.layers."):].split(".", 1)
            out[f"model.layers.{layer}.{LAYER_PARTS[part]}"] = value
    for layer in range(config["num_hidden_layers"]):
        for w in ("w1", "w2", "w3"):
            experts = f"model.layers.{layer}.block_sparse_moe.experts."
            stacked = torch.stack([tensors[f"{experts}{e}.{w}.weight"]
                                   for e in range(config["num_local_experts"])], dim=0)
            if use_gmm:
                stacked = stacked.permute(0, 2, 1)
            out[f"model.layers.{layer}.feed_forward.ffn.{w}.weight"] = stacked
    return {k: record(v) for k, v in out.items()}


class MixtralTest(TempDirTest):
    def make(self, experts, shards=3, drop=(), extra=None):
        config = mixtral_config(experts)
        tensors = mixtral_tensors(config)
        files = {k: v for k, v in tensors.items() if k not in drop}
        if extra:
            files.update(extra)
            files = dict(sorted(files.items()))
        folder = self.path(f"mixtral{experts}_{shards}_{len(os.listdir(self.tmp))}")
        write_hf_folder(folder, files, config, fmt="safetensors", shards=shards)
        return folder, config, tensors

    def check_forward_and_back(self, folder, config, tensors, use_gmm):
        gmm = ["--set", "use_gmm=true"] if use_gmm else []
        ckpt = folder + f"_gmm{use_gmm}.ckpt"
        cw_convert(RULES, folder, ckpt, *gmm)
        got = read_ckpt(ckpt)
        self.assertEqual(sorted(got), sorted(expected_names("mixtral")))
        self.assertEqual(got, expected_ms(tensors, config, use_gmm))
        back = folder + f"_gmm{use_gmm}_back"
        cw_convert(RULES, ckpt, back + "/", "--config", os.path.join(folder, "config.json"), *gmm,
                   reverse=True)
        self.assertEqual(read_hf_folder(back), read_hf_folder(folder))

    def test_three_experts_stack_in_order_and_round_trip(self):
        self.check_forward_and_back(*self.make(3), use_gmm=False)

    def test_eleven_experts_stack_in_numeric_not_name_order(self):
        folder, config, tensors = self.make(11)
        self.check_forward_and_back(folder, config, tensors, use_gmm=False)
        # The trap is real: the files hold experts.10 before experts.2.
        names = list(read_hf_folder(folder))
        self.assertLess(names.index("model.layers.0.block_sparse_moe.experts.10.w1.weight"),
                        names.index("model.layers.0.block_sparse_moe.experts.2.w1.weight"))

    def test_experts_of_one_layer_straddle_shards(self):
        folder, config, tensors = self.make(11, shards=4)
        with open(os.path.join(folder, "model.safetensors.index.json")) as f:
            index = json.load(f)["weight_map"]
        layer0 = {index[f"model.layers.0.block_sparse_moe.experts.{e}.{w}.weight"]
                  for e in range(11) for w in ("w1", "w2", "w3")}
        self.assertGreater(len(layer0), 1)
        self.check_forward_and_back(folder, config, tensors, use_gmm=False)

    def test_gmm_layout_transposes_the_stacks_and_round_trips_exactly(self):
        self.check_forward_and_back(*self.make(3), use_gmm=True)
        self.check_forward_and_back(*self.make(11), use_gmm=True)

    def test_a_gmm_checkpoint_reversed_without_use_gmm_fails_instead_of_transposing(self):
        folder, _, _ = self.make(3)
        ckpt = self.path("gmm.ckpt")
        cw_convert(RULES, folder, ckpt, "--set", "use_gmm=true")
        p = run("convert", "--rules", RULES, "--input", ckpt, "--output",
                self.path("b.safetensors"), "--reverse", "--config",
                os.path.join(folder, "config.json"), check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        # The stacked tensor, named with its whole shape against the declared one.
        self.assertIn('"model.layers.0.feed_forward.ffn.w1.weight" is [3, 32, 112], but rule', p.stderr)
        self.assertIn("declares [experts, intermediate_size, hidden_size] = [3, 112, 32]", p.stderr)
        self.assertIn("another order", p.stderr)
        self.assertFalse(os.path.exists(self.path("b.safetensors")))

    def test_seed_command_line_writes_the_same_bytes_as_rules(self):
        folder, _, _ = self.make(11)
        shard = os.path.join(folder, "model-00002-of-00003.safetensors")
        for rules_args, seed_args in (([], []), (["--set", "use_gmm=true"], ["--use_gmm", "true"]),
                                      ([], ["--use_gmm", "False"])):
            a, b = self.path("a.ckpt"), self.path("b.ckpt")
            cw_convert(RULES, folder, a, *rules_args)
            # Any file of the folder stands for the folder
            # (docs/formats/safetensors.md, 'HF folders').
            seed_convert("mixtral", shard, b, *seed_args)
            with open(a, "rb") as fa, open(b, "rb") as fb:
                self.assertEqual(fa.read(), fb.read(), seed_args)
            back_a, back_b = self.path("back_a.safetensors"), self.path("back_b.safetensors")
            config = os.path.join(folder, "config.json")
            cw_convert(RULES, a, back_a, "--config", config, *rules_args, reverse=True)
            seed_convert("mixtral", b, back_b, "--config", config, *seed_args, reverse=True)
            self.assertEqual(read_any(back_a), read_any(back_b))
            self.assertEqual(read_any(back_a), read_hf_folder(folder))
            for p in (a, b, back_a, back_b):
                os.remove(p)

    def test_seed_flags_after_convert_rules_mean_set(self):
        folder, _, _ = self.make(3)
        a, b, c = self.path("a.ckpt"), self.path("b.ckpt"), self.path("c.ckpt")
        cw_convert(RULES, folder, a, "--set", "use_gmm=true")
        cw_convert(RULES, folder, b, "--use_gmm", "true")
        cw_convert(RULES, folder, c, "--use_gmm=true")
        with open(a, "rb") as fa, open(b, "rb") as fb, open(c, "rb") as fc:
            self.assertEqual(fa.read(), fb.read())
            fa.seek(0)
            self.assertEqual(fa.read(), fc.read())
        p = run("convert", "--rules", RULES, "--input", folder, "--output", self.path("d.ckpt"),
                "--use_gm", "true", check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn('unknown parameter "use_gm" (did you mean "use_gmm"?)', p.stderr)

    def test_lint_against_the_checkpoint_round_trips(self):
        folder, _, _ = self.make(11)
        for extra in ([], ["--set", "use_gmm=true"]):
            p = run("lint", RULES, "--against", folder, *extra)
            self.assertEqual(p.stdout.strip(), RULES + ": ok")

    def test_a_missing_expert_fails_naming_it(self):
        missing = "model.layers.1.block_sparse_moe.experts.7.w2.weight"
        folder, _, _ = self.make(11, drop=(missing,))
        p = run("convert", "--rules", RULES, "--input", folder, "--output", self.path("m.ckpt"),
                check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(missing, p.stderr)
        self.assertFalse(os.path.exists(self.path("m.ckpt")))

    def test_an_expert_beyond_the_configured_count_fails_naming_it(self):
        surplus = "model.layers.0.block_sparse_moe.experts.3.w1.weight"
        folder, _, _ = self.make(3, extra={surplus: torch.zeros(112, 32, dtype=torch.bfloat16)})
        p = run("convert", "--rules", RULES, "--input", folder, "--output", self.path("m.ckpt"),
                check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(surplus, p.stderr)

    def test_without_the_expert_count_in_config_json_the_router_shape_gives_it(self):
        folder, config, tensors = self.make(3)
        del config["num_local_experts"]
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(config, f)
        p = run("convert", "--rules", RULES, "--input", folder, "--output", self.path("m.ckpt"))
        self.assertIn("parameter experts = 3 (solved from model.layers.0.block_sparse_moe.gate.weight "
                      "dim 0)", p.stderr)
        self.assertEqual(read_ckpt(self.path("m.ckpt")), expected_ms(tensors, config | {"num_local_experts": 3}, False))

    def test_reverse_from_the_mindspore_file_alone(self):
        """No config.json, no --config, no --set: the shapes give every size and the count."""
        for use_gmm in (False, True):
            folder, _, _ = self.make(11)
            gmm = ["--set", "use_gmm=true"] if use_gmm else []
            alone = self.path(f"alone{use_gmm}")
            os.makedirs(alone)
            cw_convert(RULES, folder, os.path.join(alone, "m.ckpt"), *gmm)
            back = self.path(f"back{use_gmm}/")
            p = cw_convert(RULES, os.path.join(alone, "m.ckpt"), back, *gmm, reverse=True)
            self.assertEqual(read_hf_folder(back), read_hf_folder(folder))
            p = run("plan", "--rules", RULES, "--input", os.path.join(alone, "m.ckpt"), "--reverse",
                    *gmm)
            self.assertIn("parameter experts = 11 (solved from model.layers.0.feed_forward.ffn.w1.weight "
                          "dim 0)", p.stdout)
            self.assertIn("parameter intermediate_size = 112 (solved from", p.stdout)

    def test_fewer_experts_than_configured_fail_naming_the_missing_ones(self):
        folder, config, _ = self.make(3)
        config["num_local_experts"] = 4
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(config, f)
        p = run("convert", "--rules", RULES, "--input", folder, "--output", self.path("m.ckpt"),
                check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("model.layers.0.block_sparse_moe.experts.3.w1.weight", p.stderr)

    def test_a_router_that_disagrees_with_the_expert_count_fails_naming_it(self):
        gate = "model.layers.1.block_sparse_moe.gate.weight"
        folder, _, _ = self.make(3, extra={gate: torch.zeros(4, 32, dtype=torch.bfloat16)})
        p = run("convert", "--rules", RULES, "--input", folder, "--output", self.path("m.ckpt"),
                check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(gate, p.stderr)

if __name__ == "__main__":
    unittest.main(verbosity=2)
