#!/usr/bin/python3
"""Checks .ckpt files written by `convert_weight rewrite` with independent readers.

Every output is parsed with Python protobuf (Debian python3-protobuf, the schema compiled here
with CW_PROTOC) and compared, value by value, with its input read just as independently: .ckpt
inputs with protobuf, torch inputs with torch.load. Written bytes must also equal what
MindSpore's own writer (Python protobuf, one serialised Checkpoint per record) produces.

Run by ctest with /usr/bin/python3 and CW_BIN, CW_SOURCE_DIR, CW_PROTOC set.
"""

import importlib
import json
import math
import os
import pathlib
import subprocess
import sys
import tempfile
import unittest
import zlib

BIN = os.environ["CW_BIN"]
EXTERNAL = pathlib.Path(os.environ["CW_SOURCE_DIR"]) / "tests/data/external"
SOURCE = pathlib.Path(os.environ["CW_SOURCE_DIR"])
PROTOC = os.environ.get("CW_PROTOC") or "protoc"

MS_SAMPLES = sorted((EXTERNAL / "mindspore").glob("*.ckpt"))
TORCH_SAMPLE = EXTERNAL / "torch/dtypes_views.pt"
CRC_TRAILER_BYTES = 17

# MindSpore tensor_type -> (safetensors code, element size): the dtype table of
# docs/formats/mindspore.md ('Layout').
MS_TYPES = {
    "Bool": ("BOOL", 1), "Int8": ("I8", 1), "Int16": ("I16", 2), "Int32": ("I32", 4),
    "Int64": ("I64", 8), "UInt8": ("U8", 1), "UInt16": ("U16", 2), "UInt32": ("U32", 4),
    "UInt64": ("U64", 8), "Float16": ("F16", 2), "Float32": ("F32", 4), "Float64": ("F64", 8),
    "BFloat16": ("BF16", 2),
}

pb = None  # checkpoint_pb2, compiled in setUpModule
_proto_dir = tempfile.TemporaryDirectory()


def setUpModule():
    global pb
    subprocess.run([PROTOC, f"--proto_path={SOURCE / 'schemas'}",
                    f"--python_out={_proto_dir.name}", str(SOURCE / "schemas/checkpoint.proto")],
                   check=True)
    sys.path.insert(0, _proto_dir.name)
    pb = importlib.import_module("checkpoint_pb2")


def tearDownModule():
    _proto_dir.cleanup()


def run_cli(*args):
    return subprocess.run([BIN, *map(str, args)], capture_output=True, text=True)


def split_crc(data):
    """Payload and CRC of a file with MindSpore's trailer; (data, None) without one."""
    if len(data) >= CRC_TRAILER_BYTES and data[-17:-10] == b"crc_num":
        return data[:-CRC_TRAILER_BYTES], int.from_bytes(data[-10:], "big")
    return data, None


def parse_records(data):
    """Every record of a .ckpt payload, in file order, as (tag, dims, type, content)."""
    checkpoint = pb.Checkpoint()
    checkpoint.ParseFromString(data)
    assert checkpoint.IsInitialized()
    return [(v.tag, list(v.tensor.dims), v.tensor.tensor_type, v.tensor.tensor_content)
            for v in checkpoint.value]


def join_records(records):
    """Values as MindSpore's loader builds them: adjacent records of one tag are joined."""
    values = []
    for tag, dims, ttype, content in records:
        if values and values[-1][0] == tag:
            assert values[-1][1:3] == [dims, ttype], f"piece of {tag} differs"
            values[-1][3] += content
        else:
            values.append([tag, dims, ttype, content])
    return [tuple(v) for v in values]


def as_scalar_0d(values):
    """dims [0] is MindSpore's old scalar encoding; ConvertWeight writes scalars with no dims."""
    return [(tag, [] if dims == [0] else dims, ttype, content)
            for tag, dims, ttype, content in values]


def serialise_like_mindspore(records):
    """The bytes MindSpore writes: one serialised single-Value Checkpoint per record."""
    out = b""
    for tag, dims, ttype, content in records:
        checkpoint = pb.Checkpoint()
        value = checkpoint.value.add()
        value.tag = tag
        value.tensor.dims.extend(dims)
        value.tensor.tensor_type = ttype
        value.tensor.tensor_content = content
        out += checkpoint.SerializeToString()
    return out


