#include "engine/tensor/buffer_pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <new>

namespace cw {
namespace {

struct Kept {
  uint64_t capacity;
  std::byte* data;
};

// Aligned to huge pages and marked for them: the first touch of a 2 MiB page costs one fault,
// not 512 (where transparent huge pages are off, the advice is ignored).
// REQUIRES: capacity is a multiple of kPooledBufferMinBytes.
std::byte* NewBuffer(uint64_t capacity) {
  void* p = std::aligned_alloc(kPooledBufferMinBytes, capacity);
  if (p != nullptr)
    ::madvise(p, capacity, MADV_HUGEPAGE);
  return static_cast<std::byte*>(p);
}

void FreeBuffer(std::byte* p) { std::free(p); }

class Pool {
 public:
  std::byte* Take(uint64_t capacity) {
    std::byte* data = nullptr;
    {
      const std::lock_guard lock(mutex_);
      for (auto it = kept_.rbegin(); it != kept_.rend(); ++it) {
        if (it->capacity == capacity) {
          data = it->data;
          kept_bytes_ -= capacity;
          kept_.erase(std::next(it).base());
          break;
        }
      }
      if (data == nullptr)
        ReleaseUntil(capacity);
      in_use_ += capacity;
    }
    if (data == nullptr)
      data = NewBuffer(capacity);
    if (data == nullptr) {
      const std::lock_guard lock(mutex_);
      in_use_ -= capacity;
      throw std::bad_alloc();
    }
    return data;
  }

  void Give(std::byte* data, uint64_t capacity) {
    {
      const std::lock_guard lock(mutex_);
      in_use_ -= capacity;
      if (capacity <= limit_ - std::min(limit_, in_use_)) {
        ReleaseUntil(capacity);
        kept_.push_back({capacity, data});
        kept_bytes_ += capacity;
        return;
      }
    }
    FreeBuffer(data);
  }

  void SetLimit(uint64_t bytes) {
    const std::lock_guard lock(mutex_);
    limit_ = bytes;
    ReleaseUntil(0);
  }

  uint64_t kept_bytes() {
    const std::lock_guard lock(mutex_);
    return kept_bytes_;
  }

 private:
  // Frees the least recently kept buffers until `more` bytes fit under the limit (or none is
  // left). REQUIRES: mutex_ held.
  void ReleaseUntil(uint64_t more) {
    while (!kept_.empty() && in_use_ + kept_bytes_ + more > limit_) {
      FreeBuffer(kept_.front().data);
      kept_bytes_ -= kept_.front().capacity;
      kept_.pop_front();
    }
  }

  std::mutex mutex_;
  std::deque<Kept> kept_;  // least recently freed first
  uint64_t kept_bytes_ = 0;
  uint64_t in_use_ = 0;  // pooled bytes handed out and not yet given back
  uint64_t limit_ = kDefaultPooledBufferLimit;
};

// Never destroyed: tensors held by other static objects may be freed after it would be.
Pool& ThePool() {
  static Pool* pool = new Pool;
  return *pool;
}

}  // namespace

uint64_t PooledCapacity(uint64_t n) {
  if (n < kPooledBufferMinBytes)
    return n;
  const uint64_t step = std::max(kPooledBufferMinBytes, std::bit_floor(n) / 8);
  return (n + step - 1) / step * step;
}

void PooledBufferDeleter::operator()(std::byte* p) const {
  if (capacity == 0)
    delete[] p;
  else
    ThePool().Give(p, capacity);
}

PooledBuffer AllocateBuffer(uint64_t n) {
  if (n < kPooledBufferMinBytes)
    return PooledBuffer(new std::byte[n], PooledBufferDeleter{0});
  const uint64_t capacity = PooledCapacity(n);
  return PooledBuffer(ThePool().Take(capacity), PooledBufferDeleter{capacity});
}

void SetPooledBufferLimit(uint64_t bytes) { ThePool().SetLimit(bytes); }

uint64_t PooledBytesKept() { return ThePool().kept_bytes(); }

}  // namespace cw
