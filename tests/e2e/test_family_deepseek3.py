"""The deepseek3 rule file (rules/deepseek3.yaml, MCore layout) on tiny DeepseekV3ForCausalLM
folders in the bf16 form (dequantized): config.json plus bf16 safetensors shards (the router's
e_score_correction_bias fp32), MLA attention, a dense first layer, MoE layers with shared experts,
and the MTP layer at index num_hidden_layers with its copies of the embedding and the head.

Checked: lint clean, --model deepseekv3 / deepseek3 served; forward names equal
tests/e2e/expected/deepseek3*.txt (written from MindFormers' MCore DeepSeek-V3 table and the
MTP names of toolkit/weight_convert/deepseekv3); MLA tensors keep their bytes; the dense and
shared-expert linear_fc1 (over moe_intermediate_size * n_shared_experts rows) and the experts'
weight1 / weight2 equal independent torch computations; the MTP layer maps to mtp.layers.0 and
its embed_tokens / shared_head.head are declared copies (copy_of) of the main ones: checked equal
(a difference fails) and left out forward, listed, and written again by the reverse;
output_layer.weight is always written, mtp.output_layer.weight never; the router bias stays
float32 whatever --dtype says, both ways; reverse gives the input back byte for byte, both MTP
copies included, also from the .ckpt alone with no config.json and no --set (the layer count and
the MTP layer are counted from the MindSpore names), with and without an MTP layer;
num_nextn_predict_layers 0 and 1 work and 2 is refused, also when counted from the names; an FP8 checkpoint (float8_e4m3fn weights with *_scale_inv block
scales, quantised here) is dequantised to bf16 exactly as torch computes it (edge blocks, NaN,
-0, subnormal codes, a zero scale), the reverse writes bf16 and a config.json without
quantization_config, and a missing or misshapen scale is refused naming the weight; the seed
command line writes the same bytes as --rules under both keys; lint --against round-trips; a
folder as transformers saves it (no MTP layer, num_nextn_predict_layers 1 in config.json)
converts both ways as it is: the MTP layer is counted from the names on both sides, and a partly
missing one is refused naming its tensors.

The same rule file on a tiny model built and saved by transformers 5 itself (not written by
hand): interop.extended_families (tests/interop/extended/test_extended_families.py, optional:
it needs the Debian sid chroot of docs/interop.md), which imports this module's config,
tensors and expected computations.
"""
import json
import os
import sys
import unittest

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from family_lib import MCORE_TOP_NAMES, deepseek_style_mlp_shapes  # noqa: E402
from family_lib import (FamilyTestCase, SOURCE, alone, assert_seed_form_writes_what_rules_write,  # noqa: E402
                        expected_names, randn, read_ckpt, read_hf_folder, record, run, seeded,
                        write_hf_folder)
from family_lib import convert as cw_convert  # noqa: E402
from test_family_qwen3 import FC1, experts_ms, models_listing_serves  # noqa: E402

RULES = os.path.join(SOURCE, "rules", "deepseek3.yaml")


def ds3_config(**overrides):
    """DeepSeek-V3 scaled down: hidden 7168, 128 heads, q_lora 1536, kv_lora 512, nope 128,
    rope 64, v 128, dense FFN 18432, 256 experts of 2048 + 1 shared, 3 dense layers of 61, one MTP
    layer -> hidden 32, 4 heads, q_lora 24, kv_lora 16, nope 8, rope 4, v 6, dense FFN 40,
    4 experts of 12 + 1 shared, 1 dense layer of 3, one MTP layer."""
    config = {"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3",
              "hidden_size": 32, "intermediate_size": 40, "moe_intermediate_size": 12,
              "num_attention_heads": 4, "num_key_value_heads": 4, "q_lora_rank": 24,
              "kv_lora_rank": 16, "qk_nope_head_dim": 8, "qk_rope_head_dim": 4,
              "v_head_dim": 6, "num_hidden_layers": 3, "num_nextn_predict_layers": 1,
              "first_k_dense_replace": 1, "moe_layer_freq": 1, "n_routed_experts": 4,
              "n_shared_experts": 1, "num_experts_per_tok": 2, "n_group": 2, "topk_group": 1,
              "norm_topk_prob": True, "routed_scaling_factor": 2.5, "scoring_func": "sigmoid",
              "topk_method": "noaux_tc", "ep_size": 1, "vocab_size": 48,
              "max_position_embeddings": 163840, "rms_norm_eps": 1e-6, "rope_theta": 10000,
              "rope_scaling": {"type": "yarn", "factor": 40, "beta_fast": 32, "beta_slow": 1,
                               "mscale": 1.0, "mscale_all_dim": 1.0,
                               "original_max_position_embeddings": 4096},
              "attention_bias": False, "tie_word_embeddings": False, "torch_dtype": "bfloat16"}
    config.update(overrides)
    return config


