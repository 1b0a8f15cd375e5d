"""Distributed MindSpore checkpoints through the CLI: merge, merge + reverse in one pass, forward
with --strategy (and --rank subsets), on synthetic sets cut by tests/e2e/ms_split.py (written from
the spec, separately from the C++ merger), and the real golden-stick pair.

For each set: merge + reverse gives the original HF weights byte for byte; merge gives the unsplit
MindSpore tensors; forward --strategy gives the splitter's rank files, and merging them gives the
original; --rank subsets together equal the full set. Faults: a missing rank, a truncated rank
file, a differing replica, SIGINT mid-merge: a clear error and nothing under the output name.
"""
import os
import shutil
import signal
import subprocess
import sys
import time
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
import ms_split as ms  # noqa: E402
from cw_testlib import BIN, EXTERNAL, SOURCE, TempDirTest, read_safetensors, run  # noqa: E402

LLAMA = os.path.join(SOURCE, "rules/llama.yaml")
GOLDEN_STICK = os.path.join(EXTERNAL, "mindspore-distributed/golden-stick-llama2-2p")
PIPELINE = os.path.join(EXTERNAL, "mindspore-distributed/mindformers-gpt2-pipeline-strategies")
VOCAB, HIDDEN, FFN, LAYERS = 64, 32, 64, 2


def hf_llama(rng):
    """A tiny Llama in HF names: bf16 weights, f32 norms."""
    def bf16(*shape):
        return ("BF16", (rng.standard_normal(shape).astype(np.float32).view(np.uint32) >> 16)
                .astype(np.uint16))

    def f32(*shape):
        return ("F32", rng.standard_normal(shape).astype(np.float32))
    t = {"model.embed_tokens.weight": bf16(VOCAB, HIDDEN)}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = f32(HIDDEN)
        for n in ("q", "k", "v", "o"):
            t[p + f"self_attn.{n}_proj.weight"] = bf16(HIDDEN, HIDDEN)
        t[p + "mlp.gate_proj.weight"] = bf16(FFN, HIDDEN)
        t[p + "mlp.up_proj.weight"] = bf16(FFN, HIDDEN)
        t[p + "mlp.down_proj.weight"] = bf16(HIDDEN, FFN)
        t[p + "post_attention_layernorm.weight"] = f32(HIDDEN)
    t["model.norm.weight"] = f32(HIDDEN)
    t["lm_head.weight"] = bf16(VOCAB, HIDDEN)
    return t


def as_arrays(records):
    """{name: (code, array)} from {name: (code, shape, bytes)}."""
    return {n: (c, np.frombuffer(b, dtype=ms.NP_TYPE[c]).reshape(s)) for n, (c, s, b) in records.items()}


def layer_of(name):
    parts = name.split(".")
    return int(parts[parts.index("layers") + 1]) if "layers" in parts else None


def tp_layouts(full, dev, stage_of=lambda name: (0,), opt=None):
    """MindFormers' usual tensor-parallel layouts: rows cut for the embedding, head, wq/wk/wv, w1,
    w3; columns for wo, w2; norms whole. `opt`: {kind: (step, size)} optimizer shard by kind
    ("matrix", "norm")."""
    out = {}
    for name, (code, array) in full.items():
        base = name.split(".", 1)[1] if name.startswith(("adam_m.", "adam_v.")) else name
        opt_step, opt_size = 0, 0
        if array.ndim == 1:
            tmap = [-1]
            if opt and "norm" in opt:
                opt_step, opt_size = opt["norm"]
        else:
            tmap = [-1, 0] if base.endswith(("wo.weight", "w2.weight")) else [0, -1]
            if opt and "matrix" in opt:
                opt_step, opt_size = opt["matrix"]
        out[name] = ms.Layout(dev, tmap, stage_of(base), opt_step, opt_size)
    return out


