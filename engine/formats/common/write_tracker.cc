#include "engine/formats/common/write_tracker.h"

#include <zlib.h>

#include <algorithm>
#include <climits>

#include "engine/base/checked_math.h"

namespace cw {

uint32_t Crc32(ByteSpan bytes, uint32_t crc) {
  // zlib takes uInt lengths; feed large spans in slices.
  const auto* p = reinterpret_cast<const Bytef*>(bytes.data());  // NOLINT
  uint64_t n = bytes.size();
  uLong c = crc;
  while (n > 0) {
    const auto step = static_cast<uInt>(std::min<uint64_t>(n, UINT_MAX / 2));
    c = crc32(c, p, step);
    p += step;
    n -= step;
  }
  return static_cast<uint32_t>(c);
}

uint32_t Crc32Combine(uint32_t crc_a, uint32_t crc_b, uint64_t size_b) {
  return static_cast<uint32_t>(crc32_combine64(crc_a, crc_b, static_cast<z_off64_t>(size_b)));
}

WriteTracker::WriteTracker(const std::vector<TensorInfo>& tensors)
    : tensors_(tensors), pieces_(tensors.size()) {}

Status WriteTracker::Record(size_t index, uint64_t offset, ByteSpan bytes, bool with_crc) {
  return Add(index, offset, bytes.size(), with_crc ? Crc32(bytes) : 0);
}

Status WriteTracker::RecordCopy(size_t index, uint64_t offset, uint64_t size) {
  return Add(index, offset, size, 0);
}

Status WriteTracker::Add(size_t index, uint64_t offset, uint64_t size, uint32_t crc) {
  if (index >= tensors_.size()) {
    return Error(ErrorCode::kInternal, "write to tensor #" + std::to_string(index) + " of " +
                                           std::to_string(tensors_.size()));
  }
  const TensorInfo& t = tensors_[index];
  if (!FitsIn(offset, size, t.byte_size)) {
    return Error(ErrorCode::kInternal, "write of " + std::to_string(size) + " bytes at " +
                                           std::to_string(offset) + " is outside tensor \"" +
                                           t.name + "\" (" + std::to_string(t.byte_size) +
                                           " bytes)");
  }
  if (size == 0)
    return OkStatus();  // nothing written, nothing to cover
  std::lock_guard lock(mutex_);
  pieces_[index].push_back({offset, size, crc});
  return OkStatus();
}

Result<std::vector<uint32_t>> WriteTracker::Finish() {
  std::lock_guard lock(mutex_);
  std::vector<uint32_t> crcs(tensors_.size(), 0);
  for (size_t i = 0; i < tensors_.size(); ++i) {
    auto& pieces = pieces_[i];
    std::sort(pieces.begin(), pieces.end(),
              [](const Piece& a, const Piece& b) { return a.offset < b.offset; });
    uint64_t covered = 0;
    uint32_t crc = 0;
    for (const Piece& p : pieces) {
      if (p.offset != covered) {
        return Error(ErrorCode::kInternal,
                     "tensor \"" + tensors_[i].name + "\": bytes " + std::to_string(covered) +
                         (p.offset > covered ? " to " + std::to_string(p.offset) + " never written"
                                             : " written twice"));
      }
      crc = Crc32Combine(crc, p.crc, p.size);
      covered += p.size;
    }
    if (covered != tensors_[i].byte_size) {
      return Error(ErrorCode::kInternal,
                   "tensor \"" + tensors_[i].name + "\": only " + std::to_string(covered) + " of " +
                       std::to_string(tensors_[i].byte_size) + " bytes written");
    }
    crcs[i] = crc;
  }
  return crcs;
}

}  // namespace cw
