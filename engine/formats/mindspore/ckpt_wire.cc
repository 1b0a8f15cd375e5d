#include "engine/formats/mindspore/ckpt_wire.h"

#include <optional>

#include "engine/base/limits.h"
#include "engine/base/text.h"

namespace cw::mindspore {
namespace {

constexpr uint64_t kMaxFieldNumber = (1u << 29) - 1;  // protobuf's own limit

Error CorruptAt(const ByteReader& in, uint64_t file_offset, std::string message) {
  return in.FailAt(file_offset, ErrorCode::kCorrupt, std::move(message));
}

Error WrongWireType(const ByteReader& in, const FieldKey& key, std::string_view what) {
  return CorruptAt(in, key.key_offset,
                   std::string(what) + " (field " + std::to_string(key.field) + ") has wire type " +
                       std::to_string(static_cast<int>(key.wire_type)) +
                       ", expected 2 (length-delimited)");
}

// A singular LEN field: protobuf would silently keep the last of two, which hides damage.
Status ReadSingular(ByteReader& in, const FieldKey& key, std::string_view what,
                    std::optional<ByteReader>& slot) {
  if (key.wire_type != WireType::kLen)
    return WrongWireType(in, key, what);
  if (slot)
    return CorruptAt(in, key.key_offset, std::string(what) + " appears twice");
  CW_ASSIGN_OR_RETURN(ByteReader payload, ReadLenField(in, what));
  slot.emplace(payload);
  return OkStatus();
}

Status AppendDim(ByteReader& in, Shape& dims) {
  const uint64_t dim_at = in.offset();
  CW_ASSIGN_OR_RETURN(const uint64_t dim, ReadVarint(in));
  if (dim > static_cast<uint64_t>(INT64_MAX)) {  // V12: int64 on the wire, a shape here
    return CorruptAt(in, dim_at,
                     "dim " + std::to_string(dims.size()) + " is negative (" +
                         std::to_string(static_cast<int64_t>(dim)) + ")");
  }
  if (dims.size() >= limits::kMaxRank) {
    return in.FailAt(dim_at, ErrorCode::kLimitExceeded,
                     "more than " + std::to_string(limits::kMaxRank) + " dims (limits::kMaxRank)");
  }
  dims.push_back(dim);
  return OkStatus();
}

// Dims come unpacked (0x08 per axis, what MindSpore writes) or packed (0x0A, accepted by every
// protobuf parser); a mix is concatenated in file order, as protobuf does.
Status ReadDims(ByteReader& in, const FieldKey& key, Shape& dims) {
  if (key.wire_type == WireType::kVarint)
    return AppendDim(in, dims);
  if (key.wire_type != WireType::kLen)
    return WrongWireType(in, key, "TensorProto.dims");
  CW_ASSIGN_OR_RETURN(ByteReader packed, ReadLenField(in, "packed TensorProto.dims"));
  while (!packed.empty())
    CW_RETURN_IF_ERROR(AppendDim(packed, dims));
  return OkStatus();
}

// V10-V12, V17: the TensorProto of `record`.
Status ReadTensor(ByteReader in, CkptRecord& record) {
  const uint64_t tensor_at = in.offset();
  std::optional<ByteReader> type;
  std::optional<ByteReader> content;
  while (!in.empty()) {
    CW_ASSIGN_OR_RETURN(const FieldKey key, ReadKey(in));
    if (key.field == 1) {
      CW_RETURN_IF_ERROR(ReadDims(in, key, record.dims));
    } else if (key.field == 2) {
      CW_RETURN_IF_ERROR(ReadSingular(in, key, "TensorProto.tensor_type", type));
    } else if (key.field == 3) {
      CW_RETURN_IF_ERROR(ReadSingular(in, key, "TensorProto.tensor_content", content));
    } else {
      CW_RETURN_IF_ERROR(SkipField(in, key));
    }
  }
  if (!type)
    return CorruptAt(in, tensor_at, "TensorProto has no tensor_type");
  // libprotobuf reads a missing content as empty; MindSpore always writes one.
  if (!content)
    return CorruptAt(in, tensor_at, "TensorProto has no tensor_content");
  record.tensor_type = AsChars(type->span());
  record.content = content->span();
  record.content_offset = content->offset();
  return OkStatus();
}

struct ValueFields {
  std::optional<ByteReader> tag;
  std::optional<ByteReader> tensor;
  std::optional<ByteReader> map_tensor;
};

Result<ValueFields> ReadValueFields(ByteReader& in) {
  ValueFields fields;
  while (!in.empty()) {
    CW_ASSIGN_OR_RETURN(const FieldKey key, ReadKey(in));
    if (key.field == 1) {
      CW_RETURN_IF_ERROR(ReadSingular(in, key, "Value.tag", fields.tag));
    } else if (key.field == 2) {
      CW_RETURN_IF_ERROR(ReadSingular(in, key, "Value.tensor", fields.tensor));
    } else if (key.field == 3) {
      CW_RETURN_IF_ERROR(ReadSingular(in, key, "Value.maptensor", fields.map_tensor));
    } else {
      CW_RETURN_IF_ERROR(SkipField(in, key));
    }
  }
  return fields;
}

// V6, V7: a tag names a MindSpore Parameter, so it must be a non-empty Python str.
Result<std::string_view> CheckTag(const ByteReader& value, const std::optional<ByteReader>& tag,
                                  uint64_t record_offset) {
  if (!tag)
    return CorruptAt(value, record_offset, "Checkpoint.value has no tag");
  const std::string_view text = AsChars(tag->span());
  if (text.empty())
    return CorruptAt(value, tag->offset(), "empty tag");
  if (text.size() > limits::kMaxNameBytes) {
    return value.FailAt(tag->offset(), ErrorCode::kLimitExceeded,
                        "tag of " + std::to_string(text.size()) + " bytes is over the cap of " +
                            std::to_string(limits::kMaxNameBytes) + " (limits::kMaxNameBytes)");
  }
  if (!IsValidUtf8(text))
    return CorruptAt(value, tag->offset(), "tag " + Quoted(text) + " is not valid UTF-8");
  return text;
}

}  // namespace

Result<uint64_t> ReadVarint(ByteReader& in) {
  const uint64_t start = in.offset();
  uint64_t value = 0;
  for (int shift = 0;; shift += 7) {
    if (in.empty())
      return CorruptAt(in, start, "truncated varint");
    const uint8_t byte = *in.ReadU8();
    // The 10th byte holds bit 63 only: anything more is an 11th byte or bits past 64 (V5). So the
    // loop ends by the 10th byte.
    if (shift == 63 && byte > 1) {
      return CorruptAt(in, start,
                       (byte & 0x80) != 0 ? "varint longer than 10 bytes" : "varint over 64 bits");
    }
    value |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0)
      return value;
  }
}

