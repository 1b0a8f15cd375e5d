#include "engine/formats/mindspore/strategy_layout.h"

#include <limits>
#include <vector>

#include "engine/base/text.h"

namespace cw::mindspore {
namespace {

Result<std::vector<uint32_t>> DeviceAxes(const std::vector<int32_t>& values) {
  std::vector<uint32_t> axes;
  for (const int32_t v : values) {
    if (v < -1)
      return Error(ErrorCode::kCorrupt, "tensor map value " + std::to_string(v) + " is below -1");
    if (v >= 0)
      axes.push_back(static_cast<uint32_t>(v));
  }
  return axes;
}

// One TensorMap entry holds a value per tensor axis; several entries (MindSpore's Layout API)
// hold the device axes of one tensor axis each, with empty entries to be dropped (MindSpore adds
// one after a single axis, so that the two forms cannot be confused). -1 inside such a list names
// no device axis and is ignored, as MindSpore's _get_tensor_strategy ignores it.
Result<std::vector<std::vector<uint32_t>>> ReadTensorMap(
    const std::vector<std::vector<int32_t>>& entries) {
  if (entries.empty())
    return Error(ErrorCode::kCorrupt, "no tensor map");
  std::vector<std::vector<uint32_t>> map;
  if (entries.size() == 1) {
    for (const int32_t v : entries.front()) {
      CW_ASSIGN_OR_RETURN(std::vector<uint32_t> axes, DeviceAxes({v}));
      map.push_back(std::move(axes));
    }
    return map;
  }
  for (const std::vector<int32_t>& entry : entries) {
    if (entry.empty())
      continue;
    CW_ASSIGN_OR_RETURN(std::vector<uint32_t> axes, DeviceAxes(entry));
    map.push_back(std::move(axes));
  }
  return map;
}

// Uneven splits: MindSpore always writes one entry, empty unless axis 0 is cut unevenly.
Status CheckEvenSplit(const std::vector<std::vector<int64_t>>& entries, std::string_view what) {
  if (entries.size() > 1) {
    return Error(ErrorCode::kCorrupt, std::to_string(entries.size()) + " " + std::string(what) +
                                          " entries (MindSpore writes one)");
  }
  if (!entries.empty() && !entries.front().empty()) {
    return Error(ErrorCode::kUnsupported,
                 "uneven split of axis 0 (" + std::string(what) + " is not empty)");
  }
  return OkStatus();
}

Status CheckLayoutItem(const LayoutItem& item) {
  if (item.dev_matrix.size() != 1) {
    return Error(ErrorCode::kCorrupt, std::to_string(item.dev_matrix.size()) +
                                          " dev_matrix entries (MindSpore writes exactly one)");
  }
  CW_RETURN_IF_ERROR(CheckEvenSplit(item.param_split_shape, "param_split_shape"));
  CW_RETURN_IF_ERROR(CheckEvenSplit(item.indices_offset, "indices_offset"));
  if (item.field < 0)
    return Error(ErrorCode::kCorrupt, "field " + std::to_string(item.field) + " is negative");
  if (item.field > 0) {
    return Error(ErrorCode::kUnsupported,
                 "field-sliced embedding (field " + std::to_string(item.field) + ")");
  }
  return OkStatus();
}

Result<ParameterLayout> Derive(const LayoutItem& item) {
  CW_RETURN_IF_ERROR(CheckLayoutItem(item));
  ParameterLayout out;
  out.layout.dev_matrix = item.dev_matrix.front();
  CW_ASSIGN_OR_RETURN(out.layout.tensor_map, ReadTensorMap(item.tensor_map));
  CW_RETURN_IF_ERROR(CheckTensorLayout(out.layout));
  out.field = item.field;
  out.opt_weight_shard_step = item.opt_weight_shard_step;
  out.opt_weight_shard_size = item.opt_weight_shard_size;
  CW_ASSIGN_OR_RETURN(out.saved, FoldOptimizerShard(out.layout, item.opt_weight_shard_step,
                                                    item.opt_weight_shard_size));
  CW_RETURN_IF_ERROR(CheckTensorLayout(out.saved));
  return out;
}

}  // namespace

std::optional<StagePrefixed> SplitStagePrefix(std::string_view name) {
  const size_t dash = name.find('-');
  if (dash == 0 || dash == std::string_view::npos || dash + 1 == name.size())
    return std::nullopt;
  uint64_t stage = 0;
  for (const char c : name.substr(0, dash)) {
    if (c < '0' || c > '9')
      return std::nullopt;
    stage = stage * 10 + static_cast<uint64_t>(c - '0');
    if (stage > std::numeric_limits<uint32_t>::max())
      return std::nullopt;
  }
  return StagePrefixed{static_cast<uint32_t>(stage), name.substr(dash + 1)};
}

Result<ParameterLayout> ReadParameterLayout(const LayoutItem& item, std::string_view name,
                                            const std::string& file) {
  Result<ParameterLayout> layout = Derive(item);
  if (!layout.ok()) {
    const Error& e = layout.error();
    return Error(e.code(), "parameter " + Quoted(name) + ": " + e.message(),
                 ByteLocation(file, item.layouts_offset));
  }
  layout->where = ByteLocation(file, item.offset);
  return layout;
}

}  // namespace cw::mindspore
