#include "engine/formats/mindspore/mindspore_reader.h"

#include <algorithm>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/base/byte_reader.h"
#include "engine/base/limits.h"
#include "engine/base/text.h"
#include "engine/formats/common/write_tracker.h"
#include "engine/formats/mindspore/ckpt_wire.h"

namespace cw::mindspore {
namespace {

constexpr std::string_view kCrcMagic = "crc_num";
constexpr uint64_t kCrcTrailerBytes = 17;    // "crc_num" + a 10-byte big-endian integer
constexpr size_t kDescribedTextBytes = 128;  // a skipped string's description keeps its start

struct Listing {
  std::vector<TensorInfo> tensors;
  std::vector<std::vector<ByteSpan>> pieces;  // per tensor: its content views, in file order
  std::vector<SkippedValue> skipped;
};

// Adjacent records of one tag: the pieces of one value (docs/formats/mindspore.md, 'Layout').
struct Run {
  CkptRecord first;
  std::vector<ByteSpan> pieces;
  uint64_t content_bytes = 0;
};

// V1, V2: nothing to parse, or ciphertext (the first 4 bytes of each encrypted block are a magic
// no record can start with, since every record starts with 0x0A).
Status CheckPrelude(ByteSpan bytes, const std::string& file) {
  if (bytes.empty()) {
    return Error(ErrorCode::kCorrupt, "empty file: not a MindSpore checkpoint",
                 ByteLocation(file, 0));
  }
  if (bytes.size() < 4)
    return OkStatus();
  const char* mode = nullptr;
  switch (LoadLE<uint32_t>(bytes.data())) {
    case 0x7F3A5ED8:
      mode = "AES-GCM";
      break;
    case 0x7F3A5ED9:
      mode = "AES-CBC";
      break;
    case 0x7F3A5EDA:
      mode = "SM4-CBC";
      break;
    default:
      return OkStatus();
  }
  return Error(
      ErrorCode::kUnsupported,
      std::string("encrypted MindSpore checkpoint (") + mode + "); decrypt it with MindSpore first",
      ByteLocation(file, 0));
}

// V3: MindSpore strips a trailer whenever bytes [-17, -10) read "crc_num", whether or not it was
// asked to check; we strip it too and always verify, since the listing pass is cheap.
Result<ByteSpan> StripCrcTrailer(ByteSpan bytes, const std::string& file) {
  if (bytes.size() < kCrcTrailerBytes)
    return bytes;
  const uint64_t trailer_at = bytes.size() - kCrcTrailerBytes;
  const uint64_t value_at = trailer_at + kCrcMagic.size();
  if (AsChars(bytes.subspan(trailer_at, kCrcMagic.size())) != kCrcMagic)
    return bytes;
  // A 10-byte big-endian integer holding a CRC-32: its first 6 bytes are zero.
  const ByteSpan value = bytes.subspan(value_at);
  if (std::any_of(value.begin(), value.end() - 4, [](std::byte b) { return b != std::byte{0}; })) {
    return Error(ErrorCode::kCorrupt, "CRC trailer value does not fit in 32 bits",
                 ByteLocation(file, value_at));
  }
  uint32_t stored = 0;
  for (const std::byte b : value.last(4))
    stored = (stored << 8) | static_cast<uint8_t>(b);
  const ByteSpan payload = bytes.first(trailer_at);
  const uint32_t actual = Crc32(payload);
  if (actual != stored) {
    return Error(ErrorCode::kCorrupt,
                 "CRC check failed: the trailer says " + Hex(stored, 8) + ", the " +
                     std::to_string(trailer_at) + " bytes of records give " + Hex(actual, 8),
                 ByteLocation(file, value_at));
  }
  return payload;
}

// UTF-8 of one code point.
void AppendCodePoint(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// V16: a "str" value is numpy's <U{n}: UTF-32LE code points whose trailing NULs numpy drops.
// Every code point is checked; the start of the text is kept for the description.
Result<std::string> DecodeUtf32(const Run& run, const Location& at) {
  const std::string prefix = TagPrefix(run.first.tag);
  if (run.content_bytes % 4 != 0) {
    return Error(ErrorCode::kCorrupt,
                 prefix + "str content of " + std::to_string(run.content_bytes) +
                     " bytes is not UTF-32 (not a multiple of 4)",
                 at);
  }
  std::string text;
  uint64_t pending_nuls = 0;  // NULs kept only if a character follows them
  uint32_t unit = 0;
  int filled = 0;
  for (const ByteSpan piece : run.pieces) {
    for (const std::byte b : piece) {  // pieces may split a code point: carry it across
      unit |= static_cast<uint32_t>(b) << (8 * filled);
      if (++filled < 4)
        continue;
      const uint32_t cp = std::exchange(unit, 0);
      filled = 0;
      if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return Error(ErrorCode::kCorrupt, prefix + "str holds invalid code point " + Hex(cp, 8),
                     at);
      if (cp == 0) {
        ++pending_nuls;
        continue;
      }
      for (; pending_nuls > 0 && text.size() < kDescribedTextBytes; --pending_nuls)
        text.push_back('\0');
      pending_nuls = 0;
      if (text.size() < kDescribedTextBytes)
        AppendCodePoint(text, cp);
    }
  }
  return text;
}

// V11, V12, V14, V16, V20: turns a complete run into a tensor or a skipped value.
Status FinishRun(const Run& run, Listing& out, const std::string& file) {
  const CkptRecord& r = run.first;
  const Location at = ByteLocation(file, r.record_offset);
  const std::string tag(r.tag);
  if (r.tensor_type == "str") {
    CW_ASSIGN_OR_RETURN(const std::string text, DecodeUtf32(run, at));
    out.skipped.push_back({tag, "str " + Quoted(text)});
    return OkStatus();
  }
  if (r.tensor_type == "random_op") {  // RNG state of MindSpore 2.3/2.4, which 2.6 cannot load
    out.skipped.push_back(
        {tag, "random_op state (" + std::to_string(run.content_bytes) + " bytes), not a tensor"});
    return OkStatus();
  }
  const std::optional<DType> dtype = DTypeFromMindSpore(r.tensor_type);
  if (!dtype) {
    return Error(ErrorCode::kUnsupported,
                 TagPrefix(tag) + "tensor_type " + Quoted(r.tensor_type) + " is not supported", at);
  }
  // Every MindSpore loader reads dims [0] as a scalar, so a 1-D tensor of length 0 cannot exist.
  const bool old_scalar = r.dims == Shape{0};
  if (old_scalar && run.content_bytes == 0)
    return Error(ErrorCode::kCorrupt, TagPrefix(tag) + "dims [0] (a scalar) with no content", at);
  TensorInfo info{tag, *dtype, old_scalar ? Shape{} : r.dims, 0};
  const std::optional<uint64_t> expected = ByteSize(*dtype, info.shape);
  if (!expected) {
    return Error(ErrorCode::kCorrupt,
                 TagPrefix(tag) + "dims " + ShapeToString(r.dims) + " overflow 64 bits", at);
  }
  if (*expected != run.content_bytes) {
    return Error(ErrorCode::kCorrupt,
                 TagPrefix(tag) + std::to_string(run.content_bytes) + " bytes of content in " +
                     std::to_string(run.pieces.size()) + " record(s), but " +
                     std::string(r.tensor_type) + " " + ShapeToString(r.dims) + " needs " +
                     std::to_string(*expected),
                 at);
  }
  info.byte_size = *expected;
  out.tensors.push_back(std::move(info));
  out.pieces.push_back(run.pieces);
  return OkStatus();
}

// V13: MindSpore would silently take dims and type from the last piece.
Status CheckSamePiece(const CkptRecord& first, const CkptRecord& next, const std::string& file) {
  if (next.dims == first.dims && next.tensor_type == first.tensor_type)
    return OkStatus();
  return Error(ErrorCode::kCorrupt,
               TagPrefix(next.tag) + "record " + std::string(next.tensor_type) + " " +
                   ShapeToString(next.dims) + " continues a value stored as " +
                   std::string(first.tensor_type) + " " + ShapeToString(first.dims) + " (at byte " +
                   std::to_string(first.record_offset) + ")",
               ByteLocation(file, next.record_offset));
}

// V4-V15, V19: walks the records, joining adjacent ones of one tag.
Result<Listing> ListRecords(ByteSpan payload, const std::string& file) {
  ByteReader in(payload, file);
  Listing listing;
  std::unordered_map<std::string, uint64_t> seen;  // tag -> its first record's offset
  std::optional<Run> run;
  while (!in.empty()) {
    CW_ASSIGN_OR_RETURN(const CkptRecord record, ReadRecord(in, /*first=*/!run));
    if (run && record.tag == run->first.tag) {
      CW_RETURN_IF_ERROR(CheckSamePiece(run->first, record, file));
      run->pieces.push_back(record.content);
      run->content_bytes += record.content.size();  // disjoint views of the file: no overflow
      continue;
    }
    if (run)
      CW_RETURN_IF_ERROR(FinishRun(*run, listing, file));
    const auto [it, inserted] = seen.emplace(record.tag, record.record_offset);
    if (!inserted) {  // V15: MindSpore would silently keep the later run
      return Error(ErrorCode::kCorrupt,
                   TagPrefix(record.tag) + "appears again after other values (first at byte " +
                       std::to_string(it->second) + ")",
                   ByteLocation(file, record.record_offset));
    }
    if (seen.size() > limits::kMaxTensorCount) {
      return Error(ErrorCode::kLimitExceeded,
                   "more than " + std::to_string(limits::kMaxTensorCount) +
                       " values (limits::kMaxTensorCount)",
                   ByteLocation(file, record.record_offset));
    }
    run = Run{record, {record.content}, record.content.size()};
  }
  if (run)
    CW_RETURN_IF_ERROR(FinishRun(*run, listing, file));
  if (listing.tensors.empty()) {  // V19: converting it would produce an empty model
    return Error(ErrorCode::kCorrupt,
                 "no tensors in the checkpoint (" + std::to_string(listing.skipped.size()) +
                     " non-tensor values)",
                 ByteLocation(file, 0));
  }
  return listing;
}

Result<Listing> ListCheckpoint(ByteSpan bytes, const std::string& file) {
  CW_RETURN_IF_ERROR(CheckPrelude(bytes, file));
  CW_ASSIGN_OR_RETURN(const ByteSpan payload, StripCrcTrailer(bytes, file));
  return ListRecords(payload, file);
}

class Reader final : public CheckpointReader {
 public:
  Reader(std::optional<MappedFile> mapping, std::string file, Listing listing)
      : mapping_(std::move(mapping)), file_(std::move(file)), listing_(std::move(listing)) {}

  FileFormat format() const override { return FileFormat::kMindSpore; }
  const std::vector<TensorInfo>& tensors() const override { return listing_.tensors; }
  const std::string& FileOf(size_t /*index*/) const override { return file_; }
  const std::vector<SkippedValue>& skipped() const override { return listing_.skipped; }
  const std::map<std::string, std::string>& metadata() const override { return metadata_; }

  Result<TensorData> Read(size_t index) const override {
    if (index >= listing_.tensors.size()) {
      return Error(
          ErrorCode::kInternal,
          "tensor #" + std::to_string(index) + " of " + std::to_string(listing_.tensors.size()),
          FileLocation(file_));
    }
    const std::vector<ByteSpan>& pieces = listing_.pieces[index];
    if (pieces.size() == 1)
      return TensorData::Borrow(pieces.front());
    // A tensor saved in several records is contiguous only once joined
    // (docs/formats/mindspore.md, 'Layout').
    TensorData data = TensorData::Allocate(listing_.tensors[index].byte_size);
    auto out = data.mutable_bytes().begin();
    for (const ByteSpan piece : pieces)
      out = std::copy(piece.begin(), piece.end(), out);
    return data;
  }
  std::vector<FileExtent> Extents(size_t index) const override {
    std::vector<FileExtent> extents;
    if (!mapping_ || index >= listing_.pieces.size())
      return extents;
    for (const ByteSpan piece : listing_.pieces[index]) {
      extents.push_back(
          {static_cast<uint64_t>(piece.data() - mapping_->bytes().data()), piece.size()});
    }
    return extents;
  }

 private:
  std::optional<MappedFile> mapping_;  // empty for OpenReaderOnBytes
  std::string file_;
  Listing listing_;  // views into *mapping_ (or the caller's bytes)
  std::map<std::string, std::string> metadata_;
};

}  // namespace

Result<std::unique_ptr<CheckpointReader>> OpenReader(MappedFile file) {
  std::string name = file.path();
  CW_ASSIGN_OR_RETURN(Listing listing, ListCheckpoint(file.bytes(), name));
  // The views stay valid: moving a MappedFile moves ownership of the mapping, not the bytes.
  return std::unique_ptr<CheckpointReader>(
      std::make_unique<Reader>(std::move(file), std::move(name), std::move(listing)));
}

Result<std::unique_ptr<CheckpointReader>> OpenReaderOnBytes(ByteSpan bytes, std::string file) {
  CW_ASSIGN_OR_RETURN(Listing listing, ListCheckpoint(bytes, file));
  return std::unique_ptr<CheckpointReader>(
      std::make_unique<Reader>(std::nullopt, std::move(file), std::move(listing)));
}

}  // namespace cw::mindspore
