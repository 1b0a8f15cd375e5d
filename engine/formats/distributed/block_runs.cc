#include "engine/formats/distributed/block_runs.h"

#include <algorithm>

namespace cw::distributed {

BlockRuns::BlockRuns(const Shape& full, const mindspore::TensorSlice& slice,
                     uint64_t element_size) {
  const size_t n = full.size();
  for (const uint64_t length : full) {
    if (length == 0)
      return;  // no bytes, no runs
  }
  // k: the last axis the block does not cover whole; none (-1 as n) when it is the whole tensor.
  size_t k = n;
  for (size_t j = n; j-- > 0;) {
    if (slice[j].offset != 0 || slice[j].length != full[j]) {
      k = j;
      break;
    }
  }
  std::vector<uint64_t> strides(n + 1, element_size);  // strides[j]: bytes per step of axis j
  for (size_t j = n; j-- > 0;)
    strides[j] = strides[j + 1] * full[j];
  if (k == n) {
    count_ = 1;
    run_bytes_ = strides[0];
    return;
  }
  run_bytes_ = slice[k].length * strides[k + 1];
  base_ = slice[k].offset * strides[k + 1];
  count_ = 1;
  for (size_t j = 0; j < k; ++j) {
    outer_lengths_.push_back(slice[j].length);
    outer_offsets_.push_back(slice[j].offset);
    outer_strides_.push_back(strides[j + 1]);
    count_ *= slice[j].length;
  }
}

uint64_t BlockRuns::FullOffset(uint64_t r) const {
  uint64_t offset = base_;
  for (size_t j = outer_lengths_.size(); j-- > 0;) {
    offset += (outer_offsets_[j] + r % outer_lengths_[j]) * outer_strides_[j];
    r /= outer_lengths_[j];
  }
  return offset;
}

void BlockRuns::ForBlockRange(uint64_t begin, uint64_t end, const PieceFn& f) const {
  if (run_bytes_ == 0)
    return;
  for (uint64_t r = begin / run_bytes_; begin < end; ++r) {
    const uint64_t within = begin - r * run_bytes_;
    const uint64_t n = std::min(run_bytes_ - within, end - begin);
    f(FullOffset(r) + within, begin, n);
    begin += n;
  }
}

void BlockRuns::ForFullRange(uint64_t begin, uint64_t end, const PieceFn& f) const {
  if (count_ == 0 || begin >= end)
    return;
  // The first run ending after `begin`: FullOffset increases with r, so search.
  uint64_t lo = 0;
  uint64_t hi = count_;
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    if (FullOffset(mid) + run_bytes_ <= begin) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  for (uint64_t r = lo; r < count_; ++r) {
    const uint64_t start = FullOffset(r);
    if (start >= end)
      break;
    const uint64_t from = std::max(start, begin);
    const uint64_t to = std::min(start + run_bytes_, end);
    f(from, r * run_bytes_ + (from - start), to - from);
  }
}

}  // namespace cw::distributed
