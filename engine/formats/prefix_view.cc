#include "engine/formats/prefix_view.h"

namespace cw {
namespace {

class PrefixView final : public CheckpointReader {
 public:
  PrefixView(std::unique_ptr<CheckpointReader> inner, const std::string& prefix)
      : inner_(std::move(inner)) {
    skipped_ = inner_->skipped();
    for (size_t i = 0; i < inner_->tensors().size(); ++i) {
      const TensorInfo& t = inner_->tensors()[i];
      if (t.name.rfind(prefix, 0) == 0) {
        TensorInfo renamed = t;
        renamed.name = t.name.substr(prefix.size());
        tensors_.push_back(std::move(renamed));
        index_.push_back(i);
      } else {
        skipped_.push_back({t.name, "tensor outside \"" + prefix.substr(0, prefix.size() - 1) +
                                        "\", not converted"});
      }
    }
  }

  FileFormat format() const override { return inner_->format(); }
  const std::vector<TensorInfo>& tensors() const override { return tensors_; }
  Result<TensorData> Read(size_t index) const override { return inner_->Read(index_[index]); }
  const std::string& FileOf(size_t index) const override { return inner_->FileOf(index_[index]); }
  const std::vector<SkippedValue>& skipped() const override { return skipped_; }
  const std::map<std::string, std::string>& metadata() const override { return inner_->metadata(); }
  std::vector<FileExtent> Extents(size_t index) const override {
    return inner_->Extents(index_[index]);
  }

 private:
  std::unique_ptr<CheckpointReader> inner_;
  std::vector<TensorInfo> tensors_;
  std::vector<size_t> index_;  // tensors_[i] is inner_->tensors()[index_[i]]
  std::vector<SkippedValue> skipped_;
};

}  // namespace

std::unique_ptr<CheckpointReader> ViewUnderKey(std::unique_ptr<CheckpointReader> reader,
                                               const std::string& key) {
  const std::string prefix = key + ".";
  bool nested = false;
  for (const TensorInfo& t : reader->tensors())
    nested = nested || t.name.rfind(prefix, 0) == 0;
  if (!nested)
    return reader;
  return std::make_unique<PrefixView>(std::move(reader), prefix);
}

}  // namespace cw
