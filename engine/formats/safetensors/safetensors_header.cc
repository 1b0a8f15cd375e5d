#include "engine/formats/safetensors/safetensors_header.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <iterator>
#include <new>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <unordered_set>
#include <utility>

#include <nlohmann/json.hpp>

#include "engine/base/byte_reader.h"
#include "engine/base/limits.h"
#include "engine/base/text.h"

namespace cw::safetensors {
namespace {

using Json = nlohmann::json;

constexpr uint64_t kLengthBytes = 8;  // the u64 header length before the JSON text

// dtype codes of the official format that have no DType here: valid files we cannot convert.
constexpr std::array<std::string_view, 7> kKnownUnsupportedDTypes = {
    "F4", "F6_E2M3", "F6_E3M2", "F8_E8M0", "C64", "F8_E4M3FNUZ", "F8_E5M2FNUZ"};

// The part of a nlohmann message after its "[json.exception...] ... column N: " prefix, which
// speaks of lines and columns inside the header rather than file offsets.
std::string ParserDetail(std::string_view what) {
  if (const size_t tag_end = what.find("] ");
      !what.empty() && what[0] == '[' && tag_end != std::string_view::npos) {
    what.remove_prefix(tag_end + 2);
  }
  if (const size_t column = what.find("column "); column != std::string_view::npos) {
    if (const size_t colon = what.find(": ", column); colon != std::string_view::npos)
      what.remove_prefix(colon + 2);
  }
  return Escaped(what);
}

// nlohmann parses through this iterator so that the handler knows how many header bytes the
// parser has consumed when an event arrives: the SAX interface reports no positions.
class CountingIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  CountingIterator(const char* p, uint64_t* consumed) : p_(p), consumed_(consumed) {}
  reference operator*() const { return *p_; }
  CountingIterator& operator++() {
    ++p_;
    ++*consumed_;
    return *this;
  }
  CountingIterator operator++(int) {
    CountingIterator old = *this;
    ++*this;
    return old;
  }
  bool operator==(const CountingIterator& other) const { return p_ == other.p_; }

 private:
  const char* p_;
  uint64_t* consumed_;
};

struct RawEntry {
  TensorInfo info;
  uint64_t name_file_offset = 0;  // the opening quote of the name in the header
  bool has_dtype = false;
  bool has_shape = false;
  bool has_offsets = false;
  std::array<uint64_t, 2> offsets = {0, 0};  // [BEGIN, END), data-section relative
  size_t offsets_count = 0;
};

// Builds the entries from SAX events, checking value types as they arrive. The header grammar
// is fixed and shallow, so a state per position replaces a DOM: nothing is kept but entries.
class HeaderHandler {
 public:
  HeaderHandler(std::string_view text, const std::string& file) : text_(text), file_(file) {}

  Status Parse();
  std::vector<RawEntry>& entries() { return entries_; }
  std::map<std::string, std::string>& metadata() { return metadata_; }

  // The SAX interface nlohmann calls.
  bool null();
  bool boolean(bool /*value*/) { return Scalar(); }
  bool number_integer(Json::number_integer_t /*value*/) { return Scalar(); }
  bool number_float(Json::number_float_t /*value*/, const Json::string_t& /*text*/) {
    return Scalar();
  }
  bool binary(Json::binary_t& /*value*/) { return Scalar(); }
  bool number_unsigned(Json::number_unsigned_t value);
  bool string(Json::string_t& value);
  bool start_object(std::size_t /*elements*/);
  bool end_object();
  bool start_array(std::size_t /*elements*/);
  bool end_array();
  bool key(Json::string_t& name);
  bool parse_error(std::size_t position, const std::string& last_token, const Json::exception& ex);

 private:
  // Where the next event belongs.
  enum class State {
    kRoot,           // before the root value
    kTopKey,         // in the root object
    kMetadataValue,  // after "__metadata__":
    kEntryValue,     // after a tensor name
    kMetadataKey,    // in the __metadata__ object
    kMetadataString,
    kFieldKey,  // in a tensor entry
    kDType,
    kShape,
    kOffsets,
    kIgnored,  // the value of an unknown field, skipped like the official reader does
    kShapeDim,
    kOffset,
    kDone,
  };

