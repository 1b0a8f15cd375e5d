#include "engine/formats/mindspore/ckpt_wire.h"

#include <string>

#include <doctest/doctest.h>

#include "engine/base/limits.h"
#include "tests/support/ckpt_builder.h"

namespace cw::mindspore {
namespace {

namespace ck = test::ckpt;
using namespace std::string_literals;

// The reader views `bytes`, which must outlive it: no temporaries.
ByteReader On(const std::string& bytes) { return ByteReader(AsBytes(bytes), "t.ckpt"); }
ByteReader On(const std::string&& bytes) = delete;

// The example record of docs/formats/mindspore.md ('Layout'): tag "w", dims [2, 3], Float32,
// values 0..5.
std::string ExampleHeader() { return ck::FromHex("0a2c0a01771227080208031207466c6f617433321a18"); }
std::string ExampleData() { return ck::F32({0, 1, 2, 3, 4, 5}); }

// A record whose Value is `value_fields` verbatim.
Result<CkptRecord> ReadValueBytes(const std::string& value_fields, std::string& storage) {
  storage = ck::Record(value_fields);
  ByteReader in = On(storage);
  return ReadRecord(in, false);
}

TEST_SUITE("formats.mindspore.wire") {
  TEST_CASE("minimal varints of 1 to 10 bytes round trip and match their computed size") {
    for (int bits = 0; bits <= 64; ++bits) {
      for (const uint64_t delta : {0ull, 1ull}) {
        const uint64_t v = bits == 64 ? ~0ull : (bits == 0 ? 0 : (1ull << bits) - delta);
        CAPTURE(v);
        std::string encoded;
        AppendVarint(encoded, v);
        CHECK(encoded == ck::Varint(v));
        CHECK(encoded.size() == VarintSize(v));
        ByteReader in = On(encoded);
        auto read = ReadVarint(in);
        REQUIRE(read.ok());
        CHECK(*read == v);
        CHECK(in.empty());
      }
    }
  }

  TEST_CASE("every one- and two-byte input reads as a reference decoder says") {
    for (int b0 = 0; b0 < 256; ++b0) {
      for (int b1 = 0; b1 < 256; ++b1) {
        const std::string bytes{static_cast<char>(b0), static_cast<char>(b1)};
        ByteReader in = On(bytes);
        auto v = ReadVarint(in);
        CAPTURE(b0);
        CAPTURE(b1);
        if (b0 < 0x80) {
          REQUIRE(v.ok());
          CHECK(*v == static_cast<uint64_t>(b0));
          CHECK(in.position() == 1);
        } else if (b1 < 0x80) {
          REQUIRE(v.ok());
          CHECK(*v == static_cast<uint64_t>((b0 & 0x7F) | (b1 << 7)));
          CHECK(in.position() == 2);
        } else {
          REQUIRE_FALSE(v.ok());
          CHECK(v.error().code() == ErrorCode::kCorrupt);
          CHECK(v.error().where().offset == 0u);
        }
      }
    }
  }

  TEST_CASE("an 11-byte varint is corrupt at its first byte") {
    const std::string bytes = "xyz" + std::string(10, '\xff') + "\x01";
    ByteReader in = On(bytes);
    REQUIRE(in.Skip(3).ok());
    auto v = ReadVarint(in);
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().code() == ErrorCode::kCorrupt);
    CHECK(v.error().where().offset == 3u);
    CHECK(v.error().where().file == "t.ckpt");
  }

  TEST_CASE("a 10-byte varint is corrupt when it holds more than 64 bits") {
    const std::string over = std::string(9, '\xff') + "\x02";
    ByteReader in = On(over);
    auto v = ReadVarint(in);
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().code() == ErrorCode::kCorrupt);
    CHECK(v.error().where().offset == 0u);
    const std::string most = std::string(9, '\xff') + "\x01";
    ByteReader max = On(most);
    REQUIRE(ReadVarint(max).ok());
  }

  TEST_CASE("a non-minimal varint is accepted as protobuf accepts it") {
    const std::string bytes = "\x80\x80\x00"s;
    ByteReader in = On(bytes);
    auto v = ReadVarint(in);
    REQUIRE(v.ok());
    CHECK(*v == 0u);
  }

  TEST_CASE("a key with a group wire type or wire type 6 or 7 is corrupt at the key") {
    for (const int wire : {3, 4, 6, 7}) {
      CAPTURE(wire);
      const std::string bytes = "ab" + ck::Key(12, wire);
      ByteReader in = On(bytes);
      REQUIRE(in.Skip(2).ok());
      auto key = ReadKey(in);
      REQUIRE_FALSE(key.ok());
      CHECK(key.error().code() == ErrorCode::kCorrupt);
      CHECK(key.error().where().offset == 2u);
    }
  }

