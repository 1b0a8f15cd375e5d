"""The llama family rule files (rules/llama.yaml and the files extending it): llama, knowlm,
deepseek, deepseek1_5 and qwen2, each on a tiny checkpoint shaped like a real one of the family,
in the layout it ships in.

Checked for every family: forward names equal tests/e2e/expected/<family>.txt, every tensor equals
its source (or, fused, an independent torch computation of the layouts in docs/rules.md, 'Examples
of the fused layouts'), dtypes are kept, reverse gives the input back byte for byte, and the seed
command line writes the same bytes as --rules.
"""
import os
import re
import shutil
import sys
import tempfile
import unittest

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from family_lib import (FamilyTestCase, SOURCE, alone, expected_names, randn, read_any,  # noqa: E402
                        read_bin, read_ckpt, read_hf_folder, record, run, seeded, seed_convert,
                        write_hf_folder, write_safetensors)
from cw_testlib import EXTERNAL  # noqa: E402
from family_lib import convert as cw_convert  # noqa: E402

RULES = {f: os.path.join(SOURCE, "rules", f + ".yaml")
         for f in ("llama", "knowlm", "deepseek", "deepseek1_5", "qwen2")}

# The MindSpore name of every HF name, written from the table of MindFormers'
# mindformers/models/llama/convert_weight.py (independently of the rule files): whole names, then
# the per-layer part after "model.layers.{layer}.".
TOP_NAMES = {"model.embed_tokens.weight": "model.tok_embeddings.embedding_weight",
             "model.norm.weight": "model.norm_out.weight", "lm_head.weight": "lm_head.weight"}
LAYER_PARTS = {"self_attn.q_proj": "attention.wq", "self_attn.k_proj": "attention.wk",
               "self_attn.v_proj": "attention.wv", "self_attn.o_proj": "attention.wo",
               "mlp.gate_proj": "feed_forward.w1", "mlp.down_proj": "feed_forward.w2",
               "mlp.up_proj": "feed_forward.w3", "input_layernorm": "attention_norm",
               "post_attention_layernorm": "ffn_norm"}
LAYER_NAME = re.compile(r"model\.layers\.(\d+)\.(.+)\.(weight|bias)")
LORA_NAME = re.compile(r"model\.layers\.(\d+)\.(.+)\.lora_([AB])\.weight")


def ms_name(hf):
    if hf in TOP_NAMES:
        return TOP_NAMES[hf]
    m = LORA_NAME.fullmatch(hf)
    if m:
        return f"model.layers.{m[1]}.{LAYER_PARTS[m[2]]}.tk_delta_lora_{m[3].lower()}"
    m = LAYER_NAME.fullmatch(hf)
    return f"model.layers.{m[1]}.{LAYER_PARTS[m[2]]}.{m[3]}"


