// Internal to the pickle reader: the machine behind ReadPickle (pickle_reader.h).
//
// pickle_reader.cc runs the opcodes, pickle_objects.cc holds the arena, stack and memo
// primitives, pickle_globals.cc the allow-list and the calls it models.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/base/byte_reader.h"
#include "engine/formats/pytorch/pickle_reader.h"

namespace cw::pytorch {

// Marks unset memo entries and constants not made yet. Never a valid id: every value costs
// pickle bytes, and a pickle stops before 2**32 of them.
inline constexpr ObjectId kNoObject = UINT32_MAX;

// Reads opcodes one at a time into tree_; the stack, marks and memo hold ids into the arena.
class PickleMachine {
 public:
  PickleMachine(const PickleSource& source, const PickleLimits& limits)
      : source_(source), limits_(limits), in_(source.bytes, source.file, source.file_offset) {
    constants_.fill(kNoObject);
  }

  Result<PickleTree> Run();

 private:
  using Slot = PickleTree::Slot;

  // Opcode groups (pickle_reader.cc).
  Status Step(uint8_t code);
  Status Control(uint8_t code);
  Status Number(uint8_t code);
  Status Text(uint8_t code);
  Status Binary(uint8_t code);
  Status Container(uint8_t code);
  Status Fill(uint8_t code);
  Status StackOp(uint8_t code);
  Status Memo(uint8_t code);
  Status Global(uint8_t code);
  Status Call(uint8_t code);
  Status Build();
  Status PersistentId(uint8_t code);

  // Allow-list and modelled calls (pickle_globals.cc).
  Result<ObjectId> ResolveGlobal(std::string_view module, std::string_view name);
  Result<ObjectId> Invoke(ObjectId callable, const std::vector<ObjectId>& args);
  Result<ObjectId> RebuildTensor(ObjectId callable, const std::vector<ObjectId>& args);
  Result<ObjectId> FromType(ObjectId callable, const std::vector<ObjectId>& args);
  Result<ObjectId> MakeBytes(ObjectId callable, const std::vector<ObjectId>& args);
  Result<ObjectId> MakeSet(ObjectId callable, const std::vector<ObjectId>& args);
  Result<ObjectId> MakeSize(ObjectId callable, const std::vector<ObjectId>& args);
  Result<ObjectId> MakeDevice(ObjectId callable, const std::vector<ObjectId>& args);
  Result<ObjectId> TensorArgument(ObjectId callable, const std::vector<ObjectId>& args,
                                  size_t min_args, size_t max_args);
  Result<ObjectId> Dims(ObjectId id, const char* what);
  Result<uint64_t> NonNegative(ObjectId id, const char* what);
  Status ArgCount(ObjectId callable, size_t got, size_t min, size_t max);

  // Arena, stack and memo primitives (pickle_objects.cc).
  Slot& slot(ObjectId id) { return tree_.slots_[id]; }
  std::string_view text(ObjectId id) const { return tree_.TextOf(tree_.slots_[id]); }
  std::vector<ObjectId> ItemsOf(ObjectId id) const;
  Status Charge(uint64_t bytes) const;
  uint64_t MemoryBytes() const;
  Result<ObjectId> New(Kind kind);
  Result<ObjectId> Constant(Kind kind, bool value = false);
  // REQUIRES: `text` does not view the tree (growing its buffer may move it).
  Result<ObjectId> NewText(Kind kind, std::string_view text);
  // REQUIRES for both: the items do not view the tree (growing its pool may move it).
  Result<ObjectId> NewContainer(Kind kind, std::span<const ObjectId> items);
  Status AddItems(ObjectId parent, std::span<const ObjectId> children);
  Status Push(ObjectId id);
  Status PushNew(Kind kind, int64_t int_value = 0, double float_value = 0);
  Result<ObjectId> Pop();
  Result<ObjectId> Top();
  // Opcodes that consume values read them in place on the stack and Drop() them once used: no
  // copy per opcode. AboveMark() removes the mark; Below() is the value under `top`.
  Result<std::span<const ObjectId>> TopN(size_t n);
  Result<std::span<const ObjectId>> AboveMark();
  Result<ObjectId> Below(std::span<const ObjectId> top);
  void Drop(size_t n) { stack_.resize(stack_.size() - n); }
  Status MemoPut(uint64_t index, ObjectId id);
  Result<ObjectId> MemoGet(uint64_t index) const;
  Result<std::string_view> ReadLine();
  Result<uint64_t> ReadLength(int width);
  Error Fail(ErrorCode code, std::string message) const;
  std::string Where() const;

  const PickleSource& source_;
  PickleLimits limits_;
  ByteReader in_;
  PickleTree tree_;
  std::vector<ObjectId> stack_;
  std::vector<size_t> marks_;  // stack_ sizes at each MARK; the last is the fence for pops
  // The memo: an index up to the pickle offset of its PUT lives in memo_ (holes hold kNoObject),
  // any other in sparse_memo_, so that neither a MEMOIZE per byte nor a LONG_BINPUT of 2**32 - 1
  // costs more than a few bytes per pickle byte. An index is in one of the two at a time.
  std::deque<ObjectId> memo_;
  std::unordered_map<uint64_t, ObjectId> sparse_memo_;
  uint64_t memo_count_ = 0;            // entries set: MEMOIZE's index, as len(memo) in Python
  std::array<ObjectId, 4> constants_;  // None, False, True, (): immutable, so made once
  std::unordered_map<std::string, ObjectId> globals_;  // by "module.name", made once each
  uint64_t op_at_ = 0;                                 // pickle offset of the opcode being run
  bool stopped_ = false;
};

}  // namespace cw::pytorch