Result<ByteReader> ReadLenField(ByteReader& in, std::string_view what) {
  const uint64_t length_at = in.offset();
  CW_ASSIGN_OR_RETURN(const uint64_t n, ReadVarint(in));
  if (n > in.remaining()) {  // V21: the length is checked before anything is read
    return CorruptAt(in, length_at,
                     std::string(what) + " of " + std::to_string(n) +
                         " bytes runs past the end (only " + std::to_string(in.remaining()) +
                         " bytes left)");
  }
  return in.Sub(n);
}

Result<FieldKey> ReadKey(ByteReader& in) {
  FieldKey key;
  key.key_offset = in.offset();
  CW_ASSIGN_OR_RETURN(const uint64_t raw, ReadVarint(in));
  key.field = raw >> 3;
  const auto wire = static_cast<uint8_t>(raw & 7);
  if (key.field == 0 || key.field > kMaxFieldNumber) {
    return CorruptAt(in, key.key_offset,
                     "field number " + std::to_string(key.field) + " is invalid");
  }
  if (wire == 3 || wire == 4) {  // V18: groups never appear in .ckpt records
    return CorruptAt(in, key.key_offset,
                     "field " + std::to_string(key.field) + " has group wire type " +
                         std::to_string(wire) + ", not used by MindSpore checkpoints");
  }
  if (wire > 5)
    return CorruptAt(in, key.key_offset, "invalid wire type " + std::to_string(wire));
  key.wire_type = static_cast<WireType>(wire);
  return key;
}