  bool Scalar();
  bool Skipped(bool opens_container);
  bool SkippedEnd();
  bool WrongType();
  bool Fail(ErrorCode code, std::string message, uint64_t file_offset);
  bool FailEntry(const std::string& what);
  bool OnTopKey(std::string& name);
  bool OnFieldKey(const std::string& name);
  bool OnEntryEnd();
  uint64_t KeyFileOffset() const;
  const std::string& entry_name() const { return entries_.back().info.name; }

  std::string_view text_;
  const std::string& file_;
  uint64_t consumed_ = 0;  // header bytes read by the parser so far
  State state_ = State::kRoot;
  uint64_t skip_depth_ = 0;  // containers open inside an ignored value
  std::optional<Error> error_;
  std::vector<RawEntry> entries_;
  std::unordered_set<std::string> names_;
  std::map<std::string, std::string> metadata_;
  std::string metadata_key_;
  uint64_t key_file_offset_ = 0;  // of the last top-level or metadata key
};

Status HeaderHandler::Parse() {
  CountingIterator first(text_.data(), &consumed_);
  CountingIterator last(text_.data() + text_.size(), &consumed_);
  bool parsed = false;
  try {
    parsed = Json::sax_parse(first, last, this, Json::input_format_t::json, /*strict=*/true);
  } catch (const std::bad_alloc&) {
    return Error(ErrorCode::kLimitExceeded, "out of memory while parsing the header",
                 ByteLocation(file_, kLengthBytes));
  } catch (const std::length_error&) {
    return Error(ErrorCode::kLimitExceeded, "header too large to parse",
                 ByteLocation(file_, kLengthBytes));
  }
  if (error_)
    return *error_;
  if (!parsed) {
    return Error(ErrorCode::kInternal, "JSON parser stopped without an error",
                 ByteLocation(file_, kLengthBytes));
  }
  return OkStatus();
}

bool HeaderHandler::Fail(ErrorCode code, std::string message, uint64_t file_offset) {
  error_ = Error(code, std::move(message), ByteLocation(file_, file_offset));
  return false;
}

bool HeaderHandler::FailEntry(const std::string& what) {
  return Fail(ErrorCode::kCorrupt, "tensor " + Quoted(entry_name()) + ": " + what,
              entries_.back().name_file_offset);
}

// At a key event the parser has just read the key's closing quote: walk back to the opening
// quote, the first '"' not escaped by an odd run of backslashes.
uint64_t HeaderHandler::KeyFileOffset() const {
  size_t i = consumed_ > 0 ? consumed_ - 1 : 0;
  while (i > 0) {
    --i;
    if (text_[i] != '"')
      continue;
    size_t backslashes = 0;
    while (backslashes < i && text_[i - 1 - backslashes] == '\\')
      ++backslashes;
    if (backslashes % 2 == 0)
      break;
  }
  return kLengthBytes + i;
}

// A value of a type the current position does not allow.
bool HeaderHandler::WrongType() {
  switch (state_) {
    case State::kRoot:
      return Fail(ErrorCode::kCorrupt, "header is not a JSON object",
                  kLengthBytes + text_.find_first_not_of(" \t\n\r"));
    case State::kMetadataValue:
      return Fail(ErrorCode::kCorrupt, "__metadata__ is not an object of strings",
                  key_file_offset_);
    case State::kMetadataString:
      return Fail(ErrorCode::kCorrupt,
                  "__metadata__ value of " + Quoted(metadata_key_) + " is not a string",
                  key_file_offset_);
    case State::kEntryValue:
      return FailEntry("entry is not an object");
    case State::kDType:
      return FailEntry("dtype is not a string");
    case State::kShape:
    case State::kShapeDim:
      return FailEntry("shape is not a list of non-negative integers");
    case State::kOffsets:
    case State::kOffset:
      return FailEntry("data_offsets is not a list of two non-negative integers");
    default:
      // The parser only delivers values after a key or inside an array.
      return Fail(ErrorCode::kInternal, "unexpected JSON event", kLengthBytes + consumed_);
  }
}

// Values inside an ignored field are consumed here; returns true when the event was one.
bool HeaderHandler::Skipped(bool opens_container) {
  if (skip_depth_ > 0) {
    skip_depth_ += opens_container ? 1 : 0;
    return true;
  }
  if (state_ != State::kIgnored)
    return false;
  if (opens_container)
    skip_depth_ = 1;
  else
    state_ = State::kFieldKey;
  return true;
}

bool HeaderHandler::Scalar() { return Skipped(false) || WrongType(); }

bool HeaderHandler::null() {
  if (skip_depth_ == 0 && state_ == State::kMetadataValue) {
    state_ = State::kTopKey;  // the official reader reads a null __metadata__ as none
    return true;
  }
  return Scalar();
}

bool HeaderHandler::number_unsigned(Json::number_unsigned_t value) {
  if (Skipped(false))
    return true;
  if (state_ == State::kShapeDim) {
    RawEntry& entry = entries_.back();
    if (entry.info.shape.size() == limits::kMaxRank) {
      return Fail(ErrorCode::kLimitExceeded,
                  "tensor " + Quoted(entry_name()) + ": rank is over the cap of " +
                      std::to_string(limits::kMaxRank) + " dimensions",
                  entry.name_file_offset);
    }
    entry.info.shape.push_back(value);
    return true;
  }
  if (state_ == State::kOffset && entries_.back().offsets_count < 2) {
    RawEntry& entry = entries_.back();
    entry.offsets[entry.offsets_count++] = value;
    return true;
  }
  return WrongType();
}

bool HeaderHandler::string(Json::string_t& value) {
  if (Skipped(false))
    return true;
  if (state_ == State::kMetadataString) {
    metadata_[metadata_key_] = std::move(value);
    state_ = State::kMetadataKey;
    return true;
  }
  if (state_ != State::kDType)
    return WrongType();
  const std::optional<DType> dtype = DTypeFromSafetensors(value);
  if (!dtype) {
    const bool known = std::find(kKnownUnsupportedDTypes.begin(), kKnownUnsupportedDTypes.end(),
                                 value) != kKnownUnsupportedDTypes.end();
    return Fail(
        known ? ErrorCode::kUnsupported : ErrorCode::kCorrupt,
        "tensor " + Quoted(entry_name()) + ": " +
            (known ? "dtype " + value + " is not supported" : "unknown dtype " + Quoted(value)),
        entries_.back().name_file_offset);
  }
  entries_.back().info.dtype = *dtype;
  state_ = State::kFieldKey;
  return true;
}

bool HeaderHandler::start_object(std::size_t /*elements*/) {
  if (Skipped(true))
    return true;
  switch (state_) {
    case State::kRoot:
      state_ = State::kTopKey;
      return true;
    case State::kMetadataValue:
      state_ = State::kMetadataKey;
      return true;
    case State::kEntryValue:
      state_ = State::kFieldKey;
      return true;
    default:
      return WrongType();
  }
}

bool HeaderHandler::start_array(std::size_t /*elements*/) {
  if (Skipped(true))
    return true;
  if (state_ != State::kShape && state_ != State::kOffsets)
    return WrongType();
  state_ = state_ == State::kShape ? State::kShapeDim : State::kOffset;
  return true;
}

// Closes a container inside an ignored value; returns true when the event was one.
bool HeaderHandler::SkippedEnd() {
  if (skip_depth_ == 0)
    return false;
  if (--skip_depth_ == 0)
    state_ = State::kFieldKey;
  return true;
}

bool HeaderHandler::end_object() {
  if (SkippedEnd())
    return true;
  switch (state_) {
    case State::kTopKey:
      state_ = State::kDone;
      return true;
    case State::kMetadataKey:
      state_ = State::kTopKey;
      return true;
    case State::kFieldKey:
      state_ = State::kTopKey;
      return OnEntryEnd();
    default:
      return WrongType();
  }
}

bool HeaderHandler::end_array() {
  if (SkippedEnd())
    return true;
  if (state_ != State::kShapeDim &&
      (state_ != State::kOffset || entries_.back().offsets_count != 2))
    return WrongType();
  state_ = State::kFieldKey;
  return true;
}

bool HeaderHandler::key(Json::string_t& name) {
  if (skip_depth_ > 0)
    return true;
  switch (state_) {
    case State::kTopKey:
      return OnTopKey(name);
    case State::kMetadataKey:
      key_file_offset_ = KeyFileOffset();
      if (metadata_.count(name) != 0) {
        return Fail(ErrorCode::kCorrupt, "__metadata__ has the key " + Quoted(name) + " twice",
                    key_file_offset_);
      }
      metadata_key_ = std::move(name);
      state_ = State::kMetadataString;
      return true;
    case State::kFieldKey:
      return OnFieldKey(name);
    default:
      return Fail(ErrorCode::kInternal, "unexpected JSON key", kLengthBytes + consumed_);
  }
}

bool HeaderHandler::OnTopKey(std::string& name) {
  key_file_offset_ = KeyFileOffset();
  if (name.size() > limits::kMaxNameBytes) {
    return Fail(ErrorCode::kLimitExceeded,
                "tensor name of " + std::to_string(name.size()) + " bytes is over the cap of " +
                    std::to_string(limits::kMaxNameBytes) + " bytes",
                key_file_offset_);
  }
  if (!names_.insert(name).second) {
    return Fail(ErrorCode::kCorrupt, "tensor name " + Quoted(name) + " appears twice",
                key_file_offset_);
  }
  if (name == "__metadata__") {
    state_ = State::kMetadataValue;
    return true;
  }
  if (entries_.size() == limits::kMaxTensorCount) {
    return Fail(ErrorCode::kLimitExceeded,
                "more than the cap of " + std::to_string(limits::kMaxTensorCount) + " tensors",
                key_file_offset_);
  }
  RawEntry& entry = entries_.emplace_back();
  entry.info.name = std::move(name);
  entry.name_file_offset = key_file_offset_;
  state_ = State::kEntryValue;
  return true;
}

bool HeaderHandler::OnFieldKey(const std::string& name) {
  RawEntry& entry = entries_.back();
  bool* seen = nullptr;
  State next = State::kIgnored;
  if (name == "dtype") {
    seen = &entry.has_dtype;
    next = State::kDType;
  } else if (name == "shape") {
    seen = &entry.has_shape;
    next = State::kShape;
  } else if (name == "data_offsets") {
    seen = &entry.has_offsets;
    next = State::kOffsets;
  }
  if (seen != nullptr) {
    if (*seen)
      return FailEntry("field " + name + " appears twice");
    *seen = true;
  }
  state_ = next;
  return true;
}

bool HeaderHandler::OnEntryEnd() {
  RawEntry& entry = entries_.back();
  for (const auto& [present, field] :
       {std::pair{entry.has_dtype, "dtype"}, std::pair{entry.has_shape, "shape"},
        std::pair{entry.has_offsets, "data_offsets"}}) {
    if (!present)
      return FailEntry(std::string("field ") + field + " is missing");
  }
  const std::optional<uint64_t> size = ByteSize(entry.info.dtype, entry.info.shape);
  if (!size)
    return FailEntry("shape " + ShapeToString(entry.info.shape) + " overflows 64 bits");
  entry.info.byte_size = *size;
  return true;
}

bool HeaderHandler::parse_error(std::size_t position, const std::string& /*last_token*/,
                                const Json::exception& ex) {
  // `position` counts characters read, so the character at fault is position - 1.
  const uint64_t header_offset = position > 0 ? position - 1 : 0;
  return Fail(ErrorCode::kCorrupt, "header is not valid JSON: " + ParserDetail(ex.what()),
              kLengthBytes + header_offset);
}

Result<std::string_view> ReadHeaderText(ByteReader& in) {
  const uint64_t length_at = in.offset();
  CW_ASSIGN_OR_RETURN(const uint64_t n, in.ReadU64());
  if (n > limits::kMaxSafetensorsHeaderBytes) {  // the cap first, then the bytes left
    std::string message = "header length " + std::to_string(n) + " is over the cap of " +
                          std::to_string(limits::kMaxSafetensorsHeaderBytes) + " bytes";
    if (AsChars(in.span().first(kLengthBytes)) == "version ")
      message += " (this looks like a git-lfs pointer file, not the weights)";
    return in.FailAt(length_at, ErrorCode::kLimitExceeded, std::move(message));
  }
  CW_ASSIGN_OR_RETURN(const ByteSpan text, in.ReadBytes(n));
  return AsChars(text);
}

// nlohmann ends parsing at a NUL byte as if the input ended there, and skips a byte order mark:
// the official reader rejects both, so they are refused before parsing.
Status CheckRawText(std::string_view text, const std::string& file) {
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos) {
    return Error(ErrorCode::kCorrupt, "header contains a NUL byte",
                 ByteLocation(file, kLengthBytes + nul));
  }
  if (text.starts_with("\xEF\xBB\xBF")) {
    return Error(ErrorCode::kCorrupt, "header starts with a byte order mark",
                 ByteLocation(file, kLengthBytes));
  }
  return OkStatus();
}

