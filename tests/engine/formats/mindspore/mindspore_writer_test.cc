#include "engine/formats/mindspore/mindspore_writer.h"

#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "checkpoint.pb.h"
#include "engine/base/mapped_file.h"
#include "engine/formats/common/write_tracker.h"
#include "engine/formats/mindspore/mindspore_reader.h"
#include "tests/support/ckpt_builder.h"
#include "tests/support/test_files.h"

namespace cw::mindspore {
namespace {

namespace ck = test::ckpt;

TensorInfo Tensor(std::string name, DType dtype, Shape shape) {
  const uint64_t bytes = ByteSize(dtype, shape).value();
  return {std::move(name), dtype, std::move(shape), bytes};
}

std::string Pattern(uint64_t size, int seed) {
  std::string out(size, '\0');
  for (uint64_t i = 0; i < size; ++i)
    out[i] = static_cast<char>(i * 31 + static_cast<uint64_t>(seed) * 17 + 3);
  return out;
}

std::vector<std::string> Contents(const std::vector<TensorInfo>& tensors) {
  std::vector<std::string> out;
  for (size_t i = 0; i < tensors.size(); ++i)
    out.push_back(Pattern(tensors[i].byte_size, static_cast<int>(i)));
  return out;
}

Result<std::unique_ptr<CheckpointWriter>> Create(const std::filesystem::path& path,
                                                 const std::vector<TensorInfo>& tensors,
                                                 const WriterOptions& options = {}) {
  auto out = OutputFile::Create(path, false);
  REQUIRE(out.ok());
  return CreateWriter(std::move(*out), tensors, options);
}

// Writes each tensor in one piece and returns the file's bytes.
std::string WriteCkpt(const std::vector<TensorInfo>& tensors, const std::vector<std::string>& data,
                      const WriterOptions& options = {}) {
  test::TempDir dir;
  auto writer = Create(dir / "m.ckpt", tensors, options);
  REQUIRE(writer.ok());
  for (size_t i = 0; i < tensors.size(); ++i)
    REQUIRE((*writer)->Write(i, 0, AsBytes(data[i])).ok());
  REQUIRE((*writer)->Commit().ok());
  return test::ReadFile(dir / "m.ckpt");
}

ErrorCode RefusalCode(const std::vector<TensorInfo>& tensors, const WriterOptions& options = {}) {
  test::TempDir dir;
  auto writer = Create(dir / "m.ckpt", tensors, options);
  REQUIRE_FALSE(writer.ok());
  CHECK(writer.error().where().file == (dir / "m.ckpt").string());
  return writer.error().code();
}

TEST_SUITE("formats.mindspore.writer") {
  TEST_CASE("the documented example record is written byte for byte") {
    const std::vector<TensorInfo> tensors = {Tensor("w", DType::kF32, {2, 3})};
    const std::string data = ck::F32({0, 1, 2, 3, 4, 5});
    CHECK(WriteCkpt(tensors, {data}) ==
          ck::FromHex("0a2c0a01771227080208031207466c6f617433321a18") + data);
  }

  TEST_CASE("written bytes equal libprotobuf's serialisation of the same values") {
    const std::vector<TensorInfo> tensors = {
        Tensor("layers.0.attention.wq.weight", DType::kBF16, {4, 3}),
        Tensor("scale", DType::kF32, {}), Tensor("模型.权重", DType::kI64, {1, 2, 1}),
        Tensor(std::string(200, 'n'), DType::kU8, {300})};  // two-byte varints
    const std::vector<std::string> data = Contents(tensors);
    Checkpoint expected;
    for (size_t i = 0; i < tensors.size(); ++i) {
      Checkpoint::Value* value = expected.add_value();
      value->set_tag(tensors[i].name);
      for (const uint64_t d : tensors[i].shape)
        value->mutable_tensor()->add_dims(static_cast<int64_t>(d));
      value->mutable_tensor()->set_tensor_type(std::string(Info(tensors[i].dtype).mindspore));
      value->mutable_tensor()->set_tensor_content(data[i]);
    }
    CHECK(WriteCkpt(tensors, data) == expected.SerializeAsString());
  }

  TEST_CASE("every dtype with a MindSpore name round trips byte for byte including 0-d tensors") {
    std::vector<TensorInfo> tensors;
    for (const DTypeInfo& row : AllDTypes()) {
      if (row.mindspore.empty())
        continue;
      tensors.push_back(Tensor("权重." + std::string(row.safetensors), row.dtype, {2, 3}));
      tensors.push_back(Tensor("scalar." + std::string(row.safetensors), row.dtype, {}));
    }
    const std::vector<std::string> data = Contents(tensors);
    test::TempDir dir;
    test::WriteFile(dir / "m.ckpt", WriteCkpt(tensors, data));
    auto file = MappedFile::Open(dir / "m.ckpt");
    REQUIRE(file.ok());
    auto reader = OpenReader(std::move(*file));
    REQUIRE(reader.ok());
    CHECK((*reader)->tensors() == tensors);
    for (size_t i = 0; i < tensors.size(); ++i) {
      CAPTURE(tensors[i].name);
      auto read = (*reader)->Read(i);
      REQUIRE(read.ok());
      CHECK(AsChars(read->bytes()) == data[i]);
    }
  }

  TEST_CASE(
      "a tensor over the chunk size becomes adjacent full-dims records that read back joined") {
    const std::vector<TensorInfo> tensors = {Tensor("a", DType::kF32, {50}),
                                             Tensor("b", DType::kI16, {2, 32}),
                                             Tensor("c", DType::kU8, {3})};
    const std::vector<std::string> data = Contents(tensors);
    WriterOptions options;
    options.ckpt_chunk_bytes = 64;
    const std::string bytes = WriteCkpt(tensors, data, options);
    Checkpoint parsed;
    REQUIRE(parsed.ParseFromString(bytes));
    const std::vector<std::pair<std::string, size_t>> expected = {
        {"a", 64}, {"a", 64}, {"a", 64}, {"a", 8}, {"b", 64}, {"b", 64}, {"c", 3}};
    REQUIRE(parsed.value_size() == static_cast<int>(expected.size()));
    std::string joined_a;
    for (int v = 0; v < parsed.value_size(); ++v) {
      const auto& value = parsed.value(v);
      const auto& [tag, content_bytes] = expected[static_cast<size_t>(v)];
      CHECK(value.tag() == tag);
      CHECK(value.tensor().tensor_content().size() == content_bytes);
      if (value.tag() == "a") {
        CHECK(value.tensor().dims().size() == 1);
        CHECK(value.tensor().dims(0) == 50);
        CHECK(value.tensor().tensor_type() == "Float32");
        joined_a += value.tensor().tensor_content();
      }
    }
    CHECK(joined_a == data[0]);
    auto reader = OpenReaderOnBytes(AsBytes(bytes), "m.ckpt");
    REQUIRE(reader.ok());
    CHECK((*reader)->tensors() == tensors);
    for (size_t i = 0; i < tensors.size(); ++i)
      CHECK(AsChars((*reader)->Read(i)->bytes()) == data[i]);
  }

  TEST_CASE("pieces in any order from several threads and across records give the same bytes") {
    const std::vector<TensorInfo> tensors = {Tensor("a", DType::kF32, {100}),
                                             Tensor("b", DType::kU8, {77})};
    const std::vector<std::string> data = Contents(tensors);
    WriterOptions options;
    options.ckpt_chunk_bytes = 64;
    options.ckpt_crc = true;
    const std::string in_order = WriteCkpt(tensors, data, options);
    test::TempDir dir;
    auto writer = Create(dir / "m.ckpt", tensors, options);
    REQUIRE(writer.ok());
    std::vector<std::thread> threads;
    std::vector<Status> results(tensors.size() * 8);
    for (size_t t = 0; t < tensors.size(); ++t) {
      for (size_t k = 0; k < 8; ++k) {  // pieces of 1/8 each, several crossing a record end
        threads.emplace_back([&, t, k] {
          const uint64_t size = tensors[t].byte_size;
          const uint64_t begin = size * (7 - k) / 8, end = size * (8 - k) / 8;
          const ByteSpan piece = AsBytes(data[t]).subspan(begin, end - begin);
          results[t * 8 + k] = (*writer)->Write(t, begin, piece);
        });
      }
    }
    for (std::thread& thread : threads)
      thread.join();
    for (const Status& s : results)
      REQUIRE(s.ok());
    REQUIRE((*writer)->Commit().ok());
    CHECK(test::ReadFile(dir / "m.ckpt") == in_order);
  }

  TEST_CASE("the CRC trailer holds the CRC-32 of all record bytes as 10 big-endian bytes") {
    const std::vector<TensorInfo> tensors = {Tensor("a", DType::kF32, {40}),
                                             Tensor("b", DType::kF16, {})};
    const std::vector<std::string> data = Contents(tensors);
    WriterOptions options;
    options.ckpt_chunk_bytes = 64;
    const std::string plain = WriteCkpt(tensors, data, options);
    options.ckpt_crc = true;
    const std::string with_crc = WriteCkpt(tensors, data, options);
    CHECK(with_crc == plain + ck::CrcTrailer(Crc32(AsBytes(plain))));
    auto reader = OpenReaderOnBytes(AsBytes(with_crc), "m.ckpt");
    REQUIRE(reader.ok());
    CHECK((*reader)->tensors() == tensors);
  }

  TEST_CASE("an empty model is refused: MindSpore cannot load an empty checkpoint") {
    CHECK(RefusalCode({}) == ErrorCode::kUnsupported);
  }

  TEST_CASE("a tensor with zero elements is refused as unrepresentable") {
    CHECK(RefusalCode({Tensor("e", DType::kF32, {0, 4})}) == ErrorCode::kUnsupported);
    CHECK(RefusalCode({Tensor("e", DType::kF32, {0})}) == ErrorCode::kUnsupported);
  }

  TEST_CASE("a dtype without a MindSpore tensor_type is refused") {
    CHECK(RefusalCode({Tensor("f8", DType::kF8E4M3, {2})}) == ErrorCode::kUnsupported);
  }

  TEST_CASE("empty or non-UTF-8 or over-long or duplicate names are refused") {
    CHECK(RefusalCode({Tensor("", DType::kF32, {2})}) == ErrorCode::kUnsupported);
    CHECK(RefusalCode({Tensor("a\xff", DType::kF32, {2})}) == ErrorCode::kUnsupported);
    CHECK(RefusalCode({Tensor(std::string(5000, 'a'), DType::kF32, {2})}) ==
          ErrorCode::kLimitExceeded);
    CHECK(RefusalCode({Tensor("a", DType::kF32, {2}), Tensor("a", DType::kF16, {2})}) ==
          ErrorCode::kUsage);
  }

  TEST_CASE("a chunk size of 0 or over 1 GiB is refused") {
    WriterOptions options;
    options.ckpt_chunk_bytes = 0;
    CHECK(RefusalCode({Tensor("a", DType::kF32, {2})}, options) == ErrorCode::kUsage);
    options.ckpt_chunk_bytes = (1ull << 30) + 1;
    CHECK(RefusalCode({Tensor("a", DType::kF32, {2})}, options) == ErrorCode::kUsage);
  }

  TEST_CASE("a byte size that does not match dtype and shape is an internal error") {
    TensorInfo t = Tensor("a", DType::kF32, {2});
    t.byte_size = 7;
    CHECK(RefusalCode({t}) == ErrorCode::kInternal);
  }

  TEST_CASE("missing or repeated or out-of-range writes fail and leave no file behind") {
    const std::vector<TensorInfo> tensors = {Tensor("a", DType::kF32, {20})};
    const std::string data = Pattern(80, 1);
    WriterOptions options;
    options.ckpt_chunk_bytes = 64;
    test::TempDir dir;
    {
      auto writer = Create(dir / "m.ckpt", tensors, options);
      REQUIRE(writer.ok());
      SUBCASE("missing") { REQUIRE((*writer)->Write(0, 0, AsBytes(data).first(70)).ok()); }
      SUBCASE("repeated") {
        REQUIRE((*writer)->Write(0, 0, AsBytes(data)).ok());
        REQUIRE((*writer)->Write(0, 60, AsBytes(data).subspan(60, 8)).ok());
      }
      SUBCASE("out of range") {
        const Status s = (*writer)->Write(0, 1, AsBytes(data));
        REQUIRE_FALSE(s.ok());
        CHECK(s.error().code() == ErrorCode::kInternal);
        CHECK((*writer)->Write(1, 0, AsBytes(data)).error().code() == ErrorCode::kInternal);
      }
      const Status commit = (*writer)->Commit();
      REQUIRE_FALSE(commit.ok());
      CHECK(commit.error().code() == ErrorCode::kInternal);
      CHECK(commit.error().where().file == (dir / "m.ckpt").string());
    }
    CHECK(test::ListFolder(dir.path()).empty());
  }
}

}  // namespace
}  // namespace cw::mindspore
