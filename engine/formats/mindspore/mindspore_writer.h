// Writer of MindSpore .ckpt checkpoints, byte-compatible with mindspore.save_checkpoint
// (docs/formats/mindspore.md).
//
// Output: one record per tensor, in the order given, exactly as MindSpore lays them out
// (ckpt_wire.h): fields in number order, minimal varints, dims unpacked in axis order, none for a
// 0-d tensor, tensor_type from the dtype table ("Float32", "BFloat16", ...). A tensor over
// options.ckpt_chunk_bytes is split, as MindSpore does at 512 MiB, into records of exactly that
// many bytes (the last holds the remainder), each with the same tag, type and full dims; MindSpore
// and our reader join adjacent records of one tag. With options.ckpt_crc the file ends with
// MindSpore's trailer: "crc_num" and the CRC-32 of all record bytes as a 10-byte big-endian
// integer (readable by MindSpore >= 2.3 only, so it is off by default).
//
// Every record header depends only on names, dtypes, shapes and sizes, so the whole layout is
// fixed and the headers written at creation; tensor bytes then go straight to their file offsets.
// The output is deterministic. The file keeps the usual permissions: MindSpore's final chmod 0400
// would only make the next overwrite fail.
#pragma once

#include <memory>
#include <vector>

#include "cw/error.h"
#include "engine/base/output_file.h"
#include "engine/formats/checkpoint.h"
#include "engine/tensor/tensor.h"

namespace cw::mindspore {

// Lays out `tensors` in `out` and writes every record header. Refused before anything is written:
// an empty list (MindSpore cannot load an empty checkpoint: kUnsupported), a tensor with zero
// elements (MindSpore cannot represent one: kUnsupported), a dtype with no MindSpore name
// (kUnsupported), an empty or non-UTF-8 name (kUnsupported), a duplicate name (kUsage), a chunk
// size of 0 or over 1 GiB (kUsage), a rank or name length our reader would refuse, or more records
// than limits::kMaxTensorCount (kLimitExceeded).
// REQUIRES: tensors[i].byte_size == ByteSize(tensors[i].dtype, tensors[i].shape).
Result<std::unique_ptr<CheckpointWriter>> CreateWriter(OutputFile out,
                                                       std::vector<TensorInfo> tensors,
                                                       const WriterOptions& options);

}  // namespace cw::mindspore