// Orders entries by offsets and checks that they tile the data section exactly, the way the
// official reader does, with each tensor's size computed from its dtype and shape.
Result<std::vector<SafetensorsEntry>> LayOut(std::vector<RawEntry>& raw, uint64_t data_file_offset,
                                             uint64_t data_bytes, const std::string& file) {
  std::vector<size_t> order(raw.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&raw](size_t a, size_t b) { return raw[a].offsets < raw[b].offsets; });
  std::vector<SafetensorsEntry> tensors;
  tensors.reserve(raw.size());
  uint64_t expected = 0;  // where the next tensor must begin
  for (const size_t k : order) {
    RawEntry& e = raw[k];
    const auto [begin, end] = e.offsets;
    const Location at = ByteLocation(file, e.name_file_offset);
    const std::string what = "tensor " + Quoted(e.info.name) + ": data_offsets [" +
                             std::to_string(begin) + ", " + std::to_string(end) + "]";
    if (end < begin)
      return Error(ErrorCode::kCorrupt, what + " end before they begin", at);
    if (begin != expected) {
      const std::string previous_end = std::to_string(expected);
      const std::string problem =
          tensors.empty()    ? " do not start at 0, where the first tensor must begin"
          : begin > expected ? " leave a gap: the previous tensor ends at " + previous_end
                             : " overlap the previous tensor, which ends at " + previous_end;
      return Error(ErrorCode::kCorrupt, what + problem, at);
    }
    if (end - begin != e.info.byte_size) {
      return Error(ErrorCode::kCorrupt,
                   what + " hold " + std::to_string(end - begin) + " bytes, but " +
                       std::string(Name(e.info.dtype)) + " " + ShapeToString(e.info.shape) +
                       " needs " + std::to_string(e.info.byte_size),
                   at);
    }
    expected = end;
    tensors.push_back({std::move(e.info), begin});
  }
  if (expected > data_bytes) {
    return Error(ErrorCode::kCorrupt,
                 "file is truncated: the header describes " + std::to_string(expected) +
                     " bytes of tensor data, but only " + std::to_string(data_bytes) + " follow it",
                 ByteLocation(file, data_file_offset + data_bytes));
  }
  if (expected < data_bytes) {
    return Error(ErrorCode::kCorrupt,
                 std::to_string(data_bytes - expected) + " bytes follow the last tensor's data",
                 ByteLocation(file, data_file_offset + expected));
  }
  return tensors;
}

}  // namespace

Result<SafetensorsLayout> ParseSafetensors(ByteSpan file_bytes, const std::string& file_name) {
  ByteReader in(file_bytes, file_name);
  CW_ASSIGN_OR_RETURN(const std::string_view text, ReadHeaderText(in));
  CW_RETURN_IF_ERROR(CheckRawText(text, file_name));
  HeaderHandler handler(text, file_name);
  CW_RETURN_IF_ERROR(handler.Parse());
  SafetensorsLayout layout;
  layout.header_bytes = text.size();
  layout.data_file_offset = in.offset();
  CW_ASSIGN_OR_RETURN(layout.tensors,
                      LayOut(handler.entries(), in.offset(), in.remaining(), file_name));
  layout.metadata = std::move(handler.metadata());
  return layout;
}

}  // namespace cw::safetensors
