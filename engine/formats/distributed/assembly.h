// Which bytes of which rank file make each full tensor of a distributed MindSpore checkpoint:
// rank headers + parallel strategy in, one plan of blocks per tensor out. Pure: no file is read
// (docs/distributed.md, "Merging").
//
// Ranks: the strategy has N devices per stage (ParallelStrategy::devices_per_stage) and stages
// 0..P-1; ranks 0..N*P-1 must all be there, rank g being local device g mod N of stage g div N.
//
// A tensor the strategy lays out takes the lowest of its stages whose ranks hold it, and that
// stage's saved layout (the optimizer shard folded in): the full shape is FullShape(layout, a
// slice's shape); its blocks are the layout's replica groups, each taken from the first rank of
// the group that holds it (a checkpoint saved with remove_redundancy has one), the other holders
// being copies that must hold the same bytes. Copies in another stage with the same layout are
// copies too (a tied embedding saved by the first and the last stage); with another layout they
// are left out (noted).
// A tensor the strategy does not lay out (global_step, learning_rate, ...) is, as in MindSpore's
// transform, one block taken whole from the first rank that holds it; every other holder is a
// copy. MindSpore takes it without looking; here its copies must agree, so that a tensor cut by a
// strategy that does not know it is refused rather than taken as a wrong whole.
//
// Refused, with the rank file or the strategy's layout item: ranks missing or beyond N*P; a stage
// missing from the strategy; slices of one tensor with different shapes or dtypes, or a shape
// that does not fit the layout (kCorrupt); a block no rank holds; a rank holding a tensor its
// stage has no layout for; layouts for parameters no rank file holds (a strategy of another
// network), unless options.allow_unused_layouts, and except for a whole kind of training state the
// files do not hold at all (a checkpoint saved without optimizer state).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cw/error.h"
#include "engine/formats/mindspore/parallel_strategy.h"
#include "engine/tensor/tensor.h"

namespace cw::distributed {

struct RankInventory {
  uint64_t rank = 0;  // global rank
  std::string file;
  std::vector<TensorInfo> tensors;
};

// Tensor `tensor` of ranks[rank].
struct TensorSource {
  size_t rank = 0;
  size_t tensor = 0;
  bool operator==(const TensorSource&) const = default;
};

struct Block {
  mindspore::TensorSlice slice;      // where it lies in the full tensor
  TensorSource source;               // the copy written
  std::vector<TensorSource> copies;  // the other holders, compared with `source`
};

struct AssembledTensor {
  TensorInfo info;            // the full tensor
  bool has_layout = false;    // false: not in the strategy, one whole block
  uint32_t stage = 0;         // the stage whose layout and ranks are used
  std::vector<Block> blocks;  // disjoint, covering the tensor, by replica group
};

struct AssemblyOptions {
  bool allow_unused_layouts = false;  // layouts without data are noted, not refused
};

struct Assembly {
  std::vector<AssembledTensor>
      tensors;  // rank 0's tensors in file order, then new ones of rank 1...
  std::vector<std::string> notes;
};

// `folder` names missing ranks in errors. REQUIRES: ranks ascending by rank, each rank once.
Result<Assembly> Assemble(const std::string& folder, const std::vector<RankInventory>& ranks,
                          const mindspore::ParallelStrategy& strategy,
                          const AssemblyOptions& options);

}  // namespace cw::distributed
