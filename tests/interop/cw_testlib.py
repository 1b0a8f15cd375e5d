"""Helpers shared by the interop and CLI test scripts (run by ctest with Debian's /usr/bin/python3).

Environment (set by tests/CMakeLists.txt): CW_BIN (the convert_weight binary), CW_SOURCE_DIR,
CW_PROTOC. EXTERNAL is the real files written by other programs (tests/data/external).
"""
import json
import os
import struct
import subprocess
import tempfile
import unittest

BIN = os.environ.get("CW_BIN", "")
SOURCE = os.environ.get("CW_SOURCE_DIR", "")
EXTERNAL = os.path.join(SOURCE, "tests", "data", "external")


def run(*args, check=True):
    """Runs convert_weight; returns the CompletedProcess (text mode)."""
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"convert_weight {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}")
    return p


def inspect(path):
    return json.loads(run("inspect", "--json", path).stdout)


def read_safetensors(path):
    """Independent safetensors parser: {name: (dtype, shape, bytes)} plus metadata."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", None)
    base = 8 + n
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        out[name] = (e["dtype"], list(e["shape"]), data[base + b:base + end])
    return out, meta


def write_safetensors(path, records, metadata=None):
    """A safetensors file written by hand (official layout) of {name: (dtype, shape, bytes)}."""
    header, blobs, offset = {"__metadata__": metadata or {"format": "pt"}}, [], 0
    for name, (code, shape, data) in records.items():
        header[name] = {"dtype": code, "shape": list(shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + b"".join(blobs))


TORCH_TO_CODE = {
    "torch.float64": "F64", "torch.float32": "F32", "torch.float16": "F16", "torch.bfloat16": "BF16",
    "torch.int64": "I64", "torch.int32": "I32", "torch.int16": "I16", "torch.int8": "I8",
    "torch.uint8": "U8", "torch.bool": "BOOL",
}


def torch_bytes(t):
    """Raw little-endian C-order bytes of a torch tensor (bf16 through an int16 view)."""
    import torch
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def flatten(obj, prefix=""):
    """Nested dicts of tensors flattened with '.', as ConvertWeight's torch reader names them."""
    import torch
    out = {}
    for k, v in obj.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, name + "."))
        elif isinstance(v, torch.Tensor):
            out[name] = v
    return out


class TempDirTest(unittest.TestCase):
    def setUp(self):
        # A cleanup, not tearDown: cleanups a test adds later (an unmount) run before it.
        self._tmp = tempfile.TemporaryDirectory(prefix="cw-interop-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name

    def path(self, name):
        return os.path.join(self.tmp, name)
