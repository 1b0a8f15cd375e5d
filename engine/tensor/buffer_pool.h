// Large tensor buffers kept for reuse.
//
// A freshly allocated buffer of tens of MiB costs one page fault per 4 KiB page on first touch,
// and glibc hands such buffers back to the kernel when they are freed. Steps allocate buffers of
// a few sizes over and over (each expert's dequantised weight, its transpose, ...): perf showed a
// fifth of an FP8 dequantising conversion in page faults. Pooled buffers are backed by huge pages
// where the kernel offers them, and freed large buffers are therefore kept
// and handed out again for requests of the same size class, as long as the pooled bytes in use
// plus those kept stay within a limit (the executor sets it to its memory budget), so keeping
// them never raises the peak memory above that budget.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace cw {

struct PooledBufferDeleter {
  uint64_t capacity = 0;  // 0: not pooled
  void operator()(std::byte* p) const;
};
using PooledBuffer = std::unique_ptr<std::byte[], PooledBufferDeleter>;

// An uninitialised buffer of at least `n` bytes.
PooledBuffer AllocateBuffer(uint64_t n);

// Requests of at least this many bytes go through the pool (a huge page on x86-64).
inline constexpr uint64_t kPooledBufferMinBytes = uint64_t{2} << 20;
// The limit until SetPooledBufferLimit() is called.
inline constexpr uint64_t kDefaultPooledBufferLimit = uint64_t{256} << 20;

// Buffers are kept only while pooled bytes in use plus kept stay within `bytes`; the least
// recently freed go first. Lowering it releases kept buffers at once.
void SetPooledBufferLimit(uint64_t bytes);

// The capacity a request of `n` bytes gets: rounded up to a multiple of an eighth of its power of
// two (at least of kPooledBufferMinBytes), so that requests of nearly equal sizes share buffers;
// above 16 MiB at most 12.5% is wasted.
uint64_t PooledCapacity(uint64_t n);

// Bytes currently kept for reuse (for tests).
uint64_t PooledBytesKept();

}  // namespace cw