Status SkipField(ByteReader& in, const FieldKey& key) {
  switch (key.wire_type) {
    case WireType::kVarint:
      return ReadVarint(in).status();
    case WireType::kFixed64:
      return in.Skip(8);
    case WireType::kFixed32:
      return in.Skip(4);
    case WireType::kLen:
      return ReadLenField(in, "unknown field " + std::to_string(key.field)).status();
  }
  return OkStatus();
}

Result<CkptRecord> ReadRecord(ByteReader& in, bool first) {
  // Until the record is known to be a Value with a tag, an error in the first record says the
  // file is something else; afterwards it is a damaged checkpoint.
  const auto framed = [first](Error error) {
    if (!first || error.code() != ErrorCode::kCorrupt)
      return error;
    return Error(ErrorCode::kCorrupt, "not a MindSpore checkpoint: " + error.message(),
                 error.where());
  };
  CkptRecord record;
  record.record_offset = in.offset();
  CW_ASSIGN_OR_RETURN(const uint8_t key, in.ReadU8());
  if (key != 0x0A) {  // V4: a checkpoint holds nothing but Checkpoint.value records
    return framed(CorruptAt(in, record.record_offset,
                            "top-level key " + Hex(key, 2) + " is not Checkpoint.value (0x0a)"));
  }
  CW_ASSIGN_OR_RETURN(ByteReader value, ReadLenField(in, "Checkpoint.value"));
  Result<ValueFields> fields = ReadValueFields(value);
  if (!fields.ok())
    return framed(std::move(fields).error());
  Result<std::string_view> tag = CheckTag(value, fields->tag, record.record_offset);
  if (!tag.ok())
    return framed(std::move(tag).error());
  record.tag = *tag;
  if (fields->map_tensor) {  // V8: MapParameter values (embedding tables) are out of scope
    return value.FailAt(
        record.record_offset, ErrorCode::kUnsupported,
        TagPrefix(record.tag) + "MapTensor values (MindSpore MapParameter) are not supported");
  }
  if (!fields->tensor) {
    return framed(
        CorruptAt(value, record.record_offset, TagPrefix(record.tag) + "Value has no tensor"));
  }
  Status tensor = ReadTensor(*fields->tensor, record);
  if (!tensor.ok())
    return std::move(tensor).error().With("reading the tensor of tag " + Quoted(record.tag));
  return record;
}

uint64_t VarintSize(uint64_t value) {
  uint64_t n = 1;
  for (; value >= 0x80; value >>= 7)
    ++n;
  return n;
}

void AppendVarint(std::string& out, uint64_t value) {
  for (; value >= 0x80; value >>= 7)
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
  out.push_back(static_cast<char>(value));
}

std::string EncodeRecordHeader(std::string_view tag, const Shape& dims,
                               std::string_view tensor_type, uint64_t content_bytes) {
  uint64_t tensor_bytes = 1 + VarintSize(tensor_type.size()) + tensor_type.size() + 1 +
                          VarintSize(content_bytes) + content_bytes;
  for (const uint64_t dim : dims)
    tensor_bytes += 1 + VarintSize(dim);
  const uint64_t value_bytes =
      1 + VarintSize(tag.size()) + tag.size() + 1 + VarintSize(tensor_bytes) + tensor_bytes;
  std::string out;
  out.push_back(0x0A);  // Checkpoint.value
  AppendVarint(out, value_bytes);
  out.push_back(0x0A);  // Value.tag
  AppendVarint(out, tag.size());
  out.append(tag);
  out.push_back(0x12);  // Value.tensor
  AppendVarint(out, tensor_bytes);
  for (const uint64_t dim : dims) {
    out.push_back(0x08);  // TensorProto.dims, unpacked
    AppendVarint(out, dim);
  }
  out.push_back(0x12);  // TensorProto.tensor_type
  AppendVarint(out, tensor_type.size());
  out.append(tensor_type);
  out.push_back(0x1A);  // TensorProto.tensor_content
  AppendVarint(out, content_bytes);
  return out;
}

std::string TagPrefix(std::string_view tag) { return "tag " + Quoted(tag) + ": "; }

std::string Hex(uint64_t value, int digits) {
  std::string out(static_cast<size_t>(digits), '0');
  for (int k = digits - 1; k >= 0; --k, value >>= 4)
    out[static_cast<size_t>(k)] = "0123456789abcdef"[value & 15];
  return "0x" + out;
}

}  // namespace cw::mindspore
