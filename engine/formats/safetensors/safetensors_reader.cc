#include "engine/formats/safetensors/safetensors_reader.h"

#include <utility>
#include <vector>

#include "engine/formats/safetensors/safetensors_header.h"

namespace cw::safetensors {
namespace {

class Reader final : public CheckpointReader {
 public:
  Reader(MappedFile file, SafetensorsLayout layout)
      : file_(std::move(file)),
        data_file_offset_(layout.data_file_offset),
        metadata_(std::move(layout.metadata)) {
    tensors_.reserve(layout.tensors.size());
    data_offsets_.reserve(layout.tensors.size());
    for (SafetensorsEntry& entry : layout.tensors) {
      tensors_.push_back(std::move(entry.info));
      data_offsets_.push_back(entry.data_offset);
    }
  }

  FileFormat format() const override { return FileFormat::kSafetensors; }
  const std::vector<TensorInfo>& tensors() const override { return tensors_; }
  // ParseSafetensors proved that every tensor lies inside the file, so no check is needed here.
  Result<TensorData> Read(size_t index) const override {
    return TensorData::Borrow(
        file_.bytes().subspan(data_file_offset_ + data_offsets_[index], tensors_[index].byte_size));
  }
  const std::string& FileOf(size_t /*index*/) const override { return file_.path(); }
  const std::vector<SkippedValue>& skipped() const override { return skipped_; }
  const std::map<std::string, std::string>& metadata() const override { return metadata_; }
  std::vector<FileExtent> Extents(size_t index) const override {
    return {{data_file_offset_ + data_offsets_[index], tensors_[index].byte_size}};
  }

 private:
  MappedFile file_;  // the mapping does not move with the object, so views stay valid
  uint64_t data_file_offset_;
  std::vector<TensorInfo> tensors_;
  std::vector<uint64_t> data_offsets_;  // relative to the data section, parallel to tensors_
  std::vector<SkippedValue> skipped_;   // safetensors holds tensors only
  std::map<std::string, std::string> metadata_;
};

}  // namespace

Result<std::unique_ptr<CheckpointReader>> OpenReader(MappedFile file) {
  CW_ASSIGN_OR_RETURN(SafetensorsLayout layout, ParseSafetensors(file.bytes(), file.path()));
  return std::unique_ptr<CheckpointReader>(
      std::make_unique<Reader>(std::move(file), std::move(layout)));
}

}  // namespace cw::safetensors