class CkptInterop(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = pathlib.Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def rewrite(self, source, name="out.ckpt", *flags):
        out = self.dir / name
        result = run_cli("rewrite", source, out, *flags)
        self.assertEqual(result.returncode, 0, f"rewrite {source} failed:\n{result.stderr}")
        return out.read_bytes()

    def test_real_mindspore_files_rewrite_to_the_same_values_and_mindspore_bytes(self):
        self.assertTrue(MS_SAMPLES)
        for sample in MS_SAMPLES:
            with self.subTest(sample=sample.name):
                expected = as_scalar_0d(join_records(parse_records(sample.read_bytes())))
                written = self.rewrite(sample, f"{sample.stem}.ckpt")
                self.assertEqual(join_records(parse_records(written)), expected)
                self.assertEqual(written, serialise_like_mindspore(expected))

    def test_a_crc_trailer_holds_the_crc32_of_all_records(self):
        sample = EXTERNAL / "mindspore/mindscience_example_net_10000.ckpt"
        written = self.rewrite(sample, "crc.ckpt", "--crc")
        payload, crc = split_crc(written)
        self.assertIsNotNone(crc)
        self.assertEqual(written[-10:-4], bytes(6))
        self.assertEqual(crc, zlib.crc32(payload))
        self.assertEqual(payload, self.rewrite(sample, "plain.ckpt"))

    def test_a_tensor_over_the_chunk_size_becomes_adjacent_full_dims_records(self):
        sample = EXTERNAL / "mindspore/mindscience_multihead.ckpt"
        chunk = 1000
        expected = join_records(parse_records(sample.read_bytes()))
        records = parse_records(self.rewrite(sample, "chunked.ckpt", "--chunk-bytes", chunk))
        for tag, dims, ttype, content in expected:
            pieces = [r for r in records if r[0] == tag]
            self.assertEqual(len(pieces), math.ceil(len(content) / chunk), tag)
            self.assertTrue(all(p[1:3] == (dims, ttype) for p in pieces), tag)
            self.assertTrue(all(len(p[3]) == chunk for p in pieces[:-1]), tag)
            self.assertEqual(b"".join(p[3] for p in pieces), content, tag)
        self.assertEqual(join_records(records), expected)  # adjacency: no tag is split apart

    def test_files_written_by_protobuf_read_back_through_the_cli(self):
        records = []
        for i, (ttype, (_, size)) in enumerate(MS_TYPES.items()):
            content = bytes((i * 13 + k * 7 + 1) % 256 for k in range(6 * size))
            if ttype == "Bool":
                content = bytes(b % 2 for b in content)
            records.append((f"t.{ttype}", [2, 3], ttype, content))
        records.append(("old_scalar", [0], "Float32", bytes(4)))
        records += [("split", [4], "Int32", bytes(range(10))), ("split", [4], "Int32", bytes(6))]
        data = serialise_like_mindspore(records)
        source = self.dir / "in.ckpt"
        source.write_bytes(data + b"crc_num" + zlib.crc32(data).to_bytes(10, "big"))
        written = self.rewrite(source)
        expected = as_scalar_0d(join_records(records))
        self.assertEqual(join_records(parse_records(written)), expected)
        self.assertEqual(written, serialise_like_mindspore(expected))

    def test_inspect_lists_mindspore_scalars_as_0d_and_counters_as_1d(self):
        sample = EXTERNAL / "mindspore/mindscience_example_net_10000.ckpt"
        result = run_cli("inspect", sample, "--json")
        self.assertEqual(result.returncode, 0, result.stderr)
        listing = json.loads(result.stdout)
        self.assertEqual(listing["format"], "mindspore")
        tensors = {t["name"]: t for t in listing["tensors"]}
        self.assertEqual(len(tensors), 22)
        self.assertEqual((tensors["optimizer.learning_rate"]["dtype"],
                          tensors["optimizer.learning_rate"]["shape"]), ("F32", []))
        self.assertEqual((tensors["optimizer.global_step"]["dtype"],
                          tensors["optimizer.global_step"]["shape"]), ("I32", [1]))
        self.assertEqual(listing["skipped"], [])
        self.assertEqual(listing["total_bytes"], sum(t["bytes"] for t in listing["tensors"]))

    def test_another_protobuf_message_saved_as_ckpt_is_refused(self):
        fake = pb.MapTensorProto()
        tensor = fake.tensor.add()
        tensor.dims.append(1)
        tensor.tensor_type = "int32"
        tensor.tensor_content = bytes(4)
        source = self.dir / "strategy.ckpt"
        source.write_bytes(fake.SerializeToString())
        result = run_cli("rewrite", source, self.dir / "out.ckpt")
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("not a MindSpore checkpoint", result.stderr)
        self.assertFalse((self.dir / "out.ckpt").exists())


class TorchToCkpt(unittest.TestCase):
    """A torch-written file rewritten to .ckpt, compared with what torch.load sees."""

    TORCH_TO_MS = {"float32": "Float32", "float64": "Float64", "float16": "Float16",
                   "bfloat16": "BFloat16", "int64": "Int64", "int32": "Int32", "int16": "Int16",
                   "int8": "Int8", "uint8": "UInt8", "bool": "Bool"}

    @classmethod
    def setUpClass(cls):
        global torch
        import torch  # slow: imported only for these tests

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = pathlib.Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    @staticmethod
    def raw_bytes(t):
        t = t.contiguous()
        if t.dtype == torch.bfloat16:  # numpy has no bfloat16: same bits as int16
            t = t.view(torch.int16)
        return t.numpy().tobytes()

    def test_a_zero_element_tensor_is_refused_and_nothing_is_written(self):
        out = self.dir / "out.ckpt"
        result = run_cli("rewrite", TORCH_SAMPLE, out)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("empty", result.stderr)  # the tensor's name
        self.assertFalse(out.exists())

    def test_every_dtype_view_and_scalar_matches_torch_byte_for_byte(self):
        state = torch.load(TORCH_SAMPLE)
        del state["empty"]  # zero elements: MindSpore cannot store it (see the test above)
        source = self.dir / "no_empty.pt"
        torch.save(state, source)
        out = self.dir / "out.ckpt"
        result = run_cli("rewrite", source, out)
        self.assertEqual(result.returncode, 0, result.stderr)
        values = join_records(parse_records(out.read_bytes()))
        self.assertEqual([v[0] for v in values], list(state.keys()))
        for tag, dims, ttype, content in values:
            with self.subTest(tensor=tag):
                t = state[tag]
                self.assertEqual(ttype, self.TORCH_TO_MS[str(t.dtype).removeprefix("torch.")])
                self.assertEqual(dims, list(t.shape))
                self.assertEqual(content, self.raw_bytes(t))


if __name__ == "__main__":
    unittest.main(verbosity=2)
