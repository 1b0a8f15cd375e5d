#include "engine/formats/safetensors/safetensors_header.h"

#include <cstdint>
#include <string>

#include <doctest/doctest.h>

#include "tests/support/safetensors_builder.h"

namespace cw::safetensors {
namespace {

using test::SafetensorsBuilder;
using test::SafetensorsFile;

constexpr char kFile[] = "t.safetensors";

Result<SafetensorsLayout> Parse(const std::string& file) {
  return ParseSafetensors(AsBytes(file), kFile);
}

// The error of a file that must not parse.
Error ErrorOf(const std::string& file) {
  auto layout = Parse(file);
  REQUIRE_FALSE(layout.ok());
  CHECK(layout.error().where().file == kFile);
  return std::move(layout).error();
}

// File offset of the first `needle` in `header`.
uint64_t At(const std::string& header, const std::string& needle) {
  const size_t pos = header.find(needle);
  REQUIRE(pos != std::string::npos);
  return 8 + pos;
}

// File offset of the last `needle` in `header`.
uint64_t LastAt(const std::string& header, const std::string& needle) {
  const size_t pos = header.rfind(needle);
  REQUIRE(pos != std::string::npos);
  return 8 + pos;
}

std::string Entry(const std::string& dtype, const std::string& shape, uint64_t begin,
                  uint64_t end) {
  return "{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
         std::to_string(begin) + "," + std::to_string(end) + "]}";
}

// A two-tensor file with metadata: the base of the sweeps.
std::string SmallFile() {
  return SafetensorsBuilder()
      .Metadata("format", "pt")
      .Add("w", "F32", {2}, test::LittleEndian<float>({1.5f, -2.0f}))
      .Add("b", "I16", {3}, test::LittleEndian<int16_t>({1, 2, 3}))
      .Build();
}

TEST_SUITE("formats.safetensors.header") {
  TEST_CASE("reads names, dtypes, shapes, offsets and metadata of a valid file") {
    const std::string file = SmallFile();
    auto layout = Parse(file);
    REQUIRE(layout.ok());
    CHECK(layout->header_bytes % 8 == 0);
    CHECK(layout->data_file_offset == 8 + layout->header_bytes);
    REQUIRE(layout->tensors.size() == 2);
    CHECK(layout->tensors[0].info == TensorInfo{"w", DType::kF32, {2}, 8});
    CHECK(layout->tensors[0].data_offset == 0);
    CHECK(layout->tensors[1].info == TensorInfo{"b", DType::kI16, {3}, 6});
    CHECK(layout->tensors[1].data_offset == 8);
    CHECK(layout->metadata == std::map<std::string, std::string>{{"format", "pt"}});
  }

  TEST_CASE("lists tensors in data order whatever the order of the header keys") {
    const std::string header =
        "{\"z\":" + Entry("U8", "[2]", 1, 3) + ",\"a\":" + Entry("U8", "[1]", 0, 1) + "}";
    auto layout = Parse(SafetensorsFile(header, "abc"));
    REQUIRE(layout.ok());
    REQUIRE(layout->tensors.size() == 2);
    CHECK(layout->tensors[0].info.name == "a");
    CHECK(layout->tensors[1].info.name == "z");
    CHECK(layout->tensors[1].data_offset == 1);
  }

  TEST_CASE("accepts a header with no tensors") {
    auto layout = Parse(SafetensorsFile("{}"));
    REQUIRE(layout.ok());
    CHECK(layout->tensors.empty());
    CHECK(layout->metadata.empty());
    CHECK(layout->data_file_offset == 10);
  }

  TEST_CASE("accepts whitespace around the JSON object and a length not a multiple of 8") {
    const std::string header = " \t\r\n{\"a\":" + Entry("U8", "[1]", 0, 1) + "} \t\r\n ";
    REQUIRE(header.size() % 8 != 0);
    auto layout = Parse(SafetensorsFile(header, "x"));
    REQUIRE(layout.ok());
    CHECK(layout->tensors.size() == 1);
  }

  TEST_CASE("accepts a 0-dim tensor and zero-size tensors sharing an offset with a neighbour") {
    const std::string header =
        "{\"s\":" + Entry("I64", "[]", 0, 8) + ",\"e1\":" + Entry("F32", "[0,4]", 8, 8) +
        ",\"v\":" + Entry("U8", "[2]", 8, 10) + ",\"e2\":" + Entry("F16", "[3,0]", 8, 8) + "}";
    auto layout = Parse(SafetensorsFile(header, std::string(10, '\x01')));
    REQUIRE(layout.ok());
    REQUIRE(layout->tensors.size() == 4);
    CHECK(layout->tensors[0].info == TensorInfo{"s", DType::kI64, {}, 8});
    // Zero-size tensors sort before the tensor at their offset and keep their header order.
    CHECK(layout->tensors[1].info == TensorInfo{"e1", DType::kF32, {0, 4}, 0});
    CHECK(layout->tensors[2].info.name == "e2");
    CHECK(layout->tensors[3].info.name == "v");
  }

  TEST_CASE("ignores unknown fields inside a tensor entry, nested ones included") {
    const std::string header =
        "{\"a\":{\"x\":{\"dtype\":[1,{\"y\":null}]},\"dtype\":\"U8\",\"q\":-1.5,"
        "\"shape\":[1],\"data_offsets\":[0,1],\"z\":[[],{}]}}";
    auto layout = Parse(SafetensorsFile(header, "x"));
    REQUIRE(layout.ok());
    CHECK(layout->tensors[0].info == TensorInfo{"a", DType::kU8, {1}, 1});
  }

  TEST_CASE("reads a null __metadata__ as no metadata, as the official reader does") {
    auto layout = Parse(SafetensorsFile("{\"__metadata__\":null}"));
    REQUIRE(layout.ok());
    CHECK(layout->metadata.empty());
  }

  TEST_CASE("decodes escaped and non-ASCII names") {
    const std::string header = "{\"a\\\"b\\\\\\u00e9\":" + Entry("U8", "[1]", 0, 1) +
                               ",\"\xC3\xA9t\xC3\xA9\":" + Entry("U8", "[1]", 1, 2) + "}";
    auto layout = Parse(SafetensorsFile(header, "xy"));
    REQUIRE(layout.ok());
    CHECK(layout->tensors[0].info.name == "a\"b\\\xC3\xA9");
    CHECK(layout->tensors[1].info.name == "\xC3\xA9t\xC3\xA9");
  }

  TEST_CASE("reports a file shorter than 8 bytes as truncated at byte 0") {
    for (size_t n = 0; n < 8; ++n) {
      CAPTURE(n);
      const Error e = ErrorOf(std::string(n, '\0'));
      CHECK(e.code() == ErrorCode::kCorrupt);
      CHECK(e.where().offset == 0u);
    }
  }

  TEST_CASE("reports a header length over the cap as a limit at the length's offset") {
    const Error e = ErrorOf(SafetensorsFile(100'000'001, "{}"));
    CHECK(e.code() == ErrorCode::kLimitExceeded);
    CHECK(e.where().offset == 0u);
  }

  TEST_CASE("reports a header length near UINT64_MAX as a limit at the length's offset") {
    const Error e = ErrorOf(SafetensorsFile(~0ull, "{}"));
    CHECK(e.code() == ErrorCode::kLimitExceeded);
    CHECK(e.where().offset == 0u);
  }

  TEST_CASE("reports a git-lfs pointer file as a header length over the cap") {
    const Error e = ErrorOf("version https://git-lfs.github.com/spec/v1\noid sha256:00\n");
    CHECK(e.code() == ErrorCode::kLimitExceeded);
    CHECK(e.where().offset == 0u);
  }

  TEST_CASE("reports a header running past the end of the file at byte 8") {
    const Error e = ErrorOf(SafetensorsFile(3, "{}"));
    CHECK(e.code() == ErrorCode::kCorrupt);
    CHECK(e.where().offset == 8u);
  }

  TEST_CASE("reports an empty header as invalid JSON at byte 8") {
    const Error e = ErrorOf(SafetensorsFile(""));
    CHECK(e.code() == ErrorCode::kCorrupt);
    CHECK(e.where().offset == 8u);
  }

  TEST_CASE("reports text that is not JSON at the last byte the parser read") {
    const std::string header = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1] \"data_offsets\":[0,1]}}";
    const Error e = ErrorOf(SafetensorsFile(header, "x"));
    CHECK(e.code() == ErrorCode::kCorrupt);
    // The unexpected token is the string "data_offsets", read up to its closing quote.
    CHECK(e.where().offset == At(header, "\":[0,1]"));
  }