def ds3_layer(g, c, p, t, moe):
    bf = torch.bfloat16
    h, n = c["hidden_size"], c["num_attention_heads"]
    nope, rope, v = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
    shapes = {"input_layernorm.weight": [h], "post_attention_layernorm.weight": [h],
              "self_attn.q_a_proj.weight": [c["q_lora_rank"], h],
              "self_attn.q_a_layernorm.weight": [c["q_lora_rank"]],
              "self_attn.q_b_proj.weight": [n * (nope + rope), c["q_lora_rank"]],
              "self_attn.kv_a_proj_with_mqa.weight": [c["kv_lora_rank"] + rope, h],
              "self_attn.kv_a_layernorm.weight": [c["kv_lora_rank"]],
              "self_attn.kv_b_proj.weight": [n * (nope + v), c["kv_lora_rank"]],
              "self_attn.o_proj.weight": [h, n * v]}
    shapes.update(deepseek_style_mlp_shapes(c, moe))
    if moe:
        t[p + "mlp.gate.e_score_correction_bias"] = randn(g, c["n_routed_experts"])  # fp32
    for name, shape in shapes.items():
        t[p + name] = randn(g, *shape, dtype=bf)


def ds3_tensors(c, seed=0):
    g = seeded(seed)
    bf = torch.bfloat16
    h, v = c["hidden_size"], c["vocab_size"]
    t = {"model.embed_tokens.weight": randn(g, v, h, dtype=bf),
         "model.norm.weight": randn(g, h, dtype=bf), "lm_head.weight": randn(g, v, h, dtype=bf)}
    for layer in range(c["num_hidden_layers"]):
        ds3_layer(g, c, f"model.layers.{layer}.", t, moe=layer >= c["first_k_dense_replace"])
    if c["num_nextn_predict_layers"]:
        p = f"model.layers.{c['num_hidden_layers']}."
        ds3_layer(g, c, p, t, moe=True)
        for name in ("enorm.weight", "hnorm.weight", "shared_head.norm.weight"):
            t[p + name] = randn(g, h, dtype=bf)
        t[p + "eh_proj.weight"] = randn(g, h, 2 * h, dtype=bf)
        # Stored separately, equal to the main embedding and head (DeepSeek's README_WEIGHTS).
        t[p + "embed_tokens.weight"] = t["model.embed_tokens.weight"].clone()
        t[p + "shared_head.head.weight"] = t["lm_head.weight"].clone()
    return dict(sorted(t.items()))


# The MCore names (mindformers/models/deepseek3/utils.py and the toolkit converter), written
# independently of the rule file.
TOP_NAMES = MCORE_TOP_NAMES
LAYER_RENAMES = {"input_layernorm.weight": "input_layernorm.weight",
                 "post_attention_layernorm.weight": "pre_mlp_layernorm.weight",
                 "self_attn.q_a_proj.weight": "self_attention.linear_q_down_proj.weight",
                 "self_attn.q_a_layernorm.weight": "self_attention.q_layernorm.weight",
                 "self_attn.q_b_proj.weight": "self_attention.linear_q_up_proj.weight",
                 "self_attn.kv_a_proj_with_mqa.weight": "self_attention.linear_kv_down_proj.weight",
                 "self_attn.kv_a_layernorm.weight": "self_attention.kv_layernorm.weight",
                 "self_attn.kv_b_proj.weight": "self_attention.linear_kv_up_proj.weight",
                 "self_attn.o_proj.weight": "self_attention.linear_proj.weight",
                 "mlp.down_proj.weight": "mlp.linear_fc2.weight",
                 "mlp.gate.weight": "mlp.router.weight",
                 "mlp.gate.e_score_correction_bias": "mlp.router.expert_bias",
                 "mlp.shared_experts.down_proj.weight": "mlp.shared_experts.linear_fc2.weight"}
