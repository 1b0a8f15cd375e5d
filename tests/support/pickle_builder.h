// Pickle bytes written opcode by opcode, for hand-made (often hostile) test inputs.
//
// Each method appends one opcode with its argument and returns *this, so a stream reads like a
// pickletools listing:
//   PickleBuilder p;
//   p.Proto().Global("os", "system").Str("touch x").Tuple1().Reduce().Stop();
// size() before a call gives the offset an error at that opcode should report.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cw::test::pt {

class PickleBuilder {
 public:
  PickleBuilder& Raw(std::string_view bytes);
  PickleBuilder& Op(uint8_t code);  // any one-byte opcode without argument
  PickleBuilder& Proto(uint8_t version = 2);
  PickleBuilder& Stop() { return Op('.'); }
  PickleBuilder& Mark() { return Op('('); }
  PickleBuilder& None() { return Op('N'); }
  PickleBuilder& Bool(bool value) { return Op(value ? 0x88 : 0x89); }
  PickleBuilder& Int(int64_t value);          // BININT1, BININT2, BININT or LONG1, as Python picks
  PickleBuilder& Float(double value);         // BINFLOAT
  PickleBuilder& Str(std::string_view text);  // BINUNICODE
  PickleBuilder& Global(std::string_view module, std::string_view name);
  PickleBuilder& EmptyTuple() { return Op(')'); }
  PickleBuilder& EmptyList() { return Op(']'); }
  PickleBuilder& EmptyDict() { return Op('}'); }
  PickleBuilder& Tuple() { return Op('t'); }  // MARK ... TUPLE
  PickleBuilder& Tuple1() { return Op(0x85); }
  PickleBuilder& Tuple2() { return Op(0x86); }
  PickleBuilder& Tuple3() { return Op(0x87); }
  PickleBuilder& Append() { return Op('a'); }
  PickleBuilder& Appends() { return Op('e'); }
  PickleBuilder& SetItem() { return Op('s'); }
  PickleBuilder& SetItems() { return Op('u'); }
  PickleBuilder& Reduce() { return Op('R'); }
  PickleBuilder& Build() { return Op('b'); }
  PickleBuilder& BinPersId() { return Op('Q'); }
  PickleBuilder& Pop() { return Op('0'); }
  PickleBuilder& Put(uint32_t index);  // BINPUT or LONG_BINPUT
  PickleBuilder& Get(uint32_t index);  // BINGET or LONG_BINGET

  // Pieces torch writes.
  PickleBuilder& Ints(const std::vector<int64_t>& values);  // a tuple, as torch.Size
  PickleBuilder& OrderedDict();  // GLOBAL collections.OrderedDict, EMPTY_TUPLE, REDUCE
  // ('storage', GLOBAL <module> <type>, key, location, numel) BINPERSID
  PickleBuilder& StorageId(std::string_view type, std::string_view key, int64_t numel,
                           std::string_view module = "torch");
  // _rebuild_tensor_v2(<storage id>, offset, shape, stride, False, OrderedDict()) via REDUCE.
  PickleBuilder& TensorV2(std::string_view type, std::string_view key, int64_t numel,
                          int64_t offset, const std::vector<int64_t>& shape,
                          const std::vector<int64_t>& stride);

  const std::string& bytes() const { return bytes_; }
  uint64_t size() const { return bytes_.size(); }

 private:
  std::string bytes_;
};

// One tensor of a hand-made state dict; strides default to C order.
struct TensorSpec {
  std::string name;
  std::string storage_type = "FloatStorage";
  std::string key;
  int64_t numel = 0;
  int64_t offset = 0;
  std::vector<int64_t> shape;
  std::vector<int64_t> stride;  // empty: contiguous
};

// The pickle torch.save writes for an OrderedDict of these tensors (protocol 2, one
// MARK ... SETITEMS batch).
std::string StateDictPickle(const std::vector<TensorSpec>& tensors);

}  // namespace cw::test::pt
