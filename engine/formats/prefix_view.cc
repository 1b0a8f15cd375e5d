#include "engine/formats/prefix_view.h"

#include "engine/formats/subset_view.h"

namespace cw {

std::unique_ptr<CheckpointReader> ViewUnderKey(std::unique_ptr<CheckpointReader> reader,
                                               const std::string& key) {
  const std::string prefix = key + ".";
  std::vector<size_t> kept;
  std::vector<TensorInfo> shown;
  std::vector<SkippedValue> skipped = reader->skipped();
  for (size_t i = 0; i < reader->tensors().size(); ++i) {
    const TensorInfo& t = reader->tensors()[i];
    if (t.name.rfind(prefix, 0) == 0) {
      TensorInfo renamed = t;
      renamed.name = t.name.substr(prefix.size());
      shown.push_back(std::move(renamed));
      kept.push_back(i);
    } else {
      skipped.push_back({t.name, "tensor outside \"" + key + "\", not converted"});
    }
  }
  if (kept.empty())
    return reader;
  return SubsetView(std::move(reader), std::move(kept), std::move(shown), std::move(skipped));
}

}  // namespace cw
