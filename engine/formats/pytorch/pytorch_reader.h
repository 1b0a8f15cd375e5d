// Reading torch.save files (.bin, .pt, .pth) without Python (docs/formats/torch.md).
//
// Two containers are read, told apart by their first bytes:
//  - "PK\x03\x04": the zip written since torch 1.6 (zip_archive.h). All entries share one folder
//    <prefix>/ (taken from the first central-directory entry); <prefix>/data.pkl is the pickle,
//    <prefix>/data/<key> the raw bytes of each storage, <prefix>/version (or .data/version) a
//    number in 1..10, <prefix>/byteorder (torch 2.x) "little" if present. Other records are
//    ignored. Storage records are used in place (stored entries); data.pkl may be deflated.
//  - the legacy stream (torch < 1.6, `_use_new_zipfile_serialization=False`): a magic-number
//    pickle, protocol 1001, system info (little-endian only), the main pickle, the sorted list of
//    storage keys, then for each key an int64 element count and the raw bytes.
// Refused, each with its own message: "PYTORCH1" files (kUnsupported), TorchScript archives
// (constants.pkl, kUnsupported), the tar-based format of torch < 0.4 (kUnsupported), anything
// else (kCorrupt: not a torch file).
//
// The pickle is read by pickle_reader.h (allow-listed globals only, nothing executed) and turned
// into named tensors by torch_tensors.h: nested dicts flattened with ".", non-tensor values in
// skipped(), every tensor extent checked against its storage record. Opening reads only the
// zip directory, a few small records and data.pkl; Read() is the only place that touches
// tensor bytes. Contiguous tensors are borrowed views into the file (several tensors may view
// one storage); non-contiguous ones (transposed, expanded) are copied into C order by Read().
#pragma once

#include <memory>
#include <string>

#include "cw/error.h"
#include "engine/base/bytes.h"
#include "engine/base/mapped_file.h"
#include "engine/formats/checkpoint.h"

namespace cw::pytorch {

// Opens a torch.save file and lists its tensors. The reader owns `file`; views returned by
// Read() stay valid while the reader lives. Errors name the file and a byte offset in it.
Result<std::unique_ptr<CheckpointReader>> OpenReader(MappedFile file);

// The same over bytes in memory, for tests and fuzzing; `name` stands for the file in errors.
// REQUIRES: `bytes` outlives the reader and every view it returns.
Result<std::unique_ptr<CheckpointReader>> OpenReaderFromBytes(ByteSpan bytes, std::string name);

}  // namespace cw::pytorch
