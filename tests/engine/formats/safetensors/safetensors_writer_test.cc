#include "engine/formats/safetensors/safetensors_writer.h"

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "engine/base/mapped_file.h"
#include "engine/formats/safetensors/safetensors_reader.h"
#include "tests/support/test_files.h"

namespace cw::safetensors {
namespace {

TensorInfo Tensor(const std::string& name, DType dtype, const Shape& shape) {
  return {name, dtype, shape, ByteSize(dtype, shape).value()};
}

// Distinct bytes for each tensor, so that a misplaced tensor shows.
std::string Pattern(size_t index, uint64_t n) {
  std::string bytes(n, '\0');
  for (uint64_t j = 0; j < n; ++j)
    bytes[j] = static_cast<char>((index * 37 + j * 11 + 5) & 0xFF);
  return bytes;
}

Result<std::unique_ptr<CheckpointWriter>> Create(const std::filesystem::path& path,
                                                 const std::vector<TensorInfo>& tensors,
                                                 const WriterOptions& options = {}) {
  auto out = OutputFile::Create(path, false);
  REQUIRE(out.ok());
  return CreateWriter(std::move(out).value(), tensors, options);
}

// Writes every tensor's Pattern in one piece and commits; returns the file's bytes.
std::string WriteModel(const test::TempDir& dir, const std::vector<TensorInfo>& tensors,
                       const WriterOptions& options = {}) {
  const std::filesystem::path path = dir / "out.safetensors";
  auto writer = Create(path, tensors, options);
  REQUIRE(writer.ok());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::string bytes = Pattern(i, tensors[i].byte_size);
    REQUIRE((*writer)->Write(i, 0, AsBytes(bytes)).ok());
  }
  REQUIRE((*writer)->Commit().ok());
  return test::ReadFile(path);
}

std::unique_ptr<CheckpointReader> ReadBack(const test::TempDir& dir) {
  auto file = MappedFile::Open(dir / "out.safetensors");
  REQUIRE(file.ok());
  auto reader = OpenReader(std::move(file).value());
  REQUIRE(reader.ok());
  return std::move(reader).value();
}

// The tensors read back equal those written, with their Pattern bytes.
void CheckRoundTrip(const std::vector<TensorInfo>& tensors, const WriterOptions& options = {}) {
  test::TempDir dir;
  WriteModel(dir, tensors, options);
  const auto reader = ReadBack(dir);
  CHECK(reader->tensors() == tensors);
  CHECK(reader->metadata() == options.metadata);
  for (size_t i = 0; i < tensors.size(); ++i) {
    CAPTURE(tensors[i].name);
    auto data = reader->Read(i);
    REQUIRE(data.ok());
    CHECK(AsChars(data->bytes()) == Pattern(i, tensors[i].byte_size));
  }
}

ErrorCode CreateError(const std::vector<TensorInfo>& tensors, const WriterOptions& options = {}) {
  test::TempDir dir;
  auto writer = Create(dir / "out.safetensors", tensors, options);
  REQUIRE_FALSE(writer.ok());
  CHECK(writer.error().where().file == (dir / "out.safetensors").string());
  return writer.error().code();
}

TEST_SUITE("formats.safetensors.writer") {
  TEST_CASE("writes compact JSON, metadata first, fields in order, padded with spaces to 8") {
    test::TempDir dir;
    WriterOptions options;
    options.metadata = {{"format", "pt"}};
    const std::string file =
        WriteModel(dir, {Tensor("a", DType::kF32, {2}), Tensor("b", DType::kU8, {3})}, options);
    const std::string header =
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[8,11]}}      ";
    REQUIRE(file.size() == 8 + header.size() + 11);
    CHECK(file.substr(0, 8) == std::string("\x90\0\0\0\0\0\0\0", 8));
    CHECK(file.substr(8, header.size()) == header);
    CHECK(file.substr(8 + header.size()) == Pattern(0, 8) + Pattern(1, 3));
  }

  TEST_CASE("keeps the given tensor order rather than sorting") {
    test::TempDir dir;
    const std::string file =
        WriteModel(dir, {Tensor("z", DType::kU8, {1}), Tensor("a", DType::kF64, {1})});
    CHECK(file.find("\"z\"") < file.find("\"a\""));
    CHECK(ReadBack(dir)->tensors()[0].name == "z");
  }

  TEST_CASE("round-trips every dtype byte for byte") {
    std::vector<TensorInfo> tensors;
    for (const DTypeInfo& info : AllDTypes()) {
      tensors.push_back(Tensor(std::string(info.safetensors), info.dtype, {2, 3}));
      tensors.push_back(Tensor(std::string(info.safetensors) + ".scalar", info.dtype, {}));
    }
    CheckRoundTrip(tensors);
  }

  TEST_CASE("round-trips a 0-dim tensor and zero-size tensors") {
    CheckRoundTrip({Tensor("empty", DType::kF32, {0, 4}), Tensor("scalar", DType::kI64, {}),
                    Tensor("none", DType::kBF16, {0})});
  }

  TEST_CASE("writes an empty model as a padded {}") {
    test::TempDir dir;
    CHECK(WriteModel(dir, {}) == std::string("\x08\0\0\0\0\0\0\0{}      ", 16));
    CHECK(ReadBack(dir)->tensors().empty());
  }

  TEST_CASE("round-trips names with quotes, backslashes, control characters and non-ASCII") {
    CheckRoundTrip({Tensor("q\"uote", DType::kU8, {1}), Tensor("back\\slash", DType::kU8, {1}),
                    Tensor(std::string("ctl\n\t\x01\x1f\x7f", 8), DType::kU8, {1}),
                    Tensor("模型.層.0.wéight", DType::kF16, {2}),
                    Tensor("emoji.\xF0\x9F\x98\x80", DType::kU8, {1}),
                    Tensor("", DType::kU8, {1})});
  }

  TEST_CASE("writes metadata exactly as given, none when empty") {
    WriterOptions options;
    options.metadata = {{"b", "2"}, {"a", "\"1\"\n"}, {"é", ""}};
    CheckRoundTrip({Tensor("t", DType::kU8, {1})}, options);
    test::TempDir dir;
    CHECK(WriteModel(dir, {Tensor("t", DType::kU8, {1})}).find("__metadata__") ==
          std::string::npos);
  }

  TEST_CASE("pads the header to a multiple of 8 for every name length") {
    for (size_t length = 1; length <= 16; ++length) {
      CAPTURE(length);
      test::TempDir dir;
      const std::string file = WriteModel(dir, {Tensor(std::string(length, 'n'), DType::kU8, {1})});
      const uint64_t header_bytes = LoadLE<uint64_t>(AsBytes(file).data());
      CHECK(header_bytes % 8 == 0);
      CHECK(file.size() == 8 + header_bytes + 1);
      CHECK(file[8 + header_bytes - 1] != '\0');
    }
  }

  TEST_CASE("gives the same bytes whatever the order and the threads of the writes") {
    const std::vector<TensorInfo> tensors = {Tensor("a", DType::kF32, {64}),
                                             Tensor("b", DType::kU8, {7}),
                                             Tensor("c", DType::kI64, {3, 5})};
    test::TempDir serial_dir;
    const std::string serial = WriteModel(serial_dir, tensors);

    test::TempDir dir;
    auto writer = Create(dir / "out.safetensors", tensors);
    REQUIRE(writer.ok());
    std::vector<std::string> data;
    for (size_t i = 0; i < tensors.size(); ++i)
      data.push_back(Pattern(i, tensors[i].byte_size));
    std::vector<std::thread> threads;
    std::vector<int> failures(tensors.size(), 0);
    for (size_t i = 0; i < tensors.size(); ++i) {
      threads.emplace_back([&, i] {
        // Pieces of 3 bytes, last piece first.
        for (uint64_t end = data[i].size(); end > 0;) {
          const uint64_t begin = end > 3 ? end - 3 : 0;
          const ByteSpan piece = AsBytes(data[i]).subspan(begin, end - begin);
          failures[i] += (*writer)->Write(i, begin, piece).ok() ? 0 : 1;
          end = begin;
        }
      });
    }
    for (std::thread& t : threads)
      t.join();
    CHECK(failures == std::vector<int>(tensors.size(), 0));
    REQUIRE((*writer)->Commit().ok());
    CHECK(test::ReadFile(dir / "out.safetensors") == serial);
  }

  TEST_CASE("refuses a tensor name given twice") {
    CHECK(CreateError({Tensor("a", DType::kU8, {1}), Tensor("a", DType::kF32, {1})}) ==
          ErrorCode::kUsage);
  }

  TEST_CASE("refuses names safetensors cannot hold: __metadata__ and text that is not UTF-8") {
    CHECK(CreateError({Tensor("__metadata__", DType::kU8, {1})}) == ErrorCode::kUnsupported);
    CHECK(CreateError({Tensor("bad\xFF", DType::kU8, {1})}) == ErrorCode::kUnsupported);
    WriterOptions options;
    options.metadata = {{"k", "\xC0\x80"}};
    CHECK(CreateError({}, options) == ErrorCode::kUnsupported);
  }

  TEST_CASE("refuses a rank or a name over the caps the readers apply") {
    CHECK(CreateError({Tensor("deep", DType::kU8, Shape(17, 1))}) == ErrorCode::kLimitExceeded);
    CHECK(CreateError({Tensor(std::string(4097, 'n'), DType::kU8, {1})}) ==
          ErrorCode::kLimitExceeded);
  }

  TEST_CASE("refuses a header over the cap") {
    WriterOptions options;
    // With the JSON around it, a value of the cap's size makes a header just over the cap.
    options.metadata = {
        {"big", std::string(100'000'000, 'x')}};  // NOLINT(bugprone-string-constructor)
    CHECK(CreateError({}, options) == ErrorCode::kLimitExceeded);
  }

  TEST_CASE("refuses a byte size that does not match dtype and shape") {
    CHECK(CreateError({{"t", DType::kF32, {2}, 7}}) == ErrorCode::kInternal);
  }

  TEST_CASE("refuses a write outside its tensor") {
    test::TempDir dir;
    auto writer = Create(dir / "out.safetensors", {Tensor("t", DType::kU8, {4})});
    REQUIRE(writer.ok());
    const Status past_end = (*writer)->Write(0, 2, AsBytes("xyz"));
    REQUIRE_FALSE(past_end.ok());
    CHECK(past_end.error().code() == ErrorCode::kInternal);
    CHECK_FALSE((*writer)->Write(1, 0, AsBytes("x")).ok());
  }

  TEST_CASE("refuses to commit before every byte is written, and leaves nothing behind") {
    test::TempDir dir;
    {
      auto writer = Create(dir / "out.safetensors", {Tensor("t", DType::kU8, {4})});
      REQUIRE(writer.ok());
      REQUIRE((*writer)->Write(0, 0, AsBytes("abc")).ok());
      const Status commit = (*writer)->Commit();
      REQUIRE_FALSE(commit.ok());
      CHECK(commit.error().code() == ErrorCode::kInternal);
    }
    CHECK(test::ListFolder(dir.path()).empty());
  }
}

}  // namespace
}  // namespace cw::safetensors
