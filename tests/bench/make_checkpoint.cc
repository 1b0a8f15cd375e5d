// Writes a synthetic HF checkpoint folder with the real tensor names and shapes of a model
// configuration, at any number of layers, for benchmarks: config.json plus sharded safetensors
// (model-0000i-of-0000n.safetensors + index) or sharded torch .bin files.
//
//   make_checkpoint --shape llama2-7b|qwen2-7b|mixtral-8x7b|deepseek-v3-like|deepseek-v3
//                   --layers N --format safetensors|bin --dtype bf16|f16|f32|fp8 --out DIR
//                   [--max-shard-size 5GB] [--experts N]
//
// --dtype fp8 only with --shape deepseek-v3: its FP8 release (model_shapes.h).
//
// Values are pseudo-random finite numbers: one block of random elements is generated and every
// tensor takes its bytes from it at a tensor-dependent rotation, so writing runs at disk speed.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <random>

#include <CLI/CLI.hpp>

#include "engine/base/byte_size.h"
#include "engine/formats/checkpoint_io.h"
#include "engine/tensor/dtype_cast.h"
#include "tests/bench/model_shapes.h"

namespace {

namespace fs = std::filesystem;
using cw::bench::ModelShape;

constexpr size_t kBlockBytes = 64u << 20;

std::string RandomBlock(cw::DType dtype) {
  std::mt19937_64 rng(20261128);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> f(kBlockBytes / 4);
  for (float& x : f)
    x = dist(rng);
  std::string out(f.size() * cw::ElementSize(dtype), '\0');
  cw::CastElements(cw::DType::kF32, dtype,
                   cw::ByteSpan(reinterpret_cast<const std::byte*>(f.data()), f.size() * 4),
                   cw::MutableByteSpan(reinterpret_cast<std::byte*>(out.data()), out.size()));
  return out.substr(0, kBlockBytes);
}

// Random bytes as float8_e4m3fn codes, the lowest exponent bit cleared so that none is NaN.
std::string RandomFp8Block() {
  std::string out = RandomBlock(cw::DType::kBF16);
  for (char& c : out)
    c = static_cast<char>(static_cast<unsigned char>(c) & 0xF7);
  return out;
}

// One random block per dtype of `tensors`.
std::map<cw::DType, std::string> RandomBlocks(const std::vector<cw::TensorInfo>& tensors) {
  std::map<cw::DType, std::string> blocks;
  for (const cw::TensorInfo& t : tensors) {
    if (!blocks.contains(t.dtype))
      blocks[t.dtype] = t.dtype == cw::DType::kF8E4M3 ? RandomFp8Block() : RandomBlock(t.dtype);
  }
  return blocks;
}

cw::Status WriteTensors(cw::CheckpointWriter& writer, const std::vector<cw::TensorInfo>& tensors,
                        const std::map<cw::DType, std::string>& blocks, size_t first) {
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::string& block = blocks.at(tensors[i].dtype);
    const uint64_t size = tensors[i].byte_size;
    // Rotate by an element-aligned amount so that tensors differ.
    uint64_t pos = ((first + i) * 4099 * 8) % block.size();
    for (uint64_t done = 0; done < size;) {
      const uint64_t n = std::min<uint64_t>(size - done, block.size() - pos);
      CW_RETURN_IF_ERROR(
          writer.Write(i, done, cw::AsBytes(std::string_view(block).substr(pos, n))));
      done += n;
      pos = 0;
    }
  }
  return writer.Commit();
}

