#include "engine/formats/mindspore/tensor_slicing.h"

#include <map>
#include <optional>
#include <string>

#include "engine/base/checked_math.h"
#include "engine/base/limits.h"

namespace cw::mindspore {
namespace {

Error Corrupt(std::string message) { return Error(ErrorCode::kCorrupt, std::move(message)); }

// Size of device axis `axis` (counted from the right).
uint64_t AxisSize(const TensorLayout& layout, uint32_t axis) {
  return layout.dev_matrix[layout.dev_matrix.size() - 1 - axis];
}

// Positions in the device matrix (left to right) of the replica axes: size > 1, cutting nothing.
Result<std::vector<size_t>> ReplicaAxes(const TensorLayout& layout) {
  const std::vector<uint64_t>& dev = layout.dev_matrix;
  std::vector<bool> cuts(dev.size(), false);
  for (const std::vector<uint32_t>& axes : layout.tensor_map) {
    if (axes.size() > 1) {
      return Error(ErrorCode::kUnsupported,
                   "optimizer shard on a tensor axis cut by several device axes");
    }
    for (const uint32_t axis : axes)
      cuts[dev.size() - 1 - axis] = true;
  }
  std::vector<size_t> replica;
  for (size_t j = 0; j < dev.size(); ++j) {
    if (!cuts[j] && dev[j] > 1)
      replica.push_back(j);
  }
  if (replica.empty())
    return Corrupt("optimizer shard, but every device holds a different slice");
  return replica;
}

// MindSpore's simple path: the leftmost axis is the only replica axis, or every axis is one.
Status CheckShardPath(const TensorLayout& layout, const std::vector<size_t>& replica,
                      uint64_t step) {
  const std::vector<uint64_t>& dev = layout.dev_matrix;
  if (replica.front() != 0 || (replica.size() > 1 && replica.size() < dev.size())) {
    return Error(ErrorCode::kUnsupported,
                 "optimizer shard over replica device axes other than the leftmost one or all of "
                 "them (MindSpore's general layout path is not ported)");
  }
  if (replica.size() == 1) {
    const uint64_t right = DeviceCount(layout) / dev[0];
    if (step != right) {
      return Corrupt("optimizer shard step " + std::to_string(step) +
                     " is not the product of the device axes right of the replica axis (" +
                     std::to_string(right) + ")");
    }
  } else if (step != 1) {
    return Error(ErrorCode::kUnsupported,
                 "optimizer shard step " + std::to_string(step) +
                     " on a fully replicated tensor (MindSpore's model of it ignores the step)");
  }
  return OkStatus();
}

}  // namespace

Status CheckTensorLayout(const TensorLayout& layout) {
  const std::vector<uint64_t>& dev = layout.dev_matrix;
  if (dev.size() > limits::kMaxRank) {
    return Error(ErrorCode::kLimitExceeded,
                 "device matrix of " + std::to_string(dev.size()) + " axes is over the cap of " +
                     std::to_string(limits::kMaxRank) + " (limits::kMaxRank)");
  }
  for (const uint64_t size : dev) {
    if (size == 0)
      return Corrupt("device matrix " + ShapeToString(dev) + " has an axis of size 0");
  }
  const std::optional<uint64_t> devices = CheckedProduct(dev);
  if (!devices || *devices > limits::kMaxDevicesPerStage) {
    return Error(ErrorCode::kLimitExceeded, "device matrix " + ShapeToString(dev) +
                                                " has more devices than the cap of " +
                                                std::to_string(limits::kMaxDevicesPerStage) +
                                                " (limits::kMaxDevicesPerStage)");
  }
  if (layout.tensor_map.size() > limits::kMaxRank) {
    return Error(ErrorCode::kLimitExceeded,
                 "tensor map of " + std::to_string(layout.tensor_map.size()) +
                     " axes is over the cap of " + std::to_string(limits::kMaxRank) +
                     " (limits::kMaxRank)");
  }
  std::vector<bool> used(dev.size(), false);
  for (size_t i = 0; i < layout.tensor_map.size(); ++i) {
    for (const uint32_t axis : layout.tensor_map[i]) {
      if (axis >= dev.size()) {
        return Corrupt("tensor axis " + std::to_string(i) + " is cut by device axis " +
                       std::to_string(axis) + ", but the device matrix " + ShapeToString(dev) +
                       " has " + std::to_string(dev.size()) + " axes");
      }
      if (used[axis]) {
        return Corrupt("device axis " + std::to_string(axis) + " cuts the tensor twice");
      }
      used[axis] = true;
    }
  }
  return OkStatus();
}

uint64_t DeviceCount(const TensorLayout& layout) {
  return CheckedProduct(layout.dev_matrix).value_or(0);
}

std::vector<uint64_t> PiecesPerAxis(const TensorLayout& layout) {
  std::vector<uint64_t> pieces;
  pieces.reserve(layout.tensor_map.size());
  for (const std::vector<uint32_t>& axes : layout.tensor_map) {
    uint64_t p = 1;
    for (const uint32_t axis : axes)
      p *= AxisSize(layout, axis);  // at most the device count: no overflow
    pieces.push_back(p);
  }
  return pieces;
}

std::vector<uint64_t> PieceIndex(const TensorLayout& layout, uint64_t device) {
  const size_t n = layout.dev_matrix.size();
  std::vector<uint64_t> coordinate(n);
  for (size_t j = n; j-- > 0;) {
    coordinate[j] = device % layout.dev_matrix[j];
    device /= layout.dev_matrix[j];
  }
  std::vector<uint64_t> index;
  index.reserve(layout.tensor_map.size());
  for (const std::vector<uint32_t>& axes : layout.tensor_map) {
    uint64_t k = 0;
    for (const uint32_t axis : axes)
      k = k * AxisSize(layout, axis) + coordinate[n - 1 - axis];
    index.push_back(k);
  }
  return index;
}

std::vector<std::vector<uint64_t>> ReplicaGroups(const TensorLayout& layout) {
  std::vector<std::vector<uint64_t>> groups;
  std::map<std::vector<uint64_t>, size_t> group_of;  // piece index -> its group
  const uint64_t devices = DeviceCount(layout);
  for (uint64_t d = 0; d < devices; ++d) {
    const auto [it, added] = group_of.try_emplace(PieceIndex(layout, d), groups.size());
    if (added)
      groups.emplace_back();
    groups[it->second].push_back(d);
  }
  return groups;
}

Result<Shape> FullShape(const TensorLayout& layout, const Shape& slice_shape) {
  if (slice_shape.size() != layout.tensor_map.size()) {
    return Corrupt("slice shape " + ShapeToString(slice_shape) + " has " +
                   std::to_string(slice_shape.size()) + " axes, the layout " +
                   std::to_string(layout.tensor_map.size()));
  }
  const std::vector<uint64_t> pieces = PiecesPerAxis(layout);
  Shape full(slice_shape.size());
  for (size_t i = 0; i < full.size(); ++i) {
    const std::optional<uint64_t> length = CheckedMul(slice_shape[i], pieces[i]);
    if (!length) {
      return Corrupt("axis " + std::to_string(i) + " of slice shape " + ShapeToString(slice_shape) +
                     " times " + std::to_string(pieces[i]) + " pieces overflows");
    }
    full[i] = *length;
  }
  return full;
}

Result<TensorSlice> SliceOf(const TensorLayout& layout, const Shape& full_shape, uint64_t device) {
  if (full_shape.size() != layout.tensor_map.size()) {
    return Corrupt("shape " + ShapeToString(full_shape) + " has " +
                   std::to_string(full_shape.size()) + " axes, the layout " +
                   std::to_string(layout.tensor_map.size()));
  }
  const std::vector<uint64_t> pieces = PiecesPerAxis(layout);
  const std::vector<uint64_t> index = PieceIndex(layout, device);
  TensorSlice slice(full_shape.size());
  for (size_t i = 0; i < slice.size(); ++i) {
    if (full_shape[i] % pieces[i] != 0) {
      return Error(ErrorCode::kUnsupported,
                   "axis " + std::to_string(i) + " of shape " + ShapeToString(full_shape) +
                       " does not split evenly into " + std::to_string(pieces[i]) + " pieces");
    }
    slice[i].length = full_shape[i] / pieces[i];
    slice[i].offset = index[i] * slice[i].length;  // < full_shape[i]: no overflow
  }
  return slice;
}

Result<TensorLayout> FoldOptimizerShard(const TensorLayout& layout, int64_t step, int64_t size) {
  if (step < 0)
    return Corrupt("optimizer shard step " + std::to_string(step) + " is negative");
  if (size < -1)
    return Corrupt("optimizer shard size " + std::to_string(size) + " is below -1");
  if (step == 0 || size == 0)  // MindSpore: either one 0 means no optimizer shard
    return layout;
  if (layout.tensor_map.empty())
    return Corrupt("optimizer shard on a tensor without axes");
  CW_ASSIGN_OR_RETURN(const std::vector<size_t> replica, ReplicaAxes(layout));
  const auto u_step = static_cast<uint64_t>(step);
  CW_RETURN_IF_ERROR(CheckShardPath(layout, replica, u_step));
  const uint64_t devices = DeviceCount(layout);
  const std::vector<uint64_t> pieces = PiecesPerAxis(layout);
  const uint64_t model_parallel = CheckedProduct(pieces).value_or(0);  // divides `devices`
  const uint64_t u_size = size == -1 ? devices / model_parallel : static_cast<uint64_t>(size);
  const std::optional<uint64_t> group = CheckedMul(u_step, u_size);
  if (!group || devices % *group != 0) {
    return Corrupt("optimizer shard step " + std::to_string(step) + " times size " +
                   std::to_string(u_size) + " does not divide the " + std::to_string(devices) +
                   " devices");
  }
  // The folded device count is `devices` again: step is the model-parallel product (one replica
  // axis) or 1 with a model-parallel product of 1 (all axes replicas).
  TensorLayout folded;
  if (devices / *group > 1)
    folded.dev_matrix.push_back(devices / *group);  // repeat: copies of each shard
  folded.dev_matrix.push_back(u_size);
  folded.dev_matrix.insert(folded.dev_matrix.end(), pieces.begin(), pieces.end());
  const auto m = static_cast<uint32_t>(pieces.size());
  for (uint32_t i = 0; i < m; ++i) {
    std::vector<uint32_t> axes;
    if (pieces[i] > 1)
      axes.push_back(m - 1 - i);
    if (i == 0)
      axes.push_back(m);  // the size axis, inside axis 0's model-parallel pieces
    folded.tensor_map.push_back(std::move(axes));
  }
  return folded;
}

}  // namespace cw::mindspore