  TEST_CASE("reports a root that is not an object at its first byte") {
    for (const std::string header : {"[]", "  \"x\"", "\n12", "null", "true"}) {
      CAPTURE(header);
      const Error e = ErrorOf(SafetensorsFile(header));
      CHECK(e.code() == ErrorCode::kCorrupt);
      CHECK(e.where().offset == 8 + header.find_first_not_of(" \n"));
    }
  }

  TEST_CASE("reports a tensor entry that is not an object at the tensor's name") {
    const std::string header = "{\"ok\":" + Entry("U8", "[1]", 0, 1) + ",\"bad\":[1]}";
    const Error e = ErrorOf(SafetensorsFile(header, "x"));
    CHECK(e.code() == ErrorCode::kCorrupt);
    CHECK(e.where().offset == At(header, "\"bad\""));
  }

  TEST_CASE("reports an unknown or misspelt dtype at the tensor's name") {
    for (const std::string dtype : {"F128", "f32", "float32", ""}) {
      CAPTURE(dtype);
      const std::string header = "{\"t\":" + Entry(dtype, "[1]", 0, 1) + "}";
      const Error e = ErrorOf(SafetensorsFile(header, "x"));
      CHECK(e.code() == ErrorCode::kCorrupt);
      CHECK(e.where().offset == 9u);
    }
  }