MTP_RENAMES = {"enorm.weight": "enorm.weight", "hnorm.weight": "hnorm.weight",
               "eh_proj.weight": "eh_proj.weight",
               "shared_head.norm.weight": "final_layernorm.weight"}
MTP_COPIES = {"embed_tokens.weight": "model.embed_tokens.weight",
              "shared_head.head.weight": "lm_head.weight"}


def ds3_layer_expected(t, c, src, dst, out, moe):
    out.update({dst + b: t[src + a] for a, b in LAYER_RENAMES.items() if src + a in t})
    if not moe:
        out[dst + "mlp.linear_fc1.weight"] = FC1["interleaved"](t[src + "mlp.gate_proj.weight"],
                                                                t[src + "mlp.up_proj.weight"])
        return
    shared = src + "mlp.shared_experts."
    out[dst + "mlp.shared_experts.linear_fc1.weight"] = FC1["interleaved"](
        t[shared + "gate_proj.weight"], t[shared + "up_proj.weight"])
    out.update({dst + k: v for k, v in experts_ms(t, src, c["n_routed_experts"]).items()})


def ds3_expected(t, c, dtype=None):
    out = {TOP_NAMES[n]: v for n, v in t.items() if n in TOP_NAMES}
    for layer in range(c["num_hidden_layers"]):
        ds3_layer_expected(t, c, f"model.layers.{layer}.", f"decoder.layers.{layer}.", out,
                           moe=layer >= c["first_k_dense_replace"])
    if c["num_nextn_predict_layers"]:
        src = f"model.layers.{c['num_hidden_layers']}."
        out.update({"mtp.layers.0." + b: t[src + a] for a, b in MTP_RENAMES.items()})
        ds3_layer_expected(t, c, src, "mtp.layers.0.transformer_layer.", out, moe=True)
    if dtype is not None:
        out = {k: v.to(torch.float32 if k.endswith("expert_bias") else dtype)
               for k, v in out.items()}
    return {k: record(v) for k, v in out.items()}


# Sizes above the 128 x 128 block and not multiples of it, so that edge blocks are partial.
FP8_SIZES = dict(hidden_size=200, intermediate_size=300, moe_intermediate_size=140,
                 num_attention_heads=2, num_key_value_heads=2, q_lora_rank=136, kv_lora_rank=130,
                 qk_nope_head_dim=64, qk_rope_head_dim=8, v_head_dim=70, n_routed_experts=2,
                 num_hidden_layers=2, num_nextn_predict_layers=0, vocab_size=260)


def is_fp8_weight(name):
    """The weights DeepSeek-V3's FP8 release stores in float8: the linear layers of the decoder."""
    return name.startswith("model.layers.") and name.endswith("proj.weight")


def e4m3_values():
    """The value of every float8_e4m3fn code, from the format: sign, 4 exponent bits (bias 7),
    3 mantissa bits, subnormals at exponent 0, S.1111.111 NaN, no infinities."""
    out = np.zeros(256, dtype=np.float32)
    for code in range(256):
        e, m = (code >> 3) & 15, code & 7
        if code & 0x7F == 0x7F:
            v = float("nan")
        elif e == 0:
            v = m / 8 * 2.0 ** -6
        else:
            v = (1 + m / 8) * 2.0 ** (e - 7)
        out[code] = -v if code & 0x80 else v
    return out


E4M3 = e4m3_values()