  TEST_CASE("a key with field number 0 is corrupt") {
    const std::string bytes = "\x02";
    ByteReader in = On(bytes);
    auto key = ReadKey(in);
    REQUIRE_FALSE(key.ok());
    CHECK(key.error().code() == ErrorCode::kCorrupt);
  }

  TEST_CASE("the documented example record is encoded byte for byte") {
    const std::string header = EncodeRecordHeader("w", {2, 3}, "Float32", 24);
    CHECK(ck::ToHex(header) == "0a2c0a01771227080208031207466c6f617433321a18");
    CHECK(header + ExampleData() ==
          ck::TensorRecord("w", {.dims = {2, 3}, .content = ExampleData()}));
  }

  TEST_CASE("a 0-d tensor's record has no dims") {
    CHECK(EncodeRecordHeader("s", {}, "Int64", 8) + std::string(8, '\0') ==
          ck::TensorRecord("s", {.type = "Int64", .content = std::string(8, '\0')}));
  }

  TEST_CASE("the documented example record reads back with its content as a view at its offset") {
    const std::string bytes = ExampleHeader() + ExampleData();
    ByteReader in = On(bytes);
    auto r = ReadRecord(in, false);
    REQUIRE(r.ok());
    CHECK(in.empty());
    CHECK(r->record_offset == 0u);
    CHECK(r->tag == "w");
    CHECK(r->dims == Shape{2, 3});
    CHECK(r->tensor_type == "Float32");
    CHECK(r->content_offset == ExampleHeader().size());
    CHECK(r->content.data() == AsBytes(bytes).data() + ExampleHeader().size());
    CHECK(r->content.size() == 24u);
  }

  TEST_CASE("packed dims read the same as unpacked dims") {
    const std::string bytes =
        ck::TensorRecord("w", {.dims = {2, 300}, .content = "", .packed_dims = true});
    ByteReader in = On(bytes);
    auto r = ReadRecord(in, false);
    REQUIRE(r.ok());
    CHECK(r->dims == Shape{2, 300});
  }

  TEST_CASE("fields in any order are read such as tensor before tag and content before type") {
    const std::string tensor = ck::LenField(3, "abcd") + ck::VarintField(1, 4) +
                               ck::LenField(2, "UInt8") + ck::VarintField(1, 1);
    std::string storage;
    auto r = ReadValueBytes(ck::LenField(2, tensor) + ck::LenField(1, "t"), storage);
    REQUIRE(r.ok());
    CHECK(r->tag == "t");
    CHECK(r->dims == Shape{4, 1});
    CHECK(r->tensor_type == "UInt8");
    CHECK(AsChars(r->content) == "abcd");
  }

  TEST_CASE("unknown fields of every valid wire type are skipped in Value and TensorProto") {
    const std::string unknown = ck::VarintField(9, 300) + ck::Key(10, 1) + std::string(8, 'x') +
                                ck::Key(11, 5) + std::string(4, 'y') + ck::LenField(12, "zz");
    const std::string tensor = unknown + ck::TensorProto({.dims = {1}, .content = ck::F32({1})});
    std::string storage;
    auto r = ReadValueBytes(unknown + ck::Value("w", tensor + unknown), storage);
    REQUIRE(r.ok());
    CHECK(r->tag == "w");
    CHECK(r->dims == Shape{1});
    CHECK(AsChars(r->content) == ck::F32({1}));
  }

