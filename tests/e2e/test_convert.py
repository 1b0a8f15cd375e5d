"""`convert_weight convert` end to end: real files through the CLI, checked with independent readers
(torch, protobuf, a plain safetensors parser)."""
import json
import os
import shutil
import sys
import unittest

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
from cw_testlib import EXTERNAL, SOURCE, TempDirTest, run, torch_bytes  # noqa: E402
from test_safetensors_rules import validate  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from family_lib import read_bin, read_ckpt, read_hf_folder  # noqa: E402

QWEN = os.path.join(SOURCE, "tests/data/qwen2_tiny")
QWEN_RULES = os.path.join(SOURCE, "rules/qwen2.yaml")
LLAMA_RULES = os.path.join(SOURCE, "rules/llama.yaml")
TORCH_DIR = os.path.join(EXTERNAL, "torch")
class RoundTrips(TempDirTest):
    def test_qwen2_folder_to_ckpt_and_back_is_byte_identical(self):
        ckpt, back = self.path("q.ckpt"), self.path("back")
        run("convert", "--rules", QWEN_RULES, "--input", QWEN, "--output", ckpt)
        run("convert", "--rules", QWEN_RULES, "--input", ckpt, "--output", back + "/", "--reverse",
            "--config", os.path.join(QWEN, "config.json"))
        self.assertEqual(read_hf_folder(back), read_hf_folder(QWEN))
        self.assertTrue(os.path.exists(os.path.join(back, "config.json")))

    def test_ckpt_output_parses_with_protobuf_and_holds_the_renamed_tensors(self):
        ckpt = self.path("q.ckpt")
        run("convert", "--rules", QWEN_RULES, "--input", QWEN, "--output", ckpt)
        got = read_ckpt(ckpt)
        src = read_hf_folder(QWEN)
        self.assertEqual(got["model.tok_embeddings.embedding_weight"], src["model.embed_tokens.weight"])
        self.assertEqual(got["model.layers.1.attention.wk.bias"], src["model.layers.1.self_attn.k_proj.bias"])
        self.assertEqual(got["model.norm_out.weight"], src["model.norm.weight"])
        # Tied embeddings: the head is written as a copy of the embedding.
        self.assertEqual(got["lm_head.weight"], src["model.embed_tokens.weight"])
        self.assertEqual(len(got), len(src) + 1)

    def test_sharded_bf16_bin_folder_to_ckpt_and_back_to_bin_loads_in_torch(self):
        src = os.path.join(TORCH_DIR, "tiny_llama_bf16_sharded")
        ckpt, back = self.path("l.ckpt"), self.path("back.bin")
        run("convert", "--rules", LLAMA_RULES, "--input", src, "--output", ckpt, "--set", "layers=2")
        run("convert", "--rules", LLAMA_RULES, "--input", ckpt, "--output", back, "--reverse",
            "--set", "layers=2")
        expected = {}
        for shard in ("pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"):
            expected.update(read_bin(os.path.join(src, shard)))
        self.assertEqual(read_bin(back), expected)

    def test_tied_fp32_bin_round_trips_through_ckpt(self):
        src = os.path.join(TORCH_DIR, "tiny_llama_fp32_tied/pytorch_model.bin")
        ckpt, back = self.path("t.ckpt"), self.path("t.bin")
        run("convert", "--rules", LLAMA_RULES, "--input", src, "--output", ckpt, "--set", "layers=2")
        run("convert", "--rules", LLAMA_RULES, "--input", ckpt, "--output", back, "--reverse",
            "--set", "layers=2")
        self.assertEqual(read_bin(back), read_bin(src))

    def test_seed_command_line_gives_the_same_bytes_as_rules(self):
        a, b = self.path("a.ckpt"), self.path("b.ckpt")
        run("convert", "--rules", QWEN_RULES, "--input", QWEN, "--output", a)
        run("--model", "qwen2", "--input_path", os.path.join(QWEN, "model.safetensors"),
            "--output_path", b)
        with open(a, "rb") as fa, open(b, "rb") as fb:
            self.assertEqual(fa.read(), fb.read())

    def test_reverse_folder_output_follows_the_safetensors_rules(self):
        ckpt, back = self.path("q.ckpt"), self.path("back")
        run("convert", "--rules", QWEN_RULES, "--input", QWEN, "--output", ckpt)
        run("convert", "--rules", QWEN_RULES, "--input", ckpt, "--output", back + "/", "--reverse",
            "--config", os.path.join(QWEN, "config.json"), "--max-shard-size", "12KB")
        with open(os.path.join(back, "model.safetensors.index.json")) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        self.assertGreater(len(shards), 1)
        for s in shards:
            validate(self, os.path.join(back, s))


    def test_fused_qkv_groups_read_from_different_shards_round_trip(self):
        sharded = self.path("sharded")
        run("rewrite", QWEN, sharded + "/", "--max-shard-size", "1500B")
        shutil.copy(os.path.join(QWEN, "config.json"), sharded)
        index = json.load(open(os.path.join(sharded, "model.safetensors.index.json")))["weight_map"]
        self.assertNotEqual(index["model.layers.0.self_attn.q_proj.weight"],
                            index["model.layers.0.self_attn.v_proj.weight"])
        ckpt, back = self.path("fused.ckpt"), self.path("back")
        run("convert", "--rules", QWEN_RULES, "--input", sharded, "--output", ckpt,
            "--set", "qkv_concat=true")
        got = read_ckpt(ckpt)
        self.assertIn("model.layers.0.attention.w_qkv.weight", got)
        self.assertNotIn("model.layers.0.attention.wq.weight", got)
        run("convert", "--rules", QWEN_RULES, "--input", ckpt, "--output", back + "/", "--reverse",
            "--config", os.path.join(QWEN, "config.json"), "--set", "qkv_concat=true")
        self.assertEqual(read_hf_folder(back), read_hf_folder(QWEN))

    def test_side_files_of_the_input_folder_are_copied_into_a_folder_output(self):
        out = self.path("ms_folder")
        run("convert", "--rules", QWEN_RULES, "--input", QWEN, "--output", out + "/")
        self.assertEqual(sorted(n for n in os.listdir(out) if n.endswith(".json")),
                         ["config.json", "generation_config.json"])


