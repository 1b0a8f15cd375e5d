#include "engine/formats/subset_view.h"

namespace cw {
namespace {

class Subset final : public CheckpointReader {
 public:
  Subset(std::unique_ptr<CheckpointReader> inner, std::vector<size_t> kept,
         std::vector<TensorInfo> shown, std::vector<SkippedValue> skipped)
      : inner_(std::move(inner)),
        index_(std::move(kept)),
        tensors_(std::move(shown)),
        skipped_(std::move(skipped)) {}

  FileFormat format() const override { return inner_->format(); }
  const std::vector<TensorInfo>& tensors() const override { return tensors_; }
  Result<TensorData> Read(size_t index) const override { return inner_->Read(index_[index]); }
  const std::string& FileOf(size_t index) const override { return inner_->FileOf(index_[index]); }
  const std::vector<SkippedValue>& skipped() const override { return skipped_; }
  const std::map<std::string, std::string>& metadata() const override { return inner_->metadata(); }
  std::vector<FileExtent> Extents(size_t index) const override {
    return inner_->Extents(index_[index]);
  }
  Status ReadRange(size_t index, uint64_t offset, MutableByteSpan out) const override {
    return inner_->ReadRange(index_[index], offset, out);
  }
  Status Verify(size_t index) const override { return inner_->Verify(index_[index]); }

 private:
  std::unique_ptr<CheckpointReader> inner_;
  std::vector<size_t> index_;  // tensors_[i] is inner_->tensors()[index_[i]]
  std::vector<TensorInfo> tensors_;
  std::vector<SkippedValue> skipped_;
};

}  // namespace

std::unique_ptr<CheckpointReader> SubsetView(std::unique_ptr<CheckpointReader> inner,
                                             std::vector<size_t> kept,
                                             std::vector<TensorInfo> shown,
                                             std::vector<SkippedValue> skipped) {
  return std::make_unique<Subset>(std::move(inner), std::move(kept), std::move(shown),
                                  std::move(skipped));
}

}  // namespace cw
