#include "engine/formats/checkpoint_io.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/base/mapped_file.h"
#include "engine/base/output_file.h"
#include "engine/formats/distributed/rank_folders.h"
#include "engine/formats/hf_folder.h"
#include "engine/formats/mindspore/mindspore_reader.h"
#include "engine/formats/mindspore/mindspore_writer.h"
#include "engine/formats/pytorch/pytorch_reader.h"
#include "engine/formats/pytorch/pytorch_writer.h"
#include "engine/formats/safetensors/safetensors_reader.h"
#include "engine/formats/safetensors/safetensors_writer.h"

namespace cw {
namespace fs = std::filesystem;
namespace {

constexpr std::array<const char*, 2> kIndexNames = {"model.safetensors.index.json",
                                                    "pytorch_model.bin.index.json"};
constexpr std::array<const char*, 2> kSingleNames = {"model.safetensors", "pytorch_model.bin"};

bool IsWeightFileName(const fs::path& p) {
  const std::string ext = p.extension().string();
  return ext == ".safetensors" || ext == ".bin" || ext == ".pth" || ext == ".pt" || ext == ".ckpt";
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Which reader understands these bytes. Detection is by content so that a misnamed file is
// read correctly or refused by the right reader with a precise message.
std::optional<FileFormat> Sniff(ByteSpan b) {
  if (b.size() >= 4 && AsChars(b.first(4)) == std::string_view("PK\x03\x04", 4)) {
    return FileFormat::kTorch;
  }
  if (b.size() >= 2 && b[0] == std::byte{0x80} && b[1] == std::byte{0x02}) {
    return FileFormat::kTorch;  // legacy torch.save stream (pickle protocol 2)
  }
  if (b.size() >= 9) {
    const auto n = LoadLE<uint64_t>(b.data());
    const char c = static_cast<char>(b[8]);
    if (n <= b.size() - 8 && (c == '{' || c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
      return FileFormat::kSafetensors;
    }
  }
  if (!b.empty() && b[0] == std::byte{0x0A})
    return FileFormat::kMindSpore;
  if (b.size() >= 4) {
    const auto magic = LoadLE<uint32_t>(b.data());
    if (magic >= 0x7F3A5ED8u && magic <= 0x7F3A5EDAu)
      return FileFormat::kMindSpore;  // encrypted
  }
  return std::nullopt;
}

std::optional<FileFormat> FormatFromExtension(const fs::path& p) {
  const std::string ext = p.extension().string();
  if (ext == ".safetensors")
    return FileFormat::kSafetensors;
  if (ext == ".bin" || ext == ".pth" || ext == ".pt")
    return FileFormat::kTorch;
  if (ext == ".ckpt")
    return FileFormat::kMindSpore;
  return std::nullopt;
}

Result<std::unique_ptr<CheckpointReader>> OpenFile(const fs::path& path) {
  CW_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  std::optional<FileFormat> format = Sniff(file.bytes());
  if (!format)
    format = FormatFromExtension(path);
  if (!format) {
    return Error(ErrorCode::kUnsupported,
                 "not a checkpoint: neither safetensors, a torch.save file, nor a MindSpore .ckpt",
                 FileLocation(path.string()));
  }
  switch (*format) {
    case FileFormat::kSafetensors:
      return safetensors::OpenReader(std::move(file));
    case FileFormat::kTorch:
      return pytorch::OpenReader(std::move(file));
    case FileFormat::kMindSpore:
      return mindspore::OpenReader(std::move(file));
  }
  return Error(ErrorCode::kInternal, "unknown format", FileLocation(path.string()));
}

// The index JSON of a folder, if it has one (safetensors preferred, as HF loaders do), else
// MindFormers' param_name_map.json.
std::optional<fs::path> FindIndex(const fs::path& dir) {
  for (const char* name : kIndexNames) {
    if (fs::is_regular_file(dir / name))
      return dir / name;
  }
  if (fs::is_regular_file(dir / kParamNameMapName))
    return dir / kParamNameMapName;
  std::vector<fs::path> others;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && EndsWith(e.path().filename().string(), ".index.json")) {
      others.push_back(e.path());
    }
  }
  if (others.size() == 1)
    return others.front();
  return std::nullopt;
}

Result<std::unique_ptr<CheckpointReader>> OpenFolder(const fs::path& dir, std::string* note) {
  if (auto index = FindIndex(dir)) {
    if (note != nullptr && fs::exists(dir / kIndexNames[0]) && fs::exists(dir / kIndexNames[1])) {
      *note = "folder has safetensors and .bin weights; reading the safetensors";
    }
    return OpenShardedFolder(*index, OpenFile);
  }
  for (const char* name : kSingleNames) {
    if (fs::is_regular_file(dir / name))
      return OpenFile(dir / name);
  }
  std::vector<fs::path> weights;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && IsWeightFileName(e.path()))
      weights.push_back(e.path());
  }
  if (weights.size() == 1)
    return OpenFile(weights.front());
  // MindSpore safetensors files without a map (MindFormers reads these too): all of them, as one.
  if (weights.size() > 1 && std::all_of(weights.begin(), weights.end(), [](const fs::path& p) {
        return p.extension() == ".safetensors";
      })) {
    if (note != nullptr) {
      *note = "folder has " + std::to_string(weights.size()) +
              " safetensors files and no index or param_name_map.json; reading them all as one "
              "checkpoint";
    }
    return OpenUnlistedFolder(dir, std::move(weights), OpenFile);
  }
  return Error(ErrorCode::kUsage,
               weights.empty() ? "folder holds no checkpoint (no index JSON, no weight file)"
                               : "folder holds " + std::to_string(weights.size()) +
                                     " weight files and no index JSON: name one file",
               FileLocation(dir.string()));
}

