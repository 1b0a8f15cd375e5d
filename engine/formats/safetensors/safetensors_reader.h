// Zero-copy reader of one .safetensors file (layout and checks: safetensors_header.h and
// docs/formats/safetensors.md).
//
// The reader owns the MappedFile. Opening parses and validates the header only; tensors() lists
// the tensors in file (data offset) order. Read() returns a view into the mapping, valid while the
// reader lives; data is never assumed to be aligned (files from safetensors <= 0.3.0 are not), so
// callers that need typed access copy or load through LoadLE. metadata() is "__metadata__".
#pragma once

#include <memory>

#include "cw/error.h"
#include "engine/base/mapped_file.h"
#include "engine/formats/checkpoint.h"

namespace cw::safetensors {

// Errors are located in `file` (its path), as ParseSafetensors describes.
Result<std::unique_ptr<CheckpointReader>> OpenReader(MappedFile file);

}  // namespace cw::safetensors
