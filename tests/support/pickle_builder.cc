#include "tests/support/pickle_builder.h"

#include <bit>
#include <cstring>

namespace cw::test::pt {
namespace {

void AppendLE(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out += static_cast<char>((value >> (8 * i)) & 0xFF);
}

std::vector<int64_t> ContiguousStrides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> stride(shape.size());
  int64_t step = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    stride[d] = step;
    step *= shape[d];
  }
  return stride;
}

}  // namespace

PickleBuilder& PickleBuilder::Raw(std::string_view bytes) {
  bytes_ += bytes;
  return *this;
}

PickleBuilder& PickleBuilder::Op(uint8_t code) {
  bytes_ += static_cast<char>(code);
  return *this;
}

PickleBuilder& PickleBuilder::Proto(uint8_t version) {
  Op(0x80);
  return Op(version);
}

PickleBuilder& PickleBuilder::Int(int64_t value) {
  if (value >= 0 && value < 256) {
    Op('K');
    AppendLE(bytes_, static_cast<uint64_t>(value), 1);
  } else if (value >= 0 && value < 65536) {
    Op('M');
    AppendLE(bytes_, static_cast<uint64_t>(value), 2);
  } else if (value >= INT32_MIN && value <= INT32_MAX) {
    Op('J');
    AppendLE(bytes_, static_cast<uint64_t>(value), 4);
  } else {
    Op(0x8a);
    Op(8);
    AppendLE(bytes_, static_cast<uint64_t>(value), 8);
  }
  return *this;
}

PickleBuilder& PickleBuilder::Float(double value) {
  Op('G');
  const auto bits = std::bit_cast<uint64_t>(value);
  for (int i = 7; i >= 0; --i)  // big-endian, the pickle way
    bytes_ += static_cast<char>((bits >> (8 * i)) & 0xFF);
  return *this;
}

PickleBuilder& PickleBuilder::Str(std::string_view text) {
  Op('X');
  AppendLE(bytes_, text.size(), 4);
  return Raw(text);
}

PickleBuilder& PickleBuilder::Global(std::string_view module, std::string_view name) {
  Op('c');
  bytes_ += module;
  bytes_ += '\n';
  bytes_ += name;
  bytes_ += '\n';
  return *this;
}

PickleBuilder& PickleBuilder::Put(uint32_t index) {
  if (index < 256) {
    Op('q');
    AppendLE(bytes_, index, 1);
  } else {
    Op('r');
    AppendLE(bytes_, index, 4);
  }
  return *this;
}

PickleBuilder& PickleBuilder::Get(uint32_t index) {
  if (index < 256) {
    Op('h');
    AppendLE(bytes_, index, 1);
  } else {
    Op('j');
    AppendLE(bytes_, index, 4);
  }
  return *this;
}

PickleBuilder& PickleBuilder::Ints(const std::vector<int64_t>& values) {
  if (values.empty())
    return EmptyTuple();
  if (values.size() > 3)
    Mark();
  for (const int64_t v : values)
    Int(v);
  switch (values.size()) {
    case 1:
      return Tuple1();
    case 2:
      return Tuple2();
    case 3:
      return Tuple3();
    default:
      return Tuple();
  }
}

PickleBuilder& PickleBuilder::OrderedDict() {
  return Global("collections", "OrderedDict").EmptyTuple().Reduce();
}

PickleBuilder& PickleBuilder::StorageId(std::string_view type, std::string_view key, int64_t numel,
                                        std::string_view module) {
  Mark().Str("storage").Global(module, type).Str(key).Str("cpu").Int(numel).Tuple();
  return BinPersId();
}

PickleBuilder& PickleBuilder::TensorV2(std::string_view type, std::string_view key, int64_t numel,
                                       int64_t offset, const std::vector<int64_t>& shape,
                                       const std::vector<int64_t>& stride) {
  Global("torch._utils", "_rebuild_tensor_v2").Mark();
  StorageId(type, key, numel).Int(offset).Ints(shape).Ints(stride).Bool(false).OrderedDict();
  return Tuple().Reduce();
}

std::string StateDictPickle(const std::vector<TensorSpec>& tensors) {
  PickleBuilder p;
  p.Proto().OrderedDict().Mark();
  for (const TensorSpec& t : tensors) {
    p.Str(t.name).TensorV2(t.storage_type, t.key, t.numel, t.offset, t.shape,
                           t.stride.empty() ? ContiguousStrides(t.shape) : t.stride);
  }
  p.SetItems().Stop();
  return p.bytes();
}

}  // namespace cw::test::pt
