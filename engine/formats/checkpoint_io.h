// Opening any checkpoint and creating any output: the one place that knows every format.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cw/error.h"
#include "engine/base/bytes.h"
#include "engine/formats/checkpoint.h"
#include "engine/formats/distributed/distributed_reader.h"

namespace cw {

// Opens what a user names: a checkpoint file (format detected from its bytes, not its name), a
// folder (sharded via an index JSON, or holding one weight file), or any one file of a sharded
// folder, which opens the whole folder. `note` receives a line when a choice was made for the user
// (e.g. safetensors preferred over .bin).
Result<std::unique_ptr<CheckpointReader>> OpenCheckpoint(const std::filesystem::path& path,
                                                         std::string* note = nullptr);

struct OpenOptions {
  // For a distributed MindSpore checkpoint: a folder of rank_<r>/ folders
  // (distributed/distributed_reader.h). A strategy given for anything else is a usage error.
  distributed::DistributedOptions distributed;
};

// The same with options; `notes` receives one line per choice made for the user.
Result<std::unique_ptr<CheckpointReader>> OpenCheckpoint(const std::filesystem::path& path,
                                                         const OpenOptions& options,
                                                         std::vector<std::string>* notes);

// Which reader understands these bytes, from their first bytes alone; nullopt for none.
// Detection is by content so that a misnamed file is read correctly or refused by the right
// reader with a precise message.
std::optional<FileFormat> SniffFormat(ByteSpan bytes);

enum class OutputKind { kSafetensorsFile, kTorchFile, kMindSporeFile, kSafetensorsFolder };

// From the output name: .safetensors, .bin/.pth/.pt, .ckpt, or a folder (an existing directory,
// or a path ending in '/').
Result<OutputKind> OutputKindFor(const std::filesystem::path& path);

// A writer for `path` in the format its name asks for. Nothing appears under `path` until
// Commit() succeeds; a folder output is staged and renamed as a whole.
Result<std::unique_ptr<CheckpointWriter>> CreateCheckpointWriter(const std::filesystem::path& path,
                                                                 std::vector<TensorInfo> tensors,
                                                                 const WriterOptions& options);

// Writes every tensor of `reader` through `writer` (same names, same bytes); does not commit.
// REQUIRES: writer was created from reader.tensors().
Status CopyAllTensors(const CheckpointReader& reader, CheckpointWriter& writer);

}  // namespace cw