  TEST_CASE("reports official dtypes without a DType here as unsupported") {
    for (const std::string dtype : {"F8_E8M0", "F4", "C64", "F8_E4M3FNUZ"}) {
      CAPTURE(dtype);
      const std::string header = "{\"t\":" + Entry(dtype, "[1]", 0, 1) + "}";
      const Error e = ErrorOf(SafetensorsFile(header, "x"));
      CHECK(e.code() == ErrorCode::kUnsupported);
      CHECK(e.where().offset == 9u);
    }
  }

  TEST_CASE("reports a dtype that is not a string") {
    const std::string header = "{\"t\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}";
    const Error e = ErrorOf(SafetensorsFile(header, "abcd"));
    CHECK(e.code() == ErrorCode::kCorrupt);
    CHECK(e.where().offset == 9u);
  }

  TEST_CASE("reports negative, fractional, huge and quoted dims at the tensor's name") {
    for (const std::string shape :
         {"[-1]", "[2.0]", "[1e2]", "[\"2\"]", "[18446744073709551616]", "[[1]]", "2", "{}"}) {
      CAPTURE(shape);
      const std::string header = "{\"t\":" + Entry("U8", shape, 0, 2) + "}";
      const Error e = ErrorOf(SafetensorsFile(header, "ab"));
      CHECK(e.code() == ErrorCode::kCorrupt);
      CHECK(e.where().offset == 9u);
    }
  }

  TEST_CASE("reports a rank over the cap as a limit") {
    const std::string header =
        "{\"t\":" + Entry("U8", "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]", 0, 1) + "}";
    const Error e = ErrorOf(SafetensorsFile(header, "x"));
    CHECK(e.code() == ErrorCode::kLimitExceeded);
    CHECK(e.where().offset == 9u);
  }

  TEST_CASE("accepts a rank at the cap") {
    const std::string header =
        "{\"t\":" + Entry("U8", "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]", 0, 1) + "}";
    CHECK(Parse(SafetensorsFile(header, "x")).ok());
  }