  TEST_CASE("a negative dim is corrupt at the dim and names the tag") {
    const std::string bytes = ck::TensorRecord("w", {.dims = {2, -1}, .content = ""});
    ByteReader in = On(bytes);
    auto r = ReadRecord(in, false);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == ErrorCode::kCorrupt);
    // 0a <len> | 0a 01 77 | 12 <len> | 08 02 | 08 <dim>
    CHECK(r.error().where().offset == 2u + 3u + 2u + 2u + 1u);
    REQUIRE(r.error().context().size() == 1);
    CHECK(r.error().context()[0].find("\"w\"") != std::string::npos);
  }

  TEST_CASE("more dims than the rank cap is a limit error") {
    const std::vector<int64_t> dims(limits::kMaxRank + 1, 1);
    const std::string bytes = ck::TensorRecord("w", {.dims = dims, .content = ck::F32({1})});
    ByteReader in = On(bytes);
    auto r = ReadRecord(in, false);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == ErrorCode::kLimitExceeded);
  }

  TEST_CASE("a Value without a tag is corrupt at its record") {
    std::string storage;
    auto r = ReadValueBytes(ck::LenField(2, ck::TensorProto({.content = ck::F32({1})})), storage);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == ErrorCode::kCorrupt);
    CHECK(r.error().where().offset == 0u);
  }

  TEST_CASE("empty or non-UTF-8 or over-long tags are refused at the tag") {
    const std::string tensor = ck::TensorProto({.content = ck::F32({1})});
    std::string storage;
    SUBCASE("empty") {
      auto r = ReadValueBytes(ck::Value("", tensor), storage);
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().code() == ErrorCode::kCorrupt);
      CHECK(r.error().where().offset == 4u);
    }
    SUBCASE("not UTF-8") {
      auto r = ReadValueBytes(ck::Value("a\xff", tensor), storage);
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().code() == ErrorCode::kCorrupt);
      CHECK(r.error().where().offset == 4u);
    }
    SUBCASE("over the name cap") {
      auto r =
          ReadValueBytes(ck::Value(std::string(limits::kMaxNameBytes + 1, 'a'), tensor), storage);
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().code() == ErrorCode::kLimitExceeded);
    }
  }

  TEST_CASE("a MapTensor value is unsupported and names its tag") {
    const std::string map_tensor = ck::LenField(
        1, ck::TensorProto({.dims = {2}, .type = "int32", .content = ck::I32({1, 2})}));
    std::string storage;
    auto r = ReadValueBytes(ck::LenField(1, "emb") + ck::LenField(3, map_tensor), storage);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == ErrorCode::kUnsupported);
    CHECK(r.error().where().offset == 0u);
    CHECK(r.error().message().find("\"emb\"") != std::string::npos);
  }

  TEST_CASE("a Value with neither tensor nor maptensor is corrupt") {
    std::string storage;
    auto r = ReadValueBytes(ck::LenField(1, "w"), storage);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == ErrorCode::kCorrupt);
    CHECK(r.error().where().offset == 0u);
  }

  TEST_CASE("a TensorProto without tensor_type or without tensor_content is corrupt") {
    std::string storage;
    auto no_type = ReadValueBytes(ck::Value("w", ck::LenField(3, "")), storage);
    REQUIRE_FALSE(no_type.ok());
    CHECK(no_type.error().code() == ErrorCode::kCorrupt);
    CHECK(no_type.error().where().offset == 7u);  // the TensorProto's first byte
    auto no_content = ReadValueBytes(ck::Value("w", ck::LenField(2, "Bool")), storage);
    REQUIRE_FALSE(no_content.ok());
    CHECK(no_content.error().code() == ErrorCode::kCorrupt);
  }

  TEST_CASE("a singular field given twice is corrupt at its second key") {
    const std::string tensor =
        ck::LenField(2, "Bool") + ck::LenField(3, "x") + ck::LenField(3, "y");
    std::string storage;
    auto r = ReadValueBytes(ck::Value("w", tensor), storage);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == ErrorCode::kCorrupt);
    CHECK(r.error().where().offset == 7u + 6u + 3u);
  }

  TEST_CASE("a known field with the wrong wire type is corrupt at its key") {
    std::string storage;
    auto r = ReadValueBytes(ck::VarintField(1, 5), storage);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == ErrorCode::kCorrupt);
    CHECK(r.error().where().offset == 2u);
  }

  TEST_CASE("a record length past the end is corrupt at the length") {
    const std::string bytes = (ExampleHeader() + ExampleData()).substr(0, 30);
    ByteReader in = On(bytes);
    auto r = ReadRecord(in, false);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == ErrorCode::kCorrupt);
    CHECK(r.error().where().offset == 1u);
  }

  TEST_CASE("a field length past the end of its Value is corrupt at that length") {
    std::string storage;
    auto r = ReadValueBytes(ck::Key(1, 2) + ck::Varint(5) + "ab", storage);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == ErrorCode::kCorrupt);
    CHECK(r.error().where().offset == 3u);
  }

  TEST_CASE("a top-level key other than 0x0A is corrupt at that byte") {
    const std::string bytes = ck::VarintField(1, 3);
    ByteReader in = On(bytes);
    auto r = ReadRecord(in, false);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == ErrorCode::kCorrupt);
    CHECK(r.error().where().offset == 0u);
  }

  TEST_CASE("only in the first record do bytes that are not a tagged Value mean not a checkpoint") {
    const std::string no_tag = ck::Record(ck::LenField(2, ck::TensorProto({.content = "x"})));
    const std::string bad_dim = ck::TensorRecord("w", {.dims = {-1}, .content = ""});
    for (const bool first : {true, false}) {
      CAPTURE(first);
      ByteReader in = On(no_tag);
      auto r = ReadRecord(in, first);
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().code() == ErrorCode::kCorrupt);
      CHECK((r.error().message().rfind("not a MindSpore checkpoint", 0) == 0) == first);
      ByteReader damaged = On(bad_dim);
      auto d = ReadRecord(damaged, first);
      REQUIRE_FALSE(d.ok());
      CHECK(d.error().message().rfind("not a MindSpore checkpoint", 0) != 0);
    }
  }

  TEST_CASE("hex numbers have a fixed count of lower-case digits") {
    CHECK(Hex(0x0a, 2) == "0x0a");
    CHECK(Hex(0xdeadbeef, 8) == "0xdeadbeef");
  }
}

}  // namespace
}  // namespace cw::mindspore
