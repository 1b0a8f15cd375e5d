#include "engine/formats/mindspore/mindspore_writer.h"

#include <algorithm>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "engine/base/checked_math.h"
#include "engine/base/limits.h"
#include "engine/base/text.h"
#include "engine/formats/common/write_tracker.h"
#include "engine/formats/mindspore/ckpt_wire.h"

namespace cw::mindspore {
namespace {

// libprotobuf parses a message from an `int` size, so a record must stay under 2 GiB; 1 GiB
// leaves room for any header and is twice MindSpore's own chunk size.
constexpr uint64_t kMaxChunkBytes = 1ull << 30;
constexpr std::string_view kCrcMagic = "crc_num";

struct Record {
  uint64_t tensor_offset = 0;  // first tensor byte this record holds
  uint64_t content_bytes = 0;
  uint64_t header_offset = 0;  // file offset of the record's first byte
  uint64_t header_bytes = 0;
  uint32_t header_crc = 0;
};

struct Layout {
  std::vector<Record> records;       // in file order
  std::vector<size_t> first_record;  // per tensor
  std::vector<TensorInfo> pieces;    // one per record, what the WriteTracker tracks
  uint64_t payload_bytes = 0;        // all records; the CRC trailer follows
};

Error Refuse(ErrorCode code, const TensorInfo& t, const std::string& why, const OutputFile& out) {
  return Error(code, "tensor " + Quoted(t.name) + ": " + why, FileLocation(out.target().string()));
}

// What MindSpore (and our reader) could not load back, or that the format cannot say.
Status CheckTensor(const TensorInfo& t, const OutputFile& out) {
  if (t.name.empty())
    return Refuse(ErrorCode::kUnsupported, t, "a MindSpore tag cannot be empty", out);
  if (t.name.size() > limits::kMaxNameBytes)
    return Refuse(ErrorCode::kLimitExceeded, t, "name over limits::kMaxNameBytes", out);
  if (!IsValidUtf8(t.name))
    return Refuse(ErrorCode::kUnsupported, t, "a MindSpore tag must be valid UTF-8", out);
  const std::string_view type = Info(t.dtype).mindspore;
  if (type.empty()) {
    return Refuse(ErrorCode::kUnsupported, t,
                  "dtype " + std::string(Name(t.dtype)) + " has no MindSpore tensor_type", out);
  }
  if (t.shape.size() > limits::kMaxRank)
    return Refuse(ErrorCode::kLimitExceeded, t, "rank over limits::kMaxRank", out);
  const std::optional<uint64_t> elements = ElementCount(t.shape);
  if (elements == 0) {  // MindSpore drops such tensors; dims [0] would read back as a scalar
    return Refuse(ErrorCode::kUnsupported, t,
                  "shape " + ShapeToString(t.shape) +
                      " has no elements, which a MindSpore checkpoint cannot represent",
                  out);
  }
  if (std::any_of(t.shape.begin(), t.shape.end(),
                  [](uint64_t d) { return d > uint64_t{INT64_MAX}; })) {
    return Refuse(ErrorCode::kUnsupported, t, "dims are int64 in a MindSpore checkpoint", out);
  }
  if (!elements || ByteSize(t.dtype, t.shape) != t.byte_size) {
    return Refuse(ErrorCode::kInternal, t,
                  "byte size " + std::to_string(t.byte_size) + " does not match " +
                      std::string(Name(t.dtype)) + " " + ShapeToString(t.shape),
                  out);
  }
  return OkStatus();
}

Status CheckTensors(const std::vector<TensorInfo>& tensors, const OutputFile& out) {
  const Location where = FileLocation(out.target().string());
  if (tensors.empty()) {
    return Error(ErrorCode::kUnsupported,
                 "no tensors to write: MindSpore refuses to load an empty checkpoint", where);
  }
  std::unordered_set<std::string_view> names;
  for (const TensorInfo& t : tensors) {
    CW_RETURN_IF_ERROR(CheckTensor(t, out));
    if (!names.insert(t.name).second)
      return Refuse(ErrorCode::kUsage, t, "name given twice", out);
  }
  return OkStatus();
}

// Computes every record and writes its header; tensor bytes come later through Write().
Result<Layout> WriteHeaders(const std::vector<TensorInfo>& tensors, uint64_t chunk_bytes,
                            const OutputFile& out) {
  Layout layout;
  uint64_t offset = 0;
  for (const TensorInfo& t : tensors) {
    const uint64_t count = t.byte_size / chunk_bytes + (t.byte_size % chunk_bytes != 0 ? 1 : 0);
    if (count > limits::kMaxTensorCount - layout.records.size()) {
      return Error(ErrorCode::kLimitExceeded,
                   "chunks of " + std::to_string(chunk_bytes) + " bytes make more than " +
                       std::to_string(limits::kMaxTensorCount) +
                       " records (limits::kMaxTensorCount)",
                   FileLocation(out.target().string()));
    }
    layout.first_record.push_back(layout.records.size());
    for (uint64_t k = 0; k < count; ++k) {
      Record r;
      r.tensor_offset = k * chunk_bytes;
      r.content_bytes = std::min(chunk_bytes, t.byte_size - r.tensor_offset);
      // Every piece carries the full dims and the tensor's type
      // (docs/formats/mindspore.md, 'Layout').
      const std::string header =
          EncodeRecordHeader(t.name, t.shape, Info(t.dtype).mindspore, r.content_bytes);
      r.header_offset = offset;
      r.header_bytes = header.size();
      r.header_crc = Crc32(AsBytes(header));
      CW_RETURN_IF_ERROR(out.WriteAt(offset, AsBytes(header)));
      offset += r.header_bytes + r.content_bytes;
      std::string piece_name = count == 1 ? t.name
                                          : t.name + " (record " + std::to_string(k + 1) + " of " +
                                                std::to_string(count) + ")";
      layout.pieces.push_back(
          {std::move(piece_name), DType::kU8, {r.content_bytes}, r.content_bytes});
      layout.records.push_back(r);
    }
  }
  layout.payload_bytes = offset;
  return layout;
}

std::string CrcTrailer(uint32_t crc) {
  std::string out(kCrcMagic);
  out.append(6, '\0');  // a 10-byte big-endian integer whose value is a CRC-32
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((crc >> shift) & 0xFF));
  return out;
}

class Writer final : public CheckpointWriter {
 public:
  Writer(OutputFile out, std::vector<TensorInfo> tensors, Layout layout, uint64_t chunk_bytes,
         bool with_crc)
      : out_(std::move(out)),
        tensors_(std::move(tensors)),
        layout_(std::move(layout)),
        tracker_(layout_.pieces),
        chunk_bytes_(chunk_bytes),
        with_crc_(with_crc) {}

