#!/usr/bin/python3
"""Checks `convert_weight inspect --json` of MindSpore parallel-strategy files against protobuf.

The real strategy files of tests/data/external/mindspore-distributed are parsed with Python
protobuf (Debian python3-protobuf, schemas/parallel_strategy.proto compiled here with CW_PROTOC),
and every layout, stage and operator is compared with what convert_weight reports. The slices
each rank holds are worked out here independently, with the rule of docs/distributed.md: the
device coordinate in mixed radix over the device matrix (last axis fastest), then per tensor axis
the coordinate of the device axis named by the tensor map, counted from the right.

Run by ctest with /usr/bin/python3 and CW_BIN, CW_SOURCE_DIR, CW_PROTOC set.
"""

import importlib
import json
import math
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import unittest

BIN = os.environ["CW_BIN"]
SOURCE = pathlib.Path(os.environ["CW_SOURCE_DIR"])
DATA = SOURCE / "tests/data/external/mindspore-distributed"
PROTOC = os.environ.get("CW_PROTOC") or "protoc"

GOLDEN_STICK = DATA / "golden-stick-llama2-2p/strategy"
PIPELINE = DATA / "mindformers-gpt2-pipeline-strategies"
FILES = [GOLDEN_STICK / "ckpt_strategy_rank_0.ckpt", PIPELINE / "strategy_4_npus.ckpt",
         PIPELINE / "strategy_8_npus.ckpt"]

pb = None  # parallel_strategy_pb2, compiled in setUpModule
_proto_dir = tempfile.TemporaryDirectory()


def setUpModule():
    global pb
    subprocess.run([PROTOC, f"--proto_path={SOURCE / 'schemas'}",
                    f"--python_out={_proto_dir.name}",
                    str(SOURCE / "schemas/parallel_strategy.proto")], check=True)
    sys.path.insert(0, _proto_dir.name)
    pb = importlib.import_module("parallel_strategy_pb2")


def tearDownModule():
    _proto_dir.cleanup()


def inspect_json(path):
    p = subprocess.run([BIN, "inspect", "--json", str(path)], capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"inspect {path} failed:\n{p.stderr}")
    return json.loads(p.stdout)


def parse(path):
    strategy = pb.ParallelStrategyMap()
    strategy.ParseFromString(path.read_bytes())
    assert strategy.IsInitialized()
    return strategy


def tensor_map(layouts):
    """Per tensor axis: -1, a device axis, or a list of them (the Layout API's nested form)."""
    maps = [list(m.dim) for m in layouts.tensor_map]
    if len(maps) == 1:
        return maps[0]
    axes = []
    for entry in (m for m in maps if m):
        named = [a for a in entry if a != -1]
        axes.append(-1 if not named else named[0] if len(named) == 1 else named)
    return axes


def device_axes(axis):
    return [] if axis == -1 else axis if isinstance(axis, list) else [axis]


def slices(dev, tmap, stage):
    """[(piece index per axis, global ranks holding it)], in order of each piece's first rank."""
    n = len(dev)
    devices = math.prod(dev)
    groups = {}
    for rank in range(devices):
        coordinate, rest = [0] * n, rank
        for j in reversed(range(n)):
            coordinate[j], rest = rest % dev[j], rest // dev[j]
        piece = []
        for axis in tmap:
            k = 0
            for a in device_axes(axis):
                k = k * dev[n - 1 - a] + coordinate[n - 1 - a]
            piece.append(k)
        groups.setdefault(tuple(piece), []).append(stage * devices + rank)
    return [{"piece": list(piece), "ranks": ranks} for piece, ranks in groups.items()]


def expected_layouts(strategy):
    """{(name, stage): layout} as the file gives it, stage prefixes split off."""
    merged = re.match(r"\d+-.", strategy.parallel_layout_item[0].param_name) is not None
    file_stage = (strategy.parallel_strategy_item[0].parallel_strategys.stage
                  if strategy.parallel_strategy_item else 0)
    out = {}
    for item in strategy.parallel_layout_item:
        name, stage = item.param_name, file_stage
        if merged:
            prefix, name = name.split("-", 1)
            stage = int(prefix)
        l = item.parallel_layouts
        # One device matrix, even splits: what the real files hold and convert_weight accepts.
        shape = (len(l.dev_matrix), len(l.param_split_shape[0].dim), len(l.indices_offset[0].dim))
        assert shape == (1, 0, 0), shape
        dev, tmap = list(l.dev_matrix[0].dim), tensor_map(l)
        out[(name, stage)] = {
            "stage": stage, "dev_matrix": dev, "tensor_map": tmap, "field": l.field,
            "opt_weight_shard_step": l.opt_weight_shard_step,
            "opt_weight_shard_size": l.opt_weight_shard_size,
            "pieces": [math.prod(dev[len(dev) - 1 - a] for a in device_axes(axis))
                       for axis in tmap],
            "slices": slices(dev, tmap, stage)}
    return out, merged


class StrategyInterop(unittest.TestCase):
    def test_every_layout_and_rank_slice_matches_protobuf(self):
        for path in FILES:
            with self.subTest(file=path.name):
                strategy = parse(path)
                want, merged = expected_layouts(strategy)
                got = inspect_json(path)
                self.assertEqual(got["format"], "mindspore-strategy")
                [source] = got["files"]
                self.assertEqual((source["current_stage"], source["merged"],
                                  source["layout_items"], source["operators"]),
                                 (strategy.current_stage, merged,
                                  len(strategy.parallel_layout_item),
                                  len(strategy.parallel_strategy_item)))
                have = {(p["name"], s["stage"]): s for p in got["parameters"] for s in p["stages"]}
                self.assertEqual(have, want)
                self.assertEqual(sorted(got["stages"]), sorted({s for _, s in want}))
                devices = {math.prod(layout["dev_matrix"]) for layout in want.values()}
                self.assertEqual([got["devices_per_stage"]], list(devices))
                self.assertEqual(
                    [(op["name"], op["stage"]) for op in got["operators"]],
                    [(i.node_name, i.parallel_strategys.stage)
                     for i in strategy.parallel_strategy_item])

    def test_parameters_of_several_stages_list_the_lowest_first(self):
        got = inspect_json(PIPELINE / "strategy_4_npus.ckpt")
        for p in got["parameters"]:
            stages = [s["stage"] for s in p["stages"]]
            self.assertEqual(stages, sorted(stages), p["name"])
        tied = [p["name"] for p in got["parameters"] if len(p["stages"]) > 1]
        self.assertIn("backbone.embedding.word_embedding.embedding_table", tied)

    def test_a_folder_of_the_per_rank_files_reads_as_one_of_them(self):
        folder = inspect_json(GOLDEN_STICK)
        single = inspect_json(GOLDEN_STICK / "ckpt_strategy_rank_0.ckpt")
        self.assertEqual([f["skipped"] for f in folder["files"]], [False, True])
        self.assertEqual(folder["parameters"], single["parameters"])
        self.assertEqual(folder["operators"], single["operators"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
