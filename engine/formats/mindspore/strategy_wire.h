// Protobuf wire format of a MindSpore parallel-strategy file, parsed by hand with the .ckpt wire
// primitives (ckpt_wire.h). The file is one serialised ParallelStrategyMap
// (schemas/parallel_strategy.proto, docs/distributed.md), proto2, repeated scalars unpacked:
//
//   map       := 0x08 varint(current_stage)                 uint32
//                (0x12 varint(len) operator)*               parallel_strategy_item
//                (0x1A varint(len) layout_item)*            parallel_layout_item
//   operator  := 0x0A name  0x12 varint(len) strategys
//   strategys := 0x08 varint(stage)  (0x12 varint(len) (0x08 varint(dim))*)*
//   layout_item := 0x0A param_name  0x12 varint(len) layouts
//   layouts   := (0x0A DevMatrix)* (0x12 TensorMap)* (0x1A ParamSplitShape)* (0x22 IndicesOffset)*
//                0x28 field  0x30 opt_weight_shard_step  0x38 opt_weight_shard_size
//                each sub-message a run of 0x08 varint(dim); int32 values sign-extended to 10 bytes
//
// As for .ckpt records, fields may come in any order, repeated scalars packed or not, and unknown
// fields with a valid wire type are skipped. Stricter than libprotobuf, because its leniency would
// hide a damaged file: a missing required field, a singular field given twice, a known field with
// the wrong wire type, and a value outside its type (a uint32 over 2^32 - 1, an int32 that is not a
// sign-extended 32-bit value, which protobuf would truncate) are kCorrupt at the offending byte.
// Names must be valid UTF-8 of at most limits::kMaxNameBytes (parameter names also non-empty).
// Items are capped at limits::kMaxTensorCount each, the entries of each repeated sub-message
// field at limits::kMaxRank + 1 and their values at limits::kMaxRank (device matrices and tensor
// maps) or limits::kMaxDevicesPerStage (uneven split lists), so that what is decoded stays a small
// multiple of the file's size. What the values mean is checked by parallel_strategy.cc.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "cw/error.h"
#include "engine/base/byte_reader.h"
#include "engine/base/bytes.h"

namespace cw::mindspore {

// Views point into the bytes the decoder walked: valid while they live.
struct OperatorItem {
  std::string_view name;
  uint32_t stage = 0;
};

struct LayoutItem {
  uint64_t offset = 0;                            // file offset of the item's 0x1A key
  std::string_view param_name;                    // as stored, stage prefix included
  uint64_t param_name_offset = 0;                 // file offset of its key
  uint64_t layouts_offset = 0;                    // file offset of the ParallelLayouts payload
  std::vector<std::vector<uint64_t>> dev_matrix;  // one per DevMatrix entry
  std::vector<std::vector<int32_t>> tensor_map;   // one per TensorMap entry
  std::vector<std::vector<int64_t>> param_split_shape;
  std::vector<std::vector<int64_t>> indices_offset;
  int32_t field = 0;
  int32_t opt_weight_shard_step = 0;
  int32_t opt_weight_shard_size = 0;
};

struct StrategyMap {
  uint32_t current_stage = 0;
  std::vector<OperatorItem> operators;
  std::vector<LayoutItem> layouts;
};

// Decodes a whole ParallelStrategyMap from `in` (to its end). Errors are located in in.file().
Result<StrategyMap> DecodeStrategyMap(ByteReader in);

// True when `bytes` start as MindSpore writes a strategy file: the current_stage key (0x08), its
// varint, then a strategy or layout item key or the end. A .ckpt checkpoint starts with 0x0A.
bool LooksLikeStrategyMap(ByteSpan bytes);

}  // namespace cw::mindspore
