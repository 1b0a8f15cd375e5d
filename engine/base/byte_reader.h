// A bounds-checked cursor over a byte span, reporting errors at file offsets.
//
// Every read tests `n > remaining()` first (never `pos + n > size`, which can wrap) and returns a
// view into the span. The reader knows the file offset at which its span starts, so errors inside
// a zip entry or a .ckpt record name the byte in the file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cw/error.h"
#include "engine/base/bytes.h"

namespace cw {

class ByteReader {
 public:
  // `span_file_offset`: where `span` starts in `file`.
  ByteReader(ByteSpan span, std::string file, uint64_t span_file_offset = 0)
      : span_(span), file_(std::move(file)), base_(span_file_offset) {}

  uint64_t offset() const { return base_ + pos_; }  // file offset of the next byte
  uint64_t position() const { return pos_; }        // offset inside the span
  uint64_t remaining() const { return span_.size() - pos_; }
  bool empty() const { return pos_ == span_.size(); }
  const std::string& file() const { return file_; }
  ByteSpan span() const { return span_; }

  Result<uint8_t> ReadU8();
  Result<uint16_t> ReadU16();  // little-endian
  Result<uint32_t> ReadU32();
  Result<uint64_t> ReadU64();
  Result<ByteSpan> ReadBytes(uint64_t n);
  Result<uint8_t> PeekU8() const;
  Status Skip(uint64_t n);
  Status Seek(uint64_t position);  // inside the span

  // A reader over the next `n` bytes, advancing this one past them.
  Result<ByteReader> Sub(uint64_t n);

  Location At(uint64_t file_offset) const { return ByteLocation(file_, file_offset); }
  Location Here() const { return At(offset()); }
  Error Fail(ErrorCode code, std::string message) const {
    return Error(code, std::move(message), Here());
  }
  Error FailAt(uint64_t file_offset, ErrorCode code, std::string message) const {
    return Error(code, std::move(message), At(file_offset));
  }

 private:
  Error Truncated(uint64_t wanted) const;

  ByteSpan span_;
  std::string file_;
  uint64_t base_;
  uint64_t pos_ = 0;
};

}  // namespace cw
