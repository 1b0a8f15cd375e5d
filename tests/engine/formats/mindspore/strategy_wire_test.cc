#include "engine/formats/mindspore/strategy_wire.h"

#include <string>

#include <doctest/doctest.h>

#include "tests/support/ckpt_builder.h"

namespace cw::mindspore {
namespace {

namespace ck = test::ckpt;
using namespace std::string_literals;

constexpr uint64_t kMinusOne = ~0ull;  // int32 -1 as protobuf writes it: sign-extended, 10 bytes

std::string Dims(std::initializer_list<uint64_t> values) {
  std::string out;
  for (const uint64_t v : values)
    out += ck::VarintField(1, v);
  return out;
}

// ParallelLayouts with dev [2], the given TensorMap payload and field/step/size 0, then `extra`.
std::string Layouts(const std::string& tensor_map, const std::string& extra = "") {
  return ck::LenField(1, Dims({2})) + ck::LenField(2, tensor_map) + ck::LenField(3, "") +
         ck::LenField(4, "") + ck::VarintField(5, 0) + ck::VarintField(6, 0) +
         ck::VarintField(7, 0) + extra;
}

std::string Item(const std::string& name, const std::string& layouts) {
  return ck::LenField(3, ck::LenField(1, name) + ck::LenField(2, layouts));
}

std::string Map(const std::string& items) { return ck::VarintField(1, 1) + items; }

Result<StrategyMap> Decode(const std::string& bytes) {
  return DecodeStrategyMap(ByteReader(AsBytes(bytes), "s.ckpt"));
}

void CheckCorruptAt(const std::string& bytes, uint64_t offset) {
  const auto map = Decode(bytes);
  REQUIRE_FALSE(map.ok());
  CHECK(map.error().code() == ErrorCode::kCorrupt);
  CHECK(map.error().where().file == "s.ckpt");
  CHECK(map.error().where().offset == offset);
}

TEST_SUITE("formats.mindspore.strategy_wire") {
  TEST_CASE("a layout item reads its name, device matrix, tensor map and int32 fields") {
    const std::string tensor_map = Dims({0, kMinusOne});
    const std::string bytes =
        Map(Item("w", Layouts(tensor_map)) +
            ck::LenField(
                2, ck::LenField(1, "MatMul_w") +
                       ck::LenField(2, ck::VarintField(1, 3) + ck::LenField(2, Dims({1, 2})))));
    const auto map = Decode(bytes);
    REQUIRE(map.ok());
    CHECK(map->current_stage == 1);
    REQUIRE(map->operators.size() == 1);
    CHECK(map->operators[0].name == "MatMul_w");
    CHECK(map->operators[0].stage == 3);
    REQUIRE(map->layouts.size() == 1);
    const LayoutItem& item = map->layouts[0];
    CHECK(item.offset == 2);
    CHECK(item.param_name == "w");
    CHECK(item.param_name_offset == 4);
    CHECK(item.layouts_offset == 9);
    CHECK(item.dev_matrix == std::vector<std::vector<uint64_t>>{{2}});
    CHECK(item.tensor_map == std::vector<std::vector<int32_t>>{{0, -1}});
    CHECK(item.param_split_shape == std::vector<std::vector<int64_t>>{{}});
    CHECK(item.indices_offset == std::vector<std::vector<int64_t>>{{}});
  }

  TEST_CASE("packed repeated values, fields out of order and unknown fields read as protobuf") {
    const std::string layouts = ck::VarintField(7, 2) + ck::VarintField(6, 4) +
                                ck::VarintField(5, 0) + ck::VarintField(99, 5) +
                                ck::LenField(2, ck::LenField(1, ck::Varint(1) + ck::Varint(0))) +
                                ck::LenField(1, ck::LenField(1, ck::Varint(4) + ck::Varint(2)));
    const auto map = Decode(Item("w", layouts) + ck::LenField(42, "x") + ck::VarintField(1, 1));
    REQUIRE(map.ok());
    const LayoutItem& item = map->layouts.at(0);
    CHECK(item.dev_matrix == std::vector<std::vector<uint64_t>>{{4, 2}});
    CHECK(item.tensor_map == std::vector<std::vector<int32_t>>{{1, 0}});
    CHECK(item.opt_weight_shard_step == 4);
    CHECK(item.opt_weight_shard_size == 2);
  }

  TEST_CASE("an int32 that is not sign-extended to 64 bits is corrupt at its value") {
    // -1 as 5 bytes: libprotobuf keeps the low 32 bits, no writer produces it.
    const std::string short_minus_one = "\x08\xff\xff\xff\xff\x0f"s;
    const std::string bytes = Map(Item("w", Layouts(short_minus_one)));
    const uint64_t value_at = bytes.find(short_minus_one) + 1;
    CheckCorruptAt(bytes, value_at);
    CheckCorruptAt(Map(Item("w", Layouts(Dims({1ull << 31})))), value_at);
  }

  TEST_CASE("a uint32 over 2^32 - 1 is corrupt at its value") {
    const std::string bytes = ck::VarintField(1, 1ull << 32);
    CheckCorruptAt(bytes, 1);
  }

  TEST_CASE("a missing required field is corrupt at the start of its message") {
    CheckCorruptAt(Map(ck::LenField(3, ck::LenField(1, "w"))), 4);  // no parallel_layouts
    const std::string no_size = ck::LenField(1, Dims({2})) + ck::LenField(2, Dims({0})) +
                                ck::VarintField(5, 0) + ck::VarintField(6, 0);
    CheckCorruptAt(Map(Item("w", no_size)), 9);
    CheckCorruptAt(Item("w", Layouts(Dims({0}))), 0);  // no current_stage
  }

  TEST_CASE("a singular field given twice is corrupt at its second key") {
    const std::string layouts = Layouts(Dims({0}), ck::VarintField(5, 1));
    const std::string bytes = Map(Item("w", layouts));
    CheckCorruptAt(bytes, bytes.size() - 2);
    CheckCorruptAt(ck::VarintField(1, 1) + ck::VarintField(1, 1), 2);
  }

  TEST_CASE("a known field of the wrong wire type is corrupt at its key") {
    CheckCorruptAt(Map(ck::VarintField(3, 5)), 2);
    CheckCorruptAt(ck::LenField(1, "x"), 0);
  }

  TEST_CASE("an empty or non-UTF-8 parameter name is corrupt at the name") {
    CheckCorruptAt(Map(Item("", Layouts(Dims({0})))), 6);
    CheckCorruptAt(Map(Item("w\xff", Layouts(Dims({0})))), 6);
  }

  TEST_CASE("a length past the end of its message is corrupt at the length") {
    const std::string bytes = Map(Item("w", Layouts(Dims({0}))));
    CheckCorruptAt(bytes.substr(0, bytes.size() - 1), 3);
  }

  TEST_CASE("strategy bytes are told from checkpoints, safetensors and text") {
    CHECK(LooksLikeStrategyMap(AsBytes(Map(Item("w", Layouts(Dims({0})))))));
    CHECK(LooksLikeStrategyMap(AsBytes(ck::VarintField(1, 1))));
    CHECK_FALSE(LooksLikeStrategyMap(AsBytes(ck::TensorRecord("w", {{2}, "Float32", "12345678"}))));
    CHECK_FALSE(LooksLikeStrategyMap(AsBytes("\x08\x01{\"a\": 1}"s)));
    CHECK_FALSE(LooksLikeStrategyMap(AsBytes("hello"s)));
    CHECK_FALSE(LooksLikeStrategyMap(AsBytes(""s)));
  }
}

}  // namespace
}  // namespace cw::mindspore
