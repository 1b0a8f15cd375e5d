#include "engine/formats/pytorch/pytorch_writer.h"

#include <algorithm>
#include <filesystem>
#include <string>
#include <string_view>

#include "engine/base/limits.h"
#include "engine/formats/common/write_tracker.h"
#include "engine/formats/pytorch/pickle_writer.h"
#include "engine/formats/pytorch/zip_writer.h"

namespace cw::pytorch {
namespace {

constexpr std::string_view kByteOrder = "little";
constexpr std::string_view kVersion = "3\n";
// Entry order: data.pkl, byteorder, data/0 .. data/N-1, version (docs/formats/torch-writer.md,
// 'Records').
constexpr size_t kPickleEntry = 0;
constexpr size_t kByteOrderEntry = 1;
constexpr size_t kFirstTensorEntry = 2;

// CRC-32s of the records written at creation.
struct RecordCrcs {
  uint32_t pickle = 0;
  uint32_t byte_order = 0;
  uint32_t version = 0;
};

// torch names the folder after the file; a name that generic zip tools or torch's prefix lookup
// could misread ("..", non-ASCII, backslashes) is replaced by torch's own fallback.
std::string ArchivePrefix(const std::filesystem::path& target) {
  std::string stem = target.stem().string();
  const bool plain = std::all_of(stem.begin(), stem.end(),
                                 [](char c) { return c >= 0x20 && c <= 0x7E && c != '\\'; });
  if (stem.empty() || stem == "." || stem == ".." || !plain)
    return "archive";
  return stem;
}

class TorchWriter final : public CheckpointWriter {
 public:
  TorchWriter(std::vector<TensorInfo> tensors, ZipWriter zip, RecordCrcs record_crcs)
      : tensors_(std::move(tensors)),
        tracker_(tensors_),
        zip_(std::move(zip)),
        record_crcs_(record_crcs) {}

  Status Write(size_t index, uint64_t offset, ByteSpan bytes) override {
    CW_RETURN_IF_ERROR(tracker_.Record(index, offset, bytes, /*with_crc=*/true));
    return zip_.Write(kFirstTensorEntry + index, offset, bytes);
  }

  Status Commit() override {
    auto tensor_crcs = tracker_.Finish();
    if (!tensor_crcs.ok())
      return std::move(tensor_crcs).error().InFile(zip_.file().target().string());
    std::vector<uint32_t> crcs = {record_crcs_.pickle, record_crcs_.byte_order};
    crcs.insert(crcs.end(), tensor_crcs->begin(), tensor_crcs->end());
    crcs.push_back(record_crcs_.version);
    return zip_.Commit(crcs);
  }

 private:
  std::vector<TensorInfo> tensors_;
  WriteTracker tracker_;  // refers to tensors_
  ZipWriter zip_;
  RecordCrcs record_crcs_;
};

Status CheckTensors(const std::vector<TensorInfo>& tensors) {
  if (tensors.size() > limits::kMaxTensorCount) {
    return Error(ErrorCode::kLimitExceeded, std::to_string(tensors.size()) +
                                                " tensors is over the cap of " +
                                                std::to_string(limits::kMaxTensorCount));
  }
  for (const TensorInfo& t : tensors) {
    if (ByteSize(t.dtype, t.shape) != t.byte_size) {
      return Error(ErrorCode::kInternal, "tensor \"" + t.name + "\" of " +
                                             std::string(Name(t.dtype)) + " " +
                                             ShapeToString(t.shape) + " claims " +
                                             std::to_string(t.byte_size) + " bytes");
    }
  }
  return OkStatus();
}

Result<ZipLayout> ArchiveLayout(const std::string& prefix, const std::vector<TensorInfo>& tensors,
                                uint64_t pickle_bytes) {
  std::vector<ZipEntrySpec> entries;
  entries.reserve(tensors.size() + 3);
  entries.push_back({prefix + "/data.pkl", pickle_bytes});
  entries.push_back({prefix + "/byteorder", kByteOrder.size()});
  for (size_t i = 0; i < tensors.size(); ++i)
    entries.push_back({prefix + "/data/" + StorageKey(i), tensors[i].byte_size});
  entries.push_back({prefix + "/version", kVersion.size()});
  return ZipLayout::Compute(std::move(entries));
}

Result<std::unique_ptr<CheckpointWriter>> Create(OutputFile out, std::vector<TensorInfo> tensors,
                                                 const WriterOptions& options) {
  CW_RETURN_IF_ERROR(CheckTensors(tensors));
  CW_ASSIGN_OR_RETURN(const std::string pickle, StateDictPickle(tensors, options.torch_root_key));
  CW_ASSIGN_OR_RETURN(ZipLayout layout,
                      ArchiveLayout(ArchivePrefix(out.target()), tensors, pickle.size()));
  CW_ASSIGN_OR_RETURN(ZipWriter zip, ZipWriter::Create(std::move(out), std::move(layout)));
  const size_t version_entry = kFirstTensorEntry + tensors.size();
  CW_RETURN_IF_ERROR(zip.Write(kPickleEntry, 0, AsBytes(pickle)));
  CW_RETURN_IF_ERROR(zip.Write(kByteOrderEntry, 0, AsBytes(kByteOrder)));
  CW_RETURN_IF_ERROR(zip.Write(version_entry, 0, AsBytes(kVersion)));
  const RecordCrcs crcs = {Crc32(AsBytes(pickle)), Crc32(AsBytes(kByteOrder)),
                           Crc32(AsBytes(kVersion))};
  return std::unique_ptr<CheckpointWriter>(
      std::make_unique<TorchWriter>(std::move(tensors), std::move(zip), crcs));
}

}  // namespace

Result<std::unique_ptr<CheckpointWriter>> CreateWriter(OutputFile out,
                                                       std::vector<TensorInfo> tensors,
                                                       const WriterOptions& options) {
  const std::string target = out.target().string();
  auto writer = Create(std::move(out), std::move(tensors), options);
  if (!writer.ok())
    return std::move(writer).error().InFile(target);
  return writer;
}

}  // namespace cw::pytorch
