#include "engine/formats/hf_folder.h"

#include <map>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "engine/base/limits.h"
#include "engine/base/mapped_file.h"
#include "engine/formats/safetensors/safetensors_reader.h"
#include "tests/support/safetensors_builder.h"
#include "tests/support/test_files.h"

namespace cw {
namespace {

namespace fs = std::filesystem;

TensorInfo Tensor(const std::string& name, DType dtype, const Shape& shape) {
  return {name, dtype, shape, ByteSize(dtype, shape).value()};
}

std::string Pattern(size_t index, uint64_t n) {
  std::string bytes(n, '\0');
  for (uint64_t j = 0; j < n; ++j)
    bytes[j] = static_cast<char>((index * 37 + j * 11 + 5) & 0xFF);
  return bytes;
}

Result<std::unique_ptr<CheckpointReader>> OpenSafetensors(const fs::path& path) {
  CW_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  return safetensors::OpenReader(std::move(file));
}

// Writes every tensor's Pattern into `folder` as a sharded safetensors model.
void WriteFolder(const fs::path& folder, const std::vector<TensorInfo>& tensors,
                 const WriterOptions& options) {
  auto writer = CreateShardedSafetensorsWriter(folder, tensors, options);
  REQUIRE(writer.ok());
  // Last tensor first: routing must not depend on order.
  for (size_t i = tensors.size(); i-- > 0;) {
    const std::string bytes = Pattern(i, tensors[i].byte_size);
    REQUIRE((*writer)->Write(i, 0, AsBytes(bytes)).ok());
  }
  REQUIRE((*writer)->Commit().ok());
}

std::vector<std::string> TensorNames(const CheckpointReader& reader) {
  std::vector<std::string> names;
  for (const TensorInfo& t : reader.tensors())
    names.push_back(t.name);
  return names;
}

WriterOptions ShardBytes(uint64_t max_shard_bytes) {
  WriterOptions options;
  options.max_shard_bytes = max_shard_bytes;
  return options;
}

// The names of the tensors in each shard file written to `folder`, keyed by file name.
std::map<std::string, std::vector<std::string>> ShardContents(const fs::path& folder) {
  std::map<std::string, std::vector<std::string>> contents;
  for (const std::string& name : test::ListFolder(folder)) {
    if (name.ends_with(".safetensors")) {
      auto reader = OpenSafetensors(folder / name);
      REQUIRE(reader.ok());
      contents[name] = TensorNames(**reader);
    }
  }
  return contents;
}

// A reader standing for any format, to test the folder logic without real files.
class FakeReader final : public CheckpointReader {
 public:
  FakeReader(FileFormat format, std::vector<TensorInfo> tensors, std::string file,
             std::vector<SkippedValue> skipped)
      : format_(format),
        tensors_(std::move(tensors)),
        file_(std::move(file)),
        skipped_(std::move(skipped)) {}
  FileFormat format() const override { return format_; }
  const std::vector<TensorInfo>& tensors() const override { return tensors_; }
  Result<TensorData> Read(size_t index) const override {
    return TensorData::Borrow(AsBytes(tensors_[index].name));
  }
  const std::string& FileOf(size_t /*index*/) const override { return file_; }
  const std::vector<SkippedValue>& skipped() const override { return skipped_; }
  const std::map<std::string, std::string>& metadata() const override { return metadata_; }

 private:
  FileFormat format_;
  std::vector<TensorInfo> tensors_;
  std::string file_;
  std::vector<SkippedValue> skipped_;
  std::map<std::string, std::string> metadata_;
};

// Index JSON text for a weight map.
std::string IndexJson(const std::map<std::string, std::string>& weight_map) {
  std::string json = "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {";
  for (const auto& [name, shard] : weight_map) {
    json.append(json.back() == '{' ? "\"" : ", \"").append(name).append("\": \"").append(shard);
    json += '"';
  }
  return json + "}}\n";
}

// A folder of safetensors shards, each holding the named one-byte tensors, and an index.
struct ShardedFixture {
  test::TempDir dir;
  fs::path index = dir / "model.safetensors.index.json";