class Casts(TempDirTest):
    def test_dtype_bf16_equals_torch_to_bfloat16(self):
        src = os.path.join(TORCH_DIR, "tiny_llama_fp32_tied/pytorch_model.bin")
        ckpt = self.path("c.ckpt")
        run("convert", "--rules", LLAMA_RULES, "--input", src, "--output", ckpt, "--set", "layers=2",
            "--dtype", "bf16")
        got = read_ckpt(ckpt)
        original = torch.load(src, weights_only=True)
        expected = original["model.layers.1.mlp.down_proj.weight"].to(torch.bfloat16)
        dtype, dims, data = got["model.layers.1.feed_forward.w2.weight"]
        self.assertEqual((dtype, dims), ("BF16", list(expected.shape)))
        self.assertEqual(data, torch_bytes(expected))
        for tag, (dtype, _, _) in got.items():
            self.assertEqual(dtype, "BF16", tag)

    def test_dtype_fp16_with_special_values_equals_torch(self):
        values = torch.tensor([0.0, -0.0, 1e-8, 65504.0, 65520.0, 1e6, float("inf"), float("nan"),
                               -float("nan"), 3.14159, -2.5e-5] * 3, dtype=torch.float32)
        folder = self.path("m")
        os.mkdir(folder)
        # Shapes as the llama rules declare them: a vocabulary of 1, hidden size 33.
        torch.save({"model.norm.weight": values, "model.embed_tokens.weight": values.view(1, 33),
                    "lm_head.weight": values.view(1, 33).clone()},
                   os.path.join(folder, "pytorch_model.bin"))
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump({"num_hidden_layers": 0}, f)
        ckpt = self.path("f.ckpt")
        run("convert", "--rules", LLAMA_RULES, "--input", folder, "--output", ckpt, "--dtype", "fp16")
        got = read_ckpt(ckpt)
        self.assertEqual(got["model.norm_out.weight"][2], torch_bytes(values.to(torch.float16)))