  Status Write(size_t index, uint64_t offset, ByteSpan bytes) override {
    return ForEachRecordPiece(index, offset, bytes.size(),
                              [&](size_t r, uint64_t within, uint64_t at, uint64_t n) -> Status {
                                const ByteSpan piece = bytes.subspan(at, n);
                                CW_RETURN_IF_ERROR(tracker_.Record(r, within, piece, with_crc_));
                                return out_.WriteAt(ContentOffset(r) + within, piece);
                              });
  }

  Status CopyFromFile(size_t index, uint64_t offset, const InputFile& source,
                      uint64_t source_offset, uint64_t size) override {
    if (with_crc_)  // the trailer's CRC needs every byte
      return CheckpointWriter::CopyFromFile(index, offset, source, source_offset, size);
    return ForEachRecordPiece(
        index, offset, size, [&](size_t r, uint64_t within, uint64_t at, uint64_t n) -> Status {
          CW_RETURN_IF_ERROR(tracker_.RecordCopy(r, within, n));
          return out_.CopyFrom(ContentOffset(r) + within, source, source_offset + at, n);
        });
  }

  Status Commit() override {
    if (committed_)
      return Error(ErrorCode::kUsage, "committed twice", FileLocation(out_.target().string()));
    Result<std::vector<uint32_t>> content_crcs = tracker_.Finish();
    if (!content_crcs.ok())
      return std::move(content_crcs).error().InFile(out_.target().string());
    if (with_crc_) {
      // CRC of header, content, header, content...: combined, so no byte is read back.
      uint32_t crc = 0;
      for (size_t r = 0; r < layout_.records.size(); ++r) {
        crc = Crc32Combine(crc, layout_.records[r].header_crc, layout_.records[r].header_bytes);
        crc = Crc32Combine(crc, (*content_crcs)[r], layout_.records[r].content_bytes);
      }
      CW_RETURN_IF_ERROR(out_.WriteAt(layout_.payload_bytes, AsBytes(CrcTrailer(crc))));
    }
    CW_RETURN_IF_ERROR(out_.Commit());
    committed_ = true;
    return OkStatus();
  }

