#include "engine/formats/safetensors/safetensors_writer.h"

#include <unordered_set>
#include <utility>

#include "engine/base/checked_math.h"
#include "engine/base/limits.h"
#include "engine/base/text.h"
#include "engine/formats/common/write_tracker.h"

namespace cw::safetensors {
namespace {

constexpr uint64_t kHeaderAlignment = 8;

// JSON string escaping as serde_json (the official writer) does it: quotes, backslashes and
// control characters; everything else, UTF-8 included, is copied in runs.
void AppendJsonString(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  size_t run_start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    out.append(text.substr(run_start, i - run_start));
    run_start = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xF];
    }
  }
  out.append(text.substr(run_start));
  out += '"';
}

Status CheckTensor(const TensorInfo& t, const Location& where) {
  if (t.name.size() > limits::kMaxNameBytes) {
    return Error(ErrorCode::kLimitExceeded,
                 "tensor name of " + std::to_string(t.name.size()) + " bytes is over the cap of " +
                     std::to_string(limits::kMaxNameBytes) + " bytes",
                 where);
  }
  if (!IsValidUtf8(t.name)) {
    return Error(ErrorCode::kUnsupported,
                 "tensor name " + Quoted(t.name) + " is not UTF-8, which safetensors requires",
                 where);
  }
  if (t.name == "__metadata__") {
    return Error(ErrorCode::kUnsupported,
                 "a tensor cannot be named \"__metadata__\" in safetensors", where);
  }
  if (t.shape.size() > limits::kMaxRank) {
    return Error(ErrorCode::kLimitExceeded,
                 "tensor " + Quoted(t.name) + ": rank " + std::to_string(t.shape.size()) +
                     " is over the cap of " + std::to_string(limits::kMaxRank),
                 where);
  }
  if (ByteSize(t.dtype, t.shape) != t.byte_size) {
    return Error(ErrorCode::kInternal,
                 "tensor " + Quoted(t.name) + ": byte size " + std::to_string(t.byte_size) +
                     " does not match " + std::string(Name(t.dtype)) + " " + ShapeToString(t.shape),
                 where);
  }
  return OkStatus();
}

Status CheckMetadata(const std::map<std::string, std::string>& metadata, const Location& where) {
  for (const auto& [key, value] : metadata) {
    if (!IsValidUtf8(key) || !IsValidUtf8(value)) {
      return Error(ErrorCode::kUnsupported,
                   "metadata entry " + Quoted(key) + " is not UTF-8, which safetensors requires",
                   where);
    }
  }
  return OkStatus();
}

struct Planned {
  std::string prefix;                  // length + header JSON + padding
  std::vector<uint64_t> file_offsets;  // of each tensor's first byte
  uint64_t file_bytes = 0;
};

