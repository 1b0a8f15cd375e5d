"""Our safetensors outputs follow the official library's rules (checked by an independent reader
written from the format's definition: Debian 12 has no safetensors package)."""
import json
import os
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cw_testlib import EXTERNAL, SOURCE, TempDirTest, run  # noqa: E402

SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
         "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}
MAX_HEADER = 100_000_000


def validate(test, path, expect_format="pt"):
    with open(path, "rb") as f:
        data = f.read()
    test.assertGreaterEqual(len(data), 8)
    (n,) = struct.unpack("<Q", data[:8])
    test.assertLessEqual(n, MAX_HEADER)
    test.assertLessEqual(8 + n, len(data))
    test.assertEqual(n % 8, 0, "header padded to a multiple of 8")
    text = data[8:8 + n]
    test.assertTrue(text.startswith(b"{"))
    stripped = text.rstrip(b" ")
    test.assertTrue(stripped.endswith(b"}"), "padding is spaces only")

    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        test.assertEqual(len(keys), len(set(keys)), "duplicate keys")
        return dict(pairs)

    header = json.loads(stripped.decode("utf-8"), object_pairs_hook=no_duplicates)
    test.assertIsInstance(header, dict)
    meta = header.pop("__metadata__", None)
    if expect_format is not None:
        test.assertIsNotNone(meta)
        test.assertEqual(meta.get("format"), expect_format)
    if meta is not None:
        test.assertTrue(all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()))
    entries = sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"]))
    cursor = 0
    for name, e in entries:
        test.assertEqual(set(e.keys()), {"dtype", "shape", "data_offsets"}, name)
        test.assertIn(e["dtype"], SIZES, name)
        test.assertTrue(all(isinstance(d, int) and d >= 0 for d in e["shape"]), name)
        begin, end = e["data_offsets"]
        test.assertEqual(begin, cursor, f"{name}: offsets contiguous from 0, no gap or overlap")
        count = 1
        for d in e["shape"]:
            count *= d
        test.assertEqual(end - begin, count * SIZES[e["dtype"]], name)
        cursor = end
    test.assertEqual(8 + n + cursor, len(data), "no trailing bytes")
    return header


class OfficialRules(TempDirTest):
    def test_single_file_outputs_of_every_input_format_follow_the_rules(self):
        sources = [os.path.join(SOURCE, "tests/data/qwen2_tiny"),
                   os.path.join(EXTERNAL, "torch/dtypes_views.pt"),
                   os.path.join(EXTERNAL, "mindspore/mindscience_example_net_10000.ckpt"),
                   os.path.join(EXTERNAL, "hf/safetensors_samples/overall.safetensors")]
        for i, src in enumerate(sources):
            with self.subTest(src=src):
                out = self.path(f"out{i}.safetensors")
                run("rewrite", src, out)
                validate(self, out)

    def test_sharded_folder_outputs_follow_the_rules_and_the_index_matches_the_shards(self):
        out = self.path("folder")
        run("rewrite", os.path.join(SOURCE, "tests/data/qwen2_tiny"), out + "/", "--max-shard-size", "8KB")
        with open(os.path.join(out, "model.safetensors.index.json")) as f:
            index = json.load(f)
        self.assertIn("total_size", index["metadata"])
        listed = index["weight_map"]
        self.assertEqual(list(listed.keys()), sorted(listed.keys()))
        seen, total = {}, 0
        for shard in sorted(set(listed.values())):
            header = validate(self, os.path.join(out, shard))
            for name, e in header.items():
                seen[name] = shard
                total += e["data_offsets"][1] - e["data_offsets"][0]
        self.assertEqual(seen, listed)
        self.assertEqual(total, index["metadata"]["total_size"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
