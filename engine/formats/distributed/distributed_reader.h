// A distributed MindSpore checkpoint read as one logical checkpoint (docs/distributed.md): a
// folder of rank_<r>/ folders, one checkpoint per rank (.ckpt or MindSpore safetensors, see
// rank_folders.h), and the run's parallel strategy (parallel_strategy.h). The reader lists every
// full tensor (name, dtype, full shape) from the rank files' headers and the strategy alone, as
// assembly.h works them out, so that inspect, plan, convert and lint treat the folder as any
// checkpoint.
//
// Bytes: each full tensor is its blocks, each block a slice saved by one rank. Extents() lists
// them as extents of the rank files (FileExtent::file), in the tensor's order, when the pieces are
// large: a block cut on the leading axis is one extent, so a tensor-parallel weight is N extents
// copied inside the kernel. A block cut on another axis is one piece per row; when the pieces are
// small (under kMinExtentBytes on average) or too many (over kMaxExtents), Extents() is empty and
// ReadRange() gives any range of the tensor with one positional read per block (the block's bytes
// of a range of rows are one range of its slice), the pieces then put in place: a caller streams
// the tensor in chunks, holding no more than a chunk. Read() assembles the whole tensor the same
// way. Nothing is mapped: the rank files are read with pread.
//
// Copies: the other holders of a block (data-parallel replicas, a tied embedding of another
// stage) and the copies of a value the strategy does not lay out (global_step ...) must hold the
// same bytes. Verify() compares them, chunk by chunk; Read() does so itself. With
// compare_replicas off, copies of laid-out tensors are not compared (the first holder's bytes are
// used, and a differing replica goes unnoticed: the caller must say so); values without a layout
// are always compared, the bytes being then the only evidence that they are whole.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cw/error.h"
#include "engine/formats/checkpoint.h"

namespace cw::distributed {

// Extents smaller than this on average, or more than kMaxExtents of them, make a tensor go
// through Read(): one system call per piece would cost more than assembling it in memory.
inline constexpr uint64_t kMinExtentBytes = 64 << 10;
inline constexpr uint64_t kMaxExtents = 4096;

struct DistributedOptions {
  std::string strategy;  // a strategy file or folder; empty: FindStrategy(folder)
  bool compare_replicas = true;
  bool allow_unused_layouts = false;  // AssemblyOptions
};

// Opens one rank's checkpoint file (any format the caller reads).
using OpenRankFileFn =
    std::function<Result<std::unique_ptr<CheckpointReader>>(const std::filesystem::path&)>;

// Opens the rank files of `folder` (FindRankFiles), loads the strategy and assembles every
// tensor (Assemble). `notes` receives the choices made and what was left out. The reader keeps
// every rank file open. format() is kMindSpore; FileOf() is the file of a tensor's first block;
// skipped() joins the ranks' (once per name); metadata() is rank 0's.
Result<std::unique_ptr<CheckpointReader>> OpenDistributedCheckpoint(
    const std::filesystem::path& folder, const DistributedOptions& options,
    const OpenRankFileFn& open_file, std::vector<std::string>* notes);

}  // namespace cw::distributed
