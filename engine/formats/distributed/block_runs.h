// The bytes of one block of a tensor (the slice a rank holds), as runs of contiguous bytes.
//
// Both the full tensor and the block are stored in C order. Let k be the last axis the block does
// not cover whole. Every axis after k is whole in the block, so one index into the axes before k
// selects a run of block.length[k] * (the product of the full lengths after k) contiguous
// elements, contiguous in the block's own bytes too: the block is its runs one after the other,
// run r at block byte r * run_bytes(). A block cut on the leading axis only (the usual tensor
// parallel split of a weight's rows) is a single run; a block cut on axis 1 of a matrix is one
// run per row. Pure arithmetic, no I/O.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "engine/formats/mindspore/tensor_slicing.h"
#include "engine/tensor/tensor.h"

namespace cw::distributed {

class BlockRuns {
 public:
  // REQUIRES: slice.size() == full.size(); each axis range lies inside the full axis; the full
  // tensor's byte size fits in 64 bits (as every listed tensor's does).
  BlockRuns(const Shape& full, const mindspore::TensorSlice& slice, uint64_t element_size);

  uint64_t count() const { return count_; }
  uint64_t run_bytes() const { return run_bytes_; }
  uint64_t block_bytes() const { return count_ * run_bytes_; }
  // Byte offset of run r in the full tensor; increases with r. REQUIRES: r < count().
  uint64_t FullOffset(uint64_t r) const;

  // Calls f(full offset, block offset, size) for each piece of block bytes [begin, end), in order.
  // REQUIRES: begin <= end <= block_bytes().
  using PieceFn = std::function<void(uint64_t full_offset, uint64_t block_offset, uint64_t size)>;
  void ForBlockRange(uint64_t begin, uint64_t end, const PieceFn& f) const;
  // The same for the block's bytes that lie in full-tensor bytes [begin, end): pieces in order,
  // and contiguous in the block (the block bytes of a full range are one range).
  void ForFullRange(uint64_t begin, uint64_t end, const PieceFn& f) const;

 private:
  std::vector<uint64_t> outer_lengths_;  // block lengths of the axes before k
  std::vector<uint64_t> outer_offsets_;  // block offsets of those axes
  std::vector<uint64_t> outer_strides_;  // full-tensor bytes per step of those axes
  uint64_t base_ = 0;                    // full byte offset of the block's first element on axis k
  uint64_t count_ = 0;
  uint64_t run_bytes_ = 0;
};

}  // namespace cw::distributed
