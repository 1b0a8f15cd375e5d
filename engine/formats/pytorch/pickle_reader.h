// A pickle reader for torch.save's data.pkl that never imports, calls or executes anything
// (docs/formats/torch.md; spec §2).
//
// A pickle is a program for a small stack machine: opcodes push values, build containers, store
// and fetch them in a memo, and call "globals" (module.name) with arguments. torch.save writes
// protocol 2 and replaces each storage by a persistent id: ('storage', <Name>Storage, key,
// location, numel). A tensor is a call of torch._utils._rebuild_tensor_v2(storage, offset, size,
// stride, requires_grad, hooks).
//
// This VM reads every opcode of protocols 0 to 5 except those that call classes or import by
// registry (INST, OBJ, EXT1/2/4) and out-of-band buffers (NEXT_BUFFER, READONLY_BUFFER). A GLOBAL
// or STACK_GLOBAL resolves only against a fixed allow-list of names the VM models itself:
//   collections.OrderedDict               -> a dict (BUILD on it, e.g. `_metadata`, is ignored)
//   torch._utils._rebuild_tensor[_v2|_v3] -> a tensor record (PickleTensor)
//   torch._utils._rebuild_parameter[_with_state], torch.nn.parameter.Parameter -> the tensor
//   torch._tensor._rebuild_from_type_v2   -> its function applied to its arguments, when the type
//                                            is torch.Tensor or torch.nn.parameter.Parameter
//   torch[.cuda].<Name>Storage, torch[.storage].UntypedStorage, torch dtypes, torch.Tensor
//                                         -> inert values (storage types, dtypes)
//   torch.Size -> a tuple; torch.device -> a string; _codecs.encode(str, "latin1") -> bytes;
//   builtins/__builtin__ set, frozenset, bytearray -> inert containers
// Anything else is refused with kUnsupported naming module.name, at the opcode's offset.
//
// Objects live in an arena (PickleTree) and are referred to by ObjectId; the memo and the stack
// hold ids, so a dict memoized empty and filled later is seen filled through every BINGET, and
// self-referencing containers cannot leak. Stack depth, memo size, object count and container
// nesting are capped (PickleLimits); string and byte lengths are checked against the input left.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cw/error.h"
#include "engine/base/bytes.h"
#include "engine/base/limits.h"
#include "engine/tensor/dtype.h"

namespace cw::pytorch {

using ObjectId = uint32_t;

enum class Kind : uint8_t {
  kNone,
  kBool,
  kInt,     // fits in int64
  kBigInt,  // an int beyond int64 (LONG1, LONG4, LONG): its value is not kept
  kFloat,
  kStr,    // UTF-8 (str, and Python 2 strings)
  kBytes,  // bytes and bytearray
  kTuple,
  kList,
  kDict,
  kSet,           // set and frozenset
  kGlobal,        // an allow-listed global, not called
  kPersistentId,  // items[0] is the id
  kTensor,        // a rebuilt tensor: PickleTree::tensor()
};

// What a GLOBAL names; every value is on the allow-list.
enum class GlobalKind : uint8_t {
  kOrderedDict,
  kRebuildTensor,
  kRebuildTensorV2,
  kRebuildTensorV3,
  kRebuildParameter,
  kRebuildParameterWithState,
  kRebuildFromTypeV2,
  kParameter,
  kTensorType,
  kStorageType,
  kDType,
  kSize,
  kDevice,
  kCodecsEncode,
  kSet,
  kFrozenSet,
  kByteArray,
};

struct Object {
  Kind kind = Kind::kNone;
  GlobalKind global = GlobalKind::kOrderedDict;  // kGlobal only
  bool ordered = false;                          // kDict made by collections.OrderedDict
  uint32_t depth = 0;                            // container nesting seen so far (0 for scalars)
  uint64_t offset = 0;    // offset of the opcode that made it, from the pickle's start
  int64_t int_value = 0;  // kBool, kInt; kTensor: index into the tree's tensors
  double float_value = 0;
  std::string text;             // kStr, kBytes; kGlobal: "module.name"
  std::vector<ObjectId> items;  // tuple/list/set items; dict keys and values alternating
};

// The arguments of a _rebuild_tensor* call, checked: offsets and strides in elements.
struct PickleTensor {
  ObjectId storage = 0;  // a kPersistentId object
  uint64_t storage_offset = 0;
  std::vector<uint64_t> shape;
  std::vector<uint64_t> stride;
  std::optional<DType> dtype;  // _rebuild_tensor_v3's dtype argument
};

// The unpickled value: an arena of objects.
class PickleTree {
 public:
  ObjectId root() const { return root_; }
  // REQUIRES: id < size()
  const Object& at(ObjectId id) const { return objects_[id]; }
  size_t size() const { return objects_.size(); }
  // REQUIRES: at(id).kind == Kind::kTensor
  const PickleTensor& tensor(ObjectId id) const {
    return tensors_[static_cast<size_t>(objects_[id].int_value)];
  }
  // Bytes read, STOP included; data after it (legacy files: the next pickle) is not read.
  uint64_t consumed_bytes() const { return consumed_bytes_; }

  // A short description for reports: "int 3", "str \"adam\"", "list of 2 items", "None".
  std::string Describe(ObjectId id) const;

 private:
  friend class PickleMachine;
  std::vector<Object> objects_;
  std::vector<PickleTensor> tensors_;
  ObjectId root_ = 0;
  uint64_t consumed_bytes_ = 0;
};

struct PickleLimits {
  uint64_t max_stack_depth = limits::kMaxPickleStackDepth;  // values and marks together
  uint64_t max_memo_entries = limits::kMaxPickleMemoEntries;
  // torch writes about 20 objects per tensor; this allows a million tensors and bounds memory
  // to a few GiB whatever the input.
  uint64_t max_objects = 50'000'000;
  uint64_t max_nesting_depth = limits::kMaxNestingDepth;
};

struct PickleSource {
  ByteSpan bytes;            // the pickle; data after its STOP is ignored
  std::string file;          // for error locations
  uint64_t file_offset = 0;  // where `bytes` starts in `file` (errors give file offsets)
  std::string entry;         // archive entry holding the pickle, for messages ("" if none)
};

// Runs the pickle. Errors are located at file offsets (file_offset + pickle offset) and say
// "while reading <entry> at pickle byte N". This is also the fuzzing entry point.
Result<PickleTree> ReadPickle(const PickleSource& source, const PickleLimits& limits = {});

}  // namespace cw::pytorch
