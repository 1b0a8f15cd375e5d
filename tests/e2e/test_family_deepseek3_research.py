"""The legacy DeepSeek-V3 rule file (rules/deepseek3_research.yaml: MindFormers' research/deepseek3
layout) on the tiny DeepseekV3ForCausalLM folders of test_family_deepseek3.py: MLA attention, a
dense first layer, MoE layers with shared experts, the MTP layer at index num_hidden_layers.

Checked: lint clean, served under deepseek3_research / deepseekv3_research (deepseek3 and
deepseekv3 stay the MCore file's); forward names equal tests/e2e/expected/deepseek3_research*.txt
(written from research/deepseek3/convert_weight.py's table); every split, reordered and stacked
tensor equals an independent torch computation written from that table (q_b per head into nope
and rope rows, kv_a into latent and k rope rows, the rope rows from interleaved pairs to halves,
kv_b per head into k_nope and v, gmm experts [E, H, 2F] = [gate^T | up^T] and [E, F, H] = down^T,
bmm experts stacked as they are); the router bias (topk_bias, both layouts) is float32 whatever
--dtype says, everything else follows it; the MTP layer keeps its index, enorm / hnorm / eh_proj
become mtp_hidden_fusers.0 and shared_head.norm mtp_norms.0, its embed_tokens / shared_head.head
are declared copies (copy_of) of the main ones: checked equal (a difference fails naming the copy,
the original and the rule) and left out forward, listed, and written again by the reverse; reverse
gives the input back byte for byte, both MTP copies included, also from the .ckpt alone with no
config.json and no --set (the MTP layer counted from model.mtp_hidden_fusers.K, the layer count
from model.layers.N less the MTP layer), with and without an MTP layer, and that output converts
forward to the same .ckpt bytes; a .ckpt with two MTP layers is refused naming the count; an FP8
checkpoint is dequantised before the splits and the rope reorder; the seed command line writes
what --rules writes, with --use_grouped_gemm False too; lint --against round-trips.
"""
import os
import sys
import unittest

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from family_lib import (FamilyTestCase, SOURCE, alone, assert_seed_form_writes_what_rules_write,  # noqa: E402
                        checkpoint_pb2, expected_names, read_ckpt, read_hf_folder, record, run, write_hf_folder)
from family_lib import convert as cw_convert  # noqa: E402
from test_family_deepseek3 import (FP8_SIZES, MTP_COPIES, dequantize_like_torch, ds3_config,  # noqa: E402
                                   ds3_tensors, is_fp8_weight, quantize_e4m3)
from test_family_qwen3 import models_listing_serves  # noqa: E402

RULES = os.path.join(SOURCE, "rules", "deepseek3_research.yaml")
KEYS = ("deepseek3_research", "deepseekv3_research")


