#include "engine/tensor/buffer_pool.h"

#include <cstring>
#include <vector>

#include <doctest/doctest.h>

namespace cw {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

TEST_CASE("a freed large buffer is handed out again for a request of its size class") {
  std::byte* first = nullptr;
  {
    PooledBuffer a = AllocateBuffer(3 * kMiB + 5);
    first = a.get();
    std::memset(a.get(), 1, 3 * kMiB + 5);
  }
  const PooledBuffer b = AllocateBuffer(3 * kMiB + 100);
  CHECK(b.get() == first);
}

TEST_CASE("a buffer of another size class is not reused") {
  std::byte* first = nullptr;
  {
    const PooledBuffer a = AllocateBuffer(5 * kMiB);
    first = a.get();
  }
  const PooledBuffer b = AllocateBuffer(9 * kMiB);
  CHECK(b.get() != first);
  CHECK(b.get_deleter().capacity == 10 * kMiB);
}

TEST_CASE("capacities round up to an eighth of the request's power of two, at least 2 MiB") {
  CHECK(PooledCapacity(100) == 100);
  CHECK(PooledCapacity(kMiB + 1) == kMiB + 1);
  CHECK(PooledCapacity(2 * kMiB) == 2 * kMiB);
  CHECK(PooledCapacity(2 * kMiB + 1) == 4 * kMiB);
  CHECK(PooledCapacity(17 * kMiB) == 18 * kMiB);
  CHECK(PooledCapacity(7168 * 2048 * 2) == 7168 * 2048 * 2);
  CHECK(PooledCapacity(29 * kMiB + 1) == 30 * kMiB);
  CHECK(PooledCapacity(1000 * kMiB) == 1024 * kMiB);
}

TEST_CASE("small buffers are not kept") {
  const uint64_t before = PooledBytesKept();
  {
    const PooledBuffer a = AllocateBuffer(4096);
    CHECK(a.get_deleter().capacity == 0);
  }
  CHECK(PooledBytesKept() == before);
}

TEST_CASE("buffers in use plus buffers kept stay within the limit") {
  SetPooledBufferLimit(kDefaultPooledBufferLimit);
  std::vector<PooledBuffer> held;
  for (int i = 0; i < 12; ++i)
    held.push_back(AllocateBuffer(32 * kMiB));
  const std::byte* last = held.back().get();
  for (PooledBuffer& b : held)
    b.reset();
  CHECK(PooledBytesKept() == kDefaultPooledBufferLimit);
  const PooledBuffer again = AllocateBuffer(32 * kMiB);
  CHECK(again.get() == last);  // the most recently freed

  // A new buffer makes room for itself by releasing kept ones.
  const PooledBuffer other = AllocateBuffer(64 * kMiB);
  CHECK(PooledBytesKept() + 32 * kMiB + 64 * kMiB <= kDefaultPooledBufferLimit);
}

TEST_CASE("a buffer freed while others fill the limit is released, not kept") {
  SetPooledBufferLimit(kDefaultPooledBufferLimit);
  const PooledBuffer big = AllocateBuffer(200 * kMiB);
  { const PooledBuffer a = AllocateBuffer(100 * kMiB); }
  CHECK(PooledBytesKept() + 200 * kMiB <= kDefaultPooledBufferLimit);
}

TEST_CASE("lowering the limit releases kept buffers") {
  { const PooledBuffer a = AllocateBuffer(16 * kMiB); }
  CHECK(PooledBytesKept() >= 16 * kMiB);
  SetPooledBufferLimit(0);
  CHECK(PooledBytesKept() == 0);
  { const PooledBuffer a = AllocateBuffer(16 * kMiB); }
  CHECK(PooledBytesKept() == 0);
  SetPooledBufferLimit(kDefaultPooledBufferLimit);
}

}  // namespace
}  // namespace cw
