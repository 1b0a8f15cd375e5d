"""Folders of MindSpore safetensors as MindFormers 1.7+ writes and loads them: `*.safetensors`
files whose header metadata is {"format": "ms"} plus param_name_map.json ({name: file}).

The MCore families (rules with `ms_layout: {folder: mindformers}`: qwen3 here) write such a folder
for a forward conversion to a folder; a `.ckpt` output and the other families' folders are
unchanged. Reverse reads the folder through a flat map, through a map wrapped like an HF index
({"metadata": ..., "weight_map": ...}, MindSpore's unified_safetensors), and with no map at all
(every *.safetensors, names unique across files). Every file is parsed by cw_testlib's own
safetensors reader, not by ConvertWeight. A map naming a missing file, a tensor listed in the
wrong file and a name in two files without a map are located errors that leave nothing under the
output name.
"""
import json
import os
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from family_lib import (FamilyTestCase, SOURCE, read_ckpt, read_hf_folder, read_safetensors,  # noqa: E402
                        write_hf_folder)
from family_lib import convert as cw_convert  # noqa: E402
from test_family_qwen3 import RULES, qwen3_config, qwen3_tensors  # noqa: E402

MAP = "param_name_map.json"
QWEN2_RULES = os.path.join(SOURCE, "rules", "qwen2.yaml")
QWEN2_TINY = os.path.join(SOURCE, "tests/data/qwen2_tiny")


def read_ms_folder(folder):
    """({name: record}, {name: file}, {file: metadata}) of every *.safetensors in the folder."""
    records, holder, metadata = {}, {}, {}
    for f in sorted(os.listdir(folder)):
        if f.endswith(".safetensors"):
            tensors, meta = read_safetensors(os.path.join(folder, f))
            metadata[f] = meta
            for name, rec in tensors.items():
                assert name not in records, (name, f, holder.get(name))
                records[name], holder[name] = rec, f
    return records, holder, metadata


