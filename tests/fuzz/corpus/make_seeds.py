#!/usr/bin/env python3
"""Writes the hand-made seeds of the fuzz corpora (tests/fuzz/corpus/<parser>/).

The other seeds are copies of the real files in tests/data/external (their names keep the
sample's origin: burn_*, hf_sample_*, mindscience_*, ...) and outputs of our own writers:

  convert_weight rewrite safetensors/hf_sample_overall.safetensors ckpt/writer_overall_crc.ckpt --crc
  convert_weight rewrite safetensors/hf_sample_overall.safetensors ckpt/writer_overall_chunked.ckpt \
      --chunk-bytes 8
  convert_weight rewrite safetensors/hf_sample_overall.safetensors safetensors/writer_overall.safetensors
  convert_weight rewrite ckpt/mindscience_spectralconv1d.ckpt safetensors/writer_from_ckpt.safetensors
  convert_weight rewrite safetensors/hf_sample_overall.safetensors out/ --max-shard-size 64
      (out/model.safetensors.index.json -> hf_index/writer_index_three_shards.json)
  convert_weight rewrite safetensors/burn_conv2d.safetensors torch/writer_conv2d.bin
  convert_weight rewrite safetensors/burn_embedding.safetensors \
      torch/writer_embedding_root_key.pth --root-key model

The rule-file seeds (rules/) are the bundled rule files and the broken files of
tests/data/bad_rules as they are (the fuzz target then makes an inventory from the patterns), and
rule files followed by an inventory written here (rules_fuzzer.cc describes the format).

Run from tests/fuzz/corpus after those; needs only the Python standard library.
"""
import collections
import glob
import io
import json
import os
import pickle
import shutil
import struct
import zipfile


def varint(n):
    out = b""
    while n >= 0x80:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n])


def len_field(field, payload):
    return bytes([field << 3 | 2]) + varint(len(payload)) + payload


def ckpt_record(tag, dims, tensor_type, content, packed=False):
    if packed:
        tensor = len_field(1, b"".join(varint(d) for d in dims))
    else:
        tensor = b"".join(b"\x08" + varint(d) for d in dims)
    tensor += len_field(2, tensor_type) + len_field(3, content)
    return len_field(1, len_field(1, tag) + len_field(2, tensor))


def strategy_dims(values):
    """A DevMatrix or TensorMap payload: unpacked varints, int32 -1 sign-extended to 10 bytes."""
    return b"".join(b"\x08" + varint(v & 0xFFFFFFFFFFFFFFFF) for v in values)


def strategy_layout(name, dev, maps, step=0, size=0):
    """A ParallelLayoutItem (schemas/parallel_strategy.proto) with field 0."""
    layouts = (len_field(1, strategy_dims(dev)) +
               b"".join(len_field(2, strategy_dims(m)) for m in maps) +
               len_field(3, b"") + len_field(4, b"") + b"\x28\x00" +
               b"\x30" + varint(step) + b"\x38" + varint(size & 0xFFFFFFFFFFFFFFFF))
    return len_field(3, len_field(1, name) + len_field(2, layouts))


def strategy_operator(name, stage):
    return len_field(2, len_field(1, name) +
                     len_field(2, b"\x08" + varint(stage) + len_field(2, strategy_dims([1, 2]))))


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


# .ckpt: packed dims, a str value, a random_op state, an old-style scalar (dims [0]).
write("ckpt/handmade_str_random_op_scalar.ckpt",
      ckpt_record(b"w", [2], b"Float32", struct.pack("<2f", 1, 2), packed=True) +
      ckpt_record(b"name", [], b"str", "ab".encode("utf-32-le")) +
      ckpt_record(b"rng", [4], b"random_op", b"\1\2\3\4") +
      ckpt_record(b"s", [0], b"Int64", struct.pack("<q", 7)))

# A merged two-stage strategy: a tied embedding, a Layout API tensor map (one entry per axis), an
# optimizer shard. The real strategy files are copied beside it as they are.
write("strategy/handmade_merged_layouts.ckpt",
      b"\x08\x01" + strategy_operator(b"Gather_emb", 0) + strategy_operator(b"MatMul_v", 1) +
      strategy_layout(b"0-emb", [2, 2], [[-1, -1]]) +
      strategy_layout(b"0-w", [2, 2], [[1, 0], [-1]]) +
      strategy_layout(b"1-v", [2, 2], [[0, -1]], step=2, size=2) +
      strategy_layout(b"1-emb", [2, 2], [[-1, -1]]))

# Pickles: data.pkl of real torch files, and allow-listed values in every protocol.
for name in ["burn_checkpoint.pt", "burn_parameter.pt", "burn_scalar.pt", "dtypes_views.pt",
             "burn_buffers.pt", "writer_embedding_root_key.pth"]:
    archive = zipfile.ZipFile("torch/" + name)
    pkl = next(n for n in archive.namelist() if n.endswith("data.pkl"))
    write("pickle/" + name.rsplit(".", 1)[0] + ".data.pkl", archive.read(pkl))
