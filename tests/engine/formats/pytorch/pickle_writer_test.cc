#include "engine/formats/pytorch/pickle_writer.h"

#include <string>
#include <vector>

#include <doctest/doctest.h>

namespace cw::pytorch {
namespace {

using namespace std::string_literals;

TensorInfo Tensor(std::string name, DType dtype, Shape shape) {
  const uint64_t bytes = ByteSize(dtype, shape).value_or(0);
  return {std::move(name), dtype, std::move(shape), bytes};
}

std::string Pickle(const std::vector<TensorInfo>& tensors, std::string_view root_key = "") {
  auto pickle = StateDictPickle(tensors, root_key);
  REQUIRE(pickle.ok());
  return *pickle;
}

// BINUNICODE: 'X', u32 LE length, UTF-8 bytes.
std::string Unicode(const std::string& s) {
  const auto n = static_cast<uint32_t>(s.size());
  return "X"s + static_cast<char>(n & 0xFF) + static_cast<char>(n >> 8 & 0xFF) +
         static_cast<char>(n >> 16 & 0xFF) + static_cast<char>(n >> 24) + s;
}

// The 139-byte stream for {"w": float32 [2, 3]}, transcribed from the hex in
// docs/formats/torch-writer.md ('data.pkl').
const std::string kSpecStream =
    "\x80\x02}(X\x01\x00\x00\x00w"
    "ctorch._utils\n_rebuild_tensor_v2\n"
    "((X\x07\x00\x00\x00storage"
    "ctorch\nFloatStorage\n"
    "X\x01\x00\x00\x00"
    "0"
    "X\x03\x00\x00\x00"
    "cpu"
    "K\x06tQ"
    "K\x00K\x02K\x03\x86K\x03K\x01\x86\x89"
    "ccollections\nOrderedDict\n"
    ")RtRu."s;

// The item of that stream (key, then value) for another name and storage key.
std::string SpecItem(const std::string& name, const std::string& key) {
  return Unicode(name) + "ctorch._utils\n_rebuild_tensor_v2\n((" + Unicode("storage") +
         "ctorch\nFloatStorage\n" + Unicode(key) + Unicode("cpu") +
         "K\x06tQK\x00K\x02K\x03\x86K\x03K\x01\x86\x89"
         "ccollections\nOrderedDict\n)RtR"s;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST_SUITE("formats.pytorch.pickle_writer") {
  TEST_CASE("a one-tensor float32 dict is exactly the documented 139-byte stream") {
    REQUIRE(kSpecStream.size() == 139);
    CHECK(Pickle({Tensor("w", DType::kF32, {2, 3})}) == kSpecStream);
    CHECK(kSpecStream == "\x80\x02}("s + SpecItem("w", "0") + "u.");
  }

  TEST_CASE("an empty tensor list is an empty dict") { CHECK(Pickle({}) == "\x80\x02}."s); }

  TEST_CASE("a root key nests the state dict as {key: {...}}") {
    const std::string inner = "}(" + SpecItem("w", "0") + "u";
    CHECK(Pickle({Tensor("w", DType::kF32, {2, 3})}, "model") ==
          "\x80\x02}(" + Unicode("model") + inner + "u.");
  }

  TEST_CASE("1001 tensors make a batch of 1000 items and a batch of one, each MARK ... SETITEMS") {
    std::vector<TensorInfo> tensors;
    std::string expected = "\x80\x02}(";
    for (size_t i = 0; i < 1001; ++i) {
      const std::string name = "layer." + std::to_string(i);
      tensors.push_back(Tensor(name, DType::kF32, {2, 3}));
      expected += SpecItem(name, std::to_string(i));
      if (i == 999)
        expected += "u(";
    }
    CHECK(Pickle(tensors) == expected + "u.");
  }

  TEST_CASE("storage keys are the tensor positions in decimal") {
    CHECK(StorageKey(0) == "0");
    CHECK(StorageKey(1234) == "1234");
  }

  TEST_CASE("ints are BININT1, BININT2, BININT or LONG1 by range") {
    const std::vector<std::pair<uint64_t, std::string>> cases = {
        {255, "K\xff"s},
        {256, "M\x00\x01"s},
        {65535, "M\xff\xff"s},
        {65536, "J\x00\x00\x01\x00"s},
        {0x7FFF'FFFF, "J\xff\xff\xff\x7f"s},
        {0x8000'0000, "\x8a\x05\x00\x00\x00\x80\x00"s},  // a set top bit needs a 0 byte
        {0xFF'FFFF'FFFF, "\x8a\x06\xff\xff\xff\xff\xff\x00"s},
        {0x7FFF'FFFF'FFFF'FFFF, "\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f"s},
    };
    for (const auto& c : cases) {
      CAPTURE(c.first);
      // Size (0, value): numel 0, then the size tuple, then strides (value, 1).
      std::string expected = "K\x00tQK\x00K\x00"s;
      ((expected += c.second) += "\x86") += c.second;
      expected += "K\x01\x86";
      CHECK(Contains(Pickle({Tensor("t", DType::kU8, {0, c.first})}), expected));
    }
  }

  TEST_CASE("a 0-dim tensor has one element and empty size and stride tuples") {
    CHECK(Contains(Pickle({Tensor("s", DType::kF64, {})}), "K\x01tQK\x00))\x89"s));
  }

  TEST_CASE("tuples of 1 to 3 items use TUPLE1-3 and longer ones MARK ... TUPLE") {
    CHECK(Contains(Pickle({Tensor("t", DType::kI8, {7})}), "K\x07\x85K\x01\x85\x89"s));
    CHECK(Contains(Pickle({Tensor("t", DType::kI8, {2, 3, 4})}),
                   "K\x02K\x03K\x04\x87K\x0cK\x04K\x01\x87\x89"s));
    CHECK(Contains(Pickle({Tensor("t", DType::kI8, {2, 3, 4, 5})}),
                   "(K\x02K\x03K\x04K\x05t(K<K\x14K\x05K\x01t\x89"s));
  }

  TEST_CASE("a zero-size dim gets the stride of a size-1 dim, as torch computes it") {
    // torch.empty(4, 0).stride() == (1, 1); torch.empty(2, 0, 3).stride() == (3, 3, 1)
    CHECK(Contains(Pickle({Tensor("t", DType::kF32, {4, 0})}),
                   "K\x00tQK\x00K\x04K\x00\x86K\x01K\x01\x86"s));
    CHECK(Contains(Pickle({Tensor("t", DType::kF32, {2, 0, 3})}),
                   "K\x02K\x00K\x03\x87K\x03K\x03K\x01\x87"s));
  }

  TEST_CASE("each dtype with a legacy storage class names that class") {
    const std::vector<std::pair<DType, std::string>> cases = {
        {DType::kF64, "DoubleStorage"}, {DType::kF32, "FloatStorage"},
        {DType::kF16, "HalfStorage"},   {DType::kBF16, "BFloat16Storage"},
        {DType::kI64, "LongStorage"},   {DType::kI32, "IntStorage"},
        {DType::kI16, "ShortStorage"},  {DType::kI8, "CharStorage"},
        {DType::kU8, "ByteStorage"},    {DType::kBool, "BoolStorage"},
    };
    for (const auto& c : cases) {
      CAPTURE(Name(c.first));
      std::string expected = Unicode("storage");
      ((expected += "ctorch\n") += c.second) += "\n";
      ((expected += Unicode("0")) += Unicode("cpu")) += "K\x03t";
      CHECK(Contains(Pickle({Tensor("t", c.first, {3})}), expected));
    }
  }

  TEST_CASE("a non-ASCII name is written as its UTF-8 bytes") {
    const std::string name = "模型.层.权重";
    CHECK(Contains(Pickle({Tensor(name, DType::kF32, {1})}), "}(" + Unicode(name) + "ctorch."));
  }

  TEST_CASE("dtypes without a legacy storage class are refused as unsupported, naming the tensor") {
    for (DType dtype : {DType::kU16, DType::kU32, DType::kU64, DType::kF8E4M3, DType::kF8E5M2}) {
      CAPTURE(Name(dtype));
      const std::vector<TensorInfo> tensors = {Tensor("ok", DType::kF32, {1}),
                                               Tensor("bad", dtype, {1})};
      auto pickle = StateDictPickle(tensors, "");
      REQUIRE_FALSE(pickle.ok());
      CHECK(pickle.error().code() == ErrorCode::kUnsupported);
      CHECK(Contains(pickle.error().message(), "\"bad\""));
    }
  }

  TEST_CASE("a name or root key that is not valid UTF-8 is refused as unsupported") {
    for (const std::string& bad :
         {"\xff"s, "a\xc0\x80"s, "\xed\xa0\x80"s, "\xe4\xb8"s, "\xf4\x90\x80\x80"s, "\x80"s}) {
      CAPTURE(bad);
      auto by_name = StateDictPickle(std::vector{Tensor(bad, DType::kF32, {1})}, "");
      REQUIRE_FALSE(by_name.ok());
      CHECK(by_name.error().code() == ErrorCode::kUnsupported);
      auto by_root = StateDictPickle(std::vector{Tensor("w", DType::kF32, {1})}, bad);
      REQUIRE_FALSE(by_root.ok());
      CHECK(by_root.error().code() == ErrorCode::kUnsupported);
    }
  }

  TEST_CASE("a name over the name cap is refused as a limit") {
    auto pickle =
        StateDictPickle(std::vector{Tensor(std::string(4097, 'n'), DType::kF32, {1})}, "");
    REQUIRE_FALSE(pickle.ok());
    CHECK(pickle.error().code() == ErrorCode::kLimitExceeded);
    CHECK(StateDictPickle(std::vector{Tensor(std::string(4096, 'n'), DType::kF32, {1})}, "").ok());
  }

  TEST_CASE("duplicate names are a usage error") {
    auto pickle = StateDictPickle(
        std::vector{Tensor("w", DType::kF32, {1}), Tensor("w", DType::kI8, {1})}, "");
    REQUIRE_FALSE(pickle.ok());
    CHECK(pickle.error().code() == ErrorCode::kUsage);
  }

  TEST_CASE("a dim or stride over INT64_MAX is refused as unsupported") {
    for (const Shape& shape : {Shape{0x8000'0000'0000'0000}, Shape{0, 1ull << 32, 1ull << 32}}) {
      CAPTURE(ShapeToString(shape));
      auto pickle = StateDictPickle(std::vector{Tensor("w", DType::kU8, shape)}, "");
      REQUIRE_FALSE(pickle.ok());
      CHECK(pickle.error().code() == ErrorCode::kUnsupported);
    }
  }
}

}  // namespace
}  // namespace cw::pytorch
