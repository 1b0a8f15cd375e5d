// Writer of one .safetensors file (docs/formats/safetensors.md).
//
// Every byte's place is fixed at creation. The header is compact JSON: "__metadata__" first when
// options.metadata is not empty, written as given (callers producing HF outputs add
// {"format": "pt"} themselves), then one entry per tensor in the order given, its keys in the
// order "dtype", "shape", "data_offsets". Tensor data is packed from offset 0 without gaps, and
// the header is padded with spaces to a multiple of 8 bytes, so that with the 8-byte length every
// tensor starts at a multiple of 8 from the file start. The same tensors and metadata always give
// the same bytes.
//
// CreateWriter writes the header and sizes the file at once; Write() then puts each piece at its
// offset, from any thread and in any order; Commit() checks that every byte of every tensor was
// written exactly once and commits the OutputFile. Without Commit() the OutputFile removes its
// temporary.
#pragma once

#include <memory>
#include <vector>

#include "cw/error.h"
#include "engine/base/output_file.h"
#include "engine/formats/checkpoint.h"

namespace cw::safetensors {

// Refuses what a safetensors reader would refuse or misread: a name given twice (kUsage), the name
// "__metadata__" or text that is not UTF-8 (kUnsupported), names, ranks, tensor counts or a header
// over the caps in base/limits.h (kLimitExceeded).
// REQUIRES: each tensor's byte_size == ByteSize(dtype, shape) (else kInternal).
Result<std::unique_ptr<CheckpointWriter>> CreateWriter(OutputFile out,
                                                       std::vector<TensorInfo> tensors,
                                                       const WriterOptions& options);

}  // namespace cw::safetensors
