// The parallel strategy of a distributed MindSpore run: how every parameter is split over the
// devices of its pipeline stage, so that the slices saved by each rank can be put back together
// (docs/distributed.md).
//
// MindSpore saves one strategy file per rank, for that rank's pipeline stage; ranks of one stage
// save the same layouts. merge_pipeline_strategys() joins one file per stage into a merged file
// whose parameter names carry a "<stage>-" prefix. Any of these is read here:
//   - one per-rank (per-stage) file: its stage is the stage of its first operator (0 without one);
//   - one merged file: each name's stage is its prefix, split off at the first '-';
//   - a folder: every *.ckpt in it, each per-stage or merged, taken in name order and joined. A
//     stage given by several files must have the same layouts in each (then the later files are
//     skipped, as MindSpore skips them); the stages must then be 0..P-1.
// A parameter listed by several stages (a tied embedding, used by the first and the last) keeps
// every stage's layout; MindSpore uses the lowest stage's.
//
// Everything is checked when read, and errors name the file and the byte offset of the layout item
// (see strategy_wire.h for the wire-level checks). Refused (docs/distributed.md has the table and
// where this differs from MindSpore):
//   kUnsupported: field-sliced embeddings (field > 0), uneven splits (a non-empty
//     param_split_shape or indices_offset), optimizer-shard layouts outside the path ported in
//     tensor_slicing.h, JSON strategy files;
//   kCorrupt: anything but one dev_matrix entry, no tensor map, a tensor map entry below -1, a
//     device axis out of range or used twice, negative field, device counts that differ between
//     parameters, a parameter listed twice for one stage, names with and without stage prefix in
//     one file, stages missing from a merged strategy, two files giving one stage differently, a
//     strategy without parameters.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cw/error.h"
#include "engine/base/bytes.h"
#include "engine/formats/mindspore/tensor_slicing.h"

namespace cw::mindspore {

// How a parameter is laid out over the devices of one pipeline stage.
struct ParameterLayout {
  // The device matrix and tensor map as the file gives them. Both tensor map forms read into
  // this: one entry per tensor axis ([0, -1]), or the Layout API's one list per axis.
  TensorLayout layout;
  int32_t field = 0;  // always 0: field-sliced embeddings are refused
  int32_t opt_weight_shard_step = 0;
  int32_t opt_weight_shard_size = 0;  // as stored: -1 means every replica
  // What each rank's checkpoint holds: `layout` with the optimizer shard folded in
  // (FoldOptimizerShard); equal to `layout` without an optimizer shard. Its DeviceCount is the
  // strategy's devices_per_stage(); SliceOf(saved, full shape, local rank) is the block saved by
  // that rank, FullShape(saved, its slice shape) the full shape.
  TensorLayout saved;
  Location where;  // the layout item: file and byte offset, for errors found later

  bool SameLayout(const ParameterLayout& other) const;  // everything but `where`
};

struct StageLayout {
  uint32_t stage = 0;
  ParameterLayout layout;
};

struct ParameterStrategy {
  std::string name;  // without the stage prefix of a merged file
  // Every pipeline stage whose strategy lists the parameter, ascending; at least one.
  std::vector<StageLayout> stages;

  const ParameterLayout& first() const { return stages.front().layout; }  // MindSpore's choice
};

struct OperatorStrategy {
  std::string name;  // "<primitive>_<parameter>", e.g. "MatMul_lm_head.weight"
  uint32_t stage = 0;
};

// One file read into the strategy.
struct StrategySource {
  std::string file;
  uint32_t current_stage = 0;  // MindSpore's save counter, not a stage
  bool merged = false;         // its names carry stage prefixes
  std::vector<uint32_t> stages;
  uint64_t layout_items = 0;
  uint64_t operators = 0;
  bool skipped = false;  // every stage it gives came, with the same layouts, from an earlier file
};

class ParallelStrategy {
 public:
  // Parameters by lowest stage, then in file order.
  const std::vector<ParameterStrategy>& parameters() const { return parameters_; }
  // nullptr when the strategy does not list `name` (scalars such as global_step never are).
  const ParameterStrategy* Find(std::string_view name) const;
  // Devices of one pipeline stage, the same for every parameter; global rank of local device d of
  // stage s: s * devices_per_stage() + d.
  uint64_t devices_per_stage() const { return devices_per_stage_; }
  // Pipeline stages present, ascending: 0..P-1 when read from a merged file or a folder.
  const std::vector<uint32_t>& stages() const { return stages_; }
  const std::vector<OperatorStrategy>& operators() const { return operators_; }
  const std::vector<StrategySource>& sources() const { return sources_; }

 private:
  friend class StrategyBuilder;

  std::vector<ParameterStrategy> parameters_;
  std::unordered_map<std::string, size_t> index_;
  uint64_t devices_per_stage_ = 1;
  std::vector<uint32_t> stages_;
  std::vector<OperatorStrategy> operators_;
  std::vector<StrategySource> sources_;
};

// Reads a strategy file or a folder of them. The file size is checked against
// limits::kMaxStrategyFileBytes before anything is decoded. Nothing returned refers to the files.
Result<ParallelStrategy> LoadParallelStrategy(const std::filesystem::path& path);

// The same for one file's bytes, named `file` in errors: the entry point for fuzzing and tests.
Result<ParallelStrategy> ParseParallelStrategy(ByteSpan bytes, const std::string& file);

}  // namespace cw::mindspore
