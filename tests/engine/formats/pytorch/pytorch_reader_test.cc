#include "engine/formats/pytorch/pytorch_reader.h"

#include <cstring>

#include <doctest/doctest.h>

#include "tests/support/pickle_builder.h"
#include "tests/support/test_files.h"
#include "tests/support/zip_builder.h"

namespace cw::pytorch {
namespace {

using test::pt::PickleBuilder;
using test::pt::TensorSpec;

std::unique_ptr<CheckpointReader> OpenShared(const std::string& relative) {
  auto file = MappedFile::Open(test::ExternalPath(relative));
  REQUIRE(file.ok());
  auto reader = OpenReader(std::move(file).value());
  if (!reader.ok())
    FAIL(reader.error().ToString());
  return std::move(reader).value();
}

Result<std::unique_ptr<CheckpointReader>> OpenBytes(const std::string& bytes) {
  return OpenReaderFromBytes(AsBytes(bytes), "t.pt");
}

std::unique_ptr<CheckpointReader> OpenBytesOk(const std::string& bytes) {
  auto reader = OpenBytes(bytes);
  if (!reader.ok())
    FAIL(reader.error().ToString());
  return std::move(reader).value();
}

size_t IndexOf(const CheckpointReader& reader, const std::string& name) {
  for (size_t i = 0; i < reader.tensors().size(); ++i) {
    if (reader.tensors()[i].name == name)
      return i;
  }
  FAIL("no tensor " << name);
  return 0;
}

template <typename T>
std::vector<T> Values(const CheckpointReader& reader, const std::string& name) {
  auto data = reader.Read(IndexOf(reader, name));
  REQUIRE(data.ok());
  std::vector<T> values(data->size() / sizeof(T));
  if (!values.empty())
    std::memcpy(values.data(), data->bytes().data(), values.size() * sizeof(T));
  return values;
}

std::vector<std::string> Names(const CheckpointReader& reader) {
  std::vector<std::string> names;
  for (const TensorInfo& t : reader.tensors())
    names.push_back(t.name);
  return names;
}

std::string Floats(const std::vector<float>& values) {
  std::string out(values.size() * 4, '\0');
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

// bfloat16 of a float, rounding to nearest even, as torch casts.
uint16_t ToBf16(float value) {
  uint32_t bits = 0;
  std::memcpy(&bits, &value, 4);
  bits += 0x7FFF + ((bits >> 16) & 1);
  return static_cast<uint16_t>(bits >> 16);
}

// A one-tensor file: "w" = float32 [2, 3] over storage "0" holding 0..5.
TensorSpec W() { return {"w", "FloatStorage", "0", 6, 0, {2, 3}, {}}; }
std::string WData() { return Floats({0, 1, 2, 3, 4, 5}); }

void CheckError(const std::string& bytes, ErrorCode code, std::optional<uint64_t> offset) {
  auto reader = OpenBytes(bytes);
  REQUIRE_FALSE(reader.ok());
  CHECK(reader.error().code() == code);
  CHECK(reader.error().where().file == "t.pt");
  CHECK(reader.error().where().offset == offset);
}

TEST_SUITE("formats.pytorch.reader") {
  TEST_CASE("reads every dtype and view and edge case of dtypes_views.pt with exact values") {
    const auto reader = OpenShared("torch/dtypes_views.pt");
    CHECK(reader->format() == FileFormat::kTorch);
    CHECK(Names(*reader) == std::vector<std::string>{"f32", "f64", "f16", "bf16", "i64", "i32",
                                                     "i16", "i8", "u8", "bool", "scalar", "view_a",
                                                     "view_b", "transposed", "empty"});
    CHECK(Values<float>(*reader, "f32") == std::vector<float>{0, 0.25f, 0.5f, 0.75f, 1, 1.25f});
    CHECK(Values<double>(*reader, "f64") == std::vector<double>{0, 1.0 / 3, 2.0 / 3});
    CHECK(Values<uint16_t>(*reader, "f16") ==
          std::vector<uint16_t>{0xBE00, 0xB800, 0x3800, 0x3E00});
    CHECK(Values<uint16_t>(*reader, "bf16") ==
          std::vector<uint16_t>{0x3F80, 0xC000, 0x3F00, 0x4050});
    CHECK(Values<int64_t>(*reader, "i64") == std::vector<int64_t>{1, -2, 3, int64_t{1} << 40});
    CHECK(Values<int32_t>(*reader, "i32") == std::vector<int32_t>{-1, 0, 7});
    CHECK(Values<int16_t>(*reader, "i16") == std::vector<int16_t>{-300, 300});
    CHECK(Values<int8_t>(*reader, "i8") == std::vector<int8_t>{-128, 127, 5});
    CHECK(Values<uint8_t>(*reader, "u8") == std::vector<uint8_t>{0, 255, 17});
    CHECK(Values<uint8_t>(*reader, "bool") == std::vector<uint8_t>{1, 0, 1});
    const TensorInfo& scalar = reader->tensors()[IndexOf(*reader, "scalar")];
    CHECK(scalar.shape.empty());
    CHECK(Values<float>(*reader, "scalar") == std::vector<float>{3.5f});
    CHECK(reader->tensors()[IndexOf(*reader, "empty")].shape == Shape{0, 4});
    CHECK(reader->Read(IndexOf(*reader, "empty"))->size() == 0);
    CHECK(reader->skipped().empty());
    CHECK(reader->metadata().empty());
  }

  TEST_CASE("views of one storage at offsets 2 and 10 are both borrowed from the mapping") {
    const auto reader = OpenShared("torch/dtypes_views.pt");
    CHECK(Values<float>(*reader, "view_a") == std::vector<float>{2, 3, 4, 5, 6, 7});
    CHECK(Values<float>(*reader, "view_b") == std::vector<float>{10, 11, 12, 13});
    auto a = reader->Read(IndexOf(*reader, "view_a"));
    auto b = reader->Read(IndexOf(*reader, "view_b"));
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    CHECK_FALSE(a->owned());
    CHECK_FALSE(b->owned());
    CHECK(b->bytes().data() - a->bytes().data() == 8 * 4);
  }

  TEST_CASE("a transposed tensor is copied into C order") {
    const auto reader = OpenShared("torch/dtypes_views.pt");
    const size_t i = IndexOf(*reader, "transposed");
    CHECK(reader->tensors()[i].shape == Shape{3, 2});
    CHECK(Values<float>(*reader, "transposed") == std::vector<float>{0, 3, 1, 4, 2, 5});
    CHECK(reader->Read(i)->owned());
  }

  TEST_CASE(
      "reads the tied tiny llama: lm_head views the embedding storage and _metadata is ignored") {
    const auto reader = OpenShared("torch/tiny_llama_fp32_tied/pytorch_model.bin");
    REQUIRE(reader->tensors().size() == 21);
    CHECK(reader->tensors()[0].name == "model.embed_tokens.weight");
    CHECK(reader->tensors()[19].name == "model.norm.weight");
    CHECK(reader->tensors()[20].name == "lm_head.weight");
    CHECK(reader->skipped().empty());
    for (size_t i = 0; i < 21; ++i) {
      const TensorInfo& info = reader->tensors()[i];
      CAPTURE(info.name);
      CHECK(info.dtype == DType::kF32);
      const float tensor_index = i == 20 ? 0.0f : static_cast<float>(i);
      const std::vector<float> values = Values<float>(*reader, info.name);
      REQUIRE(values.size() == *ElementCount(info.shape));
      for (size_t k = 0; k < values.size(); k += 7)
        CHECK(values[k] == static_cast<float>(k) * 0.125f + tensor_index);
    }
    CHECK(reader->Read(0)->bytes().data() == reader->Read(20)->bytes().data());
  }

  TEST_CASE("reads both bf16 shards with values rounded as torch does") {
    const std::string dir = "torch/tiny_llama_bf16_sharded/";
    const auto first = OpenShared(dir + "pytorch_model-00001-of-00002.bin");
    const auto second = OpenShared(dir + "pytorch_model-00002-of-00002.bin");
    REQUIRE(first->tensors().size() == 10);
    REQUIRE(second->tensors().size() == 11);
    CHECK(second->tensors().back().name == "lm_head.weight");
    size_t tensor_index = 0;
    for (const CheckpointReader* reader : {first.get(), second.get()}) {
      for (const TensorInfo& info : reader->tensors()) {
        CAPTURE(info.name);
        CHECK(info.dtype == DType::kBF16);
        const std::vector<uint16_t> values = Values<uint16_t>(*reader, info.name);
        for (size_t k = 0; k < values.size(); ++k) {
          const float expected = static_cast<float>(k) * 0.125f + static_cast<float>(tensor_index);
          CHECK(values[k] == ToBf16(expected));
        }
        ++tensor_index;
      }
    }
  }

  TEST_CASE("reads the legacy pre-1.6 format") {
    const auto reader = OpenShared("torch/legacy_format.pt");
    CHECK(Names(*reader) == std::vector<std::string>{"a", "b"});
    CHECK(Values<float>(*reader, "a") == std::vector<float>{0, 1, 2, 3});
    CHECK(reader->tensors()[1].shape == Shape{2, 3});
    CHECK(Values<int64_t>(*reader, "b") == std::vector<int64_t>{0, 1, 2, 3, 4, 5});
    const auto burn = OpenShared("hf/burn_pytorch_reader_tests/simple_legacy.pt");
    CHECK(Names(*burn) == std::vector<std::string>{"weight", "bias", "running_mean"});
    CHECK(Values<float>(*burn, "bias") == std::vector<float>{1, 1});
  }

  TEST_CASE("reads torch 2.x files with byteorder and format version and alignment records") {
    struct Expected {
      const char* file;
      const char* name;
      DType dtype;
      Shape shape;
    };
    const std::vector<Expected> files = {
        {"bfloat16", "tensor", DType::kBF16, {3}},
        {"bool", "tensor", DType::kBool, {5}},
        {"buffers", "buffer1", DType::kI32, {3}},
        {"empty", "tensor", DType::kF32, {0}},
        {"float16", "tensor", DType::kF16, {3}},
        {"float64", "tensor", DType::kF64, {3}},
        {"int16", "tensor", DType::kI16, {3}},
        {"int64", "tensor", DType::kI64, {4}},
        {"int8", "tensor", DType::kI8, {4}},
        {"parameter", "param", DType::kF32, {3, 3}},
        {"scalar", "tensor", DType::kF32, {}},
        {"special_values", "tensor", DType::kF32, {5}},
        {"state_dict", "running_var", DType::kF32, {3}},
        {"uint8", "tensor", DType::kU8, {4}},
    };
    for (const Expected& e : files) {
      CAPTURE(e.file);
      const auto reader = OpenShared(std::string("hf/burn_pytorch_reader_tests/") + e.file + ".pt");
      const TensorInfo& info = reader->tensors()[IndexOf(*reader, e.name)];
      CHECK(info.dtype == e.dtype);
      CHECK(info.shape == e.shape);
      for (size_t i = 0; i < reader->tensors().size(); ++i)
        CHECK(reader->Read(i).ok());
    }
    const auto int64 = OpenShared("hf/burn_pytorch_reader_tests/int64.pt");
    CHECK(Values<int64_t>(*int64, "tensor") == std::vector<int64_t>{100, -200, 300, 0});
    const auto scalar = OpenShared("hf/burn_pytorch_reader_tests/scalar.pt");
    CHECK(Values<float>(*scalar, "tensor") == std::vector<float>{42});
  }

  TEST_CASE("flattens nested checkpoint dicts with dots and reports the numbers it skips") {
    const auto reader = OpenShared("hf/burn_pytorch_reader_tests/checkpoint.pt");
    CHECK(Names(*reader) ==
          std::vector<std::string>{"model_state_dict.fc1.weight", "model_state_dict.fc1.bias",
                                   "model_state_dict.fc2.weight", "model_state_dict.fc2.bias",
                                   "optimizer_state_dict.state.0.momentum_buffer"});
    REQUIRE(reader->skipped().size() == 2);
    CHECK(reader->skipped()[0].name == "epoch");
    CHECK(reader->skipped()[0].description == "int 42");
    CHECK(reader->skipped()[1].name == "loss");
    CHECK(reader->skipped()[1].description == "float 0.123");
  }

  TEST_CASE("names its file and borrows from the mapping it owns") {
    const std::string path = test::ExternalPath("torch/dtypes_views.pt").string();
    const auto reader = OpenShared("torch/dtypes_views.pt");
    CHECK(reader->FileOf(0) == path);
    CHECK(Values<float>(*reader, "transposed") == std::vector<float>{0, 3, 1, 4, 2, 5});
  }

  TEST_CASE("gives the file extents of tensors stored in C order, and none for strided ones") {
    const std::string path = test::ExternalPath("torch/dtypes_views.pt").string();
    const std::string file = test::ReadFile(path);
    const auto reader = OpenShared("torch/dtypes_views.pt");
    size_t stored = 0;
    for (size_t i = 0; i < reader->tensors().size(); ++i) {
      CAPTURE(reader->tensors()[i].name);
      const std::vector<FileExtent> extents = reader->Extents(i);
      if (reader->tensors()[i].name == "transposed")
        CHECK(extents.empty());
      if (extents.empty())
        continue;
      ++stored;
      REQUIRE(extents.size() == 1);
      CHECK(file.substr(extents[0].offset, extents[0].size) == AsChars(reader->Read(i)->bytes()));
    }
    CHECK(stored > 0);
  }

  TEST_CASE("reads a hand-made file with an expanded tensor and an UntypedStorage") {
    PickleBuilder p;
    p.Proto()
        .EmptyDict()
        .Mark()
        .Str("expanded")
        .TensorV2("FloatStorage", "0", 3, 0, {2, 3}, {0, 1});
    p.Str("u16").Global("torch._utils", "_rebuild_tensor_v3").Mark();
    p.StorageId("UntypedStorage", "1", 6, "torch.storage").Int(1).Ints({2}).Ints({1});
    p.Bool(false).OrderedDict().Global("torch", "uint16").Tuple().Reduce().SetItems().Stop();
    const std::string u16 = std::string("\x01\x00\x02\x00\x03\x00", 6);
    const std::string file =
        test::pt::TorchZip(p.bytes(), {{"0", Floats({7, 8, 9})}, {"1", u16}}).bytes;
    const auto reader = OpenBytesOk(file);
    CHECK(Values<float>(*reader, "expanded") == std::vector<float>{7, 8, 9, 7, 8, 9});
    CHECK(reader->tensors()[1].dtype == DType::kU16);
    CHECK(Values<uint16_t>(*reader, "u16") == std::vector<uint16_t>{2, 3});
  }

  TEST_CASE("reads a deflated data.pkl and locates its errors in the inflated bytes") {
    test::pt::ZipBuilder zip;
    zip.Add("a/data.pkl", test::pt::StateDictPickle({W()}), true)
        .Add("a/data/0", WData())
        .Add("a/version", "3");
    const std::string file = zip.Build().bytes;
    const auto reader = OpenBytesOk(file);
    CHECK(Values<float>(*reader, "w") == std::vector<float>{0, 1, 2, 3, 4, 5});
    test::pt::ZipBuilder bad;
    bad.Add("a/data.pkl", PickleBuilder().Proto().Global("os", "system").bytes(), true)
        .Add("a/version", "3");
    auto error = OpenBytes(bad.Build().bytes);
    REQUIRE_FALSE(error.ok());
    CHECK(error.error().where().file == "t.pt (inflated a/data.pkl)");
    CHECK(error.error().where().offset == 2u);
  }

  TEST_CASE("reports the non-tensor values of a state dict and leaves them out") {
    PickleBuilder p;
    p.Proto().EmptyDict().Mark().Str("none").None().Str("list").EmptyList();
    p.TensorV2("FloatStorage", "0", 6, 0, {6}, {1}).Append().Str("opt").EmptyDict();
    p.Str("state").EmptyDict().SetItem().Str("name").Str("adam").Str("w");
    p.TensorV2("FloatStorage", "0", 6, 0, {6}, {1}).Int(3).Str("int key").SetItems().Stop();
    const std::string file = test::pt::TorchZip(p.bytes(), {{"0", WData()}}).bytes;
    const auto reader = OpenBytesOk(file);
    CHECK(Names(*reader) == std::vector<std::string>{"w"});
    REQUIRE(reader->skipped().size() == 5);
    CHECK(reader->skipped()[0].description == "None");
    CHECK(reader->skipped()[1].description == "list of 1 item (holding 1 tensor, not read)");
    CHECK(reader->skipped()[2].name == "opt.state");
    CHECK(reader->skipped()[2].description == "empty dict");
    CHECK(reader->skipped()[3].description == "str \"adam\"");
    CHECK(reader->skipped()[4].name == "3");
  }
}

TEST_SUITE("formats.pytorch.reader.corruption") {
  TEST_CASE("a file that is neither zip nor legacy torch is not a torch file") {
    CheckError("", ErrorCode::kCorrupt, 0);
    CheckError("hello world, not a model", ErrorCode::kCorrupt, 0);
    CheckError(std::string("\x10\0\0\0\0\0\0\0{\"a\":{}}", 16), ErrorCode::kCorrupt, 0);
    CheckError("PYTORCH1 and more", ErrorCode::kUnsupported, 0);
  }

  TEST_CASE("a zip cut before its end record is reported as truncated") {
    const std::string file =
        test::pt::TorchZip(test::pt::StateDictPickle({W()}), {{"0", WData()}}).bytes;
    auto reader = OpenBytes(file.substr(0, file.size() / 2));
    REQUIRE_FALSE(reader.ok());
    CHECK(reader.error().code() == ErrorCode::kCorrupt);
    CHECK(reader.error().message().find("truncated") != std::string::npos);
  }

  TEST_CASE("a zip header followed by garbage is reported as truncated at the end") {
    const std::string file = std::string("PK\x03\x04") + std::string(100, 'x');
    CheckError(file, ErrorCode::kCorrupt, file.size());
  }

  TEST_CASE("a zip whose entries are not in one folder is not a torch file") {
    CheckError(test::pt::ZipBuilder().Add("data.pkl", "x").Build().bytes, ErrorCode::kCorrupt, 0);
    const test::pt::BuiltZip zip =
        test::pt::ZipBuilder().Add("a/data.pkl", "x").Add("b/version", "3").Build();
    CheckError(zip.bytes, ErrorCode::kCorrupt, zip.header_offsets[1]);
  }

  TEST_CASE("a TorchScript archive is refused") {
    const test::pt::BuiltZip zip = test::pt::ZipBuilder()
                                       .Add("m/data.pkl", "x")
                                       .Add("m/constants.pkl", "y")
                                       .Add("m/version", "3")
                                       .Build();
    CheckError(zip.bytes, ErrorCode::kUnsupported, zip.header_offsets[1]);
  }

  TEST_CASE("the version record must exist and hold 1 to 10") {
    CheckError(
        test::pt::ZipBuilder().Add("a/data.pkl", test::pt::StateDictPickle({})).Build().bytes,
        ErrorCode::kCorrupt, std::nullopt);
    for (const char* bad : {"11\n", "0", "x", "", "3\n\n"}) {
      CAPTURE(bad);
      const test::pt::BuiltZip zip =
          test::pt::TorchZip(test::pt::StateDictPickle({}), {}, "a", bad);
      const ErrorCode code = std::string(bad) == "11\n" || std::string(bad) == "0"
                                 ? ErrorCode::kUnsupported
                                 : ErrorCode::kCorrupt;
      CheckError(zip.bytes, code, zip.data_offsets[1]);
    }
    test::pt::ZipBuilder both;  // .data/version wins, as in torch
    both.Add("a/data.pkl", test::pt::StateDictPickle({}))
        .Add("a/.data/version", "4")
        .Add("a/version", "11");
    CHECK(OpenBytes(both.Build().bytes).ok());
  }

  TEST_CASE("a byteorder record other than little is refused") {
    for (const auto& [order, code] : std::vector<std::pair<std::string, ErrorCode>>{
             {"big", ErrorCode::kUnsupported}, {"middle", ErrorCode::kCorrupt}}) {
      test::pt::ZipBuilder zip;
      zip.Add("a/data.pkl", test::pt::StateDictPickle({}))
          .Add("a/byteorder", order)
          .Add("a/version", "3");
      const test::pt::BuiltZip built = zip.Build();
      CheckError(built.bytes, code, built.data_offsets[1]);
    }
  }

  TEST_CASE("a missing data.pkl or storage record is corrupt") {
    CheckError(test::pt::ZipBuilder().Add("a/version", "3").Build().bytes, ErrorCode::kCorrupt,
               std::nullopt);
    const test::pt::BuiltZip zip = test::pt::TorchZip(test::pt::StateDictPickle({W()}), {});
    auto reader = OpenBytes(zip.bytes);
    REQUIRE_FALSE(reader.ok());
    CHECK(reader.error().code() == ErrorCode::kCorrupt);
    CHECK(reader.error().where().offset > zip.data_offsets[0]);  // at the persistent id
  }

  TEST_CASE("a compressed storage record is refused") {
    test::pt::ZipBuilder zip;
    zip.Add("a/data.pkl", test::pt::StateDictPickle({W()}))
        .Add("a/data/0", WData(), true)
        .Add("a/version", "3");
    const test::pt::BuiltZip built = zip.Build();
    CheckError(built.bytes, ErrorCode::kUnsupported, built.header_offsets[1]);
  }

  TEST_CASE("a storage record too short for the tensor extent is corrupt at the record") {
    const test::pt::BuiltZip zip =
        test::pt::TorchZip(test::pt::StateDictPickle({W()}), {{"0", WData().substr(0, 20)}});
    CheckError(zip.bytes, ErrorCode::kCorrupt, zip.data_offsets[1]);
  }

  TEST_CASE("a tensor reaching past its declared storage is corrupt at the tensor") {
    TensorSpec w = W();
    w.numel = 5;
    const std::string pickle = test::pt::StateDictPickle({w});
    const test::pt::BuiltZip zip = test::pt::TorchZip(pickle, {{"0", WData()}});
    CheckError(zip.bytes, ErrorCode::kCorrupt, zip.data_offsets[0] + pickle.size() - 3);  // REDUCE
    TensorSpec strided = W();
    strided.stride = {4, 1};  // last element at 4 + 2 = 6
    CheckError(test::pt::TorchZip(test::pt::StateDictPickle({strided}), {{"0", WData()}}).bytes,
               ErrorCode::kCorrupt, zip.data_offsets[0] + pickle.size() - 3);
  }

  TEST_CASE(
      "an expanded tensor over 64 MiB from a small file is refused as a limit at the tensor") {
    const int64_t rows = int64_t{64} << 17;  // rows of 2 floats: 64 MiB, then one row more
    const auto pos = [](int64_t n) {
      return TensorSpec{"pos", "FloatStorage", "0", 2, 0, {n, 2}, {0, 1}};
    };
    CHECK(OpenBytes(
              test::pt::TorchZip(test::pt::StateDictPickle({pos(rows)}), {{"0", Floats({1, 2})}})
                  .bytes)
              .ok());
    const std::string pickle = test::pt::StateDictPickle({pos(rows + 1)});
    const test::pt::BuiltZip zip = test::pt::TorchZip(pickle, {{"0", Floats({1, 2})}});
    CheckError(zip.bytes, ErrorCode::kLimitExceeded, zip.data_offsets[0] + pickle.size() - 3);
  }

  TEST_CASE("a deflated data.pkl larger than its file and 16 MiB is refused before inflating") {
    const std::string pickle =
        PickleBuilder().Proto().EmptyDict().bytes() + std::string(16 << 20, 'N') + ".";
    test::pt::ZipBuilder zip;
    zip.Add("a/data.pkl", pickle, true).Add("a/version", "3");
    CheckError(zip.Build().bytes, ErrorCode::kLimitExceeded, 0);
  }

  TEST_CASE("dicts that repeat long names for every value are refused before they take GBs") {
    // Twelve levels of a dict holding the one below twice: 4096 values whose names, each 2.4 kB,
    // would take 10 MB from a pickle of 2.5 kB. Short keys make the same values in 100 kB.
    const auto shared = [](const std::string& key) {
      PickleBuilder p;
      p.Proto().EmptyDict().Str("leaf").None().SetItem().Put(0);
      for (uint32_t level = 1; level <= 12; ++level) {
        p.EmptyDict().Mark().Str(key + "a").Get(level - 1).Str(key + "b").Get(level - 1);
        p.SetItems().Put(level);
      }
      return test::pt::TorchZip(p.Stop().bytes(), {}).bytes;
    };
    const std::string long_names = shared(std::string(200, 'k'));
    auto refused = OpenBytes(long_names);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code() == ErrorCode::kLimitExceeded);
    CHECK(refused.error().where().file == "t.pt");
    CHECK(*refused.error().where().offset < long_names.size());
    CHECK(OpenBytesOk(shared("k"))->skipped().size() == 4096);
  }

  TEST_CASE("two dtypes on one storage key are corrupt") {
    const TensorSpec longs{"x", "LongStorage", "0", 6, 0, {3}, {}};
    const test::pt::BuiltZip zip =
        test::pt::TorchZip(test::pt::StateDictPickle({W(), longs}), {{"0", WData()}});
    auto reader = OpenBytes(zip.bytes);
    REQUIRE_FALSE(reader.ok());
    CHECK(reader.error().code() == ErrorCode::kCorrupt);
    CHECK(reader.error().message().find("F32 and I64") != std::string::npos);
  }

  TEST_CASE("one storage key declared with two sizes is corrupt") {
    TensorSpec other = W();
    other.name = "v";
    other.numel = 7;
    auto reader = OpenBytes(
        test::pt::TorchZip(test::pt::StateDictPickle({W(), other}), {{"0", WData()}}).bytes);
    CHECK(reader.error().code() == ErrorCode::kCorrupt);
  }

  TEST_CASE("a storage type outside the dtype table is unsupported") {
    const TensorSpec q{"q", "QInt8Storage", "0", 4, 0, {4}, {}};
    auto reader =
        OpenBytes(test::pt::TorchZip(test::pt::StateDictPickle({q}), {{"0", "abcd"}}).bytes);
    CHECK(reader.error().code() == ErrorCode::kUnsupported);
  }

  TEST_CASE("two tensors with one name after flattening are corrupt") {
    PickleBuilder p;
    p.Proto().EmptyDict().Mark().Str("a.b").TensorV2("FloatStorage", "0", 6, 0, {6}, {1});
    p.Str("a").EmptyDict().Str("b").TensorV2("FloatStorage", "0", 6, 0, {6}, {1}).SetItem();
    p.SetItems().Stop();
    auto reader = OpenBytes(test::pt::TorchZip(p.bytes(), {{"0", WData()}}).bytes);
    CHECK(reader.error().code() == ErrorCode::kCorrupt);
  }

  TEST_CASE("a top level that is not a dict is unsupported") {
    const std::string tensor =
        PickleBuilder().Proto().TensorV2("FloatStorage", "0", 6, 0, {6}, {1}).Stop().bytes();
    const test::pt::BuiltZip zip = test::pt::TorchZip(tensor, {{"0", WData()}});
    CheckError(zip.bytes, ErrorCode::kUnsupported, zip.data_offsets[0] + tensor.size() - 2);
    CheckError(test::pt::TorchZip(PickleBuilder().Proto().EmptyList().Stop().bytes(), {}).bytes,
               ErrorCode::kUnsupported, 64 + 2);
  }

  TEST_CASE("a dict that contains itself is corrupt") {
    PickleBuilder p;
    p.Proto().EmptyDict().Put(0).Str("me").Get(0).SetItem().Stop();
    auto reader = OpenBytes(test::pt::TorchZip(p.bytes(), {}).bytes);
    CHECK(reader.error().code() == ErrorCode::kCorrupt);
  }

  TEST_CASE("a legacy file of another protocol or byte order is unsupported at the value") {
    const std::string legacy = test::ReadFile(test::ExternalPath("torch/legacy_format.pt"));
    std::string protocol = legacy;
    REQUIRE(protocol[17] == 'M');  // BININT2 1001
    protocol[18] = static_cast<char>(0xe8);
    CheckError(protocol, ErrorCode::kUnsupported, 17);
    std::string big_endian = legacy;
    REQUIRE(static_cast<uint8_t>(big_endian[73]) == 0x88);  // little_endian: NEWTRUE
    big_endian[73] = static_cast<char>(0x89);
    CheckError(big_endian, ErrorCode::kUnsupported, 73);
  }

  TEST_CASE("a legacy storage whose count disagrees with its tensors is corrupt") {
    std::string file = test::ReadFile(test::ExternalPath("torch/legacy_format.pt"));
    const uint64_t count_at = 441;  // after the five pickles: the count of the first storage
    REQUIRE(file[count_at] == 4);
    file[count_at] = 5;
    CheckError(file, ErrorCode::kCorrupt, count_at);
  }
}

// Opens `bytes` and reads every tensor: each step must succeed or fail with an error that names
// the input and, when it gives an offset in it, one inside it. Returns a failure or "".
std::string OkOrLocated(const std::string& bytes) {
  auto located = [&](const Error& e) -> std::string {
    if (e.where().file.empty())
      return "no file in: " + e.ToString();
    if (e.where().file == "t.pt" && e.where().offset && *e.where().offset > bytes.size())
      return "offset past the end in: " + e.ToString();
    return "";
  };
  auto reader = OpenReaderFromBytes(AsBytes(bytes), "t.pt");
  if (!reader.ok())
    return located(reader.error());
  for (size_t i = 0; i < (*reader)->tensors().size(); ++i) {
    auto data = (*reader)->Read(i);
    if (!data.ok())
      return located(data.error());
    if (data->size() != (*reader)->tensors()[i].byte_size)
      return "wrong size for " + (*reader)->tensors()[i].name;
  }
  return "";
}

std::vector<std::string> SweepInputs() {
  test::pt::ZipBuilder deflated;
  deflated.Add("a/data.pkl", test::pt::StateDictPickle({W()}), true).Add("a/data/0", WData());
  deflated.Add("a/version", "3");
  return {test::ReadFile(test::ExternalPath("torch/dtypes_views.pt")),
          test::ReadFile(test::ExternalPath("torch/legacy_format.pt")),
          test::ReadFile(test::ExternalPath("hf/burn_pytorch_reader_tests/checkpoint.pt")),
          deflated.Build().bytes};
}

TEST_SUITE("formats.pytorch.reader.sweep") {
  TEST_CASE("truncating real files at every length gives ok or a located error") {
    for (const std::string& file : SweepInputs()) {
      for (size_t length = 0; length < file.size(); ++length) {
        const std::string failure = OkOrLocated(file.substr(0, length));
        if (!failure.empty()) {
          CAPTURE(length);
          FAIL_CHECK(failure);
        }
      }
    }
  }

  TEST_CASE("flipping any byte of real files gives ok or a located error") {
    for (const std::string& file : SweepInputs()) {
      for (const int mask : {0xFF, 0x01}) {
        for (size_t at = 0; at < file.size(); ++at) {
          std::string damaged = file;
          damaged[at] = static_cast<char>(damaged[at] ^ mask);
          const std::string failure = OkOrLocated(damaged);
          if (!failure.empty()) {
            CAPTURE(at);
            CAPTURE(mask);
            FAIL_CHECK(failure);
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace cw::pytorch