 private:
  // Calls put(record, offset in the record's content, offset in the piece, bytes) for each part of
  // bytes [offset, offset + size) of tensor `index`: a piece may span records, so it is split
  // where one record's content ends.
  template <typename Put>
  Status ForEachRecordPiece(size_t index, uint64_t offset, uint64_t size, Put put) const {
    if (index >= tensors_.size() || !FitsIn(offset, size, tensors_[index].byte_size)) {
      return Error(ErrorCode::kInternal,
                   "write of " + std::to_string(size) + " bytes at " + std::to_string(offset) +
                       " to tensor #" + std::to_string(index) + " is out of range",
                   FileLocation(out_.target().string()));
    }
    for (uint64_t at = 0; at < size;) {
      const size_t r = layout_.first_record[index] + (offset + at) / chunk_bytes_;
      const uint64_t within = offset + at - layout_.records[r].tensor_offset;
      const uint64_t n = std::min(size - at, layout_.records[r].content_bytes - within);
      CW_RETURN_IF_ERROR(put(r, within, at, n));
      at += n;
    }
    return OkStatus();
  }
  uint64_t ContentOffset(size_t r) const {
    return layout_.records[r].header_offset + layout_.records[r].header_bytes;
  }

  OutputFile out_;
  std::vector<TensorInfo> tensors_;
  Layout layout_;
  WriteTracker tracker_;  // holds a reference to layout_.pieces
  uint64_t chunk_bytes_;
  bool with_crc_;
  bool committed_ = false;
};

}  // namespace

Result<std::unique_ptr<CheckpointWriter>> CreateWriter(OutputFile out,
                                                       std::vector<TensorInfo> tensors,
                                                       const WriterOptions& options) {
  const uint64_t chunk_bytes = options.ckpt_chunk_bytes;
  if (chunk_bytes == 0 || chunk_bytes > kMaxChunkBytes) {
    return Error(ErrorCode::kUsage,
                 "chunk size " + std::to_string(chunk_bytes) + " is not between 1 and " +
                     std::to_string(kMaxChunkBytes) + " bytes",
                 FileLocation(out.target().string()));
  }
  CW_RETURN_IF_ERROR(CheckTensors(tensors, out));
  CW_ASSIGN_OR_RETURN(Layout layout, WriteHeaders(tensors, chunk_bytes, out));
  const uint64_t file_bytes = layout.payload_bytes + (options.ckpt_crc ? CrcTrailer(0).size() : 0);
  CW_RETURN_IF_ERROR(out.Resize(file_bytes));
  return std::unique_ptr<CheckpointWriter>(std::make_unique<Writer>(
      std::move(out), std::move(tensors), std::move(layout), chunk_bytes, options.ckpt_crc));
}

}  // namespace cw::mindspore
