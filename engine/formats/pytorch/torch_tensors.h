// From an unpickled torch.save object to named tensors over storage records
// (docs/formats/torch.md, 'Tensors').
//
// IndexStateDict walks the top-level dict in pickle order. Nested dicts are flattened with "."
// ({"model": {"w": t}} gives "model.w"; int keys are written in decimal); tensors are kept; any
// other value (None, numbers, strings, lists, tuples, empty dicts) is reported as skipped. Each
// tensor's persistent id must be ('storage', <storage type>, key, location, numel) (legacy files
// add a sixth item, None); the location is ignored. Typed storages count numel in elements of
// their dtype, UntypedStorage in bytes, its dtype then coming from _rebuild_tensor_v3 (uint8
// under _rebuild_tensor_v2, as torch does). Every use of a key must agree on dtype and numel.
//
// LayOut then checks each tensor against its storage record: the extent
//   (storage_offset + sum((size_i - 1) * stride_i) + 1) * element_size
// must fit both the declared storage and the record's bytes (zero-size tensors need none), and the
// tensors larger than their records (expanded: stride 0), which Read() materializes, may together
// be no larger than the file or limits::kMinExpandedTensorCapBytes, whichever is larger.
// Contiguous tensors are views into the record; others are copied in C order by CopyStrided.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cw/error.h"
#include "engine/base/bytes.h"
#include "engine/formats/checkpoint.h"
#include "engine/formats/pytorch/pickle_reader.h"
#include "engine/tensor/tensor.h"

namespace cw::pytorch {

// One storage key as the persistent ids declare it.
struct StorageDecl {
  std::string key;
  DType dtype = DType::kU8;
  uint64_t numel = 0;       // in the persistent id's unit
  uint64_t unit_bytes = 1;  // element size for typed storages, 1 for UntypedStorage
  uint64_t declared_bytes = 0;
  uint64_t pid_offset = 0;  // file offset of the first persistent id naming the key
};

struct TensorEntry {
  TensorInfo info;
  size_t storage = 0;            // index into StateDict::storages
  uint64_t storage_offset = 0;   // elements
  std::vector<uint64_t> stride;  // elements
  uint64_t pickle_offset = 0;    // file offset of the call that rebuilt it
};

struct StateDict {
  std::vector<StorageDecl> storages;  // in order of first use
  std::vector<TensorEntry> tensors;   // in pickle order, names unique
  std::vector<SkippedValue> skipped;
};

// `source` is the one `tree` was read from (errors give its file offsets); `legacy` expects
// the 6-item persistent ids of the pre-1.6 format. The names and skipped values made may take
// limits::kStateDictIndexBytesPerByte per pickle byte plus kStateDictIndexBaseBytes; beyond is
// kLimitExceeded, as shared or deeply prefixed dicts repeat long names for every value.
Result<StateDict> IndexStateDict(const PickleTree& tree, const PickleSource& source, bool legacy);

// The bytes holding one storage, and where they are for messages.
struct StorageRecord {
  ByteSpan bytes;
  std::string name;      // "sd/data/0", or the key for legacy files
  uint64_t file_offset;  // of bytes[0]
};

// Where a tensor's data lies: a view into its storage record.
struct TensorLayout {
  ByteSpan storage;              // the whole record
  uint64_t file_offset = 0;      // of storage[0]
  uint64_t storage_offset = 0;   // elements
  std::vector<uint64_t> stride;  // elements
  bool contiguous = true;
};

// `pickle_file` names the byte space of the pickle's offsets (the file itself unless data.pkl
// was inflated), `file` the one of the records, `file_bytes` its size, which bounds the copies of
// expanded tensors together.
// REQUIRES: records.size() == state.storages.size(), in the same order.
Result<std::vector<TensorLayout>> LayOut(const StateDict& state,
                                         const std::vector<StorageRecord>& records,
                                         const std::string& pickle_file, const std::string& file,
                                         uint64_t file_bytes);

// Gathers `info`'s elements from `layout` into `out` in C order.
// REQUIRES: LayOut accepted the layout; out.size() == info.byte_size > 0.
void CopyStrided(const TensorInfo& info, const TensorLayout& layout, MutableByteSpan out);

}  // namespace cw::pytorch
