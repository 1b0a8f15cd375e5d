#include "engine/base/byte_reader.h"

namespace cw {

Error ByteReader::Truncated(uint64_t wanted) const {
  return Fail(ErrorCode::kCorrupt, "truncated: need " + std::to_string(wanted) + " bytes, only " +
                                       std::to_string(remaining()) + " left");
}

Result<uint8_t> ByteReader::ReadU8() {
  if (remaining() < 1)
    return Truncated(1);
  return static_cast<uint8_t>(span_[pos_++]);
}

Result<uint8_t> ByteReader::PeekU8() const {
  if (remaining() < 1)
    return Truncated(1);
  return static_cast<uint8_t>(span_[pos_]);
}

Result<uint16_t> ByteReader::ReadU16() {
  if (remaining() < 2)
    return Truncated(2);
  const auto v = LoadLE<uint16_t>(span_.data() + pos_);
  pos_ += 2;
  return v;
}

Result<uint32_t> ByteReader::ReadU32() {
  if (remaining() < 4)
    return Truncated(4);
  const auto v = LoadLE<uint32_t>(span_.data() + pos_);
  pos_ += 4;
  return v;
}

Result<uint64_t> ByteReader::ReadU64() {
  if (remaining() < 8)
    return Truncated(8);
  const auto v = LoadLE<uint64_t>(span_.data() + pos_);
  pos_ += 8;
  return v;
}

Result<ByteSpan> ByteReader::ReadBytes(uint64_t n) {
  if (n > remaining())
    return Truncated(n);
  ByteSpan out = span_.subspan(pos_, n);
  pos_ += n;
  return out;
}

Status ByteReader::Skip(uint64_t n) {
  if (n > remaining())
    return Truncated(n);
  pos_ += n;
  return OkStatus();
}

Status ByteReader::Seek(uint64_t position) {
  if (position > span_.size()) {
    return Fail(ErrorCode::kCorrupt, "offset " + std::to_string(position) + " is past the end (" +
                                         std::to_string(span_.size()) + " bytes)");
  }
  pos_ = position;
  return OkStatus();
}

Result<ByteReader> ByteReader::Sub(uint64_t n) {
  const uint64_t start = offset();
  CW_ASSIGN_OR_RETURN(ByteSpan bytes, ReadBytes(n));
  return ByteReader(bytes, file_, start);
}

}  // namespace cw