  void Shard(const std::string& file, const std::vector<std::string>& names) {
    test::SafetensorsBuilder builder;
    for (const std::string& name : names)
      builder.Add(name, "U8", {1}, name.substr(0, 1));
    test::WriteFile(dir / file, builder.Build());
  }
  void Index(const std::map<std::string, std::string>& weight_map) {
    test::WriteFile(index, IndexJson(weight_map));
  }
  Error OpenError() const {
    auto reader = OpenShardedFolder(index, OpenSafetensors);
    REQUIRE_FALSE(reader.ok());
    return std::move(reader).error();
  }
};

TEST_SUITE("formats.hf_folder") {
  TEST_CASE("a sharded folder reads back with the names, dtypes, shapes and bytes written") {
    const std::vector<TensorInfo> tensors = {Tensor("model.embed.weight", DType::kBF16, {8, 4}),
                                             Tensor("layer.0.w", DType::kF32, {4, 4}),
                                             Tensor("layer.0.b", DType::kF32, {4}),
                                             Tensor("scalar", DType::kI64, {}),
                                             Tensor("empty", DType::kF16, {0, 3}),
                                             Tensor("lm_head.weight", DType::kBF16, {8, 4})};
    test::TempDir dir;
    WriteFolder(dir.path(), tensors, ShardBytes(100));
    CHECK(test::ListFolder(dir.path()) ==
          std::vector<std::string>{
              "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
              "model-00003-of-00003.safetensors", "model.safetensors.index.json"});
    auto reader = OpenShardedFolder(dir / "model.safetensors.index.json", OpenSafetensors);
    REQUIRE(reader.ok());
    CHECK((*reader)->format() == FileFormat::kSafetensors);
    CHECK((*reader)->tensors() == tensors);
    CHECK((*reader)->metadata() == std::map<std::string, std::string>{{"format", "pt"}});
    for (size_t i = 0; i < tensors.size(); ++i) {
      CAPTURE(tensors[i].name);
      auto data = (*reader)->Read(i);
      REQUIRE(data.ok());
      CHECK(AsChars(data->bytes()) == Pattern(i, tensors[i].byte_size));
    }
    CHECK((*reader)->FileOf(0) == (dir / "model-00001-of-00003.safetensors").string());
    CHECK((*reader)->FileOf(5) == (dir / "model-00003-of-00003.safetensors").string());
  }

  TEST_CASE("a shard may reach the limit exactly; the tensor that would pass it starts a new one") {
    test::TempDir dir;
    WriteFolder(dir.path(),
                {Tensor("a", DType::kU8, {4}), Tensor("b", DType::kU8, {4}),
                 Tensor("c", DType::kU8, {1}), Tensor("d", DType::kU8, {0})},
                ShardBytes(8));
    CHECK(ShardContents(dir.path()) == std::map<std::string, std::vector<std::string>>{
                                           {"model-00001-of-00002.safetensors", {"a", "b"}},
                                           {"model-00002-of-00002.safetensors", {"c", "d"}}});
  }

  TEST_CASE("a tensor larger than the limit gets a shard of its own") {
    test::TempDir dir;
    WriteFolder(dir.path(),
                {Tensor("a", DType::kU8, {2}), Tensor("big", DType::kU8, {9}),
                 Tensor("c", DType::kU8, {2}), Tensor("d", DType::kU8, {2})},
                ShardBytes(8));
    CHECK(ShardContents(dir.path()) == std::map<std::string, std::vector<std::string>>{
                                           {"model-00001-of-00003.safetensors", {"a"}},
                                           {"model-00002-of-00003.safetensors", {"big"}},
                                           {"model-00003-of-00003.safetensors", {"c", "d"}}});
  }

  TEST_CASE("a single shard is written as model.safetensors without an index") {
    test::TempDir dir;
    WriteFolder(dir.path(), {Tensor("a", DType::kU8, {4}), Tensor("b", DType::kU8, {4})},
                ShardBytes(8));
    CHECK(test::ListFolder(dir.path()) == std::vector<std::string>{"model.safetensors"});
    auto reader = OpenSafetensors(dir / "model.safetensors");
    REQUIRE(reader.ok());
    CHECK(TensorNames(**reader) == std::vector<std::string>{"a", "b"});
    CHECK((*reader)->metadata() == std::map<std::string, std::string>{{"format", "pt"}});
  }

  TEST_CASE("an empty model is a model.safetensors with no tensors") {
    test::TempDir dir;
    WriteFolder(dir.path(), {}, WriterOptions{});
    CHECK(test::ListFolder(dir.path()) == std::vector<std::string>{"model.safetensors"});
  }

  TEST_CASE("writes the index as transformers does: sorted, indented by 2, newline-terminated") {
    test::TempDir dir;
    WriteFolder(dir.path(),
                {Tensor("z.w", DType::kF32, {2}), Tensor("a.w", DType::kU8, {3}),
                 Tensor("\xC3\xA9", DType::kU8, {1})},
                ShardBytes(8));
    CHECK(test::ReadFile(dir / "model.safetensors.index.json") ==
          "{\n"
          "  \"metadata\": {\n"
          "    \"total_size\": 12\n"
          "  },\n"
          "  \"weight_map\": {\n"
          "    \"a.w\": \"model-00002-of-00002.safetensors\",\n"
          "    \"z.w\": \"model-00001-of-00002.safetensors\",\n"
          "    \"\\u00e9\": \"model-00002-of-00002.safetensors\"\n"
          "  }\n"
          "}\n");
  }

  TEST_CASE("each shard carries format pt, updated with the caller's metadata") {
    test::TempDir dir;
    WriterOptions options = ShardBytes(1);
    options.metadata = {{"source", "test"}, {"format", "ms"}};
    WriteFolder(dir.path(), {Tensor("a", DType::kU8, {1}), Tensor("b", DType::kU8, {1})}, options);
    for (const char* shard :
         {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}) {
      auto reader = OpenSafetensors(dir / shard);
      REQUIRE(reader.ok());
      CHECK((*reader)->metadata() == options.metadata);
    }
  }

  TEST_CASE("routes nothing to a tensor index the writer was not given") {
    test::TempDir dir;
    auto writer =
        CreateShardedSafetensorsWriter(dir.path(), {Tensor("a", DType::kU8, {1})}, WriterOptions{});
    REQUIRE(writer.ok());
    const Status status = (*writer)->Write(1, 0, AsBytes("x"));
    REQUIRE_FALSE(status.ok());
    CHECK(status.error().code() == ErrorCode::kInternal);
  }

  TEST_CASE("a missing shard is an io error located at the shard") {
    ShardedFixture f;
    f.Shard("s1.safetensors", {"a"});
    f.Index({{"a", "s1.safetensors"}, {"b", "s2.safetensors"}});
    const Error e = f.OpenError();
    CHECK(e.code() == ErrorCode::kIo);
    CHECK(e.where().file == (f.dir / "s2.safetensors").string());
  }

  TEST_CASE("a shard name that is not a plain file name is refused") {
    for (const std::string shard : {"../s1.safetensors", "/tmp/s1.safetensors",
                                    "sub/s1.safetensors", "..", ".", "", "sub\\\\s1.safetensors"}) {
      CAPTURE(shard);
      ShardedFixture f;
      f.Shard("s1.safetensors", {"a"});
      f.Index({{"a", shard}});
      const Error e = f.OpenError();
      CHECK(e.code() == ErrorCode::kCorrupt);
      CHECK(e.where().file == f.index.string());
    }
  }

  TEST_CASE("a tensor the index places in another shard is refused") {
    ShardedFixture f;
    f.Shard("s1.safetensors", {"a", "b"});
    f.Shard("s2.safetensors", {"c"});
    f.Index({{"a", "s1.safetensors"}, {"b", "s2.safetensors"}, {"c", "s2.safetensors"}});
    const Error e = f.OpenError();
    CHECK(e.code() == ErrorCode::kCorrupt);
    CHECK(e.where().file == f.index.string());
  }

  TEST_CASE("a shard tensor the index does not list is refused") {
    ShardedFixture f;
    f.Shard("s1.safetensors", {"a", "extra"});
    f.Index({{"a", "s1.safetensors"}});
    const Error e = f.OpenError();
    CHECK(e.code() == ErrorCode::kCorrupt);
    CHECK(e.where().file == f.index.string());
  }

  TEST_CASE("an index entry its shard does not hold is refused") {
    ShardedFixture f;
    f.Shard("s1.safetensors", {"a"});
    f.Index({{"a", "s1.safetensors"}, {"ghost", "s1.safetensors"}});
    const Error e = f.OpenError();
    CHECK(e.code() == ErrorCode::kCorrupt);
    CHECK(e.where().file == f.index.string());
  }

  TEST_CASE("a damaged shard reports its own location") {
    ShardedFixture f;
    test::WriteFile(f.dir / "s1.safetensors", test::SafetensorsFile(1000, "{}"));
    f.Index({{"a", "s1.safetensors"}});
    const Error e = f.OpenError();
    CHECK(e.code() == ErrorCode::kCorrupt);
    CHECK(e.where().file == (f.dir / "s1.safetensors").string());
    CHECK(e.where().offset == 8u);
  }

  TEST_CASE("shard errors say \"while\" once in their context lines") {
    ShardedFixture f;
    test::WriteFile(f.dir / "s1.safetensors", test::SafetensorsFile(1000, "{}"));
    f.Index({{"a", "s1.safetensors"}, {"b", "s2.safetensors"}});
    CHECK(f.OpenError().ToString().find("while while") == std::string::npos);  // damaged s1
    f.Shard("s1.safetensors", {"a"});
    CHECK(f.OpenError().ToString().find("while while") == std::string::npos);  // missing s2
  }

  TEST_CASE("an index that is not valid JSON is refused at the byte, line and column") {
    ShardedFixture f;
    test::WriteFile(f.index, "{\n  \"weight_map\": {\n    \"a\" \"s1\"}}");
    const Error e = f.OpenError();
    CHECK(e.code() == ErrorCode::kCorrupt);
    CHECK(e.where().file == f.index.string());
    CHECK(e.where().line == 3);
    // At the closing quote of "s1", the token found where ':' was expected.
    CHECK(e.where().offset == 31u);
    CHECK(e.where().column == 12);
  }

  TEST_CASE("an index without a weight_map object, or with a bad one, is refused") {
    for (const std::string json :
         {"[]", "{}", "{\"weight_map\": []}", "{\"weight_map\": {}}",
          "{\"weight_map\": {\"a\": 1}}", "{\"metadata\": 1, \"weight_map\": {\"a\": \"s\"}}"}) {
      CAPTURE(json);
      ShardedFixture f;
      test::WriteFile(f.index, json);
      const Error e = f.OpenError();
      CHECK(e.code() == ErrorCode::kCorrupt);
      CHECK(e.where().file == f.index.string());
    }
  }

  TEST_CASE(
      "an index nesting millions of arrays beside the weight_map opens without building them") {
    // Parsed into a DOM, 20 MB of such nesting took 1.5 GB (ASan build); skipped values cost
    // nothing now.
    constexpr size_t kDepth = 4'000'000;
    ShardedFixture f;
    f.Shard("s1.safetensors", {"a"});
    test::WriteFile(f.index, "{\"weight_map\": {\"a\": \"s1.safetensors\"}, \"x\": " +
                                 std::string(kDepth, '[') + std::string(kDepth, ']') + "}");
    auto reader = OpenShardedFolder(f.index, OpenSafetensors);
    REQUIRE(reader.ok());
    CHECK(TensorNames(**reader) == std::vector<std::string>{"a"});
  }

  TEST_CASE("a tensor listed twice in the index keeps its last shard, as Python's json does") {
    ShardedFixture f;
    f.Shard("s1.safetensors", {"a"});
    test::WriteFile(f.index, R"({"weight_map": {"a": "s2.safetensors", "a": "s1.safetensors"}})");
    CHECK(OpenShardedFolder(f.index, OpenSafetensors).ok());
  }

  TEST_CASE("an index tensor name over the name cap is a limit error") {
    ShardedFixture f;
    test::WriteFile(f.index, "{\"weight_map\": {\"" + std::string(4097, 'n') + "\": \"s\"}}");
    const Error e = f.OpenError();
    CHECK(e.code() == ErrorCode::kLimitExceeded);
    CHECK(e.where().file == f.index.string());
  }

  TEST_CASE("an index over the size cap is refused before parsing") {
    ShardedFixture f;
    test::WriteFile(f.index, "{");
    fs::resize_file(f.index, (256ull << 20) + 1);  // sparse: no memory or disk used
    const Error e = f.OpenError();
    CHECK(e.code() == ErrorCode::kLimitExceeded);
  }

  TEST_CASE("shard names come from the index, each shard opened once, in name order") {
    ShardedFixture f;
    const std::string s1 = "pytorch_model_00001-of-00032.bin";
    const std::string s2 = "pytorch_model_00002-of-00032.bin";
    test::WriteFile(f.dir / s1, "");
    test::WriteFile(f.dir / s2, "");
    f.Index({{"x", s2}, {"a", s1}, {"b", s1}, {"y", s2}});
    std::vector<std::string> opened;
    const OpenFileFn open = [&](const fs::path& path) -> Result<std::unique_ptr<CheckpointReader>> {
      opened.push_back(path.filename().string());
      const bool first = path.filename() == s1;
      std::vector<TensorInfo> tensors =
          first
              ? std::vector<TensorInfo>{Tensor("b", DType::kF32, {1}), Tensor("a", DType::kU8, {1})}
              : std::vector<TensorInfo>{Tensor("y", DType::kI64, {}), Tensor("x", DType::kU8, {2})};
      return std::unique_ptr<CheckpointReader>(std::make_unique<FakeReader>(
          FileFormat::kTorch, std::move(tensors), path.string(),
          std::vector<SkippedValue>{{first ? "epoch" : "step", "int 3"}}));
    };
    auto reader = OpenShardedFolder(f.index, open);
    REQUIRE(reader.ok());
    CHECK(opened == std::vector<std::string>{s1, s2});
    CHECK((*reader)->format() == FileFormat::kTorch);
    CHECK(TensorNames(**reader) == std::vector<std::string>{"b", "a", "y", "x"});
    CHECK((*reader)->FileOf(1) == (f.dir / s1).string());
    CHECK((*reader)->FileOf(3) == (f.dir / s2).string());
    auto y = (*reader)->Read(2);
    REQUIRE(y.ok());
    CHECK(AsChars(y->bytes()) == "y");
    REQUIRE((*reader)->skipped().size() == 2);
    CHECK((*reader)->skipped()[0].name == "epoch");
    CHECK((*reader)->skipped()[1].name == "step");
  }

  TEST_CASE("reads the real tiny_llama_bf16_sharded index, opening its two .bin shards") {
    const fs::path index = test::ExternalPath(
        "torch/tiny_llama_bf16_sharded/"
        "pytorch_model.bin.index.json");
    // The torch reader is tested elsewhere: here each shard lists the keys its SOURCES.md gives.
    const auto layer = [](int l) {
      std::vector<std::string> names;
      const std::string prefix = "model.layers." + std::to_string(l) + ".";
      for (const char* name : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                               "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
                               "input_layernorm", "post_attention_layernorm"}) {
        names.push_back(prefix + name + ".weight");
      }
      return names;
    };
    std::vector<std::string> first = {"model.embed_tokens.weight"};
    for (const std::string& name : layer(0))
      first.push_back(name);
    std::vector<std::string> second = layer(1);
    second.push_back("model.norm.weight");
    second.push_back("lm_head.weight");
    const OpenFileFn open = [&](const fs::path& path) -> Result<std::unique_ptr<CheckpointReader>> {
      std::vector<TensorInfo> tensors;
      for (const std::string& name :
           path.filename() == "pytorch_model-00001-of-00002.bin" ? first : second) {
        tensors.push_back(Tensor(name, DType::kBF16, {1}));
      }
      return std::unique_ptr<CheckpointReader>(std::make_unique<FakeReader>(
          FileFormat::kTorch, std::move(tensors), path.string(), std::vector<SkippedValue>{}));
    };
    auto reader = OpenShardedFolder(index, open);
    REQUIRE(reader.ok());
    REQUIRE((*reader)->tensors().size() == 21);
    CHECK((*reader)->tensors()[0].name == "model.embed_tokens.weight");
    CHECK((*reader)->tensors()[20].name == "lm_head.weight");
    CHECK((*reader)->FileOf(20) ==
          (index.parent_path() / "pytorch_model-00002-of-00002.bin").string());
  }

