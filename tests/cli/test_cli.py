"""The convert_weight command line: inspect, rewrite, errors, exit codes, atomic outputs."""
import glob
import os
import random
import shutil
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
from cw_testlib import EXTERNAL, SOURCE, TempDirTest, inspect, run  # noqa: E402

SAMPLE = os.path.join(SOURCE, "tests/data/qwen2_tiny")


def external_samples():
    """The real checkpoints of tests/data/external (parallel-strategy files are not checkpoints,
    although MindSpore names them .ckpt)."""
    files = []
    for ext in ("ckpt", "pt", "bin", "safetensors"):
        files += glob.glob(os.path.join(EXTERNAL, "**", f"*.{ext}"), recursive=True)
    return sorted(f for f in files if "strategy" not in os.path.basename(f))


class Inspect(TempDirTest):
    def test_lists_every_tensor_of_the_sample_folder_with_a_total(self):
        p = run("inspect", SAMPLE)
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), 27)  # 1 + 2 layers x 12 + 1 tensors, then the summary
        self.assertTrue(lines[0].startswith("model.embed_tokens.weight"))
        self.assertIn("BF16", lines[0])
        self.assertIn("[64, 32]", lines[0])
        self.assertEqual(lines[-1], "26 tensors, 35392 bytes, safetensors, 1 file")

    def test_json_output_has_names_dtypes_shapes_and_sizes(self):
        j = inspect(os.path.join(SAMPLE, "model.safetensors"))
        self.assertEqual(j["format"], "safetensors")
        first = j["tensors"][0]
        self.assertEqual((first["name"], first["dtype"], first["shape"], first["bytes"]),
                         ("model.embed_tokens.weight", "BF16", [64, 32], 4096))
        self.assertEqual(j["total_bytes"], sum(t["bytes"] for t in j["tensors"]))

    def test_any_shard_of_a_sharded_folder_opens_the_whole_folder(self):
        shard = os.path.join(EXTERNAL, "torch/tiny_llama_bf16_sharded/pytorch_model-00002-of-00002.bin")
        p = run("inspect", "--json", shard)
        self.assertEqual(len(__import__("json").loads(p.stdout)["tensors"]), 21)
        self.assertIn("whole folder", p.stderr)

    def test_every_external_sample_is_read(self):
        for f in external_samples():
            if "legacy" in os.path.basename(f):
                continue
            with self.subTest(f=f):
                run("inspect", f)

    def test_a_file_that_is_not_a_checkpoint_is_refused_naming_it(self):
        path = self.path("notes.txt")
        with open(path, "w") as f:
            f.write("hello")
        p = run("inspect", path, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn(path, p.stderr)
        self.assertIn("not a checkpoint", p.stderr)

    def test_a_missing_path_is_an_environment_error(self):
        p = run("inspect", self.path("nothing"), check=False)
        self.assertEqual(p.returncode, 3)
        self.assertIn("no such file", p.stderr)


DISTRIBUTED = os.path.join(EXTERNAL, "mindspore-distributed")
GOLDEN_STICK = os.path.join(DISTRIBUTED, "golden-stick-llama2-2p")
PIPELINE = os.path.join(DISTRIBUTED, "mindformers-gpt2-pipeline-strategies")


class InspectStrategy(TempDirTest):
    """Parallel-strategy files, told from checkpoints by their bytes although named .ckpt."""

    def row(self, stdout, name):
        [line] = [l for l in stdout.splitlines() if l.split()[:1] == [name]]
        return line.split()

    def test_a_per_rank_strategy_lists_each_layout_and_the_part_each_rank_holds(self):
        p = run("inspect", os.path.join(GOLDEN_STICK, "strategy/ckpt_strategy_rank_0.ckpt"))
        lines = p.stdout.splitlines()
        self.assertTrue(lines[0].startswith("MindSpore parallel strategy: 363 parameters, "
                                            "363 operators, 1 pipeline stage (0), "
                                            "2 devices per stage"), lines[0])
        # name, stage, dev_matrix, tensor_map, opt_shard, slice, replicas
        self.assertEqual(self.row(p.stdout, "model.layers.0.attention.wq.weight"),
                         ["model.layers.0.attention.wq.weight", "0", "[2]", "[0,", "-1]", "-",
                          "[1/2,", "1]", "1"])
        self.assertEqual(self.row(p.stdout, "model.layers.0.attention.wo.weight")[6:8],
                         ["[1,", "1/2]"])
        self.assertEqual(self.row(p.stdout, "lm_head.weight")[3:], ["[-1,", "-1]", "-", "[1,",
                                                                    "1]", "2"])
        self.assertIn("dev_matrix [2], tensor_map [0, -1], opt_shard - (200 parameters): "
                      "[0, 0] on rank 0; [1, 0] on rank 1", p.stdout)
        self.assertIn("A strategy holds no shapes", p.stdout)

    def test_a_merged_pipeline_strategy_shows_stages_and_global_ranks(self):
        path = os.path.join(PIPELINE, "strategy_4_npus.ckpt")
        p = run("inspect", path)
        self.assertIn("2 pipeline stages (0,1), 2 devices per stage", p.stdout.splitlines()[0])
        embedding = self.row(p.stdout, "backbone.embedding.word_embedding.embedding_table")
        self.assertEqual(embedding[1], "0,1")
        self.assertEqual(self.row(p.stdout, "backbone.blocks.1.attention.dense1.weight")[1], "1")
        j = inspect(path)
        [dense] = [x for x in j["parameters"]
                   if x["name"] == "backbone.blocks.1.attention.dense1.weight"]
        self.assertEqual([s["ranks"] for s in dense["stages"][0]["slices"]], [[2], [3]])

    def test_data_parallel_replicas_are_the_ranks_that_share_a_slice(self):
        j = inspect(os.path.join(PIPELINE, "strategy_8_npus.ckpt"))
        self.assertEqual(j["devices_per_stage"], 4)
        [dense] = [x for x in j["parameters"]
                   if x["name"] == "backbone.blocks.0.attention.dense1.weight"]
        self.assertEqual(dense["stages"][0]["dev_matrix"], [2, 2])
        self.assertEqual(dense["stages"][0]["pieces"], [2, 1])
        self.assertEqual([s["ranks"] for s in dense["stages"][0]["slices"]], [[0, 2], [1, 3]])

    def test_a_folder_of_per_rank_strategies_is_read_as_one(self):
        p = run("inspect", os.path.join(GOLDEN_STICK, "strategy"))
        self.assertIn("363 parameters", p.stdout.splitlines()[0])
        self.assertIn("ckpt_strategy_rank_1.ckpt: per-rank, stage 0, 363 layouts, 363 operators; "
                      "skipped: an earlier file gives the same", p.stdout)

    def test_a_rank_folder_beside_the_strategy_is_still_a_checkpoint(self):
        p = run("inspect", os.path.join(GOLDEN_STICK, "rank_0"))
        self.assertIn("mindspore, 1 file", p.stdout.splitlines()[-1])

    def test_a_truncated_strategy_file_is_a_located_error(self):
        with open(os.path.join(PIPELINE, "strategy_4_npus.ckpt"), "rb") as f:
            data = f.read()
        path = self.path("strategy.ckpt")
        with open(path, "wb") as f:
            f.write(data[:1000])
        p = run("inspect", path, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn(path + ": byte ", p.stderr)
        self.assertIn("runs past the end", p.stderr)


class Help(unittest.TestCase):
    def test_top_level_help_shows_the_reference_tools_form(self):
        for args in (["--help"], ["-h"], ["--model", "llama", "--help"]):
            with self.subTest(args=args):
                p = run(*args)
                self.assertIn("Subcommands:", p.stdout)
                self.assertIn("convert_weight --model llama --input_path IN --output_path OUT", p.stdout)
                self.assertIn("[--reversed]", p.stdout)

    def test_no_arguments_is_a_usage_error_that_points_at_the_help(self):
        p = run(check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--help", p.stderr)


class Rewrite(TempDirTest):
    def test_every_format_round_trips_the_sample_byte_for_byte(self):
        for target in ("m.ckpt", "m.bin", "m.safetensors", "folder/"):
            with self.subTest(target=target):
                out = self.path(target)
                run("rewrite", SAMPLE, out)
                back = self.path("back-" + target.strip("/") + ".safetensors")
                run("rewrite", out, back)
                with open(back, "rb") as a, open(os.path.join(SAMPLE, "model.safetensors"), "rb") as b:
                    self.assertEqual(a.read(), b.read())

    def test_a_small_shard_size_writes_an_index_and_several_shards(self):
        out = self.path("sharded")
        os.mkdir(out)
        run("rewrite", SAMPLE, out, "--max-shard-size", "10KB")
        names = sorted(os.listdir(out))
        self.assertIn("model.safetensors.index.json", names)
        self.assertGreater(len([n for n in names if n.startswith("model-")]), 2)
        self.assertEqual(inspect(out)["total_bytes"], inspect(SAMPLE)["total_bytes"])

    def test_an_existing_output_is_refused_and_kept_unless_forced(self):
        out = self.path("m.ckpt")
        with open(out, "w") as f:
            f.write("keep me")
        p = run("rewrite", SAMPLE, out, check=False)
        self.assertEqual(p.returncode, 2)
        with open(out) as f:
            self.assertEqual(f.read(), "keep me")
        run("rewrite", SAMPLE, out, "--force")
        self.assertEqual(inspect(out)["format"], "mindspore")

    def test_a_failing_rewrite_leaves_nothing_under_the_output_name(self):
        bad = self.path("bad.safetensors")
        shutil.copy(os.path.join(SAMPLE, "model.safetensors"), bad)
        with open(bad, "r+b") as f:
            f.truncate(os.path.getsize(bad) - 100)
        out_dir = self.path("out")
        os.mkdir(out_dir)
        p = run("rewrite", bad, os.path.join(out_dir, "m.ckpt"), check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("bad.safetensors", p.stderr)
        self.assertEqual(os.listdir(out_dir), [])

    def test_an_unwritable_output_folder_is_an_environment_error_with_nothing_left(self):
        if os.geteuid() == 0:
            self.skipTest("root ignores folder permissions")
        out_dir = self.path("ro")
        os.mkdir(out_dir, 0o500)
        p = run("rewrite", SAMPLE, os.path.join(out_dir, "m.ckpt"), check=False)
        self.assertEqual(p.returncode, 3)
        self.assertEqual(os.listdir(out_dir), [])

    def test_an_unknown_output_extension_is_a_usage_error(self):
        p = run("rewrite", SAMPLE, self.path("m.onnx"), check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("output format", p.stderr)


class DamagedInputs(TempDirTest):
    """Truncated and bit-flipped copies of every sample: a clean located error or success, never a
    crash (the suite also runs this against the AddressSanitizer build)."""

    def check_clean(self, path, original):
        """Inspect, then rewrite when the damage still parses: ok or a clean failure, which leaves
        neither the output nor its temporary, and the input as it was."""
        with open(path, "rb") as fh:
            before = fh.read()
        p = run("inspect", path, check=False)
        self.assertIn(p.returncode, (0, 1), f"{original}: {p.stderr[-2000:]}")
        if p.returncode == 1:
            self.assertTrue(p.stderr.startswith("convert_weight: " + path), p.stderr)
        else:
            out = self.path("copy.safetensors")
            q = run("rewrite", path, out, check=False)
            self.assertIn(q.returncode, (0, 1), f"{original}: {q.stderr[-2000:]}")
            if q.returncode == 1:
                self.assertTrue(q.stderr.startswith("convert_weight: "), q.stderr)
                self.assertEqual([n for n in os.listdir(self.tmp) if "copy.safetensors" in n], [])
            else:
                os.remove(out)
        with open(path, "rb") as fh:
            self.assertEqual(fh.read(), before, f"{original}: input changed")

    def test_truncated_and_bit_flipped_samples_fail_cleanly(self):
        rng = random.Random(20261128)
        for f in external_samples():
            with open(f, "rb") as fh:
                data = fh.read()
            ext = os.path.splitext(f)[1]
            damaged = self.path("damaged" + ext)
            cuts = sorted({0, 1, 7, 8, 9, len(data) // 2, len(data) - 1} |
                          {rng.randrange(len(data)) for _ in range(6)})
            for cut in cuts:
                with self.subTest(f=f, cut=cut):
                    with open(damaged, "wb") as fh:
                        fh.write(data[:cut])
                    self.check_clean(damaged, f)
            for _ in range(8):
                pos = rng.randrange(len(data))
                flipped = bytearray(data)
                flipped[pos] ^= 1 << rng.randrange(8)
                with self.subTest(f=f, flip=pos):
                    with open(damaged, "wb") as fh:
                        fh.write(bytes(flipped))
                    self.check_clean(damaged, f)


if __name__ == "__main__":
    unittest.main(verbosity=2)