def rope_halves(rows):
    """Rope rows from HF's interleaved pairs to halves, as research/deepseek3 writes them:
    new row k = old row 2k, new row R/2 + k = old row 2k + 1."""
    r = rows.shape[0]
    out = torch.empty_like(rows)
    for k in range(r // 2):
        out[k] = rows[2 * k]
        out[r // 2 + k] = rows[2 * k + 1]
    return out


def per_head(w, heads, first):
    """Rows of every head cut at `first`: (all heads' first parts, all heads' second parts)."""
    parts = w.reshape(heads, -1, w.shape[-1])
    return parts[:, :first], parts[:, first:]


def attention_expected(t, c, p):
    n, nope = c["num_attention_heads"], c["qk_nope_head_dim"]
    a = p + "attention."
    q_nope, q_pe = per_head(t[p + "self_attn.q_b_proj.weight"], n, nope)
    kv_a = t[p + "self_attn.kv_a_proj_with_mqa.weight"]
    k_nope, v = per_head(t[p + "self_attn.kv_b_proj.weight"], n, nope)
    return {p + "attention_norm.weight": t[p + "input_layernorm.weight"],
            p + "ffn_norm.weight": t[p + "post_attention_layernorm.weight"],
            a + "q2l_proj.weight": t[p + "self_attn.q_a_proj.weight"],
            a + "lq_norm.weight": t[p + "self_attn.q_a_layernorm.weight"],
            a + "l2q_nope_proj.weight": q_nope.reshape(n * nope, -1),
            a + "l2q_pe_proj.weight": torch.cat([rope_halves(h) for h in q_pe]),
            a + "kv2l_latent_kv.weight": kv_a[:c["kv_lora_rank"]],
            a + "kv2l_k_pe.weight": rope_halves(kv_a[c["kv_lora_rank"]:]),
            a + "lkv_norm.weight": t[p + "self_attn.kv_a_layernorm.weight"],
            a + "lkv2kv_k_nope.weight": k_nope.reshape(n * nope, -1),
            a + "lkv2kv_v.weight": v.reshape(n * c["v_head_dim"], -1),
            a + "wo.weight": t[p + "self_attn.o_proj.weight"]}


def mlp_expected(t, c, p, moe, gmm):
    f = p + "feed_forward."
    if not moe:
        return {f + "w1.weight": t[p + "mlp.gate_proj.weight"],
                f + "w2.weight": t[p + "mlp.down_proj.weight"],
                f + "w3.weight": t[p + "mlp.up_proj.weight"]}
    s, r = p + "mlp.shared_experts.", f + "routed_experts."
    out = {f + "shared_experts.w1.weight": t[s + "gate_proj.weight"],
           f + "shared_experts.w2.weight": t[s + "down_proj.weight"],
           f + "shared_experts.w3.weight": t[s + "up_proj.weight"]}
    experts = [f"{p}mlp.experts.{e}." for e in range(c["n_routed_experts"])]
    gate = [t[e + "gate_proj.weight"] for e in experts]
    up = [t[e + "up_proj.weight"] for e in experts]
    down = [t[e + "down_proj.weight"] for e in experts]
    router, bias = t[p + "mlp.gate.weight"], t[p + "mlp.gate.e_score_correction_bias"]
    if gmm:
        out.update({r + "router_dense.weight": router, r + "topk_bias": bias,
                    r + "ffn.w1": torch.stack([torch.cat([g.t(), u.t()], 1)
                                               for g, u in zip(gate, up)]),
                    r + "ffn.w2": torch.stack([d.t() for d in down])})
    else:
        out.update({r + "router.dense.weight": router, r + "router.router.topk_bias": bias,
                    r + "ffn.w1.weight": torch.stack(gate), r + "ffn.w3.weight": torch.stack(up),
                    r + "ffn.w2.weight": torch.stack(down)})
    return out


PINNED_F32 = ("topk_bias",)  # the router bias, float32 as in research/deepseek3


def research_expected(t, c, gmm=True, dtype=None):
    out = {"model.tok_embeddings.embedding_weight": t["model.embed_tokens.weight"],
           "model.norm_out.weight": t["model.norm.weight"],
           "lm_head.weight": t["lm_head.weight"]}
    for layer in range(c["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        out.update(attention_expected(t, c, p))
        out.update(mlp_expected(t, c, p, layer >= c["first_k_dense_replace"], gmm))
    if c["num_nextn_predict_layers"]:
        p = f"model.layers.{c['num_hidden_layers']}."
        fuser = "model.mtp_hidden_fusers.0."
        out.update({fuser + "norm_emb.weight": t[p + "enorm.weight"],
                    fuser + "norm.weight": t[p + "hnorm.weight"],
                    fuser + "dense.weight": t[p + "eh_proj.weight"],
                    "model.mtp_norms.0.weight": t[p + "shared_head.norm.weight"]})
        out.update(attention_expected(t, c, p))
        out.update(mlp_expected(t, c, p, True, gmm))
    if dtype is not None:
        out = {k: v if any(s in k for s in PINNED_F32) else v.to(dtype) for k, v in out.items()}
    return {k: record(v.contiguous()) for k, v in out.items()}


class DeepSeek3ResearchTest(FamilyTestCase):
    def make(self, tensors=None, **overrides):
        config = ds3_config(**overrides)
        tensors = tensors or ds3_tensors(config)
        folder = self.path(f"ds3r_{len(os.listdir(self.tmp))}")
        write_hf_folder(folder, dict(sorted(tensors.items())), config, fmt="safetensors", shards=3)
        return folder, config, tensors

    def test_the_rope_reorder_takes_even_rows_then_odd_rows(self):
        """The spec's example written out: rope rows 0..7 come out 0 2 4 6 1 3 5 7."""
        self.assertEqual(rope_halves(torch.arange(8.0).reshape(8, 1)).flatten().tolist(),
                         [0, 2, 4, 6, 1, 3, 5, 7])
        # One head's rows through the converter: kv_a's k rope rows hold their own row numbers.
        config = ds3_config(num_nextn_predict_layers=0)
        tensors = ds3_tensors(config)
        kv_a = "model.layers.0.self_attn.kv_a_proj_with_mqa.weight"
        rows = tensors[kv_a].shape[0]
        tensors[kv_a] = torch.arange(rows, dtype=torch.bfloat16)[:, None].repeat(1, 32)
        folder, _, _ = self.make(tensors=tensors, num_nextn_predict_layers=0)
        ckpt = folder + ".ckpt"
        cw_convert(RULES, folder, ckpt)
        dtype, shape, data = read_ckpt(ckpt)["model.layers.0.attention.kv2l_k_pe.weight"]
        got = torch.frombuffer(bytearray(data), dtype=torch.bfloat16).reshape(shape)[:, 0]
        self.assertEqual(got.tolist(), [16, 18, 17, 19])  # kv_lora 16, rope 4

    def test_the_rule_file_lints_clean_and_serves_its_own_keys(self):
        self.assertEqual(run("lint", RULES).stdout.strip(), RULES + ": ok")
        models_listing_serves(self, list(KEYS), "deepseek3_research.yaml")
        models_listing_serves(self, ["deepseekv3", "deepseek3"], "deepseek3.yaml")

    def test_forward_equals_torch_and_reverse_gives_back_everything_with_the_mtp_copies(self):
        for shared in (1, 2):
            with self.subTest(n_shared_experts=shared):
                folder, config, tensors = self.make(n_shared_experts=shared)
                ckpt = folder + ".ckpt"
                p = run("convert", "--rules", RULES, "--input", folder, "--output", ckpt)
                got = read_ckpt(ckpt)
                self.assertEqual(sorted(got), sorted(expected_names("deepseek3_research")))
                self.assertEqual(got, research_expected(tensors, config))
                self.assertEqual(got["model.layers.1.feed_forward.routed_experts.ffn.w1"][1],
                                 [4, 32, 24])
                self.assertEqual(got["model.layers.1.attention.l2q_pe_proj.weight"][1], [16, 24])
                for name, main in MTP_COPIES.items():
                    self.assertIn(f"dropped model.layers.3.{name}: a copy of {main}; checked "
                                  "equal, written again by the reverse", p.stderr)
                back = folder + "_back/"
                cw_convert(RULES, ckpt, back, "--config", os.path.join(folder, "config.json"),
                           reverse=True)
                got_back = read_hf_folder(back.rstrip("/"))
                self.assertEqual(got_back, read_hf_folder(folder))
                for name, main in MTP_COPIES.items():
                    self.assertEqual(got_back[f"model.layers.3.{name}"], record(tensors[main]))

    def test_an_mtp_copy_that_differs_from_its_original_fails_naming_both(self):
        for name, main in MTP_COPIES.items():
            with self.subTest(copy=name):
                config = ds3_config()
                tensors = ds3_tensors(config)
                copy = f"model.layers.3.{name}"
                tensors[copy] = tensors[copy].clone()
                tensors[copy][5, 7] += 1
                folder, _, _ = self.make(tensors=tensors)
                out = self.path(f"differs_{len(os.listdir(self.tmp))}.ckpt")
                self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                                   out], 1,
                                  f"\"{copy}\" is declared a copy of \"{main}\" but their "
                                  "bytes differ", RULES + ":")
                self.assertFalse(os.path.exists(out))

    def test_bmm_experts_stack_as_they_are_and_reverse_with_use_gmm_false(self):
        folder, config, tensors = self.make()
        ckpt = folder + ".ckpt"
        cw_convert(RULES, folder, ckpt, "--set", "use_gmm=false")
        got = read_ckpt(ckpt)
        self.assertEqual(sorted(got), sorted(expected_names("deepseek3_research_bmm")))
        self.assertEqual(got, research_expected(tensors, config, gmm=False))
        back = folder + "_back/"
        cw_convert(RULES, ckpt, back, "--config", os.path.join(folder, "config.json"),
                   "--set", "use_gmm=false", reverse=True)
        self.assertEqual(read_hf_folder(back.rstrip("/")), read_hf_folder(folder))
        # From the .ckpt alone too, given only the layout.
        back = self.path("bmm_alone/")
        cw_convert(RULES, alone(self, ckpt), back, "--set", "use_gmm=false", reverse=True)
        self.assertEqual(read_hf_folder(back.rstrip("/")), read_hf_folder(folder))
        # The reverse does not guess the layout: under the default use_gmm the bmm names match
        # no rule, and the message says why.
        self.assert_fails(["convert", "--rules", RULES, "--input", ckpt, "--output",
                           self.path("x/"), "--reverse"], 1,
                          "model.layers.1.feed_forward.routed_experts.router.dense.weight",
                          "use_gmm = true (default)")

    def test_without_mtp_layer(self):
        folder, config, tensors = self.make(num_nextn_predict_layers=0)
        ckpt = folder + ".ckpt"
        cw_convert(RULES, folder, ckpt)
        got = read_ckpt(ckpt)
        self.assertEqual(sorted(got), sorted(expected_names("deepseek3_research_nomtp")))
        self.assertEqual(got, research_expected(tensors, config))
        # From the .ckpt alone, no --set: the names say there is no MTP layer (nextn counted 0)
        # and hold layers 0..2.
        back = self.path("nomtp_alone/")
        p = run("convert", "--rules", RULES, "--input", alone(self, ckpt), "--output", back,
                "--reverse")
        self.assertEqual(read_hf_folder(back.rstrip("/")), read_hf_folder(folder))
        self.assertIn("parameter nextn = 0 (counted: 0 values of {mtp}", p.stderr)
        self.assertIn("parameter layers = 3 (default)", p.stderr)

    def test_the_router_bias_stays_float32_whatever_dtype_says(self):
        folder, config, tensors = self.make()
        for dtype, code, torch_dtype in (("bf16", "BF16", torch.bfloat16),
                                         ("fp16", "F16", torch.float16)):
            with self.subTest(dtype=dtype):
                ckpt = self.path(f"{dtype}.ckpt")
                cw_convert(RULES, folder, ckpt, "--dtype", dtype)
                got = read_ckpt(ckpt)
                self.assertEqual(got, research_expected(tensors, config, dtype=torch_dtype))
                self.assertEqual({n for n, (d, _, _) in got.items() if d == "F32"},
                                 {n for n in got if any(s in n for s in PINNED_F32)})
                self.assertEqual({d for n, (d, _, _) in got.items()
                                  if not any(s in n for s in PINNED_F32)}, {code})

    def test_reverse_from_the_ckpt_alone_needs_no_set_and_writes_the_mtp_copies(self):
        folder, _, _ = self.make()
        ckpt = folder + ".ckpt"
        cw_convert(RULES, folder, ckpt)
        lone = alone(self, ckpt)
        back = self.path("alone_back/")
        p = run("convert", "--rules", RULES, "--input", lone, "--output", back, "--reverse")
        self.assertEqual(read_hf_folder(back.rstrip("/")), read_hf_folder(folder))
        # The MTP layer shares model.layers.N.: 4 indices counted, less the one MTP layer.
        self.assertIn("parameter numbered_layers = 4 (counted: 4 values of {layer} in the input "
                      "names like model.layers.{layer}.attention_norm.weight)", p.stderr)
        self.assertIn("parameter nextn = 1 (counted: 1 value of {mtp} in the input names like "
                      "model.mtp_hidden_fusers.{mtp}.norm_emb.weight)", p.stderr)
        self.assertIn("parameter layers = 3 (default)", p.stderr)
        self.assertIn("parameter mtp_layer = 3 (default)", p.stderr)
        for solved in ("experts = 4", "moe_intermediate_size = 12", "shared_experts = 1",
                       "intermediate_size = 40", "q_lora_rank = 24", "kv_lora_rank = 16",
                       "qk_rope_head_dim = 4", "heads = 4", "qk_nope_head_dim = 8",
                       "v_head_dim = 6", "hidden_size = 32", "vocab = 48"):
            self.assertIn(f"parameter {solved} (solved from ", p.stderr)
        # Forward again (the sizes from the original config.json): the same .ckpt bytes.
        again = self.path("again.ckpt")
        cw_convert(RULES, back, again, "--config", os.path.join(folder, "config.json"))
        with open(again, "rb") as a, open(ckpt, "rb") as b:
            self.assertEqual(a.read(), b.read())

    def test_a_ckpt_with_two_mtp_layers_is_refused_naming_the_count(self):
        folder, _, _ = self.make()
        ckpt = folder + ".ckpt"
        cw_convert(RULES, folder, ckpt)
        two = self.path("two_mtp.ckpt")
        pb = checkpoint_pb2()
        c = pb.Checkpoint()
        with open(ckpt, "rb") as f:
            c.ParseFromString(f.read())
        for v in list(c.value):
            if v.tag.startswith("model.mtp_hidden_fusers.0."):
                extra = c.value.add()
                extra.CopyFrom(v)
                extra.tag = v.tag.replace(".0.", ".1.", 1)
        with open(two, "wb") as f:
            f.write(c.SerializeToString())
        self.assert_fails(["plan", "--rules", RULES, "--input", two, "--reverse"], 1,
                          "parameter nextn is 2 (from counted: 2 values of {mtp} in the input "
                          "names like model.mtp_hidden_fusers.{mtp}.norm_emb.weight), but it "
                          "takes 0, 1")

    def test_an_fp8_checkpoint_is_dequantised_before_the_splits_and_the_rope_reorder(self):
        config = ds3_config(**FP8_SIZES)
        tensors = ds3_tensors(config)
        files, dequantized = {}, {}
        for i, (name, t) in enumerate(sorted(tensors.items())):
            if not is_fp8_weight(name):
                files[name] = dequantized[name] = t
                continue
            codes, scales = quantize_e4m3(t, i)
            files[name] = ("F8_E4M3", list(codes.shape), codes.tobytes())
            files[name + "_scale_inv"] = torch.from_numpy(scales)
            dequantized[name] = dequantize_like_torch(codes, scales)
        config = dict(config, quantization_config={
            "activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
            "weight_block_size": [128, 128]})
        folder = self.path("fp8")
        write_hf_folder(folder, dict(sorted(files.items())), config, fmt="safetensors", shards=3)
        ckpt = self.path("fp8.ckpt")
        p = run("convert", "--rules", RULES, "--input", folder, "--output", ckpt)
        self.assertIn("FP8 weights dequantised to bfloat16", p.stderr)
        self.assertEqual(read_ckpt(ckpt), research_expected(dequantized, config))
        back = self.path("fp8_back")
        cw_convert(RULES, ckpt, back + "/", "--config", os.path.join(folder, "config.json"),
                   reverse=True)
        self.assertEqual(read_hf_folder(back), {n: record(t) for n, t in dequantized.items()})

    def test_seed_command_line_writes_the_same_bytes_as_rules_under_both_keys(self):
        folder, _, _ = self.make()
        back = read_hf_folder(folder)
        assert_seed_form_writes_what_rules_write(self, RULES, KEYS, folder, back)
        assert_seed_form_writes_what_rules_write(self, RULES, KEYS, folder, back,
                                                 rules_args=("--set", "use_gmm=false"),
                                                 seed_args=("--use_grouped_gemm", "False"))

    def test_lint_against_the_checkpoint_round_trips(self):
        for overrides in ({}, {"num_nextn_predict_layers": 0, "n_shared_experts": 2}):
            folder, _, _ = self.make(**overrides)
            for extra in ((), ("--set", "use_gmm=false")):
                p = run("lint", RULES, "--against", folder, *extra)
                self.assertEqual(p.stdout.strip(), RULES + ": ok", (overrides, extra))


if __name__ == "__main__":
    unittest.main(verbosity=2)