// The header text and every tensor's place, or why the tensors cannot be written.
Result<Planned> Plan(const std::vector<TensorInfo>& tensors,
                     const std::map<std::string, std::string>& metadata, const Location& where) {
  if (tensors.size() > limits::kMaxTensorCount) {
    return Error(ErrorCode::kLimitExceeded,
                 std::to_string(tensors.size()) + " tensors are over the cap of " +
                     std::to_string(limits::kMaxTensorCount),
                 where);
  }
  std::string json = "{";
  if (!metadata.empty()) {
    json += "\"__metadata__\":{";
    for (const auto& [key, value] : metadata) {
      if (json.back() != '{')
        json += ',';
      AppendJsonString(json, key);
      json += ':';
      AppendJsonString(json, value);
    }
    json += '}';
  }
  std::unordered_set<std::string_view> names;
  std::vector<uint64_t> data_offsets;
  data_offsets.reserve(tensors.size());
  uint64_t data_bytes = 0;
  for (const TensorInfo& t : tensors) {
    CW_RETURN_IF_ERROR(CheckTensor(t, where));
    if (!names.insert(t.name).second)
      return Error(ErrorCode::kUsage, "tensor name " + Quoted(t.name) + " given twice", where);
    const std::optional<uint64_t> end = CheckedAdd(data_bytes, t.byte_size);
    if (!end)
      return Error(ErrorCode::kLimitExceeded, "tensor data exceeds 2^64 bytes", where);
    if (json.back() != '{')
      json += ',';
    AppendJsonString(json, t.name);
    json += ":{\"dtype\":\"" + std::string(Name(t.dtype)) + "\",\"shape\":[";
    for (size_t d = 0; d < t.shape.size(); ++d)
      json += (d > 0 ? "," : "") + std::to_string(t.shape[d]);
    json += "],\"data_offsets\":[" + std::to_string(data_bytes) + "," + std::to_string(*end) + "]}";
    data_offsets.push_back(data_bytes);
    data_bytes = *end;
  }
  json += '}';
  json.append((kHeaderAlignment - json.size() % kHeaderAlignment) % kHeaderAlignment, ' ');
  if (json.size() > limits::kMaxSafetensorsHeaderBytes) {
    return Error(ErrorCode::kLimitExceeded,
                 "header of " + std::to_string(json.size()) + " bytes is over the cap of " +
                     std::to_string(limits::kMaxSafetensorsHeaderBytes) +
                     " bytes (safetensors readers refuse it)",
                 where);
  }
  CW_RETURN_IF_ERROR(CheckMetadata(metadata, where));  // after the cap: it reads every byte
  Planned plan;
  const uint64_t header_bytes = json.size();
  Append(plan.prefix, ObjectBytes(header_bytes));  // little-endian, as bytes.h asserts
  plan.prefix += json;
  const std::optional<uint64_t> file_bytes = CheckedAdd(plan.prefix.size(), data_bytes);
  if (!file_bytes)
    return Error(ErrorCode::kLimitExceeded, "output exceeds 2^64 bytes", where);
  plan.file_bytes = *file_bytes;
  plan.file_offsets = std::move(data_offsets);
  for (uint64_t& offset : plan.file_offsets)
    offset += plan.prefix.size();
  return plan;
}

class Writer final : public CheckpointWriter {
 public:
  Writer(OutputFile out, std::vector<TensorInfo> tensors, std::vector<uint64_t> file_offsets)
      : out_(std::move(out)),
        tensors_(std::move(tensors)),
        file_offsets_(std::move(file_offsets)),
        tracker_(tensors_) {}

  // The tracker proves [offset, offset + size) lies inside the tensor before any byte is written.
  Status Write(size_t index, uint64_t offset, ByteSpan bytes) override {
    CW_RETURN_IF_ERROR(tracker_.Record(index, offset, bytes, /*with_crc=*/false));
    return out_.WriteAt(file_offsets_[index] + offset, bytes);
  }
  Status CopyFromFile(size_t index, uint64_t offset, const InputFile& source,
                      uint64_t source_offset, uint64_t size) override {
    CW_RETURN_IF_ERROR(tracker_.RecordCopy(index, offset, size));
    return out_.CopyFrom(file_offsets_[index] + offset, source, source_offset, size);
  }

  Status Commit() override {
    CW_RETURN_IF_ERROR(tracker_.Finish().status());
    return out_.Commit();
  }

 private:
  OutputFile out_;
  std::vector<TensorInfo> tensors_;
  std::vector<uint64_t> file_offsets_;
  WriteTracker tracker_;  // refers to tensors_, so it is declared after it
};

}  // namespace

Result<std::unique_ptr<CheckpointWriter>> CreateWriter(OutputFile out,
                                                       std::vector<TensorInfo> tensors,
                                                       const WriterOptions& options) {
  const Location where = FileLocation(out.target().string());
  CW_ASSIGN_OR_RETURN(Planned plan, Plan(tensors, options.metadata, where));
  CW_RETURN_IF_ERROR(out.Resize(plan.file_bytes));
  CW_RETURN_IF_ERROR(out.WriteAt(0, AsBytes(plan.prefix)));
  return std::unique_ptr<CheckpointWriter>(
      std::make_unique<Writer>(std::move(out), std::move(tensors), std::move(plan.file_offsets)));
}

}  // namespace cw::safetensors
