// Fuzz target: the index JSON of a sharded HF folder (OpenShardedFolder), then Read() of every
// tensor of the folder; the same bytes again as MindFormers' param_name_map.json (which may also
// be a flat {name: file} map).
//
// OpenShardedFolder reads the index from disk, so each input is written as
// model.safetensors.index.json and as param_name_map.json into a private temporary folder that
// also holds three tiny shards the seeds refer to:
//   model-00001-of-00002.safetensors   tensors "a" (F32 [2]) and "b" (I8 [3])
//   model-00002-of-00002.safetensors   tensor "c" (BF16 [])
//   other.ckpt                         tensor "d" (Float32 [1]), for the mixed-format check
// Errors located in the index must lie within it; errors in a shard must name a file.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/mapped_file.h"
#include "engine/formats/hf_folder.h"
#include "engine/formats/mindspore/mindspore_reader.h"
#include "engine/formats/safetensors/safetensors_reader.h"
#include "tests/fuzz/fuzz_check.h"

namespace {
namespace fs = std::filesystem;

// A safetensors file: u64 LE header length, the header, the data.
std::string Safetensors(std::string_view header, std::string_view data) {
  std::string file(8, '\0');
  for (size_t i = 0; i < 8; ++i)
    file[i] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  return file.append(header).append(data);
}

// One .ckpt record: tag "d", dims [1], "Float32", content 1.0f (ckpt_wire.h has the layout).
constexpr std::string_view kCkptShard(
    "\x0A\x16"
    "\x0A\x01"
    "d"
    "\x12\x11"
    "\x08\x01"
    "\x12\x07"
    "Float32"
    "\x1A\x04\x00\x00\x80\x3F",
    24);

void WriteFile(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  cw::fuzz::Check(out.good());
}

// The temporary folder, made on first use and removed at normal exit.
class Folder {
 public:
  Folder() {
    std::string pattern = (fs::temp_directory_path() / "cw_fuzz_hf_index_XXXXXX").string();
    cw::fuzz::Check(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
    WriteFile(path_ / "model-00001-of-00002.safetensors",
              Safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"I8","shape":[3],"data_offsets":[8,11]}})",
                          std::string_view("\0\0\x80\x3F\0\0\0\x40\x01\x02\x03", 11)));
    WriteFile(path_ / "model-00002-of-00002.safetensors",
              Safetensors(R"({"c":{"dtype":"BF16","shape":[],"data_offsets":[0,2]}})", "\x80\x3F"));
    WriteFile(path_ / "other.ckpt", kCkptShard);
  }
  Folder(const Folder&) = delete;
  Folder& operator=(const Folder&) = delete;
  ~Folder() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }

  fs::path index() const { return path_ / "model.safetensors.index.json"; }
  fs::path name_map() const { return path_ / cw::kParamNameMapName; }

 private:
  fs::path path_;
};

cw::Result<std::unique_ptr<cw::CheckpointReader>> OpenShard(const fs::path& path) {
  CW_ASSIGN_OR_RETURN(cw::MappedFile file, cw::MappedFile::Open(path));
  if (path.extension() == ".ckpt")
    return cw::mindspore::OpenReader(std::move(file));
  return cw::safetensors::OpenReader(std::move(file));
}

// Opens the folder through `list` (holding the input) and reads every tensor.
void OpenAndRead(const fs::path& list, size_t size) {
  using cw::fuzz::Check;
  auto reader = cw::OpenShardedFolder(list, OpenShard);
  if (!reader.ok()) {
    cw::fuzz::CheckLocated(reader.error(), list.string(), size);
    return;
  }
  const cw::CheckpointReader& r = **reader;
  for (size_t i = 0; i < r.tensors().size(); ++i) {
    Check(!r.FileOf(i).empty());
    const auto tensor = r.Read(i);
    Check(tensor.ok());
    Check(tensor->size() == r.tensors()[i].byte_size);
    cw::fuzz::Touch(tensor->bytes());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Folder folder;
  for (const fs::path& list : {folder.index(), folder.name_map()}) {
    WriteFile(list, cw::AsChars(cw::fuzz::InputBytes(data, size)));
    OpenAndRead(list, size);
  }
  return 0;
}
