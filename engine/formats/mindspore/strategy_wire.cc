#include "engine/formats/mindspore/strategy_wire.h"

#include <limits>
#include <string>

#include "engine/base/limits.h"
#include "engine/base/text.h"
#include "engine/formats/mindspore/ckpt_wire.h"

namespace cw::mindspore {
namespace {

Error CorruptAt(const ByteReader& in, uint64_t at, std::string message) {
  return in.FailAt(at, ErrorCode::kCorrupt, std::move(message));
}

Error LimitAt(const ByteReader& in, uint64_t at, std::string message) {
  return in.FailAt(at, ErrorCode::kLimitExceeded, std::move(message));
}

std::string Named(std::string_view what, const FieldKey& key) {
  return std::string(what) + " (field " + std::to_string(key.field) + ")";
}

Status ExpectWire(const ByteReader& in, const FieldKey& key, WireType want, std::string_view what) {
  if (key.wire_type == want)
    return OkStatus();
  return CorruptAt(in, key.key_offset,
                   Named(what, key) + " has wire type " +
                       std::to_string(static_cast<int>(key.wire_type)) + ", expected " +
                       (want == WireType::kLen ? "2 (length-delimited)" : "0 (varint)"));
}

// A singular field: libprotobuf would keep the last of two, which hides damage.
Status FirstTime(const ByteReader& in, const FieldKey& key, bool& seen, std::string_view what) {
  if (seen)
    return CorruptAt(in, key.key_offset, Named(what, key) + " appears twice");
  seen = true;
  return OkStatus();
}

Status Required(const ByteReader& in, uint64_t message_at, bool seen, std::string_view message,
                std::string_view field) {
  if (seen)
    return OkStatus();
  return CorruptAt(in, message_at,
                   std::string(message) + " has no " + std::string(field) + " (a required field)");
}

// Integer types of the schema, from a varint at file offset `at`.
Result<uint64_t> AsUint32(const ByteReader& in, uint64_t at, uint64_t v, std::string_view what) {
  if (v > std::numeric_limits<uint32_t>::max())
    return CorruptAt(in, at, std::string(what) + " " + std::to_string(v) + " is over 2^32 - 1");
  return v;
}

// int32 values are sign-extended to 64 bits on the wire; anything else is not an int32 a writer
// produced (libprotobuf would keep its low 32 bits).
Result<int32_t> AsInt32(const ByteReader& in, uint64_t at, uint64_t v, std::string_view what) {
  const auto s = static_cast<int64_t>(v);
  if (s < std::numeric_limits<int32_t>::min() || s > std::numeric_limits<int32_t>::max()) {
    return CorruptAt(in, at,
                     std::string(what) + " " + std::to_string(v) + " is not a 32-bit integer");
  }
  return static_cast<int32_t>(s);
}

template <typename Add>
Status ReadRepeatedVarints(ByteReader& in, const FieldKey& key, std::string_view what, Add add) {
  if (key.wire_type == WireType::kVarint) {
    const uint64_t at = in.offset();
    CW_ASSIGN_OR_RETURN(const uint64_t v, ReadVarint(in));
    return add(v, at);
  }
  CW_RETURN_IF_ERROR(ExpectWire(in, key, WireType::kLen, what));
  CW_ASSIGN_OR_RETURN(ByteReader packed, ReadLenField(in, "packed " + std::string(what)));
  while (!packed.empty()) {
    const uint64_t at = packed.offset();
    CW_ASSIGN_OR_RETURN(const uint64_t v, ReadVarint(packed));
    CW_RETURN_IF_ERROR(add(v, at));
  }
  return OkStatus();
}

// A message whose only field is `repeated <int type> dim = 1` (DevMatrix, TensorMap, ...).
template <typename T, typename Convert>
Result<std::vector<T>> DecodeDims(ByteReader in, std::string_view what, uint64_t cap,
                                  Convert convert) {
  std::vector<T> dims;
  while (!in.empty()) {
    CW_ASSIGN_OR_RETURN(const FieldKey key, ReadKey(in));
    if (key.field != 1) {
      CW_RETURN_IF_ERROR(SkipField(in, key));
      continue;
    }
    CW_RETURN_IF_ERROR(ReadRepeatedVarints(in, key, what, [&](uint64_t v, uint64_t at) -> Status {
      if (dims.size() >= cap) {
        return LimitAt(in, at,
                       std::string(what) + " has more than " + std::to_string(cap) + " values");
      }
      CW_ASSIGN_OR_RETURN(const T value, convert(in, at, v, what));
      dims.push_back(value);
      return OkStatus();
    }));
  }
  return dims;
}

Result<std::vector<uint64_t>> DecodeUint32s(ByteReader in, std::string_view what, uint64_t cap) {
  return DecodeDims<uint64_t>(std::move(in), what, cap, AsUint32);
}

Result<std::vector<int64_t>> DecodeInt64s(ByteReader in, std::string_view what, uint64_t cap) {
  return DecodeDims<int64_t>(
      std::move(in), what, cap,
      [](const ByteReader&, uint64_t, uint64_t v, std::string_view) -> Result<int64_t> {
        return static_cast<int64_t>(v);
      });
}

Result<std::string_view> DecodeName(ByteReader& in, const FieldKey& key, std::string_view what,
                                    bool non_empty) {
  CW_RETURN_IF_ERROR(ExpectWire(in, key, WireType::kLen, what));
  CW_ASSIGN_OR_RETURN(const ByteReader payload, ReadLenField(in, what));
  const std::string_view text = AsChars(payload.span());
  if (text.size() > limits::kMaxNameBytes) {
    return LimitAt(in, payload.offset(),
                   std::string(what) + " of " + std::to_string(text.size()) +
                       " bytes is over the cap of " + std::to_string(limits::kMaxNameBytes) +
                       " (limits::kMaxNameBytes)");
  }
  if (!IsValidUtf8(text))
    return CorruptAt(in, payload.offset(), std::string(what) + " is not valid UTF-8");
  if (non_empty && text.empty())
    return CorruptAt(in, payload.offset(), std::string(what) + " is empty");
  return text;
}

// ParallelStrategys: the stage, and the per-input strategies (checked, not kept).
Result<uint32_t> DecodeStrategys(ByteReader in) {
  const uint64_t start = in.offset();
  bool has_stage = false;
  uint64_t stage = 0;
  while (!in.empty()) {
    CW_ASSIGN_OR_RETURN(const FieldKey key, ReadKey(in));
    if (key.field == 1) {
      CW_RETURN_IF_ERROR(FirstTime(in, key, has_stage, "ParallelStrategys.stage"));
      CW_RETURN_IF_ERROR(ExpectWire(in, key, WireType::kVarint, "ParallelStrategys.stage"));
      const uint64_t at = in.offset();
      CW_ASSIGN_OR_RETURN(const uint64_t v, ReadVarint(in));
      CW_ASSIGN_OR_RETURN(stage, AsUint32(in, at, v, "stage"));
    } else if (key.field == 2) {
      CW_RETURN_IF_ERROR(ExpectWire(in, key, WireType::kLen, "ParallelStrategy"));
      CW_ASSIGN_OR_RETURN(const ByteReader strategy, ReadLenField(in, "ParallelStrategy"));
      CW_RETURN_IF_ERROR(
          DecodeUint32s(strategy, "ParallelStrategy.dim", limits::kMaxRank).status());
    } else {
      CW_RETURN_IF_ERROR(SkipField(in, key));
    }
  }
  CW_RETURN_IF_ERROR(Required(in, start, has_stage, "ParallelStrategys", "stage"));
  return static_cast<uint32_t>(stage);
}

Result<OperatorItem> DecodeOperator(ByteReader in) {
  const uint64_t start = in.offset();
  OperatorItem op;
  bool has_name = false;
  bool has_strategys = false;
  while (!in.empty()) {
    CW_ASSIGN_OR_RETURN(const FieldKey key, ReadKey(in));
    if (key.field == 1) {
      CW_RETURN_IF_ERROR(FirstTime(in, key, has_name, "ParallelStrategyItem.node_name"));
      CW_ASSIGN_OR_RETURN(op.name, DecodeName(in, key, "node_name", false));
    } else if (key.field == 2) {
      CW_RETURN_IF_ERROR(
          FirstTime(in, key, has_strategys, "ParallelStrategyItem.parallel_strategys"));
      CW_RETURN_IF_ERROR(ExpectWire(in, key, WireType::kLen, "parallel_strategys"));
      CW_ASSIGN_OR_RETURN(const ByteReader payload, ReadLenField(in, "parallel_strategys"));
      CW_ASSIGN_OR_RETURN(op.stage, DecodeStrategys(payload));
    } else {
      CW_RETURN_IF_ERROR(SkipField(in, key));
    }
  }
  CW_RETURN_IF_ERROR(Required(in, start, has_name, "ParallelStrategyItem", "node_name"));
  CW_RETURN_IF_ERROR(
      Required(in, start, has_strategys, "ParallelStrategyItem", "parallel_strategys"));
  return op;
}

// One entry of a repeated sub-message field of ParallelLayouts, appended to `entries`.
template <typename T, typename Decode>
Status AppendEntry(ByteReader& in, const FieldKey& key, std::string_view what,
                   std::vector<std::vector<T>>& entries, Decode decode) {
  CW_RETURN_IF_ERROR(ExpectWire(in, key, WireType::kLen, what));
  if (entries.size() > limits::kMaxRank) {
    return LimitAt(
        in, key.key_offset,
        std::string(what) + ": more than " + std::to_string(limits::kMaxRank + 1) + " entries");
  }
  CW_ASSIGN_OR_RETURN(const ByteReader payload, ReadLenField(in, what));
  CW_ASSIGN_OR_RETURN(std::vector<T> dims, decode(payload));
  entries.push_back(std::move(dims));
  return OkStatus();
}

Status ReadInt32Field(ByteReader& in, const FieldKey& key, std::string_view what, bool& seen,
                      int32_t& out) {
  CW_RETURN_IF_ERROR(FirstTime(in, key, seen, what));
  CW_RETURN_IF_ERROR(ExpectWire(in, key, WireType::kVarint, what));
  const uint64_t at = in.offset();
  CW_ASSIGN_OR_RETURN(const uint64_t v, ReadVarint(in));
  CW_ASSIGN_OR_RETURN(out, AsInt32(in, at, v, what));
  return OkStatus();
}

Status DecodeLayouts(ByteReader in, LayoutItem& item) {
  item.layouts_offset = in.offset();
  bool seen[3] = {false, false, false};  // field, opt_weight_shard_step, opt_weight_shard_size
  const auto dev_matrix = [](ByteReader p) {
    return DecodeUint32s(std::move(p), "DevMatrix.dim", limits::kMaxRank);
  };
  const auto tensor_map = [](ByteReader p) {
    return DecodeDims<int32_t>(std::move(p), "TensorMap.dim", limits::kMaxRank, AsInt32);
  };
  const auto split = [](ByteReader p) {
    return DecodeInt64s(std::move(p), "ParamSplitShape.dim", limits::kMaxDevicesPerStage);
  };
  const auto offsets = [](ByteReader p) {
    return DecodeInt64s(std::move(p), "IndicesOffset.dim", limits::kMaxDevicesPerStage);
  };
  while (!in.empty()) {
    CW_ASSIGN_OR_RETURN(const FieldKey key, ReadKey(in));
    switch (key.field) {
      case 1:
        CW_RETURN_IF_ERROR(AppendEntry(in, key, "dev_matrix", item.dev_matrix, dev_matrix));
        break;
      case 2:
        CW_RETURN_IF_ERROR(AppendEntry(in, key, "tensor_map", item.tensor_map, tensor_map));
        break;
      case 3:
        CW_RETURN_IF_ERROR(
            AppendEntry(in, key, "param_split_shape", item.param_split_shape, split));
        break;
      case 4:
        CW_RETURN_IF_ERROR(AppendEntry(in, key, "indices_offset", item.indices_offset, offsets));
        break;
      case 5:
        CW_RETURN_IF_ERROR(ReadInt32Field(in, key, "field", seen[0], item.field));
        break;
      case 6:
        CW_RETURN_IF_ERROR(
            ReadInt32Field(in, key, "opt_weight_shard_step", seen[1], item.opt_weight_shard_step));
        break;
      case 7:
        CW_RETURN_IF_ERROR(
            ReadInt32Field(in, key, "opt_weight_shard_size", seen[2], item.opt_weight_shard_size));
        break;
      default:
        CW_RETURN_IF_ERROR(SkipField(in, key));
    }
  }
  const uint64_t at = item.layouts_offset;
  CW_RETURN_IF_ERROR(Required(in, at, seen[0], "ParallelLayouts", "field"));
  CW_RETURN_IF_ERROR(Required(in, at, seen[1], "ParallelLayouts", "opt_weight_shard_step"));
  return Required(in, at, seen[2], "ParallelLayouts", "opt_weight_shard_size");
}

Result<LayoutItem> DecodeLayoutItem(ByteReader in, uint64_t item_offset) {
  const uint64_t start = in.offset();
  LayoutItem item;
  item.offset = item_offset;
  bool has_name = false;
  bool has_layouts = false;
  while (!in.empty()) {
    CW_ASSIGN_OR_RETURN(const FieldKey key, ReadKey(in));
    if (key.field == 1) {
      CW_RETURN_IF_ERROR(FirstTime(in, key, has_name, "ParallelLayoutItem.param_name"));
      item.param_name_offset = key.key_offset;
      CW_ASSIGN_OR_RETURN(item.param_name, DecodeName(in, key, "param_name", true));
    } else if (key.field == 2) {
      CW_RETURN_IF_ERROR(FirstTime(in, key, has_layouts, "ParallelLayoutItem.parallel_layouts"));
      CW_RETURN_IF_ERROR(ExpectWire(in, key, WireType::kLen, "parallel_layouts"));
      CW_ASSIGN_OR_RETURN(const ByteReader payload, ReadLenField(in, "parallel_layouts"));
      CW_RETURN_IF_ERROR(DecodeLayouts(payload, item));
    } else {
      CW_RETURN_IF_ERROR(SkipField(in, key));
    }
  }
  CW_RETURN_IF_ERROR(Required(in, start, has_name, "ParallelLayoutItem", "param_name"));
  CW_RETURN_IF_ERROR(Required(in, start, has_layouts, "ParallelLayoutItem", "parallel_layouts"));
  return item;
}

Status CheckCount(const ByteReader& in, const FieldKey& key, size_t count, std::string_view what) {
  if (count < limits::kMaxTensorCount)
    return OkStatus();
  return LimitAt(in, key.key_offset,
                 "more than " + std::to_string(limits::kMaxTensorCount) + " " + std::string(what) +
                     " (limits::kMaxTensorCount)");
}

}  // namespace

Result<StrategyMap> DecodeStrategyMap(ByteReader in) {
  const uint64_t start = in.offset();
  StrategyMap map;
  bool has_current_stage = false;
  while (!in.empty()) {
    CW_ASSIGN_OR_RETURN(const FieldKey key, ReadKey(in));
    if (key.field == 1) {
      CW_RETURN_IF_ERROR(FirstTime(in, key, has_current_stage, "current_stage"));
      CW_RETURN_IF_ERROR(ExpectWire(in, key, WireType::kVarint, "current_stage"));
      const uint64_t at = in.offset();
      CW_ASSIGN_OR_RETURN(const uint64_t v, ReadVarint(in));
      CW_ASSIGN_OR_RETURN(const uint64_t stage, AsUint32(in, at, v, "current_stage"));
      map.current_stage = static_cast<uint32_t>(stage);
    } else if (key.field == 2) {
      CW_RETURN_IF_ERROR(ExpectWire(in, key, WireType::kLen, "parallel_strategy_item"));
      CW_RETURN_IF_ERROR(CheckCount(in, key, map.operators.size(), "parallel_strategy_item"));
      CW_ASSIGN_OR_RETURN(const ByteReader payload, ReadLenField(in, "parallel_strategy_item"));
      CW_ASSIGN_OR_RETURN(OperatorItem op, DecodeOperator(payload));
      map.operators.push_back(op);
    } else if (key.field == 3) {
      CW_RETURN_IF_ERROR(ExpectWire(in, key, WireType::kLen, "parallel_layout_item"));
      CW_RETURN_IF_ERROR(CheckCount(in, key, map.layouts.size(), "parallel_layout_item"));
      CW_ASSIGN_OR_RETURN(const ByteReader payload, ReadLenField(in, "parallel_layout_item"));
      CW_ASSIGN_OR_RETURN(LayoutItem item, DecodeLayoutItem(payload, key.key_offset));
      map.layouts.push_back(std::move(item));
    } else {
      CW_RETURN_IF_ERROR(SkipField(in, key));
    }
  }
  CW_RETURN_IF_ERROR(
      Required(in, start, has_current_stage, "ParallelStrategyMap", "current_stage"));
  return map;
}

bool LooksLikeStrategyMap(ByteSpan bytes) {
  ByteReader in(bytes, "");
  const Result<FieldKey> key = ReadKey(in);
  if (!key.ok() || key->field != 1 || key->wire_type != WireType::kVarint || !ReadVarint(in).ok()) {
    return false;
  }
  if (in.empty())
    return true;
  const uint8_t next = *in.PeekU8();
  return next == 0x12 || next == 0x1A;
}

}  // namespace cw::mindspore