class DistributedTest(TempDirTest):
    @classmethod
    def setUpClass(cls):
        import tempfile
        cls._base = tempfile.TemporaryDirectory(prefix="cw-dist-")
        base = cls._base.name
        cls.hf = os.path.join(base, "hf")
        os.mkdir(cls.hf)
        cls.hf_tensors = hf_llama(np.random.default_rng(7))
        ms.write_safetensors(os.path.join(cls.hf, "model.safetensors"), cls.hf_tensors)
        import json
        with open(os.path.join(cls.hf, "config.json"), "w") as f:
            json.dump({"num_hidden_layers": LAYERS, "vocab_size": VOCAB, "hidden_size": HIDDEN,
                       "intermediate_size": FFN, "num_attention_heads": 4}, f)
        cls.full_ckpt = os.path.join(base, "full.ckpt")
        run("convert", "--rules", LLAMA, "--input", cls.hf, "--output", cls.full_ckpt, "--quiet")
        cls.full = as_arrays(ms.read_ckpt(cls.full_ckpt))

    @classmethod
    def tearDownClass(cls):
        cls._base.cleanup()

    # Helpers -------------------------------------------------------------------------------

    def make_set(self, full, layouts, devices, stages, strategy="merged", **kw):
        folder = self.path("dist")
        ms.write_rank_folders(folder, full, layouts, devices, stages, **kw)
        if strategy == "merged":
            ms.write_strategy(os.path.join(folder, "merged_ckpt_strategy.ckpt"), layouts)
            return folder, os.path.join(folder, "merged_ckpt_strategy.ckpt")
        ms.write_stage_strategies(os.path.join(folder, "strategy"), layouts, devices, stages)
        return folder, os.path.join(folder, "strategy")

    def assert_hf_back(self, out):
        got = read_safetensors(os.path.join(out, "model.safetensors"))[0]
        want = {n: (c, list(a.shape), ms.tensor_bytes(c, a)) for n, (c, a) in self.hf_tensors.items()}
        self.assertEqual(got, want)

    def assert_tensors(self, path, want, ordered=True):
        got = ms.read_ckpt(path)
        self.assertEqual(list(got) if ordered else sorted(got), list(want) if ordered else sorted(want))
        for name, (code, array) in want.items():
            self.assertEqual(got[name], (code, list(array.shape), ms.tensor_bytes(code, array)), name)

    def check_set(self, full, layouts, devices, stages, strategy="merged", **kw):
        """Every check of the module docstring on one set."""
        folder, strat = self.make_set(full, layouts, devices, stages, strategy, **kw)
        # Merge + reverse in one pass, the strategy given, then found beside the rank folders.
        back = self.path("back")
        p = run("convert", "--rules", LLAMA, "--reverse", "--input", folder, "--strategy", strat,
                "--output", back + "/", "--config", os.path.join(self.hf, "config.json"))
        self.assert_hf_back(back)
        back2 = self.path("back2")
        run("--model", "llama", "--reversed", "--input_path", folder, "--output_path", back2 + "/",
            "--config", os.path.join(self.hf, "config.json"), "--quiet")
        self.assert_hf_back(back2)
        # Merge: the unsplit tensors, same names.
        merged = self.path("merged.ckpt")
        run("merge", "--input", folder, "--strategy", strat, "--output", merged, "--quiet")
        self.assert_tensors(merged, full)
        # Forward with the strategy: the splitter's rank files, and merged back the original.
        weights = {n: v for n, v in self.full.items()}
        split = self.path("split")
        run("convert", "--rules", LLAMA, "--input", self.hf, "--strategy", strat, "--output",
            split + "/", "--quiet")
        weight_layouts = {n: l for n, l in layouts.items() if n in weights}
        for r in range(devices * stages):
            rank_file = os.path.join(split, f"rank_{r}", f"checkpoint_{r}.ckpt")
            want = {n: (c, a) for n, c, a in ms.rank_tensors(weights, weight_layouts, devices, r)}
            self.assert_tensors(rank_file, want)
        shutil.copy(strat, split) if os.path.isfile(strat) else shutil.copytree(
            strat, os.path.join(split, "strategy"))
        again = self.path("again.ckpt")
        run("merge", "--input", split, "--output", again, "--quiet")
        self.assert_tensors(again, weights)
        # --rank subsets, as the tasks of a job array: together the full set, byte for byte.
        sub = self.path("sub")
        total = devices * stages
        pieces = ["0", f"1-{total // 2}"] + ([f"{total // 2 + 1}-{total - 1}"] if total > 2 else [])
        for piece in pieces:
            run("convert", "--rules", LLAMA, "--input", self.hf, "--strategy", strat, "--output",
                sub, "--rank", piece, "--quiet")
        self.assertEqual(sorted(os.listdir(sub)), sorted(f"rank_{r}" for r in range(total)))
        for r in range(total):
            name = os.path.join(f"rank_{r}", f"checkpoint_{r}.ckpt")
            with open(os.path.join(sub, name), "rb") as a, open(os.path.join(split, name), "rb") as b:
                self.assertEqual(a.read(), b.read(), name)
        for d in (back, back2, split, sub, folder):
            shutil.rmtree(d)
        for f in (merged, again):
            os.remove(f)
        return p


