// Writer of torch.save-compatible files (.bin, .pt, .pth) that torch 1.13 and later load, with or
// without weights_only (docs/formats/torch-writer.md).
//
// The file is a STORED zip archive (zip_writer.h) whose entries all sit under one folder, the
// output file's stem ("pytorch_model.bin" -> "pytorch_model/"; "archive/" when the stem is empty,
// "." or "..", or has bytes outside printable ASCII or a backslash):
//
//   <prefix>/data.pkl        the state dict (pickle_writer.h), written at creation
//   <prefix>/byteorder       "little" (torch >= 2.1 reads it; 1.13 ignores it)
//   <prefix>/data/0 .. N-1   the bytes of tensors[0 .. N-1], one storage per tensor, C order
//   <prefix>/version         "3\n", the format version torch.save writes
//
// No `.format_version` record: torch >= 2.7 would then compute record offsets from miniz's exact
// layout (data descriptors) instead of reading the local headers, and ours differs.
// Every payload is 64-byte aligned, so torch.load(mmap=True) maps the tensors in place.
#pragma once

#include <memory>
#include <vector>

#include "cw/error.h"
#include "engine/base/output_file.h"
#include "engine/formats/checkpoint.h"
#include "engine/tensor/tensor.h"

namespace cw::pytorch {

// Lays out the archive for `tensors`, writes data.pkl and the small records into `out`, and
// returns a writer that takes tensor bytes in any order. Uses options.torch_root_key (nesting
// the state dict as {root_key: {...}}); the other options concern other formats.
// Errors, located in out.target():
//   kUnsupported    a tensor torch 1.13 cannot load from a .bin (see StateDictPickle)
//   kUsage          duplicate tensor names
//   kLimitExceeded  more than limits::kMaxTensorCount tensors
//   kInternal       a TensorInfo whose byte_size does not match its dtype and shape
//   kIo             the output cannot be sized or written
Result<std::unique_ptr<CheckpointWriter>> CreateWriter(OutputFile out,
                                                       std::vector<TensorInfo> tensors,
                                                       const WriterOptions& options);

}  // namespace cw::pytorch
