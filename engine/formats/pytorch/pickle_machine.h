// Internal to the pickle reader: the machine behind ReadPickle (pickle_reader.h).
//
// pickle_reader.cc runs the opcodes, pickle_objects.cc holds the arena, stack and memo
// primitives, pickle_globals.cc the allow-list and the calls it models.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/base/byte_reader.h"
#include "engine/formats/pytorch/pickle_reader.h"

namespace cw::pytorch {

// Reads opcodes one at a time into tree_; the stack, marks and memo hold ids into the arena.
class PickleMachine {
 public:
  PickleMachine(const PickleSource& source, const PickleLimits& limits)
      : source_(source),
        limits_(limits),
        in_(source.bytes, source.file, source.file_offset),
        text_budget_(2 * source.bytes.size() + 4096) {}

  Result<PickleTree> Run();

 private:
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
  Result<std::vector<uint64_t>> Dims(ObjectId id, const char* what);
  Result<uint64_t> NonNegative(ObjectId id, const char* what);
  Status ArgCount(ObjectId callable, size_t got, size_t min, size_t max);

  // Arena, stack and memo primitives (pickle_objects.cc).
  Object& obj(ObjectId id) { return tree_.objects_[id]; }
  Result<ObjectId> New(Kind kind);
  Result<ObjectId> NewText(Kind kind, std::string text);
  Result<ObjectId> NewContainer(Kind kind, const std::vector<ObjectId>& items);
  Status Adopt(ObjectId parent, ObjectId child);
  Status Push(ObjectId id);
  Status PushNew(Kind kind, int64_t int_value = 0, double float_value = 0);
  Result<ObjectId> Pop();
  Result<ObjectId> Top();
  Result<std::vector<ObjectId>> PopMark();
  Result<std::vector<ObjectId>> PopN(size_t n);
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
  std::unordered_map<uint64_t, ObjectId> memo_;
  uint64_t op_at_ = 0;       // pickle offset of the opcode being run
  uint64_t item_count_ = 0;  // container items added, against limits_.max_objects
  // str/bytes bytes that may still be created: twice the input, so calls that copy (set(),
  // _codecs.encode) cannot multiply memory.
  uint64_t text_budget_;
  bool stopped_ = false;
};

}  // namespace cw::pytorch
