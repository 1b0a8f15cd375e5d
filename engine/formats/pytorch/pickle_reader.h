// A pickle reader for torch.save's data.pkl that never imports, calls or executes anything
// (docs/formats/torch.md, 'The pickle').
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
// self-referencing containers cannot leak. Stack depth, memo size and container nesting are capped
// (PickleLimits); so is the arena, to a fixed number of bytes per pickle byte read: each value
// takes 16 bytes, container items 4 bytes in a shared pool, strings their length in a shared
// buffer, and None, True, False, () and each global exist once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
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

// A container's items: a view of ids in the tree, valid while it lives and is not moved.
class Items {
 public:
  using Iterator = std::deque<ObjectId>::const_iterator;

  Items() = default;
  Items(Iterator begin, size_t size) : begin_(begin), size_(size) {}
  Iterator begin() const { return begin_; }
  Iterator end() const { return begin_ + static_cast<ptrdiff_t>(size_); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // REQUIRES: i < size()
  ObjectId operator[](size_t i) const { return begin_[static_cast<ptrdiff_t>(i)]; }

 private:
  Iterator begin_{};
  size_t size_ = 0;
};

// One value as readers see it, decoded from the tree's compact storage. `text` and `items` view
// the tree: valid while it lives and is not moved.
struct Object {
  Kind kind = Kind::kNone;
  GlobalKind global = GlobalKind::kOrderedDict;  // kGlobal only
  bool ordered = false;                          // kDict made by collections.OrderedDict
  // Offset of the opcode that made it, from the pickle's start. None, True, False, () and
  // globals are made once: theirs is the first opcode that made them.
  uint64_t offset = 0;
  int64_t int_value = 0;   // kBool, kInt
  double float_value = 0;  // kFloat
  std::string_view text;   // kStr, kBytes; kGlobal: "module.name"
  // Tuple/list/set items; dict keys and values alternating; kPersistentId: items[0] is the id.
  Items items;
};

// The arguments of a _rebuild_tensor* call, checked: offsets and strides in elements.
struct PickleTensor {
  ObjectId storage = 0;  // a kPersistentId object
  uint64_t storage_offset = 0;
  std::vector<uint64_t> shape;
  std::vector<uint64_t> stride;
  std::optional<DType> dtype;  // _rebuild_tensor_v3's dtype argument
};

// The unpickled value: an arena of objects. Immutable once ReadPickle returns it.
class PickleTree {
 public:
  ObjectId root() const { return root_; }
  // REQUIRES: id < size()
  Object at(ObjectId id) const;
  size_t size() const { return slots_.size(); }
  // REQUIRES: at(id).kind == Kind::kTensor
  PickleTensor tensor(ObjectId id) const;
  // Bytes read, STOP included; data after it (legacy files: the next pickle) is not read.
  uint64_t consumed_bytes() const { return consumed_bytes_; }
  // Bytes of memory the arena holds: its values, item pool, string buffer and tensor records,
  // counted by whole allocation blocks and capacities. At most PickleLimits::arena_base_bytes +
  // arena_bytes_per_byte * consumed_bytes(), plus one 512-byte block per pool.
  uint64_t arena_bytes() const;

  // A short description for reports: "int 3", "str \"adam\"", "list of 2 items", "None".
  std::string Describe(ObjectId id) const;

 private:
  friend class PickleMachine;
  // Where a string lies in text_, or a container's items in items_.
  struct Span {  // trivial, to be a union member
    uint32_t start;
    uint32_t count;
  };
  // One value in 16 bytes: the arena's memory per pickle byte follows from this size.
  struct Slot {
    uint32_t offset = 0;  // pickle offsets fit: ReadPickle stops at PickleLimits::max_pickle_bytes
    Kind kind = Kind::kNone;
    GlobalKind global = GlobalKind::kOrderedDict;
    bool ordered = false;
    uint8_t depth = 0;  // container nesting seen so far (0 for scalars), at most 255
    union {
      int64_t int_value = 0;  // kBool, kInt; kTensor: index into tensors_
      double float_value;     // kFloat
      Span span;              // kStr, kBytes, kGlobal: in text_; containers, kPersistentId: items_
    };
  };
  // A tensor record; size and stride are tuples of non-negative ints (never changed later).
  struct TensorSlot {
    ObjectId storage = 0;
    ObjectId shape = 0;
    ObjectId stride = 0;
    std::optional<DType> dtype;
    uint64_t storage_offset = 0;
  };

  std::string_view TextOf(const Slot& slot) const {
    return std::string_view(text_).substr(slot.span.start, slot.span.count);
  }
  Items ItemsOf(const Slot& slot) const {
    return {items_.begin() + slot.span.start, slot.span.count};
  }

  // Deques, so that growing never copies what is there nor holds two copies at once.
  std::deque<Slot> slots_;
  std::deque<ObjectId> items_;
  std::string text_;
  std::deque<TensorSlot> tensors_;
  ObjectId root_ = 0;
  uint64_t consumed_bytes_ = 0;
};

struct PickleLimits {
  uint64_t max_pickle_bytes = limits::kMaxPickleBytes;      // at most 2**32 - 1
  uint64_t max_stack_depth = limits::kMaxPickleStackDepth;  // values and marks together
  uint64_t max_memo_entries = limits::kMaxPickleMemoEntries;
  uint64_t max_nesting_depth = limits::kMaxNestingDepth;  // at most 255
  // The arena may hold arena_base_bytes + arena_bytes_per_byte * (pickle bytes read so far).
  uint64_t arena_bytes_per_byte = limits::kPickleArenaBytesPerByte;
  uint64_t arena_base_bytes = limits::kPickleArenaBaseBytes;
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