# Tiny configurations with the ratios of a real checkpoint of each family (hidden size, heads,
# KV heads, FFN width, tied head), the dtype it ships in and its file layout.
FAMILIES = {
    # Meta-Llama-3-8B: 32 heads / 8 KV heads, FFN 3.5 x hidden, untied, bf16 safetensors shards.
    "llama": dict(config={
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
        "intermediate_size": 224, "num_attention_heads": 8, "num_key_value_heads": 2,
        "num_hidden_layers": 3, "vocab_size": 96, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16"}, dtype=torch.bfloat16, fmt="safetensors", shards=3),
    # KnowLM 13B (LLaMA-1 13B): 40 heads, no KV-head key, FFN 2.7 x hidden, no tie key, fp16
    # .bin shards saved with the rotary inv_freq buffers.
    "knowlm": dict(config={
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 40,
        "intermediate_size": 108, "num_attention_heads": 5, "num_hidden_layers": 2,
        "vocab_size": 64, "rms_norm_eps": 1e-6, "max_sequence_length": 2048,
        "torch_dtype": "float16"}, dtype=torch.float16, fmt="bin", shards=2, inv_freq=True),
    # deepseek-llm-67b: 64 heads / 8 KV heads, FFN 2.6875 x hidden, untied, bf16 .bin shards.
    "deepseek": dict(config={
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
        "intermediate_size": 172, "num_attention_heads": 16, "num_key_value_heads": 2,
        "num_hidden_layers": 2, "vocab_size": 100, "rms_norm_eps": 1e-6,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16"},
        dtype=torch.bfloat16, fmt="bin", shards=3),
    # deepseek-coder-7b-base-v1.5: 32 heads = 32 KV heads, FFN 2.6875 x hidden, untied, bf16
    # safetensors shards.
    "deepseek1_5": dict(config={
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32,
        "intermediate_size": 86, "num_attention_heads": 4, "num_key_value_heads": 4,
        "num_hidden_layers": 2, "vocab_size": 80, "rms_norm_eps": 1e-6,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16"},
        dtype=torch.bfloat16, fmt="safetensors", shards=2),
    # Qwen2.5-0.5B: 14 heads / 2 KV heads, q/k/v biases, FFN 5.43 x hidden, tied head with no
    # lm_head.weight in the file, bf16, one model.safetensors.
    "qwen2": dict(config={
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 56,
        "intermediate_size": 304, "num_attention_heads": 14, "num_key_value_heads": 2,
        "num_hidden_layers": 2, "vocab_size": 72, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
        "tie_word_embeddings": True, "torch_dtype": "bfloat16"},
        dtype=torch.bfloat16, fmt="safetensors", shards=1, qkv_bias=True, lm_head=False),
}
# Qwen2.5-7B: 28 heads / 4 KV heads, untied (lm_head.weight shipped), bf16 safetensors shards.
QWEN2_7B = dict(config={
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 112,
    "intermediate_size": 592, "num_attention_heads": 28, "num_key_value_heads": 4,
    "num_hidden_layers": 2, "vocab_size": 80, "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16"},
    dtype=torch.bfloat16, fmt="safetensors", shards=2, qkv_bias=True)


def llama_tensors(config, dtype, seed=0, qkv_bias=False, lm_head=True, inv_freq=False, lora=()):
    """HF tensors of a LlamaForCausalLM / Qwen2ForCausalLM in state_dict order. `lora` names the
    projections (e.g. "self_attn.q_proj") that get PEFT lora_A/lora_B weights of rank 2."""
    g = seeded(seed)
    hidden, inter = config["hidden_size"], config["intermediate_size"]
    heads = config["num_attention_heads"]
    kv = config.get("num_key_value_heads", heads)
    d = config.get("head_dim", hidden // heads)
    shapes = {"self_attn.q_proj": (heads * d, hidden), "self_attn.k_proj": (kv * d, hidden),
              "self_attn.v_proj": (kv * d, hidden), "self_attn.o_proj": (hidden, heads * d),
              "mlp.gate_proj": (inter, hidden), "mlp.up_proj": (inter, hidden),
              "mlp.down_proj": (hidden, inter)}
    t = {"model.embed_tokens.weight": randn(g, config["vocab_size"], hidden, dtype=dtype)}
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            proj = "self_attn." + proj
            t[p + proj + ".weight"] = randn(g, *shapes[proj], dtype=dtype)
            if qkv_bias and proj != "self_attn.o_proj":
                t[p + proj + ".bias"] = randn(g, shapes[proj][0], dtype=dtype)
        if inv_freq:
            exponents = torch.arange(0, d, 2).float() / d
            t[p + "self_attn.rotary_emb.inv_freq"] = 1.0 / 10000 ** exponents
        for proj in ("mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"):
            t[p + proj + ".weight"] = randn(g, *shapes[proj], dtype=dtype)
        for proj in lora:
            out_rows, in_cols = shapes[proj]
            t[p + proj + ".lora_A.weight"] = randn(g, 2, in_cols, dtype=dtype)
            t[p + proj + ".lora_B.weight"] = randn(g, out_rows, 2, dtype=dtype)
        t[p + "input_layernorm.weight"] = randn(g, hidden, dtype=dtype)
        t[p + "post_attention_layernorm.weight"] = randn(g, hidden, dtype=dtype)
    t["model.norm.weight"] = randn(g, hidden, dtype=dtype)
    if lm_head:
        t["lm_head.weight"] = randn(g, config["vocab_size"], hidden, dtype=dtype)
    return t


def build(folder, spec, fmt=None, **overrides):
    """Writes the family's tiny checkpoint as an HF folder; returns its tensors."""
    kwargs = {k: spec[k] for k in ("qkv_bias", "lm_head", "inv_freq") if k in spec}
    kwargs.update(overrides)
    named = llama_tensors(spec["config"], spec["dtype"], **kwargs)
    write_hf_folder(folder, named, spec["config"], fmt=fmt or spec["fmt"], shards=spec["shards"])
    return named


def grouped_qkv(q, k, v, heads, kv_heads, head_dim):
    """Grouped layout (docs/rules.md): per KV group, its heads/kv_heads query heads, k, v."""
    rest = list(q.shape[1:])
    return torch.cat([q.reshape(kv_heads, heads // kv_heads * head_dim, *rest),
                      k.reshape(kv_heads, head_dim, *rest),
                      v.reshape(kv_heads, head_dim, *rest)], dim=1).reshape(-1, *rest)


def grouped_gate_up(gate, up):
    """Grouped layout (docs/rules.md): gate/up rows one by one, gate_0, up_0, gate_1, up_1, ..."""
    return torch.stack([gate, up], dim=1).reshape(-1, *gate.shape[1:])


def file_bytes(path):
    with open(path, "rb") as f:
        return f.read()


class FamilyTest(FamilyTestCase):
    def fresh(self, name):
        """`name` in a new folder of its own: outputs never collide, and two outputs compared
        byte for byte can have the same file name (the torch writer records the stem)."""
        return os.path.join(tempfile.mkdtemp(dir=self.tmp), name)

    def forward(self, family, src, out="f.ckpt", *extra):
        ckpt = self.fresh(out)
        cw_convert(RULES[family], src, ckpt, *extra)
        return ckpt

    def reverse(self, family, ckpt, out, config, *extra):
        back = self.fresh(out)
        cw_convert(RULES[family], ckpt, back, "--config", config, *extra, reverse=True)
        return back

    def assert_record(self, got, want, what):
        """(dtype, shape, bytes) records equal; a short message instead of a diff of the bytes."""
        if got != want:
            self.fail(f"{what}: got {got[0]} {got[1]}, want {want[0]} {want[1]}"
                      + (", different bytes" if got[:2] == want[:2] else ""))

    def source_records(self, folder, spec):
        if spec["fmt"] == "safetensors":
            return read_hf_folder(folder)
        out = {}
        for name in sorted(os.listdir(folder)):
            if name.endswith(".bin"):
                out.update(read_bin(os.path.join(folder, name)))
        return out

    def assert_records(self, got, want, what=""):
        self.assertEqual(sorted(got), sorted(want), what)
        for name, record_ in want.items():
            self.assert_record(got[name], record_, f"{what} {name}")



class Registry(FamilyTest):
    def test_each_model_key_is_served_by_exactly_one_file_named_after_its_family(self):
        text = run("models").stdout
        served = [(key, os.path.basename(file))
                  for file, keys in re.findall(r"^\S+  \((.+)\)\n  keys: (.*)$", text, re.M)
                  for key in keys.split(", ")]
        keys = [key for key, _ in served]
        self.assertEqual(len(keys), len(set(keys)), text)
        files = dict(served)
        for key, family in (("llama", "llama"), ("knowlm", "knowlm"), ("deepseek", "deepseek"),
                            ("deepseek1_5", "deepseek1_5"), ("qwen2", "qwen2"), ("qwen", "qwen2")):
            self.assertEqual(files[key], family + ".yaml", key)

    def test_rule_files_lint_clean(self):
        p = run("lint", *RULES.values())
        for path in RULES.values():
            self.assertIn(path + ": ok", p.stdout)

    def test_lint_against_each_tiny_checkpoint_round_trips(self):
        for family, spec in FAMILIES.items():
            folder = self.path(family)
            build(folder, spec)
            self.assertIn(": ok", run("lint", RULES[family], "--against", folder).stdout, family)
        for layout in ("grouped", "plain"):
            p = run("lint", RULES["qwen2"], "--against", self.path("qwen2"), "--set",
                    "qkv_concat=true", "--set", "concat_layout=" + layout)
            self.assertIn(": ok", p.stdout, layout)

    def test_an_unknown_model_lists_the_family_keys(self):
        p = self.assert_fails(["--model", "llama9", "--input_path", self.tmp, "--output_path",
                               self.path("x.ckpt")], 2, "llama9")
        for key in ("llama", "knowlm", "deepseek", "deepseek1_5", "qwen2", "qwen"):
            self.assertIn(key, p.stderr)


class Forward(FamilyTest):
    """Each family's tiny checkpoint, forward: names, bytes, dtypes."""

    def check_forward(self, family, spec, src_named, ckpt, expected_file):
        got = read_ckpt(ckpt)
        self.assertEqual(sorted(got), sorted(expected_names(expected_file)))
        for hf, t in src_named.items():
            if hf.endswith("inv_freq"):
                continue
            self.assert_record(got[ms_name(hf)], record(t), hf)
        if "lm_head.weight" not in src_named:
            embedding = record(src_named["model.embed_tokens.weight"])
            self.assert_record(got["lm_head.weight"], embedding, "tied lm_head.weight")
        code = record(torch.zeros(1, dtype=spec["dtype"]))[0]
        self.assertEqual({dtype for dtype, _, _ in got.values()}, {code}, "dtype kept")

    def test_every_family_forward(self):
        for family, spec in FAMILIES.items():
            with self.subTest(family=family):
                folder = self.path(family)
                named = build(folder, spec)
                ckpt = self.forward(family, folder, family + ".ckpt")
                self.check_forward(family, spec, named, ckpt, family)

    def test_qwen2_untied_sharded_7b_shape(self):
        folder = self.path("q7")
        named = build(folder, QWEN2_7B)
        self.check_forward("qwen2", QWEN2_7B, named, self.forward("qwen2", folder), "qwen2")

    def test_safetensors_and_bin_shards_give_the_same_ckpt(self):
        for family in ("llama", "knowlm"):
            with self.subTest(family=family):
                a, b = self.path(family + "_st"), self.path(family + "_bin")
                build(a, FAMILIES[family], fmt="safetensors")
                build(b, FAMILIES[family], fmt="bin")
                self.assertEqual(file_bytes(self.forward(family, a, family + "a.ckpt")),
                                 file_bytes(self.forward(family, b, family + "b.ckpt")))

    def test_dtype_cast_applies_to_every_tensor(self):
        folder = self.path("ds")
        named = build(folder, FAMILIES["deepseek"])
        got = read_ckpt(self.forward("deepseek", folder, "f.ckpt", "--dtype", "fp32"))
        for hf, t in named.items():
            self.assert_record(got[ms_name(hf)], record(t.float()), hf)


class RoundTrip(FamilyTest):
    def check_round_trip(self, family, spec, folder):
        ckpt = self.forward(family, folder)
        config = os.path.join(folder, "config.json")
        expected = {k: v for k, v in self.source_records(folder, spec).items()
                    if not k.endswith("rotary_emb.inv_freq")}
        for out in ("back.bin", "back/"):
            back = self.reverse(family, ckpt, out, config)
            self.assert_records(read_any(back.rstrip("/")), expected, f"{family} {out}")

    def test_every_family_reverse_gives_the_input_back(self):
        for family, spec in FAMILIES.items():
            with self.subTest(family=family):
                folder = self.path(family)
                build(folder, spec)
                self.check_round_trip(family, spec, folder)

    def test_qwen2_untied_keeps_its_head_both_ways(self):
        folder = self.path("q7")
        build(folder, QWEN2_7B)
        self.check_round_trip("qwen2", QWEN2_7B, folder)

    def test_safetensors_and_bin_inputs_of_every_family_round_trip(self):
        for family, spec in FAMILIES.items():
            other = "bin" if spec["fmt"] == "safetensors" else "safetensors"
            with self.subTest(family=family, fmt=other):
                folder = self.path(family + "_" + other)
                build(folder, spec, fmt=other)
                self.check_round_trip(family, dict(spec, fmt=other), folder)


class FromTheMindSporeFileAlone(FamilyTest):
    """The reverse needs no config.json: names give the layers, shapes everything else."""

    def test_every_family_reverses_from_the_ckpt_alone(self):
        for family, spec in list(FAMILIES.items()) + [("qwen2", QWEN2_7B)]:
            with self.subTest(family=family, tied=spec["config"].get("tie_word_embeddings")):
                folder = self.fresh(family)
                build(folder, spec)
                ckpt = alone(self, self.forward(family, folder))
                back = self.fresh("back/")
                p = run("convert", "--rules", RULES[family], "--input", ckpt, "--output", back,
                        "--reverse")
                expected = {k: v for k, v in self.source_records(folder, spec).items()
                            if not k.endswith("rotary_emb.inv_freq")}
                if spec["config"].get("tie_word_embeddings"):
                    # Only config.json says the head is tied: without it the head is written,
                    # equal to the embedding, and the summary says where the choice came from.
                    expected["lm_head.weight"] = expected["model.embed_tokens.weight"]
                    self.assertIn("parameter tie_word_embeddings = false (default)", p.stderr)
                self.assert_records(read_any(back.rstrip("/")), expected, family)
                self.assertIn("parameter vocab = %d (solved from" % spec["config"]["vocab_size"],
                              p.stderr)

    def test_a_tied_head_needs_only_the_flag_back(self):
        folder = self.fresh("qwen2")
        build(folder, FAMILIES["qwen2"])
        ckpt = alone(self, self.forward("qwen2", folder))
        back = self.fresh("back/")
        cw_convert(RULES["qwen2"], ckpt, back, "--set", "tie_word_embeddings=true", reverse=True)
        self.assert_records(read_any(back.rstrip("/")), self.source_records(folder, FAMILIES["qwen2"]))


class OneRankOfADistributedCheckpoint(FamilyTest):
    """A real rank file of a 2-way tensor-parallel MindSpore run (golden-stick, tests/data/
    external/mindspore-distributed): its embedding is whole, its head holds half the vocabulary.
    On its own it is not a model, and the shapes say so."""

    def test_each_rank_alone_is_refused_naming_the_half_head(self):
        base = os.path.join(EXTERNAL, "mindspore-distributed/golden-stick-llama2-2p")
        for rank in (0, 1):
            with self.subTest(rank=rank):
                ckpt = alone(self, os.path.join(base, f"rank_{rank}", "fp16.ckpt"))
                out = self.fresh("out/")
                p = self.assert_fails(["--model", "llama", "--reversed", "--input_path", ckpt,
                                       "--output_path", out], 1,
                                      '"lm_head.weight" is [16000, 40]',
                                      "declares [vocab, hidden_size] = [32000, 40]",
                                      "vocab = 32000 (solved from model.tok_embeddings."
                                      "embedding_weight dim 0)",
                                      "one rank of a distributed (tensor-parallel) checkpoint")
                self.assertFalse(os.path.exists(out), p.stderr)


class TiedHead(FamilyTest):
    def setUp(self):
        super().setUp()
        self.src = self.path("q05")
        self.named = build(self.src, FAMILIES["qwen2"])
        self.ckpt = self.forward("qwen2", self.src)
        self.config = os.path.join(self.src, "config.json")

    def test_forward_writes_the_absent_head_as_a_copy_of_the_embedding(self):
        got = read_ckpt(self.ckpt)
        self.assertNotIn("lm_head.weight", self.named)
        self.assert_record(got["lm_head.weight"], record(self.named["model.embed_tokens.weight"]),
                           "lm_head.weight")

    def test_reverse_checks_the_head_equal_and_leaves_it_out(self):
        back = self.reverse("qwen2", self.ckpt, "back/", self.config)
        got = read_hf_folder(back.rstrip("/"))
        self.assertNotIn("lm_head.weight", got)
        self.assert_records(got, read_hf_folder(self.src))

    def test_reverse_of_a_tied_model_whose_head_differs_fails_naming_it(self):
        named = {ms_name(k): v for k, v in self.named.items()}
        named["lm_head.weight"] = named["model.tok_embeddings.embedding_weight"].clone()
        named["lm_head.weight"][3, 5] += 1
        ckpt = self.path("bad.ckpt")
        # A safetensors file of the MindSpore names, rewritten as .ckpt.
        st = self.path("ms.safetensors")
        write_safetensors(st, named)
        run("rewrite", st, ckpt)
        out = self.path("out")
        os.mkdir(out)
        self.assert_fails(["convert", "--rules", RULES["qwen2"], "--input", ckpt, "--output",
                           os.path.join(out, "b.bin"), "--reverse", "--config", self.config],
                          1, "lm_head.weight")
        self.assertEqual(os.listdir(out), [])

    def test_reverse_without_the_tie_setting_keeps_the_head(self):
        back = self.path("back.bin")
        cw_convert(RULES["qwen2"], self.ckpt, back, reverse=True)
        got = read_bin(back)
        self.assert_record(got["lm_head.weight"], record(self.named["model.embed_tokens.weight"]),
                           "lm_head.weight")

    def test_untied_model_without_head_fails_naming_it(self):
        folder = self.path("untied")
        spec = dict(FAMILIES["llama"], shards=1)
        build(folder, spec, lm_head=False)
        self.assert_fails(["convert", "--rules", RULES["llama"], "--input", folder, "--output",
                           self.path("x.ckpt")], 1, "lm_head.weight")


class Fused(FamilyTest):
    """The w_qkv / w_gate_hidden variants (qkv_concat; docs/models.md, docs/rules.md)."""

    def fused_folder(self, config, qkv_bias, dtype=torch.bfloat16, **kw):
        folder = self.path("fused")
        named = llama_tensors(config, dtype, qkv_bias=qkv_bias, lm_head=True, **kw)
        write_hf_folder(folder, named, config, shards=2)
        return folder, named

    def test_grouped_row_order_of_the_spec_example(self):
        # n=4, g=2, d=2: q rows 0-7, k rows 8-11, v rows 12-15; gate rows 0-3, up rows 4-7.
        config = {"hidden_size": 3, "intermediate_size": 4, "num_attention_heads": 4,
                  "num_key_value_heads": 2, "head_dim": 2, "num_hidden_layers": 1,
                  "vocab_size": 5, "tie_word_embeddings": False}
        folder, named = self.fused_folder(config, False, torch.float32)

        def label(first, rows):
            return torch.arange(first, first + rows, dtype=torch.float32)[:, None].repeat(1, 3)
        named["model.layers.0.self_attn.q_proj.weight"] = label(0, 8)
        named["model.layers.0.self_attn.k_proj.weight"] = label(8, 4)
        named["model.layers.0.self_attn.v_proj.weight"] = label(12, 4)
        named["model.layers.0.mlp.gate_proj.weight"] = label(0, 4)
        named["model.layers.0.mlp.up_proj.weight"] = label(4, 4)
        shutil.rmtree(folder)
        write_hf_folder(folder, named, config, shards=2)
        got = read_ckpt(self.forward("llama", folder, "f.ckpt", "--set", "qkv_concat=true"))

        def rows(name):
            dtype, dims, data = got[name]
            return torch.frombuffer(bytearray(data), dtype=torch.float32).view(dims)[:, 0].tolist()
        self.assertEqual(rows("model.layers.0.attention.w_qkv.weight"),
                         [0, 1, 2, 3, 8, 9, 12, 13, 4, 5, 6, 7, 10, 11, 14, 15])
        self.assertEqual(rows("model.layers.0.feed_forward.w_gate_hidden.weight"),
                         [0, 4, 1, 5, 2, 6, 3, 7])

    def check_fused(self, family, folder, named, config, layout, expected_file):
        extra = ["--set", "qkv_concat=true", "--set", "concat_layout=" + layout]
        ckpt = self.forward(family, folder, "f.ckpt", *extra)
        got = read_ckpt(ckpt)
        self.assertEqual(sorted(got), sorted(expected_names(expected_file)))
        n, g = config["num_attention_heads"], config["num_key_value_heads"]
        d = config.get("head_dim", config["hidden_size"] // n)
        for layer in range(config["num_hidden_layers"]):
            p = f"model.layers.{layer}."
            for suffix in ("weight", "bias"):
                q, k, v = (named.get(f"{p}self_attn.{x}_proj.{suffix}") for x in "qkv")
                if q is None:
                    continue
                if layout == "grouped":
                    want = grouped_qkv(q, k, v, n, g, d)
                else:
                    want = torch.cat([q, k, v])
                name = f"{p}attention.w_qkv.{suffix}"
                self.assert_record(got[name], record(want), f"{layout} {name}")
            gate, up = named[p + "mlp.gate_proj.weight"], named[p + "mlp.up_proj.weight"]
            want = grouped_gate_up(gate, up) if layout == "grouped" else torch.cat([gate, up])
            self.assert_record(got[p + "feed_forward.w_gate_hidden.weight"], record(want),
                               f"{layout} {p}feed_forward.w_gate_hidden.weight")
            self.assert_record(got[p + "feed_forward.w2.weight"],
                               record(named[p + "mlp.down_proj.weight"]), p + "w2")
        back = self.reverse(family, ckpt, "back/", os.path.join(folder, "config.json"), *extra)
        self.assert_records(read_hf_folder(back.rstrip("/")), read_hf_folder(folder))

    def test_qwen2_gqa_14_2_with_explicit_head_dim_grouped_and_plain(self):
        # head_dim 6 while hidden / heads = 4: the sizes must come from head_dim.
        config = dict(FAMILIES["qwen2"]["config"], head_dim=6, tie_word_embeddings=False)
        folder, named = self.fused_folder(config, True)
        for layout in ("grouped", "plain"):
            with self.subTest(layout=layout):
                self.check_fused("qwen2", folder, named, config, layout, "qwen2_fused")

    def test_llama_family_gqa_grouped_and_plain_without_biases(self):
        # 8 heads / 2 KV heads, head_dim from hidden_size / heads (no head_dim key).
        config = dict(FAMILIES["llama"]["config"], num_hidden_layers=2)
        for family in ("llama", "knowlm", "deepseek", "deepseek1_5"):
            folder, named = self.fused_folder(config, False)
            for layout in ("grouped", "plain"):
                with self.subTest(family=family, layout=layout):
                    self.check_fused(family, folder, named, config, layout, "llama_fused")
            shutil.rmtree(folder)

    def test_seed_qkv_concat_flag_equals_set(self):
        config = dict(FAMILIES["qwen2"]["config"], tie_word_embeddings=False)
        folder, _ = self.fused_folder(config, True)
        a = self.forward("qwen2", folder, "a.ckpt", "--set", "qkv_concat=true")
        b = self.fresh("a.ckpt")
        seed_convert("qwen2", folder, b, "--qkv_concat", "true")
        self.assertEqual(file_bytes(a), file_bytes(b))

    def test_a_group_missing_its_v_fails_naming_it(self):
        config = dict(FAMILIES["qwen2"]["config"], tie_word_embeddings=False)
        folder = self.path("missing")
        named = llama_tensors(config, torch.bfloat16, qkv_bias=True)
        del named["model.layers.1.self_attn.v_proj.weight"]
        write_hf_folder(folder, named, config, shards=2)
        self.assert_fails(["convert", "--rules", RULES["qwen2"], "--input", folder, "--output",
                           self.path("x.ckpt"), "--set", "qkv_concat=true"],
                          1, "model.layers.1.self_attn.v_proj.weight")

    def test_a_head_dim_that_does_not_fit_the_tensors_fails(self):
        config = dict(FAMILIES["qwen2"]["config"], tie_word_embeddings=False)
        folder, _ = self.fused_folder(config, True)
        self.assert_fails(["convert", "--rules", RULES["qwen2"], "--input", folder, "--output",
                           self.path("x.ckpt"), "--set", "qkv_concat=true", "--set", "head_dim=8"],
                          1, "model.layers.0.self_attn.q_proj.weight")


class SeedCommandLine(FamilyTest):
    def test_every_key_gives_the_same_bytes_as_rules_both_ways(self):
        keys = [(f, f) for f in FAMILIES] + [("qwen", "qwen2")]
        for key, family in keys:
            with self.subTest(key=key):
                spec = FAMILIES[family]
                folder = self.path(family)
                if not os.path.exists(folder):
                    build(folder, spec)
                a = self.forward(family, folder, key + ".ckpt")
                b = self.fresh(key + ".ckpt")
                # Any file of the folder stands for the folder
                # (docs/formats/safetensors.md, 'HF folders').
                weight = max(n for n in os.listdir(folder) if n.endswith((".bin", ".safetensors")))
                seed_convert(key, os.path.join(folder, weight), b)
                self.assertEqual(file_bytes(a), file_bytes(b))
                config = os.path.join(folder, "config.json")
                ra = self.reverse(family, a, key + ".bin", config)
                rb = self.fresh(key + ".bin")
                seed_convert(key, b, rb, "--config", config, reverse=True)
                self.assertEqual(file_bytes(ra), file_bytes(rb))

    def test_each_key_plans_with_its_own_family_file(self):
        for key, family in (("llama", "llama"), ("knowlm", "knowlm"), ("deepseek", "deepseek"),
                            ("deepseek1_5", "deepseek1_5"), ("qwen", "qwen2")):
            folder = self.fresh(family)
            build(folder, FAMILIES[family])
            first = run("plan", "--model", key, "--input", folder).stdout.splitlines()[0]
            self.assertTrue(first.split(":")[0].endswith(f"/rules/{family}.yaml"), first)


class Buffers(FamilyTest):
    def test_inv_freq_buffers_are_dropped_and_listed(self):
        folder = self.path("k")
        build(folder, FAMILIES["knowlm"])
        ckpt = self.path("k.ckpt")
        p = run("convert", "--rules", RULES["knowlm"], "--input", folder, "--output", ckpt)
        for layer in range(2):
            self.assertIn(f"dropped model.layers.{layer}.self_attn.rotary_emb.inv_freq", p.stderr)
        self.assertFalse(any("inv_freq" in n for n in read_ckpt(ckpt)))


class Failures(FamilyTest):
    def failing_folder(self, family, drop=None, extra=None):
        spec = FAMILIES[family]
        folder = self.path("bad")
        named = llama_tensors(spec["config"], spec["dtype"], qkv_bias=spec.get("qkv_bias", False),
                              lm_head=spec.get("lm_head", True))
        if drop:
            del named[drop]
        if extra:
            named[extra] = torch.zeros(4, dtype=spec["dtype"])
        write_hf_folder(folder, named, spec["config"], fmt=spec["fmt"], shards=spec["shards"])
        return folder

    def check_fails(self, family, folder, needle):
        out = self.path("out")
        os.mkdir(out)
        self.assert_fails(["convert", "--rules", RULES[family], "--input", folder, "--output",
                           os.path.join(out, "m.ckpt")], 1, needle)
        self.assertEqual(os.listdir(out), [])

    def test_an_unknown_tensor_fails_naming_it(self):
        name = "model.layers.0.self_attn.q_norm.weight"
        self.check_fails("deepseek", self.failing_folder("deepseek", extra=name), name)

    def test_a_missing_tensor_fails_naming_it(self):
        name = "model.layers.1.mlp.up_proj.weight"
        self.check_fails("deepseek1_5", self.failing_folder("deepseek1_5", drop=name), name)

    def test_a_missing_qwen2_bias_fails_naming_it(self):
        name = "model.layers.1.self_attn.k_proj.bias"
        self.check_fails("qwen2", self.failing_folder("qwen2", drop=name), name)

    def test_a_layer_beyond_the_config_count_fails_naming_it(self):
        name = "model.layers.2.input_layernorm.weight"
        self.check_fails("knowlm", self.failing_folder("knowlm", extra=name), name)


class Lora(FamilyTest):
    def test_lora_adapters_map_both_ways_with_the_dot_before_lora_b(self):
        spec = FAMILIES["llama"]
        folder = self.path("lora")
        named = llama_tensors(spec["config"], spec["dtype"],
                              lora=("self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj"))
        write_hf_folder(folder, named, spec["config"], shards=2)
        ckpt = self.forward("llama", folder)
        got = read_ckpt(ckpt)
        self.assertEqual(sorted(got), sorted(expected_names("llama_lora")))
        for hf, t in named.items():
            self.assert_record(got[ms_name(hf)], record(t), hf)
        back = self.reverse("llama", ckpt, "back/", os.path.join(folder, "config.json"))
        self.assert_records(read_hf_folder(back.rstrip("/")), read_hf_folder(folder))
        self.assertIn("model.layers.0.feed_forward.w2.tk_delta_lora_b", got)

    def test_q_lora_has_no_fused_counterpart_and_fails_naming_it(self):
        spec = FAMILIES["llama"]
        folder = self.path("lora")
        named = llama_tensors(spec["config"], spec["dtype"], lora=("self_attn.q_proj",))
        write_hf_folder(folder, named, spec["config"], shards=2)
        self.assert_fails(["convert", "--rules", RULES["llama"], "--input", folder, "--output",
                           self.path("x.ckpt"), "--set", "qkv_concat=true"],
                          1, "model.layers.0.self_attn.q_proj.lora_A.weight")


if __name__ == "__main__":
    unittest.main(verbosity=2)