class Determinism(TempDirTest):
    def test_one_and_two_threads_write_identical_bytes(self):
        outs = []
        for threads in ("1", "2"):
            for target in ("x.ckpt", "x/"):
                out = self.path(threads + target)
                run("convert", "--rules", QWEN_RULES, "--input", QWEN, "--output", out,
                    "--threads", threads, "--max-shard-size", "9KB", "--dtype", "fp32")
                outs.append(out)
        with open(outs[0], "rb") as a, open(outs[2], "rb") as b:
            self.assertEqual(a.read(), b.read())
        for name in os.listdir(outs[1]):
            with open(os.path.join(outs[1], name), "rb") as a, open(os.path.join(outs[3], name), "rb") as b:
                self.assertEqual(a.read(), b.read(), name)


def safetensors_bytes(named):
    """A minimal safetensors writer for hand-made inputs (F32 only)."""
    header, blobs, offset = {}, [], 0
    for name, t in named.items():
        data = torch_bytes(t)
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + b"".join(blobs)


class Failures(TempDirTest):
    def qwen_copy_with(self, extra=None, drop=None):
        folder = self.path("in")
        shutil.copytree(QWEN, folder)
        src = read_hf_folder(QWEN)
        named = {}
        for name, (dtype, shape, data) in src.items():
            if name != drop:
                named[name] = torch.frombuffer(bytearray(data), dtype=torch.bfloat16).float().view(shape)
        if extra:
            named[extra] = torch.zeros(2)
        with open(os.path.join(folder, "model.safetensors"), "wb") as f:
            f.write(safetensors_bytes(named))
        return folder

    def assert_fails_cleanly(self, args, out_dir, code, *needles):
        p = run(*args, check=False)
        self.assertEqual(p.returncode, code, p.stderr)
        for n in needles:
            self.assertIn(n, p.stderr)
        self.assertEqual(os.listdir(out_dir), [])

    def test_an_unknown_tensor_fails_listing_it_and_writes_nothing(self):
        folder = self.qwen_copy_with(extra="model.layers.0.mystery.weight")
        out = self.path("out")
        os.mkdir(out)
        self.assert_fails_cleanly(["convert", "--rules", QWEN_RULES, "--input", folder, "--output",
                                   os.path.join(out, "m.ckpt")], out, 1, "model.layers.0.mystery.weight")

    def test_a_missing_tensor_fails_naming_it(self):
        folder = self.qwen_copy_with(drop="model.layers.1.mlp.up_proj.weight")
        out = self.path("out")
        os.mkdir(out)
        self.assert_fails_cleanly(["convert", "--rules", QWEN_RULES, "--input", folder, "--output",
                                   os.path.join(out, "m.ckpt")], out, 1, "model.layers.1.mlp.up_proj.weight")

    def test_a_truncated_input_fails_naming_the_file(self):
        folder = self.path("in")
        shutil.copytree(QWEN, folder)
        weights = os.path.join(folder, "model.safetensors")
        with open(weights, "r+b") as f:
            f.truncate(os.path.getsize(weights) - 10)
        out = self.path("out")
        os.mkdir(out)
        self.assert_fails_cleanly(["convert", "--rules", QWEN_RULES, "--input", folder, "--output",
                                   os.path.join(out, "m.ckpt")], out, 1, "model.safetensors")

    def test_output_equal_to_the_input_is_refused(self):
        folder = self.path("in")
        shutil.copytree(QWEN, folder)
        p = run("convert", "--rules", QWEN_RULES, "--input", os.path.join(folder, "model.safetensors"),
                "--output", os.path.join(folder, "model.safetensors"), "--force", check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertEqual(read_hf_folder(folder), read_hf_folder(QWEN))


if __name__ == "__main__":
    unittest.main(verbosity=2)