// A file that is one shard of its folder's index stands for the whole folder.
bool IsListedShard(const fs::path& file) {
  const auto index = FindIndex(file.parent_path().empty() ? fs::path(".") : file.parent_path());
  if (!index || fs::equivalent(*index, file))
    return false;
  const std::string name = file.filename().string();
  // A cheap textual check is enough to decide; the folder reader validates the index fully.
  std::error_code ec;
  if (fs::file_size(*index, ec) > (64u << 20) || ec)
    return false;
  auto mapped = MappedFile::Open(*index);
  return mapped.ok() && AsChars(mapped->bytes()).find("\"" + name + "\"") != std::string::npos;
}

// config.json without its "quantization_config" entry, the rest as it was (key order kept; a file
// without the entry is copied byte for byte). False when it has none.
Result<bool> CopyConfigWithoutQuantization(const fs::path& from, const fs::path& to) {
  std::ifstream in(from, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in)
    return Error(ErrorCode::kIo, "cannot read config", FileLocation(from.string()));
  nlohmann::ordered_json config;
  try {
    config = nlohmann::ordered_json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    return Error(ErrorCode::kCorrupt, std::string("not valid JSON: ") + e.what(),
                 FileLocation(from.string()));
  }
  if (!config.is_object() || !config.contains("quantization_config"))
    return false;
  config.erase("quantization_config");
  std::ofstream out(to, std::ios::binary);
  out << config.dump(2) << "\n";
  out.close();
  if (!out)
    return Error(ErrorCode::kIo, "cannot write into the output folder", FileLocation(to.string()));
  return true;
}

class FolderWriter final : public CheckpointWriter {
 public:
  FolderWriter(OutputDir dir, std::unique_ptr<CheckpointWriter> inner,
               std::vector<std::string> side_files, bool drop_quantization_config)
      : dir_(std::move(dir)),
        inner_(std::move(inner)),
        side_files_(std::move(side_files)),
        drop_quantization_config_(drop_quantization_config) {}
  Status Write(size_t index, uint64_t offset, ByteSpan bytes) override {
    return inner_->Write(index, offset, bytes);
  }
  Status CopyFromFile(size_t index, uint64_t offset, const InputFile& source,
                      uint64_t source_offset, uint64_t size) override {
    return inner_->CopyFromFile(index, offset, source, source_offset, size);
  }
  Status Commit() override {
    CW_RETURN_IF_ERROR(inner_->Commit());
    for (const std::string& file : side_files_) {
      const fs::path target = dir_.staging() / fs::path(file).filename();
      if (fs::exists(target))
        continue;  // a weight-related file of the same name wins
      if (drop_quantization_config_ && fs::path(file).filename() == "config.json") {
        CW_ASSIGN_OR_RETURN(const bool rewritten, CopyConfigWithoutQuantization(file, target));
        if (rewritten)
          continue;
      }
      std::error_code ec;
      fs::copy_file(file, target, ec);
      if (ec) {
        return Error(ErrorCode::kIo, "cannot copy into the output folder: " + ec.message(),
                     FileLocation(file));
      }
    }
    return dir_.Commit();
  }

 private:
  OutputDir dir_;
  std::unique_ptr<CheckpointWriter> inner_;
  std::vector<std::string> side_files_;
  bool drop_quantization_config_ = false;
};

// A file or folder that is not a distributed checkpoint.
Result<std::unique_ptr<CheckpointReader>> OpenPlain(const fs::path& path, const fs::file_status& st,
                                                    std::string* note) {
  if (fs::is_directory(st))
    return OpenFolder(path, note);
  if (EndsWith(path.filename().string(), ".index.json") || path.filename() == kParamNameMapName)
    return OpenShardedFolder(path, OpenFile);
  if (IsListedShard(path)) {
    if (note != nullptr)
      *note = "input is one shard of a sharded folder; reading the whole folder";
    return OpenFolder(path.parent_path().empty() ? fs::path(".") : path.parent_path(), nullptr);
  }
  return OpenFile(path);
}

}  // namespace