values = collections.OrderedDict([
    ("a", [1, 2.5, None, True, "x", b"\x00\x01"]), ("b", (1, (2, 3))),
    ("c", {"k": frozenset([1])}), ("d", {2}), ("e", bytearray(b"ab")), ("big", 2**70),
    ("neg", -5)])
for protocol in range(6):
    write(f"pickle/python_values_protocol{protocol}.pkl", pickle.dumps(values, protocol=protocol))

# Zips: real torch archives, then burn_scalar.pt rewritten deflated and as ZIP64.
for name in ["burn_checkpoint.pt", "dtypes_views.pt", "writer_conv2d.bin"]:
    shutil.copy("torch/" + name, "zip/" + name)
source = zipfile.ZipFile("torch/burn_scalar.pt")
for label, method, zip64 in [("deflated", zipfile.ZIP_DEFLATED, False),
                             ("stored_zip64", zipfile.ZIP_STORED, True)]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as out:
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=info.date_time)  # reproducible
            entry.compress_type = method
            with out.open(entry, "w", force_zip64=zip64) as f:
                f.write(source.read(info.filename))
    write(f"zip/python_{label}.zip", buffer.getvalue())
    if label == "deflated":
        write("torch/python_deflated_scalar.pt", buffer.getvalue())

# Rule files: the bundled ones and the broken ones as they are, then with inventories.
REPO = os.path.join("..", "..", "..")
for path in glob.glob(os.path.join(REPO, "rules", "*.yaml")):
    shutil.copy(path, "rules/" + os.path.basename(path))
for path in glob.glob(os.path.join(REPO, "tests", "data", "bad_rules", "*.yaml")):
    shutil.copy(path, "rules/bad_" + os.path.basename(path))


def rules_seed(name, rule_text, tensors, config=None, sets=(), cast=None):
    lines = [rule_text.rstrip("\n"), "#@ inventory"]
    lines += [f"{n} {dtype} {','.join(map(str, shape))}".rstrip() for n, dtype, shape in tensors]
    lines += [f"set {kv}" for kv in sets]
    if config is not None:
        lines.append("config " + json.dumps(config, separators=(",", ":")))
    if cast:
        lines.append("cast " + cast)
    write("rules/" + name, ("\n".join(lines) + "\n").encode())


def bundled(family):
    with open(os.path.join(REPO, "rules", family + ".yaml")) as f:
        return f.read()


