// HuggingFace sharded folders (docs/formats/safetensors.md, "HF folders").
//
// A sharded checkpoint is a folder of weight files ("shards") plus an index JSON,
// model.safetensors.index.json or pytorch_model.bin.index.json:
//
//   {"metadata": {"total_size": <sum of tensor bytes>},
//    "weight_map": {"<tensor name>": "<shard file name>", ...}}
//
// Shard names come from the index, never from a pattern: real folders use several spellings
// (model-00001-of-00004.safetensors, pytorch_model_00001-of-00032.bin, ...).
//
// MindFormers (1.7+) folders of MindSpore safetensors list their files in param_name_map.json
// instead: either flat, {"<tensor name>": "<file name>", ...} (what its converters write), or
// wrapped like an index, {"metadata": {...}, "weight_map": {...}} (MindSpore's
// unified_safetensors). Such a folder may also come without any map: then every *.safetensors in
// it is read, and a name in two files is an error.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <vector>

#include "cw/error.h"
#include "engine/formats/checkpoint.h"

namespace cw {

// The name of MindFormers' map of a folder of safetensors files.
inline constexpr const char* kParamNameMapName = "param_name_map.json";

// Opens one weight file; OpenShardedFolder calls it once per distinct shard.
using OpenFileFn =
    std::function<Result<std::unique_ptr<CheckpointReader>>(const std::filesystem::path&)>;

// Reads the index (at most limits::kMaxJsonFileBytes; "weight_map" required, "metadata"
// optional), opens every shard it names from the index's folder, and checks that index and shards
// agree both ways. Refused: shard names that are not plain file names (a separator, "." or ".."),
// a missing shard (kIo, located at the shard), a tensor the index places in another shard than
// the one holding it, a shard tensor the index does not list, an index entry no shard holds,
// shards of different formats.
// The reader presents the whole folder: shards in name order, each shard's tensors in file order;
// FileOf() is the shard's path; Read() is the shard reader's (views valid while the returned
// reader lives); skipped() joins the shards' lists; metadata() is the first shard's.
// When index_json is named param_name_map.json (kParamNameMapName), a flat map is accepted too:
// without a "weight_map" object, every top-level entry must be a tensor name with a file name
// (entries named "metadata" and "weight_map" excepted); messages then say "map", not "index".
Result<std::unique_ptr<CheckpointReader>> OpenShardedFolder(const std::filesystem::path& index_json,
                                                            const OpenFileFn& open_file);

// A folder without index or map read as one checkpoint: every file of `files` (at most
// limits::kMaxTensorCount, opened in name order), which the caller found in `folder`. A tensor
// name in two files is kCorrupt, located at the second file and naming the first; more than
// limits::kMaxTensorCount tensors in all is kLimitExceeded. The reader is the one
// OpenShardedFolder returns, with the files as its shards.
Result<std::unique_ptr<CheckpointReader>> OpenUnlistedFolder(
    const std::filesystem::path& folder, std::vector<std::filesystem::path> files,
    const OpenFileFn& open_file);

// Writes safetensors shards into `folder`, an existing folder staged by the caller (OutputDir):
// nothing here is atomic on its own. Tensors keep the given order and are cut into shards whose
// tensor bytes stay within options.max_shard_bytes: a new shard starts when the next tensor would
// exceed the limit, and a tensor larger than the limit gets a shard of its own. Shards are named
// model-00001-of-0000N.safetensors.
// With options.folder_layout kHfIndex: an index model.safetensors.index.json (2-space indent,
// sorted keys, ASCII escapes, trailing newline, as transformers writes it); a single shard is
// model.safetensors and no index; each shard's __metadata__ is {"format": "pt"} updated with
// options.metadata.
// With kParamNameMap: a flat param_name_map.json ({name: file}, laid out as the index), written
// even for a single shard (model-00001-of-00001.safetensors); each shard's __metadata__ is
// {"format": "ms"} updated with options.metadata.
// Write(index, ...) goes to the shard holding tensor `index`; Commit() commits every shard and
// the index or map.
Result<std::unique_ptr<CheckpointWriter>> CreateShardedSafetensorsWriter(
    const std::filesystem::path& folder, std::vector<TensorInfo> tensors,
    const WriterOptions& options);

}  // namespace cw