def quantize_e4m3(t, seed, block=128):
    """Codes and block scales for a bf16 weight: the nearest code of each weight divided by its
    block's scale (max |w| / 448, 1 for an all-zero block), with a few special codes planted."""
    w = t.float().numpy()
    rows, cols = w.shape
    br, bc = -(-rows // block), -(-cols // block)
    scales = np.ones((br, bc), dtype=np.float32)
    for i in range(br):
        for j in range(bc):
            peak = np.abs(w[i * block:(i + 1) * block, j * block:(j + 1) * block]).max()
            scales[i, j] = peak / 448 if peak > 0 else 1
    expanded = np.repeat(np.repeat(scales, block, 0), block, 1)[:rows, :cols]
    finite = np.where(np.isnan(E4M3), np.inf, E4M3)
    codes = np.abs(finite[None, :] - (w / expanded).reshape(-1, 1)).argmin(axis=1)
    codes = codes.astype(np.uint8).reshape(rows, cols)
    codes[0, 0], codes[0, 1], codes[1, 0] = 0x7F, 0x80, 0x01  # NaN, -0, the smallest subnormal
    if seed % 3 == 0:
        scales[-1, -1] = 0  # a zero scale: every weight of the last block is 0 (or NaN)
    return codes, scales


def dequantize_like_torch(codes, scales, block=128):
    """bf16(float32(code value) * its block's scale): torch's float32 multiply and rounding."""
    rows, cols = codes.shape
    expanded = np.repeat(np.repeat(scales, block, 0), block, 1)[:rows, :cols]
    product = torch.from_numpy(E4M3[codes]) * torch.from_numpy(np.ascontiguousarray(expanded))
    return product.to(torch.bfloat16)


class DeepSeek3Test(FamilyTestCase):
    def make(self, shards=3, tensors=None, **overrides):
        config = ds3_config(**overrides)
        tensors = tensors or ds3_tensors(config)
        folder = self.path(f"ds3_{len(os.listdir(self.tmp))}")
        write_hf_folder(folder, dict(sorted(tensors.items())), config, fmt="safetensors",
                        shards=shards)
        return folder, config, tensors

    def test_the_rule_file_lints_clean_and_serves_both_keys(self):
        self.assertEqual(run("lint", RULES).stdout.strip(), RULES + ": ok")
        models_listing_serves(self, ["deepseekv3", "deepseek3"], "deepseek3.yaml")

    def test_forward_equals_torch_and_reverse_gives_back_everything_with_the_mtp_copies(self):
        for shared in (1, 2):
            with self.subTest(n_shared_experts=shared):
                folder, config, tensors = self.make(n_shared_experts=shared)
                ckpt = folder + ".ckpt"
                p = run("convert", "--rules", RULES, "--input", folder, "--output", ckpt)
                got = read_ckpt(ckpt)
                self.assertEqual(sorted(got), sorted(expected_names("deepseek3")))
                self.assertEqual(got, ds3_expected(tensors, config))
                self.assertEqual(got["decoder.layers.1.mlp.shared_experts.linear_fc1.weight"][1],
                                 [2 * 12 * shared, 32])
                self.assertNotIn("mtp.output_layer.weight", got)
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

    def test_an_mtp_embedding_that_differs_from_the_main_one_fails_naming_it(self):
        config = ds3_config()
        tensors = ds3_tensors(config)
        copy = "model.layers.3.embed_tokens.weight"
        tensors[copy] = tensors[copy].clone()
        tensors[copy][0, 0] += 1
        folder, _, _ = self.make(tensors=tensors)
        p = run("convert", "--rules", RULES, "--input", folder, "--output", self.path("m.ckpt"),
                check=False)
        self.assertNotEqual(p.returncode, 0, p.stderr)
        self.assertIn(copy, p.stderr)
        self.assertFalse(os.path.exists(self.path("m.ckpt")))

    def test_without_mtp_layer(self):
        folder, config, tensors = self.make(num_nextn_predict_layers=0)
        ckpt = folder + ".ckpt"
        cw_convert(RULES, folder, ckpt)
        got = read_ckpt(ckpt)
        self.assertEqual(sorted(got), sorted(expected_names("deepseek3_nomtp")))
        self.assertEqual(got, ds3_expected(tensors, config))
        back = folder + "_back/"
        cw_convert(RULES, ckpt, back, "--config", os.path.join(folder, "config.json"), reverse=True)
        self.assertEqual(read_hf_folder(back.rstrip("/")), read_hf_folder(folder))
        # From the .ckpt alone, no --set: the names say there is no MTP layer (nextn counted 0),
        # and the MTP rules' HF patterns (model.layers.${mtp_layer}....) are not needed.
        lone = alone(self, ckpt)
        back = self.path("nomtp_alone/")
        p = run("convert", "--rules", RULES, "--input", lone, "--output", back, "--reverse")
        self.assertEqual(read_hf_folder(back.rstrip("/")), read_hf_folder(folder))
        self.assertIn("parameter nextn = 0 (counted: 0 values of {mtp}", p.stderr)

    def test_a_folder_saved_by_transformers_without_mtp_layer_converts_both_ways_as_it_is(self):
        """transformers builds no MTP layer, so its save_pretrained writes none, but the
        config.json keeps num_nextn_predict_layers: 1 (found by interop.extended_families). The
        MTP layer is counted from the names, so the folder converts both ways exactly, with
        that config.json beside it and given to the reverse."""
        config = ds3_config()
        tensors = {n: t for n, t in ds3_tensors(config).items()
                   if not n.startswith("model.layers.3.")}
        folder, _, _ = self.make(tensors=tensors)
        ckpt = folder + ".ckpt"
        p = run("convert", "--rules", RULES, "--input", folder, "--output", ckpt)
        self.assertIn("parameter nextn = 0 (counted: 0 values of {mtp}", p.stderr)
        got = read_ckpt(ckpt)
        self.assertEqual(sorted(got), sorted(expected_names("deepseek3_nomtp")))
        self.assertEqual(got, ds3_expected(tensors, dict(config, num_nextn_predict_layers=0)))
        back = folder + "_back/"
        cw_convert(RULES, ckpt, back, "--config", os.path.join(folder, "config.json"),
                   reverse=True)
        self.assertEqual(read_hf_folder(back.rstrip("/")), read_hf_folder(folder))

    def test_a_partly_missing_mtp_layer_is_refused_naming_its_tensors(self):
        config = ds3_config()
        tensors = {n: t for n, t in ds3_tensors(config).items()
                   if n != "model.layers.3.eh_proj.weight"}
        folder, _, _ = self.make(tensors=tensors)
        self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                           self.path("m.ckpt")], 1, "model.layers.3.eh_proj.weight")
        self.assertFalse(os.path.exists(self.path("m.ckpt")))
        tensors = {n: t for n, t in ds3_tensors(config).items()
                   if n != "model.layers.3.enorm.weight"}
        folder, _, _ = self.make(tensors=tensors)
        self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                           self.path("m.ckpt")], 1, "model.layers.3.hnorm.weight")
        self.assertFalse(os.path.exists(self.path("m.ckpt")))

    def test_other_mtp_layer_counts_are_refused(self):
        folder, config, _ = self.make()
        self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                           self.path("m.ckpt"), "--set", "nextn=2"], 2, "nextn takes 0, 1")
        tensors = ds3_tensors(config)
        tensors.update({"model.layers.4." + n[len("model.layers.3."):]: t
                        for n, t in tensors.items() if n.startswith("model.layers.3.")})
        folder, _, _ = self.make(tensors=tensors)
        self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                           self.path("m.ckpt")], 1,
                          "parameter nextn is 2 (from counted: 2 values of {mtp} in the input "
                          "names like model.layers.{mtp}.enorm.weight), but it takes 0, 1")
        self.assertFalse(os.path.exists(self.path("m.ckpt")))

    def test_a_ckpt_with_two_mtp_layers_is_refused_naming_the_count(self):
        folder, _, _ = self.make()
        ckpt = folder + ".ckpt"
        cw_convert(RULES, folder, ckpt)
        two = self.two_mtp_ckpt(ckpt, self.path("two_mtp.ckpt"))
        self.assert_fails(["plan", "--rules", RULES, "--input", two, "--reverse"], 1,
                          "parameter nextn is 2 (from counted: 2 values of {mtp} in the input "
                          "names like mtp.layers.{mtp}.enorm.weight), but it takes 0, 1")

    def two_mtp_ckpt(self, ckpt, out):
        """`ckpt` with its mtp.layers.0.* tensors also saved as mtp.layers.1.*."""
        from family_lib import checkpoint_pb2
        pb = checkpoint_pb2()
        with open(ckpt, "rb") as f:
            c = pb.Checkpoint()
            c.ParseFromString(f.read())
        for v in list(c.value):
            if v.tag.startswith("mtp.layers.0."):
                extra = c.value.add()
                extra.CopyFrom(v)
                extra.tag = "mtp.layers.1." + v.tag[len("mtp.layers.0."):]
        with open(out, "wb") as f:
            f.write(c.SerializeToString())
        return out

    def test_num_nextn_predict_layers_does_not_decide_the_mtp_layer_the_names_do(self):
        folder, config, _ = self.make()
        expected = self.path("expected.ckpt")
        cw_convert(RULES, folder, expected)
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(dict(config, num_nextn_predict_layers=0), f)
        ckpt = self.path("m.ckpt")
        cw_convert(RULES, folder, ckpt)
        self.assertEqual(read_ckpt(ckpt), read_ckpt(expected))

    def test_an_fp8_checkpoint_is_dequantised_exactly_as_torch_computes_it(self):
        """Sizes above 128 and not multiples of it (edge blocks), NaN, -0 and subnormal codes, a
        zero scale; the expected bf16 is torch's float32 multiply and rounding."""
        config = ds3_config(**FP8_SIZES)
        folder, dequantized = self.make_fp8(config)
        ckpt = self.path("fp8.ckpt")
        p = run("convert", "--rules", RULES, "--input", folder, "--output", ckpt)
        self.assertEqual(read_ckpt(ckpt), ds3_expected(dequantized, config))
        fp8 = sum(1 for n in dequantized if is_fp8_weight(n))
        self.assertIn(f"{fp8} FP8 weight(s) dequantised to bfloat16", run(
            "plan", "--rules", RULES, "--input", folder).stdout)
        self.assertIn("FP8 weights dequantised to bfloat16", p.stderr)
        # The reverse writes bf16 (no FP8, no scales) and a config.json without the
        # quantization_config that would make a loader read it as FP8.
        back = self.path("fp8_back")
        cw_convert(RULES, ckpt, back + "/", "--config", os.path.join(folder, "config.json"),
                   reverse=True)
        self.assertEqual(read_hf_folder(back), {n: record(t) for n, t in dequantized.items()})
        with open(os.path.join(back, "config.json")) as f:
            written = json.load(f)
        self.assertNotIn("quantization_config", written)
        self.assertEqual(written["hidden_size"], config["hidden_size"])

    def test_an_fp8_weight_without_its_scale_or_with_a_wrong_one_is_refused_naming_it(self):
        config = ds3_config(**FP8_SIZES)
        folder, _ = self.make_fp8(config, drop="model.layers.1.mlp.experts.1.up_proj.weight_scale_inv")
        self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                           self.path("m.ckpt")], 1,
                          "have no float32 block scale named like them plus \"_scale_inv\"",
                          "model.layers.1.mlp.experts.1.up_proj.weight")
        folder, _ = self.make_fp8(config, bad_scale="model.layers.0.self_attn.o_proj.weight_scale_inv")
        self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                           self.path("m.ckpt")], 1,
                          "the FP8 weight model.layers.0.self_attn.o_proj.weight [200, 140] needs "
                          "a block scale of [2, 2]")
        self.assertFalse(os.path.exists(self.path("m.ckpt")))

    def make_fp8(self, config, drop=None, bad_scale=None):
        """An FP8 checkpoint quantised here from a bf16 one: every linear weight of the layers in
        float8_e4m3fn with a float32 scale per 128 x 128 block. Returns the folder and the bf16
        tensors torch computes from it (what the converter must write)."""
        tensors = ds3_tensors(config)
        files, dequantized = {}, {}
        for i, (name, t) in enumerate(sorted(tensors.items())):
            if not is_fp8_weight(name):
                files[name] = t
                dequantized[name] = t
                continue
            codes, scales = quantize_e4m3(t, i)
            files[name] = ("F8_E4M3", list(codes.shape), codes.tobytes())
            files[name + "_scale_inv"] = torch.from_numpy(scales)
            dequantized[name] = dequantize_like_torch(codes, scales)
        if drop:
            del files[drop]
        if bad_scale:
            files[bad_scale] = torch.ones(1, 1)
        config = dict(config, quantization_config={
            "activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
            "weight_block_size": [128, 128]})
        folder = self.path(f"fp8_{len(os.listdir(self.tmp))}")
        write_hf_folder(folder, dict(sorted(files.items())), config, fmt="safetensors", shards=3)
        return folder, dequantized

    def test_the_router_bias_stays_float32_whatever_dtype_says(self):
        folder, config, tensors = self.make()
        for dtype, code, torch_dtype in (("bf16", "BF16", torch.bfloat16),
                                         ("fp16", "F16", torch.float16)):
            with self.subTest(dtype=dtype):
                ckpt = self.path(f"{dtype}.ckpt")
                cw_convert(RULES, folder, ckpt, "--dtype", dtype)
                got = read_ckpt(ckpt)
                self.assertEqual(got, ds3_expected(tensors, config, torch_dtype))
                self.assertEqual(got["decoder.layers.1.mlp.router.expert_bias"][0], "F32")
                self.assertEqual(got["mtp.layers.0.transformer_layer.mlp.router.expert_bias"][0],
                                 "F32")
                self.assertEqual({d for n, (d, _, _) in got.items()
                                  if not n.endswith("expert_bias")}, {code})
                back = self.path(f"{dtype}_back/")
                cw_convert(RULES, ckpt, back, "--config", os.path.join(folder, "config.json"),
                           "--dtype", dtype, reverse=True)
                for name, (got_dtype, _, _) in read_hf_folder(back.rstrip("/")).items():
                    self.assertEqual(got_dtype, "F32" if name.endswith("correction_bias") else code,
                                     name)

    def test_reverse_from_the_ckpt_alone_needs_no_set_and_writes_the_mtp_copies(self):
        folder, config, _ = self.make()
        ckpt = folder + ".ckpt"
        cw_convert(RULES, folder, ckpt)
        lone = alone(self, ckpt)
        back = self.path("alone_back/")
        p = run("convert", "--rules", RULES, "--input", lone, "--output", back, "--reverse")
        self.assertEqual(read_hf_folder(back.rstrip("/")), read_hf_folder(folder))
        self.assertIn("parameter layers = 3 (counted: 3 values of {layer} in the input names "
                      "like decoder.layers.{layer}.input_layernorm.weight)", p.stderr)
        self.assertIn("parameter nextn = 1 (counted: 1 value of {mtp}", p.stderr)
        for solved in ("experts = 4", "moe_intermediate_size = 12", "shared_experts = 1",
                       "intermediate_size = 40", "q_lora_rank = 24", "kv_lora_rank = 16",
                       "qk_rope_head_dim = 4", "hidden_size = 32", "vocab = 48"):
            self.assertIn(f"parameter {solved} (solved from ", p.stderr)

    def test_seed_command_line_writes_the_same_bytes_as_rules_under_both_keys(self):
        folder, config, _ = self.make()
        assert_seed_form_writes_what_rules_write(self, RULES, ("deepseekv3", "deepseek3"), folder,
                                                 read_hf_folder(folder))

    def test_lint_against_the_checkpoint_round_trips(self):
        for overrides in ({}, {"num_nextn_predict_layers": 0, "n_shared_experts": 2}):
            folder, _, _ = self.make(**overrides)
            p = run("lint", RULES, "--against", folder)
            self.assertEqual(p.stdout.strip(), RULES + ": ok", overrides)

    def test_a_missing_expert_fails_naming_it(self):
        config = ds3_config()
        tensors = ds3_tensors(config)
        missing = "model.layers.3.mlp.experts.2.up_proj.weight"
        del tensors[missing]
        folder, _, _ = self.make(tensors=tensors)
        self.assert_fails(["convert", "--rules", RULES, "--input", folder, "--output",
                           self.path("m.ckpt")], 1, missing)


if __name__ == "__main__":
    unittest.main(verbosity=2)