class MindFormersFolderTest(FamilyTestCase):
    def make(self):
        config = qwen3_config()
        tensors = qwen3_tensors(config)
        folder = self.path("hf")
        write_hf_folder(folder, tensors, config, shards=2)
        return folder

    def forward(self, hf, name="ms", *extra):
        out = self.path(name) + "/"
        cw_convert(RULES, hf, out, *extra)
        return out.rstrip("/")

    def reverse(self, ms, name, hf):
        back = self.path(name) + "/"
        cw_convert(RULES, ms, back, "--config", os.path.join(hf, "config.json"), reverse=True)
        return back.rstrip("/")

    def assert_fails_cleanly(self, ms, hf, code, *needles):
        out = self.path("failed_back")
        self.assert_fails(["convert", "--rules", RULES, "--input", ms, "--output", out + "/",
                           "--config", os.path.join(hf, "config.json"), "--reverse"], code,
                          *needles)
        self.assertFalse(os.path.exists(out))
        self.assertEqual([f for f in os.listdir(self.tmp) if "failed_back" in f], [])

    def test_forward_to_a_folder_writes_ms_safetensors_and_a_flat_map_of_every_tensor(self):
        hf = self.make()
        ckpt = self.path("m.ckpt")
        cw_convert(RULES, hf, ckpt)
        for extra in ((), ("--max-shard-size", "4KB")):
            with self.subTest(extra=extra):
                ms = self.forward(hf, f"ms{len(extra)}", *extra)
                files = sorted(os.listdir(ms))
                self.assertNotIn("model.safetensors.index.json", files)
                self.assertNotIn("model.safetensors", files)
                self.assertIn("config.json", files)
                with open(os.path.join(ms, MAP)) as f:
                    name_map = json.load(f)
                records, holder, metadata = read_ms_folder(ms)
                # Flat: {name: file}, every tensor once, in the file that holds it.
                self.assertTrue(all(isinstance(v, str) for v in name_map.values()))
                self.assertEqual(name_map, holder)
                for file, meta in metadata.items():
                    self.assertEqual(meta, {"format": "ms"}, file)
                # The same tensors, bytes and shapes as the .ckpt.
                self.assertEqual(records, read_ckpt(ckpt))
                if extra:
                    self.assertGreater(len(metadata), 2)
                    self.assertEqual(sorted(metadata)[0],
                                     f"model-00001-of-{len(metadata):05d}.safetensors")
                else:
                    self.assertEqual(list(metadata), ["model-00001-of-00001.safetensors"])

    def test_reverse_from_the_folder_gives_the_hf_weights_back(self):
        hf = self.make()
        ms = self.forward(hf, "ms", "--max-shard-size", "4KB")
        back = self.reverse(ms, "back", hf)
        self.assertEqual(read_hf_folder(back), read_hf_folder(hf))
        self.assertFalse(os.path.exists(os.path.join(back, MAP)))
        # The map file, or any one file of the folder, stands for the whole folder.
        for one in (MAP, sorted(f for f in os.listdir(ms) if f.endswith(".safetensors"))[1]):
            with self.subTest(input=one):
                back = self.reverse(os.path.join(ms, one), f"back_{one}", hf)
                self.assertEqual(read_hf_folder(back), read_hf_folder(hf))

    def test_reverse_from_a_map_wrapped_in_a_weight_map(self):
        hf = self.make()
        ms = self.forward(hf, "ms", "--max-shard-size", "4KB")
        with open(os.path.join(ms, MAP)) as f:
            name_map = json.load(f)
        records, _, _ = read_ms_folder(ms)
        total = sum(len(r[2]) for r in records.values())
        with open(os.path.join(ms, MAP), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": name_map}, f)
        back = self.reverse(ms, "back", hf)
        self.assertEqual(read_hf_folder(back), read_hf_folder(hf))

    def test_reverse_from_a_folder_without_a_map_reads_every_safetensors_file(self):
        hf = self.make()
        ms = self.forward(hf, "ms", "--max-shard-size", "4KB")
        os.remove(os.path.join(ms, MAP))
        back = self.reverse(ms, "back", hf)
        self.assertEqual(read_hf_folder(back), read_hf_folder(hf))

    def test_a_map_naming_a_missing_file_is_an_error_at_that_file(self):
        hf = self.make()
        ms = self.forward(hf, "ms", "--max-shard-size", "4KB")
        missing = sorted(f for f in os.listdir(ms) if f.endswith(".safetensors"))[1]
        os.remove(os.path.join(ms, missing))
        self.assert_fails_cleanly(ms, hf, 3, os.path.join(ms, missing), "is missing")

    def test_a_tensor_the_map_places_in_the_wrong_file_is_an_error_at_the_map(self):
        hf = self.make()
        ms = self.forward(hf, "ms", "--max-shard-size", "4KB")
        with open(os.path.join(ms, MAP)) as f:
            name_map = json.load(f)
        files = sorted(set(name_map.values()))
        moved = next(n for n, f in name_map.items() if f == files[0])
        name_map[moved] = files[1]
        with open(os.path.join(ms, MAP), "w") as f:
            json.dump(name_map, f)
        self.assert_fails_cleanly(ms, hf, 1, os.path.join(ms, MAP), f'"{moved}"', files[1])

    def test_a_tensor_in_two_files_without_a_map_is_an_error_naming_both(self):
        hf = self.make()
        ms = self.forward(hf, "ms", "--max-shard-size", "4KB")
        os.remove(os.path.join(ms, MAP))
        first = sorted(f for f in os.listdir(ms) if f.endswith(".safetensors"))[0]
        shutil.copyfile(os.path.join(ms, first), os.path.join(ms, "copy.safetensors"))
        self.assert_fails_cleanly(ms, hf, 1, os.path.join(ms, first), "copy.safetensors",
                                  "names must be unique")

    def test_bad_json_in_the_map_is_an_error_at_the_map(self):
        hf = self.make()
        ms = self.forward(hf)
        with open(os.path.join(ms, MAP), "w") as f:
            f.write('{"embedding.word_embeddings.weight": ')
        self.assert_fails_cleanly(ms, hf, 1, os.path.join(ms, MAP), "not valid JSON")

    def test_a_ckpt_output_stays_a_ckpt(self):
        hf = self.make()
        ckpt = self.path("m.ckpt")
        cw_convert(RULES, hf, ckpt)
        with open(ckpt, "rb") as f:
            self.assertEqual(f.read(1), b"\x0a")  # a protobuf record, not a safetensors header
        self.assertEqual(read_ckpt(ckpt), read_ms_folder(self.forward(hf))[0])

    def test_other_families_keep_the_hf_indexed_folder(self):
        out = self.path("qwen2") + "/"
        cw_convert(QWEN2_RULES, QWEN2_TINY, out)
        files = os.listdir(out)
        self.assertIn("model.safetensors", files)
        self.assertNotIn(MAP, files)


if __name__ == "__main__":
    unittest.main(verbosity=2)
