#include "engine/formats/safetensors/safetensors_reader.h"

#include <bit>
#include <cstdint>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "tests/support/safetensors_builder.h"
#include "tests/support/test_files.h"

namespace cw::safetensors {
namespace {

std::unique_ptr<CheckpointReader> Open(const std::filesystem::path& path) {
  auto file = MappedFile::Open(path);
  REQUIRE(file.ok());
  auto reader = OpenReader(std::move(file).value());
  REQUIRE(reader.ok());
  return std::move(reader).value();
}

std::filesystem::path Sample(const std::string& name) {
  return test::ExternalPath("hf/safetensors_samples/" + name + ".safetensors");
}

std::filesystem::path Burn(const std::string& name) {
  return test::ExternalPath("hf/burn_safetensors_tests/" + name + ".safetensors");
}

// Element `i` of a tensor, loaded without assuming alignment.
template <typename T>
T ValueAt(const TensorData& data, size_t i) {
  REQUIRE((i + 1) * sizeof(T) <= data.size());
  return LoadLE<T>(data.bytes().data() + i * sizeof(T));
}

// The numpy samples hold arange(-3, 3) in their dtype.
template <typename T>
void CheckArange(const CheckpointReader& reader, size_t index) {
  auto data = reader.Read(index);
  REQUIRE(data.ok());
  REQUIRE(data->size() == 6 * sizeof(T));
  for (size_t i = 0; i < 6; ++i) {
    CAPTURE(i);
    CHECK(ValueAt<T>(*data, i) == static_cast<T>(static_cast<int>(i) - 3));
  }
}

// The same for F16, compared by bit pattern: -3 -2 -1 0 1 2.
void CheckArangeF16(const CheckpointReader& reader, size_t index) {
  auto data = reader.Read(index);
  REQUIRE(data.ok());
  const std::vector<uint16_t> expected = {0xC200, 0xC000, 0xBC00, 0x0000, 0x3C00, 0x4000};
  for (size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(i);
    CHECK(ValueAt<uint16_t>(*data, i) == expected[i]);
  }
}

void CheckSampleTensor(const CheckpointReader& reader, size_t index, const std::string& name) {
  const TensorInfo& t = reader.tensors()[index];
  CHECK(t.name == name);
  CHECK(t.shape == Shape{6});
  switch (name[0]) {
    case 'B':
      CHECK(t.dtype == DType::kU8);
      return CheckArange<uint8_t>(reader, index);
    case 'H':
      CHECK(t.dtype == DType::kU16);
      return CheckArange<uint16_t>(reader, index);
    case 'I':
      CHECK(t.dtype == DType::kU32);
      return CheckArange<uint32_t>(reader, index);
    case 'b':
      CHECK(t.dtype == DType::kI8);
      return CheckArange<int8_t>(reader, index);
    case 'h':
      CHECK(t.dtype == DType::kI16);
      return CheckArange<int16_t>(reader, index);
    case 'i':
      CHECK(t.dtype == DType::kI32);
      return CheckArange<int32_t>(reader, index);
    case 'f':
      CHECK(t.dtype == DType::kF32);
      return CheckArange<float>(reader, index);
    case 'd':
      CHECK(t.dtype == DType::kF64);
      return CheckArange<double>(reader, index);
    case 'e':
      CHECK(t.dtype == DType::kF16);
      return CheckArangeF16(reader, index);
    default:
      FAIL("unexpected sample " << name);
  }
}

std::vector<std::string> Names(const CheckpointReader& reader) {
  std::vector<std::string> names;
  for (const TensorInfo& t : reader.tensors())
    names.push_back(t.name);
  return names;
}

TEST_SUITE("formats.safetensors.reader") {
  TEST_CASE("reads each unaligned numpy sample: one tensor of six values and the metadata") {
    for (const std::string name : {"B", "H", "I", "b", "h", "i", "e", "f", "d"}) {
      CAPTURE(name);
      const auto reader = Open(Sample(name));
      CHECK(reader->format() == FileFormat::kSafetensors);
      REQUIRE(reader->tensors().size() == 1);
      CheckSampleTensor(*reader, 0, name);
      CHECK(reader->metadata() == std::map<std::string, std::string>{{"test", "a"}});
      CHECK(reader->skipped().empty());
      CHECK(reader->FileOf(0) == Sample(name).string());
    }
  }

  TEST_CASE("reads overall.safetensors: nine tensors in file order, data at odd addresses") {
    const auto reader = Open(Sample("overall"));
    CHECK(Names(*reader) == std::vector<std::string>{"B", "H", "I", "b", "d", "e", "f", "h", "i"});
    for (size_t i = 0; i < reader->tensors().size(); ++i) {
      CAPTURE(i);
      CheckSampleTensor(*reader, i, reader->tensors()[i].name);
    }
    // The 526-byte header leaves "d" (F64) at file offset 582: never assume alignment.
    auto d = reader->Read(4);
    REQUIRE(d.ok());
    CHECK(std::bit_cast<uintptr_t>(d->bytes().data()) % 8 != 0);
  }

  TEST_CASE("reads batch_norm2d with a 0-dim I64 num_batches_tracked") {
    const auto reader = Open(Burn("batch_norm2d"));
    CHECK(Names(*reader) == std::vector<std::string>{"norm1.num_batches_tracked", "norm1.bias",
                                                     "norm1.running_mean", "norm1.running_var",
                                                     "norm1.weight"});
    CHECK(reader->tensors()[0] == TensorInfo{"norm1.num_batches_tracked", DType::kI64, {}, 8});
    auto tracked = reader->Read(0);
    REQUIRE(tracked.ok());
    CHECK(ValueAt<int64_t>(*tracked, 0) == 1);
    CHECK(reader->tensors()[4] == TensorInfo{"norm1.weight", DType::kF32, {5}, 20});
    auto weight = reader->Read(4);
    REQUIRE(weight.ok());
    for (size_t i = 0; i < 5; ++i)
      CHECK(ValueAt<float>(*weight, i) == 1.0f);
    CHECK(reader->metadata().empty());
  }

  TEST_CASE("reads the other burn test files with their tensor lists and values") {
    const auto boolean = Open(Burn("boolean"));
    CHECK(boolean->tensors() == std::vector<TensorInfo>{{"buffer", DType::kBool, {3}, 3}});
    auto flags = boolean->Read(0);
    REQUIRE(flags.ok());
    CHECK(ValueAt<uint8_t>(*flags, 0) == 1);
    CHECK(ValueAt<uint8_t>(*flags, 1) == 0);
    CHECK(ValueAt<uint8_t>(*flags, 2) == 1);

    const auto integer = Open(Burn("integer"));
    CHECK(integer->tensors() == std::vector<TensorInfo>{{"buffer", DType::kI64, {3}, 24}});
    auto ints = integer->Read(0);
    REQUIRE(ints.ok());
    CHECK(ValueAt<int64_t>(*ints, 2) == 3);

    const auto conv = Open(Burn("conv2d"));
    CHECK(Names(*conv) == std::vector<std::string>{"conv1.bias", "conv1.weight", "conv2.weight"});
    CHECK(conv->tensors()[1].shape == Shape{2, 2, 2, 2});

    const auto embedding = Open(Burn("embedding"));
    CHECK(embedding->tensors() ==
          std::vector<TensorInfo>{{"embed.weight", DType::kF32, {10, 3}, 120}});
    auto table = embedding->Read(0);
    REQUIRE(table.ok());
    CHECK(ValueAt<float>(*table, 0) == doctest::Approx(-1.5255959));

    const auto remap = Open(Burn("key_remap_chained"));
    CHECK(remap->tensors().size() == 18);
    CHECK(remap->tensors()[0] == TensorInfo{"bn.num_batches_tracked", DType::kI64, {}, 8});
    CHECK(remap->tensors()[7] == TensorInfo{"conv.weight", DType::kF32, {6, 3, 3, 3}, 648});

    const auto multi = Open(Burn("multi_layer"));
    CHECK(multi->tensors().size() == 9);
    CHECK(multi->tensors()[4] == TensorInfo{"fc1.weight", DType::kF32, {16, 256}, 16384});

    const auto indexes = Open(Burn("non_contiguous_indexes"));
    CHECK(indexes->tensors().size() == 10);
    CHECK(indexes->tensors()[9] == TensorInfo{"fc.8.weight", DType::kF32, {2, 2, 3, 3}, 144});
  }

  TEST_CASE("returns views into the mapped file, without copying") {
    const std::string file =
        test::SafetensorsBuilder().Add("a", "U8", {2}, "xy").Add("b", "U16", {1}, "zw").Build();
    test::TempDir dir;
    test::WriteFile(dir / "m.safetensors", file);
    const auto reader = Open(dir / "m.safetensors");
    auto b = reader->Read(1);
    REQUIRE(b.ok());
    CHECK_FALSE(b->owned());
    CHECK(AsChars(b->bytes()) == "zw");
    auto a = reader->Read(0);
    REQUIRE(a.ok());
    CHECK(b->bytes().data() == a->bytes().data() + 2);
  }

  TEST_CASE("says where in the file each tensor's bytes lie") {
    const std::string file =
        test::SafetensorsBuilder().Add("a", "U8", {2}, "xy").Add("b", "U16", {1}, "zw").Build();
    test::TempDir dir;
    test::WriteFile(dir / "m.safetensors", file);
    const auto reader = Open(dir / "m.safetensors");
    for (size_t i = 0; i < 2; ++i) {
      const std::vector<FileExtent> extents = reader->Extents(i);
      REQUIRE(extents.size() == 1);
      CHECK(file.substr(extents[0].offset, extents[0].size) == AsChars(reader->Read(i)->bytes()));
    }
  }

  TEST_CASE("reads a file with no tensors") {
    test::TempDir dir;
    test::WriteFile(dir / "e.safetensors", test::SafetensorsFile("{}      "));
    const auto reader = Open(dir / "e.safetensors");
    CHECK(reader->tensors().empty());
  }

  TEST_CASE("reports a damaged file at its path and offset") {
    test::TempDir dir;
    const std::filesystem::path path = dir / "bad.safetensors";
    test::WriteFile(path, test::SafetensorsFile("{\"a\":{\"dtype\":\"X\"}}"));
    auto file = MappedFile::Open(path);
    REQUIRE(file.ok());
    auto reader = OpenReader(std::move(file).value());
    REQUIRE_FALSE(reader.ok());
    CHECK(reader.error().code() == ErrorCode::kCorrupt);
    CHECK(reader.error().where().file == path.string());
    CHECK(reader.error().where().offset == 9u);
  }
}

}  // namespace
}  // namespace cw::safetensors