std::optional<FileFormat> SniffFormat(ByteSpan bytes) { return Sniff(bytes); }

Result<std::unique_ptr<CheckpointReader>> OpenCheckpoint(const fs::path& path, std::string* note) {
  std::vector<std::string> notes;
  auto reader = OpenCheckpoint(path, OpenOptions(), &notes);
  if (note != nullptr) {
    for (const std::string& n : notes)
      *note += (note->empty() ? "" : "; ") + n;
  }
  return reader;
}

Result<std::unique_ptr<CheckpointReader>> OpenCheckpoint(const fs::path& path,
                                                         const OpenOptions& options,
                                                         std::vector<std::string>* notes) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) {
    return Error(ErrorCode::kIo, "no such file or folder", FileLocation(path.string()));
  }
  // A folder of rank folders is one checkpoint, whatever else it holds (its strategy file ends in
  // .ckpt too).
  if (fs::is_directory(st) && distributed::IsDistributedFolder(path))
    return distributed::OpenDistributedCheckpoint(path, options.distributed, OpenFile, notes);
  if (!options.distributed.strategy.empty()) {
    return Error(ErrorCode::kUsage,
                 "--strategy is for a distributed checkpoint, a folder of rank_<r>/ folders",
                 FileLocation(path.string()));
  }
  std::string note;
  Result<std::unique_ptr<CheckpointReader>> reader = OpenPlain(path, st, &note);
  if (notes != nullptr && !note.empty())
    notes->push_back(note);
  return reader;
}

Result<OutputKind> OutputKindFor(const fs::path& path) {
  const std::string s = path.string();
  if (!s.empty() && s.back() == '/')
    return OutputKind::kSafetensorsFolder;
  std::error_code ec;
  if (fs::is_directory(path, ec))
    return OutputKind::kSafetensorsFolder;
  if (auto format = FormatFromExtension(path)) {
    switch (*format) {
      case FileFormat::kSafetensors:
        return OutputKind::kSafetensorsFile;
      case FileFormat::kTorch:
        return OutputKind::kTorchFile;
      case FileFormat::kMindSpore:
        return OutputKind::kMindSporeFile;
    }
  }
  return Error(ErrorCode::kUsage,
               "cannot tell the output format from the name: use .ckpt, .safetensors, .bin, .pth "
               "or .pt, or a folder (an existing one, or a path ending in '/')",
               FileLocation(s));
}

Result<std::unique_ptr<CheckpointWriter>> CreateCheckpointWriter(const fs::path& path,
                                                                 std::vector<TensorInfo> tensors,
                                                                 const WriterOptions& options) {
  CW_ASSIGN_OR_RETURN(const OutputKind kind, OutputKindFor(path));
  if (kind == OutputKind::kSafetensorsFolder) {
    CW_ASSIGN_OR_RETURN(OutputDir dir, OutputDir::Create(path, options.replace_existing));
    // The layout of the folder (HF index or MindFormers' param_name_map.json) is the options'.
    CW_ASSIGN_OR_RETURN(auto inner,
                        CreateShardedSafetensorsWriter(dir.staging(), std::move(tensors), options));
    return std::unique_ptr<CheckpointWriter>(std::make_unique<FolderWriter>(
        std::move(dir), std::move(inner), options.side_files, options.drop_quantization_config));
  }
  CW_ASSIGN_OR_RETURN(OutputFile out, OutputFile::Create(path, options.replace_existing));
  switch (kind) {
    case OutputKind::kSafetensorsFile:
      return safetensors::CreateWriter(std::move(out), std::move(tensors), options);
    case OutputKind::kTorchFile:
      return pytorch::CreateWriter(std::move(out), std::move(tensors), options);
    case OutputKind::kMindSporeFile:
      return mindspore::CreateWriter(std::move(out), std::move(tensors), options);
    case OutputKind::kSafetensorsFolder:
      break;
  }
  return Error(ErrorCode::kInternal, "unhandled output kind", FileLocation(path.string()));
}

Status CopyAllTensors(const CheckpointReader& reader, CheckpointWriter& writer) {
  for (size_t i = 0; i < reader.tensors().size(); ++i) {
    CW_ASSIGN_OR_RETURN(const TensorData data, reader.Read(i));
    CW_RETURN_IF_ERROR(writer.Write(i, 0, data.bytes()));
  }
  return OkStatus();
}

}  // namespace cw
