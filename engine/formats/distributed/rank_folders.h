// The layout on disk of a distributed MindSpore checkpoint (docs/distributed.md, "Merging"):
//
//   DIR/rank_<r>/<anything>.ckpt       one checkpoint per rank (or MindSpore safetensors)
//   DIR/strategy/                      the parallel strategy: per-rank files, or a merged one
//   DIR/<anything>strategy<...>.ckpt   ... or one strategy file beside the rank folders
//
// The rank number is the folder's, never the file's (MindSpore's transform_checkpoints and
// MindFormers read it so). When a rank folder holds several checkpoint files, MindSpore takes the
// last: for .ckpt the last in name order (transform_checkpoints: glob, sort, the last one wins);
// for .safetensors the one whose last two numbers are the highest (_collect_safetensor_files,
// _extract_last_two_numbers; ties go to the later name). Both are done here and reported.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "cw/error.h"

namespace cw::distributed {

struct RankFile {
  uint64_t rank = 0;
  std::string path;         // the checkpoint file chosen
  uint64_t candidates = 1;  // checkpoint files in the rank folder
};

struct RankFiles {
  std::vector<RankFile> ranks;     // by rank, ascending; each rank once
  bool safetensors = false;        // the files are MindSpore safetensors, not .ckpt
  std::vector<std::string> notes;  // choices made (several files in a rank folder)
};

// True when `folder` has at least one subfolder named rank_<digits>.
bool IsDistributedFolder(const std::filesystem::path& folder);

// The rank folders of `folder` and the checkpoint file of each. Refused: a rank folder without a
// checkpoint file, .ckpt and .safetensors mixed (MindSpore refuses it too), the same rank twice
// (rank_1 and rank_01), a rank number over 2^32, more ranks than kMaxOpenInputs files.
Result<RankFiles> FindRankFiles(const std::filesystem::path& folder);

// The strategy beside the rank folders: `folder`/strategy/ when it is a folder, else the one
// regular file of `folder` whose name holds "strategy" and ends in .ckpt. kUsage when there is
// none or several (naming them), asking for --strategy.
Result<std::filesystem::path> FindStrategy(const std::filesystem::path& folder);

}  // namespace cw::distributed
