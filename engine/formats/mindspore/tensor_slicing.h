// Which slice of a full tensor each device of a pipeline stage holds: the arithmetic of MindSpore's
// tensor layouts (docs/distributed.md, "Slices"). Pure functions, no I/O.
//
// A layout has a device matrix D of n axes, outermost first, the last varying fastest: device d
// (0 <= d < prod(D)) sits at coordinate c with d = sum over j of c[j] * prod(D[j+1:]). For each
// tensor axis it lists the device axes that cut it, outermost first, each counted from the right
// end of D (device axis a has size D[n-1-a]; 0 is the last one). An axis cut by device axes
// a_1..a_m is cut into P = D[n-1-a_1] * ... * D[n-1-a_m] equal pieces, and device d holds piece
//
//   k = (...(c[n-1-a_1] * D[n-1-a_2] + c[n-1-a_2]) * ...) * D[n-1-a_m] + c[n-1-a_m]
//
// that is, the block [k * L, (k + 1) * L) of the axis, L = full length / P. An axis cut by no
// device axis is whole on every device. Device axes that cut no tensor axis are replica axes:
// devices that differ only there hold identical slices.
//
// MindSpore's own rule (mindspore/parallel/_tensor.py: the device coordinate, the slice index, and
// the concatenation of slices in index order) gives the same blocks; a tensor map entry -1 is an
// axis cut by no device axis, k >= 0 an axis cut by device axis k.
#pragma once

#include <cstdint>
#include <vector>

#include "cw/error.h"
#include "engine/tensor/tensor.h"

namespace cw::mindspore {

struct TensorLayout {
  std::vector<uint64_t> dev_matrix;
  // Per tensor axis, the device axes cutting it, outermost first; empty: not cut.
  std::vector<std::vector<uint32_t>> tensor_map;

  bool operator==(const TensorLayout&) const = default;
};

// One axis of a slice: elements [offset, offset + length) of the full tensor's axis.
struct AxisRange {
  uint64_t offset = 0;
  uint64_t length = 0;

  bool operator==(const AxisRange&) const = default;
};
using TensorSlice = std::vector<AxisRange>;

// kCorrupt, without a location (the caller knows where the layout came from), unless every device
// axis has size >= 1, the tensor has at most limits::kMaxRank axes, every listed device axis
// exists and none cuts two tensor axes or one axis twice; kLimitExceeded when the device count is
// over limits::kMaxDevicesPerStage or the device matrix has more than limits::kMaxRank axes.
Status CheckTensorLayout(const TensorLayout& layout);

// REQUIRES, for every function below: CheckTensorLayout(layout) is ok.

// prod(dev_matrix): the devices of one pipeline stage.
uint64_t DeviceCount(const TensorLayout& layout);
// How many pieces each tensor axis is cut into.
std::vector<uint64_t> PiecesPerAxis(const TensorLayout& layout);
// Which piece of each tensor axis `device` holds. REQUIRES: device < DeviceCount(layout).
std::vector<uint64_t> PieceIndex(const TensorLayout& layout, uint64_t device);
// The devices holding identical slices: one group per distinct piece index, groups ordered by
// their first device, devices ascending. Every device is in exactly one group.
std::vector<std::vector<uint64_t>> ReplicaGroups(const TensorLayout& layout);

// The full shape given the shape of one device's slice: each axis times its pieces. kCorrupt when
// the ranks differ or a length overflows.
Result<Shape> FullShape(const TensorLayout& layout, const Shape& slice_shape);
// The block `device` holds of a tensor of `full_shape`. kCorrupt when the ranks differ;
// kUnsupported when an axis does not split evenly into its pieces (MindSpore needs an explicit
// uneven split for that, which is refused when the strategy is read).
// REQUIRES: device < DeviceCount(layout).
Result<TensorSlice> SliceOf(const TensorLayout& layout, const Shape& full_shape, uint64_t device);

// The layout of what each device saves when the optimizer shard (parallel optimizer) is on: its
// model-parallel slice cut again along axis 0 into `size` pieces, spread over devices `step` apart.
// As MindSpore's checkpoint transform models it (_construct_tensor_layout_for_opt_shard, the only
// path ported): the device matrix becomes [repeat, size, S_0, ..., S_m-1] (repeat left out when it
// is 1), S being PiecesPerAxis(layout) and repeat = devices / (step * size); axis 0 is cut by the
// S_0 axis, then, inside each of those pieces, by the size axis; axis i > 0 by the S_i axis.
// Devices are thus numbered over S, not over the original device matrix: the two agree whenever
// the tensor map names device axes in descending order.
//   step == 0 or size == 0: no optimizer shard, `layout` is returned as is.
//   size == -1: every device holding the same model-parallel slice, devices / prod(S).
// kUnsupported: the replica axes (device axes of size > 1 cutting no tensor axis) are not just the
// leftmost one or all of them (MindSpore's other path, which reorders the device matrix); an axis
// cut by several device axes; a fully replicated tensor with step != 1 (MindSpore's model of it
// ignores the step). kCorrupt: negative step, size below -1, no replica axis to shard over, a step
// other than the product of the device axes right of the single replica axis (MindSpore checks
// it), step * size not dividing the device count, a tensor without axes.
Result<TensorLayout> FoldOptimizerShard(const TensorLayout& layout, int64_t step, int64_t size);

}  // namespace cw::mindspore
