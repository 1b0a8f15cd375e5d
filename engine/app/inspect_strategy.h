// `convert_weight inspect` of a MindSpore parallel-strategy file or folder (docs/distributed.md):
// per parameter its stages, device matrix, tensor map, optimizer shard, the part of each axis a
// rank's slice covers, and which ranks hold which slice.
#pragma once

#include <filesystem>
#include <iosfwd>

#include "cw/error.h"

namespace cw {

// True when `path` is a strategy file, told from its bytes (MindSpore names them .ckpt): no
// checkpoint format's first bytes, but those of a ParallelStrategyMap; or a folder holding at
// least one *.ckpt, all of them strategy files, and no other weight files. False for anything
// that cannot be read: opening it as a checkpoint then reports why.
bool IsStrategyPath(const std::filesystem::path& path);

// Prints the strategy read from `path` (a file or a folder), as text or as JSON.
Status InspectStrategy(const std::filesystem::path& path, bool json, std::ostream& out);

}  // namespace cw