def llama_tensors(layers=2, hidden=16, heads=4, kv_heads=2, inter=24, vocab=32, dtype="BF16",
                  qkv_bias=False, lm_head=True, inv_freq=False, lora=False):
    d = hidden // heads
    out = [("model.embed_tokens.weight", dtype, [vocab, hidden])]
    for i in range(layers):
        p = f"model.layers.{i}."
        out.append((p + "input_layernorm.weight", dtype, [hidden]))
        for proj, rows in [("q", heads * d), ("k", kv_heads * d), ("v", kv_heads * d)]:
            out.append((p + f"self_attn.{proj}_proj.weight", dtype, [rows, hidden]))
            if qkv_bias:
                out.append((p + f"self_attn.{proj}_proj.bias", dtype, [rows]))
        out.append((p + "self_attn.o_proj.weight", dtype, [hidden, heads * d]))
        if inv_freq:
            out.append((p + "self_attn.rotary_emb.inv_freq", "F32", [d // 2]))
        if lora:
            out.append((p + "self_attn.o_proj.lora_A.weight", dtype, [2, heads * d]))
            out.append((p + "self_attn.o_proj.lora_B.weight", dtype, [hidden, 2]))
        out.append((p + "mlp.gate_proj.weight", dtype, [inter, hidden]))
        out.append((p + "mlp.up_proj.weight", dtype, [inter, hidden]))
        out.append((p + "mlp.down_proj.weight", dtype, [hidden, inter]))
        out.append((p + "post_attention_layernorm.weight", dtype, [hidden]))
    out.append(("model.norm.weight", dtype, [hidden]))
    if lm_head:
        out.append(("lm_head.weight", dtype, [vocab, hidden]))
    return out


LLAMA_CONFIG = {"num_hidden_layers": 2, "hidden_size": 16, "num_attention_heads": 4,
                "num_key_value_heads": 2, "intermediate_size": 24}
rules_seed("llama_inventory.yaml", bundled("llama"), llama_tensors(), LLAMA_CONFIG)
rules_seed("llama_fused_grouped_inventory.yaml", bundled("llama"), llama_tensors(), LLAMA_CONFIG,
           sets=["qkv_concat=true"])
rules_seed("llama_fused_plain_bias_inventory.yaml", bundled("llama"),
           llama_tensors(qkv_bias=True, dtype="F32"), dict(LLAMA_CONFIG, attention_bias=True),
           sets=["qkv_concat=yes", "concat_layout=plain"], cast="bf16")
rules_seed("llama_tied_lora_inventory.yaml", bundled("llama"),
           llama_tensors(lm_head=False, inv_freq=True, lora=True),
           dict(LLAMA_CONFIG, tie_word_embeddings=True))
rules_seed("qwen2_inventory.yaml", bundled("qwen2"), llama_tensors(qkv_bias=True),
           dict(LLAMA_CONFIG, text_config={"num_hidden_layers": 2}, num_hidden_layers=None))

MIXTRAL_CONFIG = {"num_hidden_layers": 2, "num_local_experts": 2, "hidden_size": 8,
                  "intermediate_size": 12}
mixtral = []
for name, dtype, shape in llama_tensors(hidden=8, heads=2, kv_heads=1, inter=12, vocab=16):
    if ".mlp." not in name:
        mixtral.append((name, dtype, shape))
for i in range(2):
    mixtral.append((f"model.layers.{i}.block_sparse_moe.gate.weight", "BF16", [2, 8]))
    for e in range(2):
        p = f"model.layers.{i}.block_sparse_moe.experts.{e}."
        mixtral += [(p + "w1.weight", "BF16", [12, 8]), (p + "w2.weight", "BF16", [8, 12]),
                    (p + "w3.weight", "BF16", [12, 8])]
rules_seed("mixtral_inventory.yaml", bundled("mixtral"), mixtral, MIXTRAL_CONFIG)
rules_seed("mixtral_gmm_inventory.yaml", bundled("mixtral"), mixtral, MIXTRAL_CONFIG,
           sets=["use_gmm=true"])

GLM3_CONFIG = {"num_layers": 1, "num_attention_heads": 2, "kv_channels": 4,
               "multi_query_attention": True, "multi_query_group_num": 1, "ffn_hidden_size": 6,
               "add_qkv_bias": True}
glm3 = [("transformer.embedding.word_embeddings.weight", "F16", [10, 8]),
        ("transformer.rotary_pos_emb.inv_freq", "F32", [2])]
p = "transformer.encoder.layers.0."
glm3 += [(p + "input_layernorm.weight", "F16", [8]),
         (p + "self_attention.query_key_value.weight", "F16", [16, 8]),
         (p + "self_attention.query_key_value.bias", "F16", [16]),
         (p + "self_attention.dense.weight", "F16", [8, 8]),
         (p + "post_attention_layernorm.weight", "F16", [8]),
         (p + "mlp.dense_h_to_4h.weight", "F16", [12, 8]),
         (p + "mlp.dense_4h_to_h.weight", "F16", [8, 6])]
glm3 += [("transformer.encoder.final_layernorm.weight", "F16", [8]),
         ("transformer.output_layer.weight", "F16", [10, 8])]
rules_seed("glm3_rope_inventory.yaml", bundled("glm3"), glm3, GLM3_CONFIG,
           sets=["use_rearrange_rope=true"])
rules_seed("glm3_split_inventory.yaml", bundled("glm3"), glm3, GLM3_CONFIG,
           sets=["qkv_concat=false", "mlp_concat=false", "use_rearrange_rope=1"])

gpt2 = [("transformer.wte.weight", "F32", [10, 6]), ("transformer.wpe.weight", "F32", [4, 6]),
        ("lm_head.weight", "F32", [10, 6])]
for i in range(3):
    p = f"transformer.h.{i}."
    gpt2 += [(p + "ln_1.weight", "F32", [6]), (p + "ln_1.bias", "F32", [6]),
             (p + "attn.c_attn.weight", "F32", [6, 18]), (p + "attn.c_attn.bias", "F32", [18]),
             (p + "attn.c_proj.weight", "F32", [6, 6]), (p + "attn.c_proj.bias", "F32", [6]),
             (p + "attn.bias", "BOOL", [1, 1, 4, 4]), (p + "attn.masked_bias", "F32", []),
             (p + "ln_2.weight", "F32", [6]), (p + "ln_2.bias", "F32", [6]),
             (p + "mlp.c_fc.weight", "F32", [6, 24]), (p + "mlp.c_fc.bias", "F32", [24]),
             (p + "mlp.c_proj.weight", "F32", [24, 6]), (p + "mlp.c_proj.bias", "F32", [6])]
gpt2 += [("transformer.ln_f.weight", "F32", [6]), ("transformer.ln_f.bias", "F32", [6])]
rules_seed("gpt2_prefixed_inventory.yaml", bundled("gpt2"), gpt2, {"n_layer": 3})
rules_seed("gpt2_fewer_layers_inventory.yaml", bundled("gpt2"), gpt2, {}, sets=["layers=2"],
           cast="f16")

# The rule language's lists, named conditions, value maps and shapes (the Qwen3-MoE-shaped test
# file), with a config and without one (shapes solved, layout read off the names).
with open(os.path.join(REPO, "tests", "data", "rules", "qwen3_moe_like.yaml")) as f:
    qwen3_moe_like = f.read()
moe = [("model.embed_tokens.weight", "BF16", [12, 8]), ("model.norm.weight", "BF16", [8]),
       ("lm_head.weight", "BF16", [12, 8])]
for i in range(2):
    p = f"model.layers.{i}."
    moe += [(p + "input_layernorm.weight", "BF16", [8]),
            (p + "post_attention_layernorm.weight", "BF16", [8]),
            (p + "self_attn.q_proj.weight", "BF16", [8, 8]),
            (p + "self_attn.k_proj.weight", "BF16", [4, 8]),
            (p + "self_attn.v_proj.weight", "BF16", [4, 8]),
            (p + "self_attn.o_proj.weight", "BF16", [8, 8]),
            (p + "self_attn.q_norm.weight", "BF16", [4]), (p + "self_attn.k_norm.weight", "BF16", [4])]
moe += [(f"model.layers.0.mlp.{proj}.weight", "BF16", shape)
        for proj, shape in (("gate_proj", [10, 8]), ("up_proj", [10, 8]), ("down_proj", [8, 10]))]
moe.append(("model.layers.1.mlp.gate.weight", "BF16", [2, 8]))
for e in range(2):
    moe += [(f"model.layers.1.mlp.experts.{e}.{proj}.weight", "BF16", shape)
            for proj, shape in (("gate_proj", [6, 8]), ("up_proj", [6, 8]), ("down_proj", [8, 6]))]
MOE_CONFIG = {"num_hidden_layers": 2, "vocab_size": 12, "hidden_size": 8, "num_attention_heads": 2,
              "num_key_value_heads": 1, "head_dim": 4, "intermediate_size": 10,
              "moe_intermediate_size": 6, "num_experts": 2, "mlp_only_layers": [0],
              "decoder_sparse_step": 1}
rules_seed("qwen3_moe_like_inventory.yaml", qwen3_moe_like, moe, MOE_CONFIG)
rules_seed("qwen3_moe_like_solved_inventory.yaml", qwen3_moe_like, moe)

# The ops no bundled file uses, each written forward and planned both ways.
OPS_RULES = """name: ops
params:
  n: {type: int, default: 2}
  wide: {type: int, config: wide, default: 8}
  pick: {type: string, values: [a, b], detect: true}
placeholders:
  i: {type: int, count: n}
  e: int
rules:
  - hf: "p.${pick}.{i}.w"
    ms: "q.{i}.w"
    dtype: {ms: F16, hf: keep}
    ops:
      - pad: {axis: -1, from: 4, to: wide}
      - truncate: {axis: 0, from: 4, to: 3}
      - transpose: [-1, 0]
  - hf: ["u.{i}.a", "u.{i}.b"]
    ms: "v.{i}"
    ops:
      - rope_interleave: {heads: [2, 1], axis: 0}
      - interleave: {axis: 0, groups: 2, equal: true}
      - reshape: {from: [8, 3], to: [2, -1]}
  - hf: "s.{i}"
    ms: ["t.{i}.x", "t.{i}.y"]
    ops:
      - deinterleave: {axis: 1, groups: 2, parts: 2}
      - concat: {axis: 0, equal: true}
      - split: {axis: 0, sizes: [1, 3]}
      - permute: [1, 0]
        tensors: [1]
  - hf: "stacked"
    ms: "one.{e}"
    ops:
      - unstack: {over: e, axis: 0}
  - hf: "plain.${pick}"
    ms: "plain"
  - hf: "tie.me"
    ms: "tied.out"
    tied: {to: "plain.${pick}", when: "n > 1"}
  - hf: "gone.{e}"
    drop: true
    optional: "n == 2"
    when: "e % 2 == 0 and min(e, n) >= 0"
"""
rules_seed("ops_inventory.yaml", OPS_RULES,
           [("p.b.0.w", "F32", [4, 4]), ("p.b.1.w", "F32", [4, 4]),
            ("u.0.a", "I32", [4, 3]), ("u.0.b", "I32", [4, 3]),
            ("u.1.a", "I32", [4, 3]), ("u.1.b", "I32", [4, 3]),
            ("s.0", "U8", [2, 4]), ("s.1", "U8", [2, 4]), ("stacked", "BF16", [3, 2, 2]),
            ("plain.b", "F64", [2]), ("gone.0", "BOOL", []), ("gone.2", "BOOL", [0])], {"wide": 6})