class Sets(DistributedTest):
    def test_tensor_parallel_2(self):
        p = self.check_set(self.full, tp_layouts(self.full, [2]), 2, 1)
        self.assertIn("converted", p.stderr)

    def test_data_x_tensor_parallel_with_replicas(self):
        self.check_set(self.full, tp_layouts(self.full, [2, 2]), 4, 1)

    def test_data_x_tensor_parallel_saved_without_redundancy(self):
        layouts = tp_layouts(self.full, [2, 2])
        folder, strat = self.make_set(self.full, layouts, 4, 1, remove_redundancy=True)
        holders = [r for r in range(4) if "model.layers.0.attention.wq.weight" in
                   ms.read_ckpt(os.path.join(folder, f"rank_{r}", f"checkpoint_{r}.ckpt"))]
        self.assertEqual(len(holders), 2)  # one of each replica pair
        merged = self.path("merged.ckpt")
        run("merge", "--input", folder, "--output", merged, "--quiet")
        # The order of first appearance in rank order: no rank holds every tensor here.
        self.assert_tensors(merged, self.full, ordered=False)

    def pipeline_layouts(self):
        def stage_of(name):
            layer = layer_of(name)
            if name == "model.tok_embeddings.embedding_weight":
                return (0, 1)  # used by both stages, as a tied embedding is
            return (0,) if layer == 0 else (1,)
        return tp_layouts(self.full, [2], stage_of)

    def test_pipeline_2_x_tensor_parallel_2_merged_strategy(self):
        self.check_set(self.full, self.pipeline_layouts(), 2, 2, "merged")

    def test_pipeline_2_x_tensor_parallel_2_per_stage_files(self):
        self.check_set(self.full, self.pipeline_layouts(), 2, 2, "folder")

    def test_a_copy_of_another_stage_that_differs_is_refused(self):
        folder, _ = self.make_set(self.full, self.pipeline_layouts(), 2, 2)
        path = os.path.join(folder, "rank_3", "checkpoint_3.ckpt")
        t = ms.read_ckpt(path)
        arrays = as_arrays(t)
        code, emb = arrays["model.tok_embeddings.embedding_weight"]
        emb = emb.copy()
        emb[0, 0] ^= 1
        arrays["model.tok_embeddings.embedding_weight"] = (code, emb)
        ms.write_ckpt(path, [(n, c, a) for n, (c, a) in arrays.items()])
        p = run("merge", "--input", folder, "--output", self.path("m.ckpt"), check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn('"model.tok_embeddings.embedding_weight" differs between rank_1 and rank_3',
                      p.stderr)

    def test_optimizer_shard(self):
        layouts = tp_layouts(self.full, [2, 2], opt={"matrix": (2, 2), "norm": (1, -1)})
        folder, _ = self.make_set(self.full, layouts, 4, 1)
        # Each rank saves a quarter of wq's rows: half of its tensor-parallel half.
        self.assertEqual(ms.read_ckpt(os.path.join(folder, "rank_1", "checkpoint_1.ckpt"))[
            "model.layers.0.attention.wq.weight"][1], [HIDDEN // 4, HIDDEN])
        self.assertEqual(ms.read_ckpt(os.path.join(folder, "rank_1", "checkpoint_1.ckpt"))[
            "model.norm_out.weight"][1], [HIDDEN // 4])
        shutil.rmtree(folder)
        self.check_set(self.full, layouts, 4, 1)

    def training_set(self):
        """The weights plus Adam moments (laid out as their weights) and two scalars."""
        rng = np.random.default_rng(3)
        full = dict(self.full)
        for prefix in ("adam_m.", "adam_v."):
            for name, (code, array) in self.full.items():
                full[prefix + name] = ("F32", rng.standard_normal(array.shape).astype(np.float32))
        full["global_step"] = ("I32", np.array([1200], dtype=np.int32))
        full["learning_rate"] = ("F32", np.array(3e-4, dtype=np.float32))
        layouts = tp_layouts({n: v for n, v in full.items() if n not in ("global_step",
                                                                          "learning_rate")}, [2])
        return full, layouts

    def test_training_checkpoint_with_optimizer_state(self):
        full, layouts = self.training_set()
        p = self.check_set(full, layouts, 2, 1)
        self.assertIn("dropped training state: adam_m (21 tensors", p.stderr)
        self.assertIn("adam_v (21 tensors", p.stderr)
        self.assertIn("training scalars (2 tensors", p.stderr)

    def test_merge_drops_training_state_whole_kinds_on_request(self):
        full, layouts = self.training_set()
        folder, _ = self.make_set(full, layouts, 2, 1)
        merged = self.path("merged.ckpt")
        p = run("merge", "--input", folder, "--output", merged, "--drop-training-state")
        self.assert_tensors(merged, self.full)
        self.assertIn("dropped training state: adam_m (21 tensors", p.stderr)

    def test_a_scalar_that_differs_between_ranks_is_refused(self):
        full, layouts = self.training_set()
        folder, _ = self.make_set(full, layouts, 2, 1)
        path = os.path.join(folder, "rank_1", "checkpoint_1.ckpt")
        t = as_arrays(ms.read_ckpt(path))
        t["global_step"] = ("I32", np.array([1201], dtype=np.int32))
        ms.write_ckpt(path, [(n, c, a) for n, (c, a) in t.items()])
        p = run("merge", "--input", folder, "--output", self.path("m.ckpt"), check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn('"global_step" differs between rank_0 and rank_1', p.stderr)

    def test_inspect_and_plan_read_headers_only(self):
        folder, strat = self.make_set(self.full, tp_layouts(self.full, [2]), 2, 1)
        p = run("inspect", folder)
        self.assertIn("model.layers.0.attention.wo.weight", p.stdout)
        self.assertIn("[32, 32]", p.stdout)
        self.assertIn("strategy found beside the rank folders", p.stderr)
        p = run("plan", "--rules", LLAMA, "--reverse", "--input", folder)
        self.assertIn("model.layers.1.mlp.down_proj.weight", p.stdout)
        # lint --against plans forward, so a MindSpore checkpoint fails it; the same way as merged.
        merged = self.path("merged.ckpt")
        run("merge", "--input", folder, "--output", merged, "--quiet")
        on_folder = run("lint", LLAMA, "--against", folder, check=False)
        on_merged = run("lint", LLAMA, "--against", merged, check=False)
        self.assertEqual(on_folder.returncode, on_merged.returncode)
        self.assertEqual(on_folder.stdout, on_merged.stdout)


class Faults(DistributedTest):
    def assert_refused(self, args, out_dir, *needles, code=1):
        p = run(*args, check=False)
        self.assertEqual(p.returncode, code, p.stderr)
        for needle in needles:
            self.assertIn(needle, p.stderr)
        self.assertEqual(os.listdir(out_dir), [], "output or temporary left behind")
        return p

    def test_a_missing_rank_is_named(self):
        folder, _ = self.make_set(self.full, tp_layouts(self.full, [2, 2]), 4, 1)
        shutil.rmtree(os.path.join(folder, "rank_2"))
        out = self.path("out")
        os.mkdir(out)
        self.assert_refused(["merge", "--input", folder, "--output", out + "/m.ckpt"], out,
                            "rank 2 is missing", "4 ranks")

    def test_a_truncated_rank_file_is_named(self):
        folder, _ = self.make_set(self.full, tp_layouts(self.full, [2]), 2, 1)
        path = os.path.join(folder, "rank_1", "checkpoint_1.ckpt")
        os.truncate(path, os.path.getsize(path) - 100)
        out = self.path("out")
        os.mkdir(out)
        self.assert_refused(["merge", "--input", folder, "--output", out + "/m.ckpt"], out, path)

    def test_a_differing_replica_names_the_tensor_and_the_ranks(self):
        layouts = tp_layouts(self.full, [2, 2])
        folder, _ = self.make_set(self.full, layouts, 4, 1)
        path = os.path.join(folder, "rank_3", "checkpoint_3.ckpt")
        t = as_arrays(ms.read_ckpt(path))
        code, w = t["model.layers.1.attention.wq.weight"]
        w = w.copy()
        w[3, 5] ^= 0x40
        t["model.layers.1.attention.wq.weight"] = (code, w)
        ms.write_ckpt(path, [(n, c, a) for n, (c, a) in t.items()])
        out = self.path("out")
        os.mkdir(out)
        self.assert_refused(["merge", "--input", folder, "--output", out + "/m.ckpt"], out,
                            '"model.layers.1.attention.wq.weight" differs between rank_1 and rank_3',
                            path)
        self.assert_refused(["convert", "--rules", LLAMA, "--reverse", "--input", folder,
                             "--output", out + "/hf/"], out, "rank_3")
        # Skipping the comparison is said, and then takes rank 1's copy.
        p = run("merge", "--input", folder, "--output", out + "/m.ckpt", "--skip-replica-check")
        self.assertIn("replicas are not compared", p.stderr)
        self.assert_tensors(out + "/m.ckpt", self.full)

    def test_a_strategy_of_another_network_is_refused(self):
        layouts = tp_layouts(self.full, [2])
        folder, strat = self.make_set(self.full, layouts, 2, 1)
        extra = dict(layouts)
        extra["model.layers.7.attention.wq.weight"] = ms.Layout([2], [0, -1])
        ms.write_strategy(strat, extra)
        out = self.path("out")
        os.mkdir(out)
        self.assert_refused(["merge", "--input", folder, "--output", out + "/m.ckpt"], out,
                            "model.layers.7.attention.wq.weight", "another network")
        fewer = {n: l for n, l in layouts.items() if "layers.1.attention.wq" not in n}
        ms.write_strategy(strat, fewer)
        self.assert_refused(["merge", "--input", folder, "--output", out + "/m.ckpt"], out,
                            "model.layers.1.attention.wq.weight", "does not lay it out")

    def test_layouts_the_spec_rejects_are_refused_at_their_layout(self):
        layouts = tp_layouts(self.full, [2])
        folder, strat = self.make_set(self.full, layouts, 2, 1)
        out = self.path("out")
        os.mkdir(out)
        for bad in (ms.Layout([2], [0, -1], field=4), ms.Layout([2], [0, -1], split=[40, 24])):
            changed = dict(layouts)
            changed["model.tok_embeddings.embedding_weight"] = bad
            ms.write_strategy(strat, changed)
            p = self.assert_refused(["merge", "--input", folder, "--output", out + "/m.ckpt"], out,
                                    strat, "byte ")
            self.assertTrue("field" in p.stderr or "uneven" in p.stderr, p.stderr)

    def test_sigint_mid_merge_leaves_nothing(self):
        # Two ranks of 128 MiB slices, written sparse: long enough to stop in the middle.
        folder = self.path("big")
        rows, cols = 32768, 1024
        for r in range(2):
            write_sparse_ckpt(os.path.join(folder, f"rank_{r}", "checkpoint.ckpt"),
                              "w", [rows // 2, cols], "Float32")
        ms.write_strategy(os.path.join(folder, "strategy.ckpt"), {"w": ms.Layout([2], [0, -1])})
        out = self.path("out")
        os.mkdir(out)
        p = subprocess.Popen([BIN, "merge", "--input", folder, "--output", out + "/m.ckpt",
                              "--threads", "1"], stderr=subprocess.PIPE, text=True)
        self.addCleanup(p.kill)
        while p.poll() is None and not os.listdir(out):
            time.sleep(0.001)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
        if p.returncode == 0:
            self.skipTest("the merge finished before it could be interrupted")
        self.assertEqual(p.returncode, 130, err)
        self.assertIn("interrupted", err)
        self.assertEqual(os.listdir(out), [])


def write_sparse_ckpt(path, tag, dims, tensor_type):
    """One .ckpt record of zeros, written by hand with the content left sparse."""
    def varint(v):
        out = bytearray()
        while True:
            b = v & 0x7F
            v >>= 7
            out.append(b | (0x80 if v else 0))
            if not v:
                return bytes(out)
    size = 4 * int(np.prod(dims))
    tensor = b"".join(b"\x08" + varint(d) for d in dims)
    tensor += b"\x12" + varint(len(tensor_type)) + tensor_type.encode()
    tensor += b"\x1a" + varint(size)
    value = b"\x0a" + varint(len(tag)) + tag.encode() + b"\x12" + varint(len(tensor) + size)
    record_len = len(value) + len(tensor) + size
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"\x0a" + varint(record_len) + value + tensor)
        f.truncate(f.tell() + size)


class RealPipelineStrategies(DistributedTest):
    """MindFormers' real merged 2-stage GPT-2 strategies with synthetic rank files cut by them (the
    strategy holds no shapes: each axis gets 4 elements per piece)."""

    def test_rank_files_cut_by_the_real_strategies_merge_back(self):
        rng = np.random.default_rng(11)
        for name, devices in (("strategy_4_npus.ckpt", 2), ("strategy_8_npus.ckpt", 4)):
            with self.subTest(strategy=name):
                strategy = os.path.join(PIPELINE, name)
                layouts = ms.read_strategy_layouts(strategy)
                self.assertEqual(len(layouts), 144)  # 148 items, 4 names in both stages
                self.assertEqual(
                    sorted(layouts["backbone.embedding.word_embedding.embedding_table"].stages),
                    [0, 1])
                full = {}
                for n, lay in layouts.items():
                    shape = [4 * p for p in lay.pieces([0] * len(lay.tmap))]
                    full[n] = ("F32", rng.standard_normal(shape).astype(np.float32))
                folder = self.path("pp")
                ms.write_rank_folders(folder, full, layouts, devices, 2)
                merged = self.path("pp.ckpt")
                run("merge", "--input", folder, "--strategy", strategy, "--output", merged,
                    "--quiet")
                self.assert_tensors(merged, full, ordered=False)
                shutil.rmtree(folder)
                os.remove(merged)


class GoldenStick(TempDirTest):
    def test_the_real_pair_is_refused_naming_lm_head(self):
        out = self.path("out")
        os.mkdir(out)
        # As it stands: its strategy lays out 39 layers the checkpoints lack.
        p = run("merge", "--input", GOLDEN_STICK, "--output", out + "/m.ckpt", check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("351 parameter(s) no rank file holds", p.stderr)
        # Past that, the replica comparison catches the head the strategy calls replicated.
        p = run("merge", "--input", GOLDEN_STICK, "--output", out + "/m.ckpt",
                "--allow-unused-layouts", check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn('"lm_head.weight" differs between rank_0 and rank_1', p.stderr)
        self.assertIn("replicas", p.stderr)
        p = run("convert", "--rules", LLAMA, "--reverse", "--input", GOLDEN_STICK,
                "--allow-unused-layouts", "--output", out + "/hf/", check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("lm_head.weight", p.stderr)
        self.assertEqual(os.listdir(out), [])

    def test_the_real_pair_lists_full_shapes_from_headers(self):
        p = run("inspect", "--json", GOLDEN_STICK, "--allow-unused-layouts")
        import json
        shapes = {t["name"]: t["shape"] for t in json.loads(p.stdout)["tensors"]}
        self.assertEqual(shapes["model.layers.0.attention.wq.weight"], [40, 40])
        self.assertEqual(shapes["model.layers.0.feed_forward.w2.weight"], [40, 256])
        self.assertEqual(shapes["model.tok_embeddings.embedding_weight"], [32000, 40])
        self.assertEqual(shapes["lm_head.weight"], [16000, 40])  # as the strategy calls it


if __name__ == "__main__":
    unittest.main()