  TEST_CASE("reports data_offsets that are not exactly two non-negative integers") {
    for (const std::string offsets : {"[0]", "[0,1,1]", "[]", "[0,-1]", "[0,1.0]", "0"}) {
      CAPTURE(offsets);
      const std::string header =
          "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":" + offsets + "}}";
      const Error e = ErrorOf(SafetensorsFile(header, "x"));
      CHECK(e.code() == ErrorCode::kCorrupt);
      CHECK(e.where().offset == 9u);
    }
  }

  TEST_CASE("reports an entry missing a field, or giving one twice") {
    for (const std::string entry :
         {"{\"shape\":[1],\"data_offsets\":[0,1]}", "{\"dtype\":\"U8\",\"data_offsets\":[0,1]}",
          "{\"dtype\":\"U8\",\"shape\":[1]}",
          "{\"dtype\":\"U8\",\"shape\":[1],\"shape\":[1],\"data_offsets\":[0,1]}"}) {
      CAPTURE(entry);
      const Error e = ErrorOf(SafetensorsFile("{\"t\":" + entry + "}", "x"));
      CHECK(e.code() == ErrorCode::kCorrupt);
      CHECK(e.where().offset == 9u);
    }
  }

  TEST_CASE("reports a gap between tensors at the later tensor's name") {
    const std::string header =
        "{\"a\":" + Entry("U8", "[2]", 0, 2) + ",\"b\":" + Entry("U8", "[2]", 3, 5) + "}";
    const Error e = ErrorOf(SafetensorsFile(header, "abcde"));
    CHECK(e.code() == ErrorCode::kCorrupt);
    CHECK(e.where().offset == At(header, "\"b\""));
  }

  TEST_CASE("reports overlapping tensors at the later tensor's name") {
    const std::string header =
        "{\"a\":" + Entry("U8", "[4]", 0, 4) + ",\"b\":" + Entry("U8", "[2]", 2, 4) + "}";
    const Error e = ErrorOf(SafetensorsFile(header, "abcd"));
    CHECK(e.code() == ErrorCode::kCorrupt);
    CHECK(e.where().offset == At(header, "\"b\""));
  }

  TEST_CASE("reports two tensors sharing one range as an overlap") {
    const std::string header =
        "{\"a\":" + Entry("U8", "[2]", 0, 2) + ",\"b\":" + Entry("U8", "[2]", 0, 2) + "}";
    const Error e = ErrorOf(SafetensorsFile(header, "ab"));
    CHECK(e.code() == ErrorCode::kCorrupt);
    CHECK(e.where().offset == At(header, "\"b\""));
  }

  TEST_CASE("reports a first tensor that does not start at 0") {
    const std::string header = "{\"a\":" + Entry("U8", "[2]", 1, 3) + "}";
    const Error e = ErrorOf(SafetensorsFile(header, "abc"));
    CHECK(e.code() == ErrorCode::kCorrupt);
    CHECK(e.where().offset == 9u);
  }

  TEST_CASE("reports END - BEGIN different from the size of dtype and shape") {
    const std::string header = "{\"a\":" + Entry("F32", "[2]", 0, 6) + "}";
    const Error e = ErrorOf(SafetensorsFile(header, "abcdef"));
    CHECK(e.code() == ErrorCode::kCorrupt);
    CHECK(e.where().offset == 9u);
  }

  TEST_CASE("reports data offsets whose end comes before their begin") {
    const std::string header =
        "{\"a\":" + Entry("U8", "[0]", 0, 0) + ",\"b\":" + Entry("U8", "[2]", 2, 0) + "}";
    const Error e = ErrorOf(SafetensorsFile(header, "ab"));
    CHECK(e.code() == ErrorCode::kCorrupt);
    CHECK(e.where().offset == At(header, "\"b\""));
  }

  TEST_CASE("reports bytes after the last tensor at the first extra byte") {
    const std::string header = "{\"a\":" + Entry("U8", "[2]", 0, 2) + "}";
    const Error e = ErrorOf(SafetensorsFile(header, "abXY"));
    CHECK(e.code() == ErrorCode::kCorrupt);
    CHECK(e.where().offset == 8 + header.size() + 2);
  }

  TEST_CASE("reports missing tensor data as truncation at the end of the file") {
    const std::string header = "{\"a\":" + Entry("U8", "[4]", 0, 4) + "}";
    const std::string file = SafetensorsFile(header, "ab");
    const Error e = ErrorOf(file);
    CHECK(e.code() == ErrorCode::kCorrupt);
    CHECK(e.where().offset == file.size());
  }

  TEST_CASE("reports a shape whose byte size overflows 64 bits") {
    for (const std::string shape :
         {"[4294967296,4294967296]", "[4294967296,2147483648,2]", "[18446744073709551615,2]"}) {
      CAPTURE(shape);
      const std::string header = "{\"a\":" + Entry("F32", shape, 0, 0) + "}";
      const Error e = ErrorOf(SafetensorsFile(header));
      CHECK(e.code() == ErrorCode::kCorrupt);
      CHECK(e.where().offset == 9u);
    }
  }

  TEST_CASE("refuses a name used twice, even with identical entries, at the second name") {
    const std::string entry = Entry("U8", "[1]", 0, 1);
    const std::string header = "{\"a\":" + entry + ",\"a\":" + entry + "}";
    const Error e = ErrorOf(SafetensorsFile(header, "x"));
    CHECK(e.code() == ErrorCode::kCorrupt);
    CHECK(e.where().offset == LastAt(header, "\"a\""));
  }

  TEST_CASE("refuses __metadata__ given twice") {
    const std::string header = "{\"__metadata__\":{},\"__metadata__\":{}}";
    const Error e = ErrorOf(SafetensorsFile(header));
    CHECK(e.code() == ErrorCode::kCorrupt);
    CHECK(e.where().offset == LastAt(header, "\"__metadata__\""));
  }

  TEST_CASE("reports a non-string metadata value at its key") {
    for (const std::string value : {"1", "null", "{\"x\":\"y\"}", "[\"y\"]", "true"}) {
      CAPTURE(value);
      const std::string header = "{\"__metadata__\":{\"ok\":\"y\",\"k\":" + value + "}}";
      const Error e = ErrorOf(SafetensorsFile(header));
      CHECK(e.code() == ErrorCode::kCorrupt);
      CHECK(e.where().offset == At(header, "\"k\""));
    }
  }

  TEST_CASE("reports a metadata key used twice at its second use") {
    const std::string header = "{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}";
    const Error e = ErrorOf(SafetensorsFile(header));
    CHECK(e.code() == ErrorCode::kCorrupt);
    CHECK(e.where().offset == LastAt(header, "\"k\""));
  }

  TEST_CASE("reports a __metadata__ that is not an object at its key") {
    for (const std::string value : {"\"pt\"", "[]", "3"}) {
      CAPTURE(value);
      const std::string header = "{\"__metadata__\":" + value + "}";
      const Error e = ErrorOf(SafetensorsFile(header));
      CHECK(e.code() == ErrorCode::kCorrupt);
      CHECK(e.where().offset == 9u);
    }
  }

  TEST_CASE("refuses trailing NUL bytes in the header at the first NUL") {
    const std::string header = "{\"a\":" + Entry("U8", "[1]", 0, 1) + "}" + std::string(3, '\0');
    const Error e = ErrorOf(SafetensorsFile(header, "x"));
    CHECK(e.code() == ErrorCode::kCorrupt);
    CHECK(e.where().offset == 8 + header.size() - 3);
  }

  TEST_CASE("refuses a NUL byte that would hide the rest of the header from the parser") {
    const std::string header = std::string("{}\0", 3) + "garbage";
    const Error e = ErrorOf(SafetensorsFile(header));
    CHECK(e.code() == ErrorCode::kCorrupt);
    CHECK(e.where().offset == 10u);
  }

  TEST_CASE("refuses a byte order mark before the JSON") {
    const Error e = ErrorOf(SafetensorsFile("\xEF\xBB\xBF{}"));
    CHECK(e.code() == ErrorCode::kCorrupt);
    CHECK(e.where().offset == 8u);
  }

  TEST_CASE("reports invalid UTF-8 in a name as invalid JSON inside the name") {
    const std::string header = "{\"a\xFF\":" + Entry("U8", "[1]", 0, 1) + "}";
    const Error e = ErrorOf(SafetensorsFile(header, "x"));
    CHECK(e.code() == ErrorCode::kCorrupt);
    CHECK(e.where().offset == 11u);
  }

  TEST_CASE("reports a tensor name over the cap as a limit at the name") {
    const std::string name(4097, 'n');
    const std::string header = "{\"" + name + "\":" + Entry("U8", "[1]", 0, 1) + "}";
    const Error e = ErrorOf(SafetensorsFile(header, "x"));
    CHECK(e.code() == ErrorCode::kLimitExceeded);
    CHECK(e.where().offset == 9u);
    CHECK(
        Parse(SafetensorsFile("{\"" + name.substr(1) + "\":" + Entry("U8", "[1]", 0, 1) + "}", "x"))
            .ok());
  }

  TEST_CASE("every truncation of a valid file is an error located inside the file") {
    const std::string file = SmallFile();
    for (size_t n = 0; n < file.size(); ++n) {
      CAPTURE(n);
      auto layout = Parse(file.substr(0, n));
      REQUIRE_FALSE(layout.ok());
      CHECK(layout.error().code() == ErrorCode::kCorrupt);
      REQUIRE(layout.error().where().offset.has_value());
      CHECK(*layout.error().where().offset <= n);
    }
  }

  TEST_CASE("every byte flip of a valid file parses or gives an error located inside the file") {
    const std::string file = SmallFile();
    for (size_t pos = 0; pos < file.size(); ++pos) {
      for (const unsigned mask : {0x01u, 0x20u, 0x80u, 0xFFu}) {
        CAPTURE(pos);
        CAPTURE(mask);
        std::string damaged = file;
        damaged[pos] = static_cast<char>(static_cast<unsigned char>(damaged[pos]) ^ mask);
        auto layout = Parse(damaged);
        if (layout.ok())
          continue;
        CHECK(layout.error().where().file == kFile);
        REQUIRE(layout.error().where().offset.has_value());
        CHECK(*layout.error().where().offset <= file.size());
      }
    }
  }
}

}  // namespace
}  // namespace cw::safetensors
