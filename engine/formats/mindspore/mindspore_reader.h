// Reader of MindSpore .ckpt checkpoints (docs/formats/mindspore.md).
//
// A .ckpt file is a run of records, one Value each (ckpt_wire.h has the byte layout), in save
// order, with no header, count or end marker. Around the records:
//   - an optional 17-byte trailer, "crc_num" + a 10-byte big-endian CRC-32 of all record bytes
//     (MindSpore >= 2.3 with crc_check=True), which is stripped and verified;
//   - encryption (save_checkpoint(enc_key=...)), recognised by a cipher magic and refused.
// A tensor over 512 MiB is saved as several adjacent records with the same tag, tensor_type and
// full dims, each holding a slice of its bytes; they are joined here. A scalar is stored with no
// dims or, by older MindSpore, with dims [0] and one element: both read as 0-d tensors.
// String values ("str", UTF-32LE) and "random_op" RNG states are listed in skipped().
//
// Opening walks every record (never a whole-file protobuf parse, so files over 2 GiB work) and
// checks every row, V1-V21, of the reader table in docs/formats/mindspore.md before returning:
// empty file, encrypted magic, CRC trailer, top-level key (a parallel-strategy file or another
// protobuf message saved as .ckpt is "not a MindSpore checkpoint", never an empty one), varints,
// lengths, tags, MapTensor values, tensor types, dims, content sizes, adjacency and duplicates.
// The only tensor bytes touched are those a CRC trailer covers. Errors are located: file, byte
// offset and, once known, the tag.
#pragma once

#include <memory>
#include <string>

#include "cw/error.h"
#include "engine/base/bytes.h"
#include "engine/base/mapped_file.h"
#include "engine/formats/checkpoint.h"

namespace cw::mindspore {

// A reader over a mapped .ckpt file, which it keeps mapped for its own lifetime. Read() of a
// tensor stored in one record borrows its bytes from the mapping (valid while the reader lives);
// a tensor split into several records is joined into an owned buffer by Read().
Result<std::unique_ptr<CheckpointReader>> OpenReader(MappedFile file);

// The same reader over checkpoint bytes in memory, named `file` in errors: the entry point for
// fuzzing and tests. The reader borrows `bytes`.
// REQUIRES: `bytes` outlive the reader and every TensorData it returns.
Result<std::unique_ptr<CheckpointReader>> OpenReaderOnBytes(ByteSpan bytes, std::string file);

}  // namespace cw::mindspore
