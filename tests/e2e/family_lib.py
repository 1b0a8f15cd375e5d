"""Shared by the model-family tests (tests/e2e/test_family_*.py): building tiny checkpoints in the
layouts families really come in, reading every output format independently of ConvertWeight
(torch, Python protobuf, a plain safetensors parser), and the round-trip checks every family runs.

Tensors are torch tensors; "records" are (dtype code, shape list, raw bytes) triples.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
import cw_testlib  # noqa: E402
from cw_testlib import SOURCE, TORCH_TO_CODE, TempDirTest, read_safetensors, run, torch_bytes  # noqa: E402

EXPECTED_DIR = os.path.join(SOURCE, "tests/e2e/expected")
PROTOC = os.environ.get("CW_PROTOC", "protoc")


def checkpoint_pb2():
    """The .ckpt schema compiled for Python protobuf, once."""
    if not hasattr(checkpoint_pb2, "module"):
        out = tempfile.mkdtemp(prefix="cw-proto-")
        subprocess.run([PROTOC, f"--proto_path={SOURCE}/schemas", f"--python_out={out}",
                        "checkpoint.proto"], check=True)
        sys.path.insert(0, out)
        import checkpoint_pb2 as module  # noqa: E402
        checkpoint_pb2.module = module
    return checkpoint_pb2.module


MS_TO_CODE = {"Float32": "F32", "Float16": "F16", "BFloat16": "BF16", "Float64": "F64",
              "Int64": "I64", "Int32": "I32", "Int16": "I16", "Int8": "I8", "UInt8": "U8", "Bool": "BOOL"}


def read_ckpt(path):
    """{tag: (dtype code, dims, bytes)} parsed by Python protobuf (records joined by tag)."""
    msg = checkpoint_pb2().Checkpoint()
    with open(path, "rb") as f:
        msg.ParseFromString(f.read())
    out = {}
    for v in msg.value:
        t = v.tensor
        prev = out.get(v.tag)
        data = (prev[2] if prev else b"") + t.tensor_content
        out[v.tag] = (MS_TO_CODE[t.tensor_type], list(t.dims), data)
    return out


def read_hf_folder(path):
    if os.path.exists(os.path.join(path, "model.safetensors")):
        return read_safetensors(os.path.join(path, "model.safetensors"))[0]
    with open(os.path.join(path, "model.safetensors.index.json")) as f:
        shards = sorted(set(json.load(f)["weight_map"].values()))
    out = {}
    for s in shards:
        out.update(read_safetensors(os.path.join(path, s))[0])
    return out


def read_bin(path):
    return {k: (TORCH_TO_CODE[str(v.dtype)], list(v.shape), torch_bytes(v))
            for k, v in torch.load(path, weights_only=True).items()}


class FamilyTestCase(TempDirTest):
    """Base of the family tests: a temporary folder, and the failure check they all make."""

    def assert_fails(self, args, code, *needles):
        """The command exits with `code` and its message names every needle."""
        p = run(*args, check=False)
        self.assertEqual(p.returncode, code, p.stderr)
        for needle in needles:
            self.assertIn(needle, p.stderr)
        return p


def record(t):
    """A torch tensor as a (dtype code, shape, bytes) record."""
    return (TORCH_TO_CODE[str(t.dtype)], list(t.shape), torch_bytes(t))


CODE_TO_TORCH = {code: getattr(torch, name.split(".")[1]) for name, code in TORCH_TO_CODE.items()}


def from_record(rec):
    """The torch tensor of a (dtype code, shape, bytes) record (the inverse of record())."""
    code, shape, data = rec
    return torch.frombuffer(bytearray(data), dtype=CODE_TO_TORCH[code]).reshape(shape).clone() \
        if data else torch.empty(shape, dtype=CODE_TO_TORCH[code])


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def randn(g, *shape, dtype=torch.float32):
    return torch.randn(*shape, generator=g).to(dtype)


def record_of(t):
    """(dtype code, shape, bytes) of a torch tensor, or `t` itself when it is such a record (a
    dtype torch 1.13 lacks, such as F8_E4M3)."""
    return t if isinstance(t, tuple) else record(t)


# Top-level names of every MCore family (MindFormers 1.6+), written from its weight mappings.
MCORE_TOP_NAMES = {"model.embed_tokens.weight": "embedding.word_embeddings.weight",
                   "model.norm.weight": "decoder.final_layernorm.weight",
                   "lm_head.weight": "output_layer.weight"}


def deepseek_style_mlp_shapes(config, moe):
    """HF shapes of a DeepSeek-style MLP (DeepSeek-V3, GLM-4.5): dense gate/up/down, or a router,
    shared experts fused to moe_intermediate_size * n_shared_experts, and routed experts."""
    h = config["hidden_size"]
    if not moe:
        f = config["intermediate_size"]
        return {"mlp.gate_proj.weight": [f, h], "mlp.up_proj.weight": [f, h],
                "mlp.down_proj.weight": [h, f]}
    f = config["moe_intermediate_size"]
    s = f * config["n_shared_experts"]
    shapes = {"mlp.gate.weight": [config["n_routed_experts"], h],
              "mlp.shared_experts.gate_proj.weight": [s, h],
              "mlp.shared_experts.up_proj.weight": [s, h],
              "mlp.shared_experts.down_proj.weight": [h, s]}
    for e in range(config["n_routed_experts"]):
        shapes.update({f"mlp.experts.{e}.gate_proj.weight": [f, h],
                       f"mlp.experts.{e}.up_proj.weight": [f, h],
                       f"mlp.experts.{e}.down_proj.weight": [h, f]})
    return shapes


def write_safetensors(path, named):
    """A safetensors file written by hand: torch tensors, or records."""
    cw_testlib.write_safetensors(path, {name: record_of(t) for name, t in named.items()})


def write_hf_folder(folder, named, config, fmt="safetensors", shards=2, shard_name=None):
    """An HF checkpoint folder: config.json plus `shards` weight files and an index (or a single
    file without index when shards == 1). fmt: "safetensors" or "bin". shard_name(i, n) overrides
    the file names (TeleChat uses pytorch_model_00001-of-00032.bin)."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    names = list(named)
    ext = "safetensors" if fmt == "safetensors" else "bin"
    stem = "model" if fmt == "safetensors" else "pytorch_model"
    if shards == 1:
        files = [[f"{stem}.{ext}", names]]
    else:
        per = -(-len(names) // shards)
        files = []
        for i in range(shards):
            file = shard_name(i + 1, shards) if shard_name else f"{stem}-{i + 1:05d}-of-{shards:05d}.{ext}"
            files.append([file, names[i * per:(i + 1) * per]])
    weight_map = {}
    for file, part in files:
        sub = {n: named[n] for n in part}
        if fmt == "safetensors":
            write_safetensors(os.path.join(folder, file), sub)
        else:
            torch.save(sub, os.path.join(folder, file))
        weight_map.update({n: file for n in part})
    if shards > 1:
        total = sum(len(record_of(t)[2]) for t in named.values())
        with open(os.path.join(folder, f"{stem}.{ext}.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))},
                      f, indent=2)


def read_any(path):
    """Records of a converted output: .ckpt, .safetensors, .bin/.pth (flattened), or HF folder."""
    if os.path.isdir(path):
        return read_hf_folder(path)
    if path.endswith(".ckpt"):
        return read_ckpt(path)
    if path.endswith(".safetensors"):
        return read_safetensors(path)[0]
    obj = torch.load(path, weights_only=True)
    flat = {}

    def walk(d, prefix):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            else:
                flat[prefix + k] = record(v)
    walk(obj, "")
    return flat


def alone(test, path):
    """`path` copied into an empty folder of its own: a MindSpore file with no config.json beside
    it, as a user who only has the checkpoint would convert it."""
    folder = tempfile.mkdtemp(dir=test.tmp)
    copy = os.path.join(folder, os.path.basename(path))
    shutil.copyfile(path, copy)
    return copy


def assert_seed_form_writes_what_rules_write(test, rules, keys, folder, expected_back,
                                             rules_args=(), seed_args=()):
    """`--model KEY --input_path ... --output_path ...` writes the bytes `convert --rules` writes,
    under every key, and its `--reversed` (with the folder's config.json) gives `expected_back`,
    the records of an HF folder."""
    first = os.path.join(tempfile.mkdtemp(dir=test.tmp), "m.ckpt")
    convert(rules, folder, first, *rules_args)
    with open(first, "rb") as f:
        want = f.read()
    for key in keys:
        out = tempfile.mkdtemp(dir=test.tmp)
        ckpt = os.path.join(out, "m.ckpt")
        seed_convert(key, folder, ckpt, *seed_args)
        with open(ckpt, "rb") as f:
            test.assertEqual(f.read(), want, (key, seed_args))
        back = os.path.join(out, "back")
        seed_convert(key, ckpt, back + "/", "--config", os.path.join(folder, "config.json"),
                     *seed_args, reverse=True)
        test.assertEqual(read_hf_folder(back), expected_back, (key, seed_args))


def expected_names(family):
    """The checked-in list of MindSpore names a family's tiny checkpoint must produce."""
    with open(os.path.join(EXPECTED_DIR, family + ".txt")) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def convert(rules, src, out, *extra, reverse=False):
    args = ["convert", "--rules", rules, "--input", src, "--output", out, "--quiet", *extra]
    if reverse:
        args.append("--reverse")
    return run(*args)


def seed_convert(model, src, out, *extra, reverse=False):
    args = ["--model", model, "--input_path", src, "--output_path", out, "--quiet", *extra]
    if reverse:
        args.append("--reversed")
    return run(*args)
