// Writes full tensors as a distributed MindSpore checkpoint: one .ckpt per rank, each holding the
// slices the parallel strategy gives that rank (docs/distributed.md, "Splitting"). The inverse of
// the distributed reader:
//
//   FOLDER/rank_<r>/checkpoint_<r>.ckpt   (MindFormers' transformed-checkpoint naming)
//
// Rank r = stage * N + d holds, of every tensor its stage lays out, the block
// SliceOf(saved layout, full shape, d): tensor-parallel slices, identical copies on replicas, the
// optimizer shard folded in. A tensor laid out by several stages (a tied embedding) goes to the
// ranks of each. A tensor the strategy does not lay out goes whole to every rank (MindSpore's rule
// for global_step and the like). Each rank file lists its tensors in the order given, under the
// full tensor's name, with the slice's shape; the bytes are MindSpore's (mindspore_writer.h).
//
// A subset of ranks (`ranks`) writes only those: the writer then keeps only the bytes of their
// slices (NeededRanges()), so that a task of a job array reads only what its ranks need. Without
// a subset the folder appears whole on Commit() (OutputDir); with one, the folder is shared with
// the other tasks and each rank folder appears on its own (OutputEntries).
//
// Refused before anything is written: a tensor whose axes do not fit its layout or do not split
// evenly (kPlanInvalid, at the layout item); strategy stages that are not 0..P-1; a rank out of
// range; layouts of parameters the tensors do not include (a strategy of another network: unless
// allow_unused_layouts; a whole kind of training state is never needed), a rank left without any
// tensor.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cw/error.h"
#include "engine/formats/checkpoint.h"
#include "engine/formats/mindspore/parallel_strategy.h"

namespace cw::distributed {

struct RankWriterOptions {
  std::vector<uint64_t> ranks;  // global ranks to write, ascending; empty: every rank
  bool allow_unused_layouts = false;
  WriterOptions writer;  // replace_existing, .ckpt chunking and CRC
};

// "3", "0-7", "0,4-7" -> ranks ascending, each once. kUsage unless every rank is below `count`.
Result<std::vector<uint64_t>> ParseRankList(std::string_view text, uint64_t count);

// REQUIRES: tensors[i].byte_size == ByteSize(dtype, shape).
Result<std::unique_ptr<CheckpointWriter>> CreateRankFolderWriter(
    const std::filesystem::path& folder, const std::vector<TensorInfo>& tensors,
    const mindspore::ParallelStrategy& strategy, const RankWriterOptions& options,
    std::vector<std::string>* notes);

}  // namespace cw::distributed
