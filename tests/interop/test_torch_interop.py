"""Interop with real PyTorch (Debian python3-torch 1.13): torch loads what we write, we read what
torch writes, byte for byte."""
import os
import sys
import unittest
from collections import OrderedDict

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cw_testlib import (EXTERNAL, SOURCE, TORCH_TO_CODE, TempDirTest, flatten, inspect,  # noqa: E402
                        read_safetensors, run, torch_bytes)


def fresh_state_dict():
    """Tensors torch.save writes in the ways real checkpoints do: bf16, views sharing one storage
    at offsets, transposed and expanded views, 0-dim, empty, every legacy dtype."""
    g = torch.Generator().manual_seed(7)
    base = torch.randn(64, generator=g)
    sd = OrderedDict()
    sd["bf16"] = torch.randn(5, 7, generator=g).to(torch.bfloat16)
    sd["view.offset"] = base[10:22].view(3, 4)
    sd["view.tail"] = base[40:]
    sd["transposed"] = torch.randn(4, 6, generator=g).t()
    sd["expanded"] = torch.arange(3.0).view(3, 1).expand(3, 4)
    sd["scalar"] = torch.tensor(2.5, dtype=torch.float64)
    sd["empty"] = torch.zeros(0, 3)
    sd["f16"] = torch.randn(9, generator=g).half()
    sd["i64"] = torch.tensor([1, -2, 2**40])
    sd["i32"] = torch.tensor([7, -7], dtype=torch.int32)
    sd["i16"] = torch.tensor([300, -300], dtype=torch.int16)
    sd["i8"] = torch.tensor([-128, 127], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 255], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False])
    sd["名前.weight"] = torch.ones(2)
    return sd


class TorchReadsOurFiles(TempDirTest):
    def check_loads_equal(self, source, written, root_key=None):
        expected = inspect(source)
        for weights_only in (True, False):
            obj = torch.load(written, weights_only=weights_only)
            if root_key:
                self.assertEqual(list(obj.keys()), [root_key])
                obj = obj[root_key]
            self.assertEqual(list(obj.keys()), [t["name"] for t in expected["tensors"]])
        st_copy = self.path("copy.safetensors")
        run("rewrite", source, st_copy, "--force")
        reference, _ = read_safetensors(st_copy)
        for name, t in obj.items():
            dtype, shape, data = reference[name]
            self.assertEqual(TORCH_TO_CODE[str(t.dtype)], dtype, name)
            self.assertEqual(list(t.shape), shape, name)
            self.assertEqual(torch_bytes(t), data, name)

    def test_sample_checkpoint_loads_in_torch_with_and_without_weights_only(self):
        sample = os.path.join(SOURCE, "tests/data/qwen2_tiny")
        out = self.path("pytorch_model.bin")
        run("rewrite", sample, out)
        self.check_loads_equal(sample, out)

    def test_every_dtype_of_a_torch_written_file_survives_a_rewrite_to_bin(self):
        source = os.path.join(EXTERNAL, "torch/dtypes_views.pt")
        out = self.path("again.pt")
        run("rewrite", source, out)
        self.check_loads_equal(source, out)
        original = torch.load(source)
        again = torch.load(out)
        for name, t in original.items():
            self.assertTrue(torch.equal(t, again[name]), name)

    def test_tensors_nested_under_a_root_key_load_as_a_model_dict(self):
        sample = os.path.join(SOURCE, "tests/data/qwen2_tiny")
        out = self.path("checkpoint.pth")
        run("rewrite", sample, out, "--root-key", "model")
        obj = torch.load(out, weights_only=True)
        self.assertEqual(list(obj.keys()), ["model"])
        self.assertIn("model.embed_tokens.weight", obj["model"])


class WeReadTorchFiles(TempDirTest):
    def check_reads_exactly(self, obj, path):
        torch.save(obj, path)
        listed = inspect(path)
        expected = flatten(obj)
        self.assertEqual([t["name"] for t in listed["tensors"]], list(expected.keys()))
        out = self.path("read.safetensors")
        run("rewrite", path, out, "--force")
        got, _ = read_safetensors(out)
        for name, t in expected.items():
            dtype, shape, data = got[name]
            self.assertEqual(dtype, TORCH_TO_CODE[str(t.dtype)], name)
            self.assertEqual(shape, list(t.shape), name)
            self.assertEqual(data, torch_bytes(t), name)
        return listed

    def test_fresh_torch_save_with_views_bf16_and_every_dtype_reads_exactly(self):
        self.check_reads_exactly(fresh_state_dict(), self.path("fresh.pt"))

    def test_nested_training_checkpoint_reads_the_tensors_and_reports_the_rest(self):
        obj = {"model": fresh_state_dict(), "epoch": 3, "optimizer": {"lr": 0.1, "state": {}}}
        listed = self.check_reads_exactly(obj, self.path("train.pth"))
        skipped = {s["name"] for s in listed["skipped"]}
        self.assertIn("epoch", skipped)
        self.assertIn("optimizer.lr", skipped)

    def test_module_state_dict_with_tied_weights_reads_both_names(self):
        emb = torch.nn.Embedding(8, 4)
        head = torch.nn.Linear(4, 8, bias=False)
        head.weight = emb.weight
        model = torch.nn.ModuleDict({"embed": emb, "head": head})
        self.check_reads_exactly(model.state_dict(), self.path("tied.bin"))

    def test_a_pickle_naming_os_system_is_refused_and_nothing_runs(self):
        marker = self.path("pwned")

        class Evil:
            def __reduce__(self):
                return (os.system, (f"touch {marker}",))

        path = self.path("evil.pt")
        torch.save({"w": torch.ones(1), "x": Evil()}, path)
        p = run("inspect", path, check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("system", p.stderr)
        self.assertIn("evil.pt", p.stderr)
        self.assertFalse(os.path.exists(marker))


if __name__ == "__main__":
    unittest.main(verbosity=2)
