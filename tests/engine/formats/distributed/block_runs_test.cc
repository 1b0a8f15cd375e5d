#include "engine/formats/distributed/block_runs.h"

#include <vector>

#include <doctest/doctest.h>

namespace cw::distributed {
namespace {

using mindspore::TensorSlice;

// Element offset in the full tensor of each element of the block, in block (C) order: the naive
// walk the runs must agree with.
std::vector<uint64_t> NaiveOffsets(const Shape& full, const TensorSlice& slice) {
  std::vector<uint64_t> out;
  std::vector<uint64_t> index(full.size(), 0);
  uint64_t count = 1;
  for (const auto& a : slice)
    count *= a.length;
  for (uint64_t e = 0; e < count; ++e) {
    uint64_t offset = 0;
    for (size_t j = 0; j < full.size(); ++j)
      offset = offset * full[j] + slice[j].offset + index[j];
    out.push_back(offset);
    for (size_t j = full.size(); j-- > 0;) {
      if (++index[j] < slice[j].length)
        break;
      index[j] = 0;
    }
  }
  return out;
}

void CheckAgainstNaive(const Shape& full, const TensorSlice& slice, uint64_t element) {
  CAPTURE(ShapeToString(full));
  const BlockRuns runs(full, slice, element);
  const std::vector<uint64_t> naive = NaiveOffsets(full, slice);
  REQUIRE(runs.block_bytes() == naive.size() * element);
  // Every block byte, through ForBlockRange in odd-sized windows.
  std::vector<uint64_t> seen;
  for (uint64_t at = 0; at < runs.block_bytes(); at += 7) {
    const uint64_t end = std::min(at + 7, runs.block_bytes());
    runs.ForBlockRange(at, end, [&](uint64_t full_offset, uint64_t block_offset, uint64_t n) {
      for (uint64_t b = 0; b < n; ++b) {
        CHECK(block_offset + b == seen.size());
        seen.push_back(full_offset + b);
      }
    });
  }
  REQUIRE(seen.size() == naive.size() * element);
  for (size_t i = 0; i < seen.size(); ++i)
    CHECK(seen[i] == naive[i / element] * element + i % element);
  // And back: every full byte range gives the block bytes it holds, contiguous in the block.
  uint64_t total_bytes = element;
  for (const uint64_t d : full)
    total_bytes *= d;
  for (uint64_t at = 0; at < total_bytes; at += 5) {
    uint64_t expected_next = UINT64_MAX;
    runs.ForFullRange(at, at + 5, [&](uint64_t full_offset, uint64_t block_offset, uint64_t n) {
      CHECK(full_offset >= at);
      CHECK(full_offset + n <= at + 5);
      if (expected_next != UINT64_MAX)
        CHECK(block_offset == expected_next);
      expected_next = block_offset + n;
      for (uint64_t b = 0; b < n; ++b)
        CHECK(seen[block_offset + b] == full_offset + b);
    });
  }
}

TEST_SUITE("formats.distributed.block_runs") {
  TEST_CASE("a block cut on the leading axis is one run") {
    const BlockRuns runs({8, 4}, {{4, 4}, {0, 4}}, 2);
    CHECK(runs.count() == 1);
    CHECK(runs.run_bytes() == 32);
    CHECK(runs.FullOffset(0) == 32);
  }

  TEST_CASE("a block cut on axis 1 is one run per row") {
    const BlockRuns runs({3, 8}, {{0, 3}, {4, 4}}, 4);
    CHECK(runs.count() == 3);
    CHECK(runs.run_bytes() == 16);
    CHECK(runs.FullOffset(0) == 16);
    CHECK(runs.FullOffset(2) == 2 * 32 + 16);
  }

  TEST_CASE("the whole tensor and a scalar are one run") {
    CHECK(BlockRuns({5, 2}, {{0, 5}, {0, 2}}, 4).count() == 1);
    const BlockRuns scalar({}, {}, 4);
    CHECK(scalar.count() == 1);
    CHECK(scalar.run_bytes() == 4);
  }

  TEST_CASE("a tensor with a zero-length axis has no runs") {
    CHECK(BlockRuns({0, 4}, {{0, 0}, {0, 4}}, 4).count() == 0);
  }

  TEST_CASE("runs agree with an element by element walk for blocks cut on any axes") {
    CheckAgainstNaive({8, 6}, {{4, 4}, {0, 6}}, 2);
    CheckAgainstNaive({8, 6}, {{0, 8}, {3, 3}}, 2);
    CheckAgainstNaive({8, 6}, {{2, 2}, {3, 3}}, 4);
    CheckAgainstNaive({4, 6, 5}, {{1, 2}, {0, 6}, {0, 5}}, 2);
    CheckAgainstNaive({4, 6, 5}, {{0, 4}, {2, 2}, {0, 5}}, 2);
    CheckAgainstNaive({4, 6, 10}, {{2, 2}, {0, 6}, {5, 5}}, 1);
    CheckAgainstNaive({6}, {{3, 3}}, 8);
  }
}

}  // namespace
}  // namespace cw::distributed
