// Fuzz target: the MindSpore parallel-strategy reader (ParseParallelStrategy), then the slice
// arithmetic on every layout it accepts.
//
// A strategy that reads must hold what parallel_strategy.h promises: parameters, each with at
// least one stage, stages ascending; layouts that pass CheckTensorLayout with the strategy's
// device count. For layouts of up to 4096 devices, the replica groups hold every device once and
// the slices of one device per group, on a tensor of one element per piece, are single elements
// at distinct places.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "engine/formats/mindspore/parallel_strategy.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using cw::fuzz::Check;
namespace ms = cw::mindspore;

const std::string kFile = "fuzz_strategy.ckpt";
constexpr uint64_t kMaxCheckedDevices = 4096;

void CheckSlices(const ms::TensorLayout& layout, uint64_t devices) {
  Check(ms::CheckTensorLayout(layout).ok());
  Check(ms::DeviceCount(layout) == devices);
  if (devices > kMaxCheckedDevices)
    return;
  const cw::Shape ones(layout.tensor_map.size(), 1);
  const auto full = ms::FullShape(layout, ones);
  Check(full.ok() && *full == ms::PiecesPerAxis(layout));
  uint64_t seen = 0;
  std::set<std::vector<uint64_t>> places;  // each slice's offsets
  for (const std::vector<uint64_t>& group : ms::ReplicaGroups(layout)) {
    seen += group.size();
    const auto slice = ms::SliceOf(layout, *full, group.front());
    Check(slice.ok());
    std::vector<uint64_t> offsets;
    for (const ms::AxisRange& r : *slice) {
      Check(r.length == 1);
      offsets.push_back(r.offset);
    }
    Check(places.insert(offsets).second);
  }
  Check(seen == devices);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto strategy = ms::ParseParallelStrategy(cw::fuzz::InputBytes(data, size), kFile);
  if (!strategy.ok()) {
    cw::fuzz::CheckLocated(strategy.error(), kFile, size);
    return 0;
  }
  Check(!strategy->parameters().empty());
  Check(!strategy->stages().empty());
  for (const ms::ParameterStrategy& p : strategy->parameters()) {
    Check(!p.stages.empty());
    Check(strategy->Find(p.name) == &p);
    for (size_t i = 0; i < p.stages.size(); ++i) {
      Check(i == 0 || p.stages[i - 1].stage < p.stages[i].stage);
      CheckSlices(p.stages[i].layout.layout, strategy->devices_per_stage());
      CheckSlices(p.stages[i].layout.saved, strategy->devices_per_stage());
    }
  }
  return 0;
}
