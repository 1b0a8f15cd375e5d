// Bookkeeping shared by writers: which bytes of which tensor have been written, and their CRC-32.
//
// Writers accept pieces of tensors in any order from any thread. Before committing they ask
// Finish() to prove that every byte of every tensor arrived exactly once, and (for zip) get each
// tensor's CRC-32 combined from its pieces in offset order.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "cw/error.h"
#include "engine/base/bytes.h"
#include "engine/tensor/tensor.h"

namespace cw {

class WriteTracker {
 public:
  explicit WriteTracker(const std::vector<TensorInfo>& tensors);

  // Checks the piece against the tensor's size and records it (with its CRC-32 when
  // `with_crc`). Errors name the tensor.
  Status Record(size_t index, uint64_t offset, ByteSpan bytes, bool with_crc);
  // The same for `size` bytes the writer does not see (copied from a file), without CRC.
  Status RecordCopy(size_t index, uint64_t offset, uint64_t size);
  // Verifies complete, non-overlapping coverage of every tensor; returns per-tensor CRC-32s
  // (zero for tensors recorded without CRC).
  Result<std::vector<uint32_t>> Finish();

 private:
  Status Add(size_t index, uint64_t offset, uint64_t size, uint32_t crc);

  struct Piece {
    uint64_t offset;
    uint64_t size;
    uint32_t crc;
  };
  const std::vector<TensorInfo>& tensors_;
  std::mutex mutex_;
  std::vector<std::vector<Piece>> pieces_;
};

// CRC-32 (zlib/IEEE) of `bytes`, continuing from `crc`.
uint32_t Crc32(ByteSpan bytes, uint32_t crc = 0);
// CRC of A followed by B, from crc(A), crc(B) and len(B).
uint32_t Crc32Combine(uint32_t crc_a, uint32_t crc_b, uint64_t size_b);

}  // namespace cw