  TEST_CASE("shards of different formats are refused") {
    ShardedFixture f;
    test::WriteFile(f.dir / "s1", "");
    test::WriteFile(f.dir / "s2", "");
    f.Index({{"a", "s1"}, {"b", "s2"}});
    const OpenFileFn open = [](const fs::path& path) -> Result<std::unique_ptr<CheckpointReader>> {
      const bool first = path.filename() == "s1";
      return std::unique_ptr<CheckpointReader>(std::make_unique<FakeReader>(
          first ? FileFormat::kTorch : FileFormat::kSafetensors,
          std::vector<TensorInfo>{Tensor(first ? "a" : "b", DType::kU8, {1})}, path.string(),
          std::vector<SkippedValue>{}));
    };
    auto reader = OpenShardedFolder(f.index, open);
    REQUIRE_FALSE(reader.ok());
    CHECK(reader.error().code() == ErrorCode::kUnsupported);
    CHECK(reader.error().where().file == (f.dir / "s2").string());
  }
}

// MindFormers' folders: param_name_map.json instead of an index, or no list at all.
struct NameMapFixture : ShardedFixture {
  fs::path map = dir / kParamNameMapName;

  void Map(const std::string& json) { test::WriteFile(map, json); }
  Error MapError() const {
    auto reader = OpenShardedFolder(map, OpenSafetensors);
    REQUIRE_FALSE(reader.ok());
    return std::move(reader).error();
  }
  std::vector<fs::path> Files() const {
    std::vector<fs::path> files;
    for (const std::string& name : test::ListFolder(dir.path())) {
      if (name.ends_with(".safetensors"))
        files.push_back(dir / name);
    }
    return files;
  }
};

WriterOptions NameMapLayout(uint64_t max_shard_bytes) {
  WriterOptions options = ShardBytes(max_shard_bytes);
  options.folder_layout = FolderLayout::kParamNameMap;
  return options;
}

TEST_SUITE("formats.hf_folder.param_name_map") {
  TEST_CASE("the MindFormers layout lists its files in a flat, sorted param_name_map.json") {
    test::TempDir dir;
    WriteFolder(dir.path(),
                {Tensor("z.w", DType::kF32, {2}), Tensor("a.w", DType::kU8, {3}),
                 Tensor("\xC3\xA9", DType::kU8, {1})},
                NameMapLayout(8));
    CHECK(test::ListFolder(dir.path()) ==
          std::vector<std::string>{"model-00001-of-00002.safetensors",
                                   "model-00002-of-00002.safetensors", "param_name_map.json"});
    CHECK(test::ReadFile(dir / "param_name_map.json") ==
          "{\n"
          "  \"a.w\": \"model-00002-of-00002.safetensors\",\n"
          "  \"z.w\": \"model-00001-of-00002.safetensors\",\n"
          "  \"\\u00e9\": \"model-00002-of-00002.safetensors\"\n"
          "}\n");
  }

  TEST_CASE("a single MindFormers file is still numbered and listed in the map, format ms") {
    test::TempDir dir;
    WriteFolder(dir.path(), {Tensor("a", DType::kU8, {4}), Tensor("b", DType::kU8, {4})},
                NameMapLayout(8));
    CHECK(test::ListFolder(dir.path()) ==
          std::vector<std::string>{"model-00001-of-00001.safetensors", "param_name_map.json"});
    auto reader = OpenSafetensors(dir / "model-00001-of-00001.safetensors");
    REQUIRE(reader.ok());
    CHECK((*reader)->metadata() == std::map<std::string, std::string>{{"format", "ms"}});
  }

  TEST_CASE("a MindFormers folder reads back through its map with the bytes written") {
    const std::vector<TensorInfo> tensors = {
        Tensor("embedding.weight", DType::kBF16, {8, 4}),
        Tensor("decoder.layers.0.w", DType::kF32, {4, 4}),
        Tensor("decoder.final_layernorm.weight", DType::kF32, {4})};
    test::TempDir dir;
    WriteFolder(dir.path(), tensors, NameMapLayout(64));
    auto reader = OpenShardedFolder(dir / kParamNameMapName, OpenSafetensors);
    REQUIRE(reader.ok());
    CHECK((*reader)->tensors() == tensors);
    CHECK((*reader)->metadata() == std::map<std::string, std::string>{{"format", "ms"}});
    for (size_t i = 0; i < tensors.size(); ++i) {
      auto data = (*reader)->Read(i);
      REQUIRE(data.ok());
      CHECK(AsChars(data->bytes()) == Pattern(i, tensors[i].byte_size));
    }
  }

  TEST_CASE("a param_name_map.json with a weight_map reads as an index") {
    NameMapFixture f;
    f.Shard("part0.safetensors", {"a", "b"});
    f.Shard("part1.safetensors", {"c"});
    f.Map(R"({"metadata": {"total_size": 3}, "format": "ms", "weight_map": )"
          R"({"a": "part0.safetensors", "b": "part0.safetensors", "c": "part1.safetensors"}})");
    auto reader = OpenShardedFolder(f.map, OpenSafetensors);
    REQUIRE(reader.ok());
    CHECK(TensorNames(**reader) == std::vector<std::string>{"a", "b", "c"});
  }

  TEST_CASE("a flat map whose entry is not a plain file name is refused at the map") {
    for (const std::string json :
         {R"({"a": 1})", R"({"a": "s1.safetensors", "b": {"c": "s1.safetensors"}})",
          R"({"a": "../s1.safetensors"})", R"({})", R"([])", R"({"metadata": "x"})",
          R"({"a": "s1.safetensors")"}) {
      CAPTURE(json);
      NameMapFixture f;
      f.Shard("s1.safetensors", {"a"});
      f.Map(json);
      const Error e = f.MapError();
      CHECK(e.code() == ErrorCode::kCorrupt);
      CHECK(e.where().file == f.map.string());
    }
  }

  TEST_CASE("map errors say map, not index") {
    NameMapFixture f;
    f.Shard("s1.safetensors", {"a", "b"});
    f.Map(R"({"a": "s1.safetensors"})");
    CHECK(f.MapError().message() ==
          "tensor \"b\" of shard \"s1.safetensors\" is not listed in the map");
  }

  TEST_CASE("a map naming a missing file is an io error located at that file") {
    NameMapFixture f;
    f.Shard("s1.safetensors", {"a"});
    f.Map(R"({"a": "s1.safetensors", "b": "s2.safetensors"})");
    const Error e = f.MapError();
    CHECK(e.code() == ErrorCode::kIo);
    CHECK(e.where().file == (f.dir / "s2.safetensors").string());
  }

  TEST_CASE("a tensor the map places in another file, or in none, is refused at the map") {
    NameMapFixture f;
    f.Shard("s1.safetensors", {"a", "b"});
    f.Shard("s2.safetensors", {"c"});
    for (
        const std::string json :
        {R"({"a": "s1.safetensors", "b": "s2.safetensors", "c": "s2.safetensors"})",
         R"({"a": "s1.safetensors", "b": "s1.safetensors", "c": "s2.safetensors", "d": "s2.safetensors"})"}) {
      CAPTURE(json);
      f.Map(json);
      const Error e = f.MapError();
      CHECK(e.code() == ErrorCode::kCorrupt);
      CHECK(e.where().file == f.map.string());
    }
  }

  TEST_CASE("a flat map tensor name over the name cap is a limit error") {
    NameMapFixture f;
    f.Map("{\"" + std::string(limits::kMaxNameBytes + 1, 'n') + "\": \"s1.safetensors\"}");
    CHECK(f.MapError().code() == ErrorCode::kLimitExceeded);
  }

  TEST_CASE("a folder without a map reads every file given, in name order") {
    NameMapFixture f;
    f.Shard("b.safetensors", {"y"});
    f.Shard("a.safetensors", {"x", "z"});
    auto reader = OpenUnlistedFolder(
        f.dir.path(), {f.dir / "b.safetensors", f.dir / "a.safetensors"}, OpenSafetensors);
    REQUIRE(reader.ok());
    CHECK(TensorNames(**reader) == std::vector<std::string>{"x", "z", "y"});
    CHECK((*reader)->FileOf(2) == (f.dir / "b.safetensors").string());
  }

  TEST_CASE("without a map, a name in two files is refused at the second, naming the first") {
    NameMapFixture f;
    f.Shard("a.safetensors", {"x", "y"});
    f.Shard("b.safetensors", {"y"});
    auto reader = OpenUnlistedFolder(f.dir.path(), f.Files(), OpenSafetensors);
    REQUIRE_FALSE(reader.ok());
    CHECK(reader.error().code() == ErrorCode::kCorrupt);
    CHECK(reader.error().where().file == (f.dir / "b.safetensors").string());
    CHECK(reader.error().message().find("a.safetensors") != std::string::npos);
  }

  TEST_CASE("without a map, a damaged file reports its own location") {
    NameMapFixture f;
    f.Shard("a.safetensors", {"x"});
    test::WriteFile(f.dir / "b.safetensors", test::SafetensorsFile(1000, "{}"));
    auto reader = OpenUnlistedFolder(f.dir.path(), f.Files(), OpenSafetensors);
    REQUIRE_FALSE(reader.ok());
    CHECK(reader.error().code() == ErrorCode::kCorrupt);
    CHECK(reader.error().where().file == (f.dir / "b.safetensors").string());
  }
}

}  // namespace
}  // namespace cw