// .bin shards: HF's split rule over whole tensors, one torch file per shard, plus the index.
cw::Status WriteBinShards(const fs::path& dir, const std::vector<cw::TensorInfo>& all,
                          uint64_t max_shard, const std::map<cw::DType, std::string>& blocks) {
  std::vector<std::vector<cw::TensorInfo>> shards(1);
  uint64_t in_shard = 0;
  for (const auto& t : all) {
    if (!shards.back().empty() && in_shard + t.byte_size > max_shard) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(t);
    in_shard += t.byte_size;
  }
  std::ofstream index(dir / "pytorch_model.bin.index.json");
  uint64_t total = 0;
  for (const auto& t : all)
    total += t.byte_size;
  index << "{\n  \"metadata\": {\n    \"total_size\": " << total << "\n  },\n  \"weight_map\": {\n";
  size_t first = 0;
  std::vector<std::string> lines;
  for (size_t s = 0; s < shards.size(); ++s) {
    char name[64];
    std::snprintf(name, sizeof name, "pytorch_model-%05zu-of-%05zu.bin", s + 1, shards.size());
    CW_ASSIGN_OR_RETURN(auto writer, cw::CreateCheckpointWriter(dir / name, shards[s], {}));
    CW_RETURN_IF_ERROR(WriteTensors(*writer, shards[s], blocks, first));
    first += shards[s].size();
    for (const auto& t : shards[s])
      lines.push_back("    \"" + t.name + "\": \"" + name + "\"");
  }
  std::sort(lines.begin(), lines.end());
  for (size_t i = 0; i < lines.size(); ++i)
    index << lines[i] << (i + 1 < lines.size() ? ",\n" : "\n");
  index << "  }\n}\n";
  return cw::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Writes a synthetic checkpoint with real tensor names and shapes"};
  std::string shape_name = "llama2-7b", format = "safetensors", dtype_name = "bf16", out,
              shard = "5GB";
  int layers = 2;
  uint64_t experts = 0;
  app.add_option("--shape", shape_name,
                 "llama2-7b, qwen2-7b, mixtral-8x7b, deepseek-v3-like or deepseek-v3");
  app.add_option("--layers", layers, "Number of transformer layers");
  app.add_option("--experts", experts, "Experts per layer of a MoE shape (default: the model's)");
  app.add_option("--format", format, "safetensors or bin");
  app.add_option("--dtype", dtype_name, "bf16, f16, f32, or fp8 (deepseek-v3)");
  app.add_option("--out", out, "Output folder (must not exist)")->required();
  app.add_option("--max-shard-size", shard, "Shard size");
  CLI11_PARSE(app, argc, argv);

  const bool deepseek = shape_name == "deepseek-v3";
  const bool fp8 = deepseek && dtype_name == "fp8";
  auto shape = cw::bench::FindShape(shape_name);
  if (shape && shape->experts != 0 && experts != 0)
    shape->experts = experts;
  const auto dtype = fp8 ? std::optional(cw::DType::kBF16) : cw::DTypeFromUserName(dtype_name);
  const auto max_shard = cw::ParseByteSize(shard);
  if ((!shape && !deepseek) || !dtype || (deepseek && *dtype != cw::DType::kBF16) ||
      !max_shard.ok() || (format != "safetensors" && format != "bin")) {
    std::cerr << "make_checkpoint: bad --shape, --dtype, --format or --max-shard-size\n";
    return 2;
  }
  const uint64_t deepseek_experts = experts != 0 ? experts : 256;
  const std::vector<cw::TensorInfo> tensors =
      deepseek ? cw::bench::DeepSeekV3Tensors(layers, deepseek_experts, fp8)
               : cw::bench::Tensors(*shape, layers, *dtype);
  fs::create_directories(out);
  const std::map<cw::DType, std::string> blocks = RandomBlocks(tensors);
  cw::Status status;
  if (format == "bin") {
    status = WriteBinShards(out, tensors, *max_shard, blocks);
  } else {
    cw::WriterOptions options;
    options.max_shard_bytes = *max_shard;
    options.metadata["format"] = "pt";
    options.replace_existing = true;  // the folder itself was just created, empty
    auto writer = cw::CreateCheckpointWriter(fs::path(out) / "", tensors, options);
    status = writer.ok() ? WriteTensors(**writer, tensors, blocks, 0) : writer.status();
  }
  if (!status.ok()) {
    std::cerr << "make_checkpoint: " << status.error().ToString() << "\n";
    return 1;
  }
  // After the weights: a folder output replaces the (empty) folder as a whole.
  std::ofstream(fs::path(out) / "config.json")
      << (deepseek ? cw::bench::DeepSeekV3ConfigJson(layers, deepseek_experts, fp8)
                   : cw::bench::ConfigJson(*shape, layers, *dtype));
  uint64_t total = 0;
  for (const auto& t : tensors)
    total += t.byte_size;
  std::cout << tensors.size() << " tensors, " << total << " bytes in " << out << "\n";
  return 0;
}
