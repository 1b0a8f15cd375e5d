"""A MindSpore distributed-checkpoint maker for the tests: full tensors cut into per-rank .ckpt files
plus the parallel-strategy file(s) MindSpore would save with them.

Written from the spec's rules (mindspore-distributed.md §2.1-2.3, §2.6 and §3), independently of
ConvertWeight's C++ (which merges and splits), with numpy and Python protobuf only:

  - device coordinate of local rank r: mixed radix over the device matrix D, last axis fastest;
  - tensor axis i cut by device axis a (counted from the right of D) into D[n-1-a] pieces; rank r
    holds piece c[n-1-a];
  - optimizer shard (step > 0, size != 0; size -1 = every replica): the model-parallel block is cut
    again on axis 0 into `size` pieces, rank r holding piece (r // step) % size;
  - pipeline: global rank g is local rank g % N of stage g // N; a stage's ranks hold the tensors
    laid out for that stage, and every rank holds the values the strategy does not lay out.

Tensors are (dtype code, numpy array) pairs; dtype codes as safetensors ("F32", "BF16", ...), bf16
arrays held as uint16 bit patterns.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
import cw_testlib  # noqa: E402
from cw_testlib import SOURCE  # noqa: E402

PROTOC = os.environ.get("CW_PROTOC", "protoc")
MS_TYPE = {"F32": "Float32", "F16": "Float16", "BF16": "BFloat16", "I32": "Int32", "I64": "Int64"}
NP_TYPE = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I32": np.int32,
           "I64": np.int64}
CODE_OF_MS = {v: k for k, v in MS_TYPE.items()}


def _protos():
    """checkpoint_pb2 and parallel_strategy_pb2, compiled once from schemas/."""
    if not hasattr(_protos, "modules"):
        out = tempfile.mkdtemp(prefix="cw-proto-")
        subprocess.run([PROTOC, f"--proto_path={SOURCE}/schemas", f"--python_out={out}",
                        "checkpoint.proto", "parallel_strategy.proto"], check=True)
        sys.path.insert(0, out)
        import checkpoint_pb2  # noqa: E402
        import parallel_strategy_pb2  # noqa: E402
        _protos.modules = (checkpoint_pb2, parallel_strategy_pb2)
    return _protos.modules


class Layout:
    """One parameter's layout: device matrix, tensor map (-1, a device axis, or a list of them per
    tensor axis), optimizer shard, and the pipeline stages that lay it out."""

    def __init__(self, dev, tmap, stages=(0,), opt_step=0, opt_size=0, field=0, split=()):
        self.field = field  # a field-sliced embedding's field size (refused by readers)
        self.split = list(split)  # param_split_shape: an uneven split (refused by readers)
        self.dev = list(dev)
        self.tmap = list(tmap)
        self.stages = list(stages)
        self.opt_step = opt_step
        self.opt_size = opt_size

    def axes(self, i):
        a = self.tmap[i]
        return [] if a == -1 else list(a) if isinstance(a, (list, tuple)) else [a]

    def devices(self):
        return int(np.prod(self.dev))

    def coordinate(self, r):
        c = [0] * len(self.dev)
        for j in reversed(range(len(self.dev))):
            c[j] = r % self.dev[j]
            r //= self.dev[j]
        return c

    def block(self, shape, r):
        """The slice local rank r holds of a full tensor of `shape`: a tuple of python slices."""
        n = len(self.dev)
        c = self.coordinate(r)
        out = []
        for i, length in enumerate(shape):
            pieces, k = 1, 0
            for a in self.axes(i):
                pieces *= self.dev[n - 1 - a]
                k = k * self.dev[n - 1 - a] + c[n - 1 - a]
            assert length % pieces == 0, (shape, self.dev, self.tmap)
            size = length // pieces
            out.append([k * size, (k + 1) * size])
        if self.opt_step > 0 and self.opt_size != 0 and out:
            mp = int(np.prod([out_len for out_len in self.pieces(shape)]))
            size = self.devices() // mp if self.opt_size == -1 else self.opt_size
            o = (r // self.opt_step) % size
            lo, hi = out[0]
            part = (hi - lo) // size
            assert (hi - lo) % size == 0
            out[0] = [lo + o * part, lo + (o + 1) * part]
        return tuple(slice(lo, hi) for lo, hi in out)

    def pieces(self, shape):
        n = len(self.dev)
        return [int(np.prod([self.dev[n - 1 - a] for a in self.axes(i)])) for i in range(len(shape))]


def tensor_bytes(code, array):
    return np.ascontiguousarray(array).astype(NP_TYPE[code], copy=False).tobytes()


def write_ckpt(path, tensors):
    """A .ckpt of (name, code, array) in order, written with Python protobuf as MindSpore does."""
    ckpt_pb2, _ = _protos()
    msg = ckpt_pb2.Checkpoint()
    for name, code, array in tensors:
        v = msg.value.add()
        v.tag = name
        v.tensor.dims.extend(list(array.shape))
        v.tensor.tensor_type = MS_TYPE[code]
        v.tensor.tensor_content = tensor_bytes(code, array)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(msg.SerializeToString())


def read_ckpt(path):
    """{name: (code, shape, bytes)}, records of one tag joined."""
    ckpt_pb2, _ = _protos()
    msg = ckpt_pb2.Checkpoint()
    with open(path, "rb") as f:
        msg.ParseFromString(f.read())
    out = {}
    for v in msg.value:
        prev = out.get(v.tag)
        data = (prev[2] if prev else b"") + v.tensor.tensor_content
        out[v.tag] = (CODE_OF_MS[v.tensor.tensor_type], list(v.tensor.dims), data)
    return out


def rank_tensors(full, layouts, devices, rank, remove_redundancy=False):
    """The (name, code, slice) list global rank `rank` saves. full: {name: (code, array)} in order;
    layouts: {name: Layout}; devices: per stage. With remove_redundancy, a rank saves a block only
    for one rank of its replica group, in turn by tensor (MindSpore's de-redundant save)."""
    stage, local = divmod(rank, devices)
    out = []
    for index, (name, (code, array)) in enumerate(full.items()):
        layout = layouts.get(name)
        if layout is None:
            out.append((name, code, array))
            continue
        if stage not in layout.stages:
            continue
        block = layout.block(array.shape, local)
        if remove_redundancy:
            # One rank of each replica group saves the block, chosen in turn.
            group = [d for d in range(layout.devices()) if layout.block(array.shape, d) == block]
            if group[index % len(group)] != local:
                continue
        out.append((name, code, array[block]))
    return out


def write_rank_folders(folder, full, layouts, devices, stages, name="checkpoint_{r}.ckpt",
                       remove_redundancy=False):
    for r in range(devices * stages):
        write_ckpt(os.path.join(folder, f"rank_{r}", name.format(r=r)),
                   rank_tensors(full, layouts, devices, r, remove_redundancy))


def _layout_item(strategy, name, layout):
    item = strategy.parallel_layout_item.add()
    item.param_name = name
    ls = item.parallel_layouts
    ls.dev_matrix.add().dim.extend(layout.dev)
    if any(isinstance(a, (list, tuple)) for a in layout.tmap):
        for a in layout.tmap:
            ls.tensor_map.add().dim.extend(list(a) if isinstance(a, (list, tuple)) else [a])
    else:
        ls.tensor_map.add().dim.extend(layout.tmap)
    ls.param_split_shape.add().dim.extend(layout.split)
    ls.indices_offset.add()
    ls.field = layout.field
    ls.opt_weight_shard_step = layout.opt_step
    ls.opt_weight_shard_size = layout.opt_size


def strategy_bytes(layouts, stage=None):
    """A per-stage strategy file (stage given: the layouts of that stage, its operator on that
    stage) or a merged one (stage None: every name prefixed "<stage>-")."""
    _, pb = _protos()
    s = pb.ParallelStrategyMap()
    s.current_stage = 1
    stages = sorted({st for lay in layouts.values() for st in lay.stages})
    for st in ([stage] if stage is not None else stages):
        op = s.parallel_strategy_item.add()
        op.node_name = f"MatMul_stage{st}"
        op.parallel_strategys.stage = st
        op.parallel_strategys.parallel_strategy.add().dim.extend([1, 1])
    for st in ([stage] if stage is not None else stages):
        for name, layout in layouts.items():
            if st in layout.stages:
                _layout_item(s, name if stage is not None else f"{st}-{name}", layout)
    return s.SerializeToString()


def write_strategy(path, layouts, stage=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(strategy_bytes(layouts, stage))


def write_stage_strategies(folder, layouts, devices, stages):
    """One file per rank, as MindFormers saves them: strategy/ckpt_strategy_rank_<r>.ckpt."""
    for r in range(devices * stages):
        write_strategy(os.path.join(folder, f"ckpt_strategy_rank_{r}.ckpt"), layouts, r // devices)


def read_strategy_layouts(path):
    """{name: Layout} of a strategy file (merged names' "<stage>-" prefixes joined into stages),
    parsed with Python protobuf."""
    _, pb = _protos()
    s = pb.ParallelStrategyMap()
    with open(path, "rb") as f:
        s.ParseFromString(f.read())
    file_stage = s.parallel_strategy_item[0].parallel_strategys.stage if s.parallel_strategy_item else 0
    out = {}
    for item in s.parallel_layout_item:
        name, stage = item.param_name, file_stage
        head, sep, rest = name.partition("-")
        if sep and head.isdigit():
            name, stage = rest, int(head)
        ls = item.parallel_layouts
        maps = [list(m.dim) for m in ls.tensor_map]
        tmap = maps[0] if len(maps) == 1 else [m if len(m) > 1 else m[0] for m in maps if m]
        if name in out:
            out[name].stages.append(stage)
            continue
        out[name] = Layout(list(ls.dev_matrix[0].dim), tmap, [stage], ls.opt_weight_shard_step,
                           ls.opt_weight_shard_size)
    return out


def write_safetensors(path, tensors, metadata=None):
    """An HF safetensors file of {name: (code, array)}."""
    cw_testlib.write_safetensors(
        path, {name: (code, array.shape, tensor_bytes(code, array))
               for name, (code, array) in tensors.items()}, metadata)
