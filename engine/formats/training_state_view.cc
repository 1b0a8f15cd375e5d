#include "engine/formats/training_state_view.h"

#include "engine/formats/mindspore/training_state.h"
#include "engine/formats/subset_view.h"

namespace cw {

std::unique_ptr<CheckpointReader> WithoutTrainingState(std::unique_ptr<CheckpointReader> reader,
                                                       std::vector<DroppedKind>* dropped) {
  std::vector<size_t> kept;
  std::vector<TensorInfo> shown;
  std::vector<DroppedKind> kinds;
  for (size_t i = 0; i < reader->tensors().size(); ++i) {
    const TensorInfo& t = reader->tensors()[i];
    const std::string_view kind = mindspore::TrainingStateKind(t.name);
    if (kind.empty()) {
      kept.push_back(i);
      shown.push_back(t);
      continue;
    }
    auto it = kinds.begin();
    while (it != kinds.end() && it->kind != kind)
      ++it;
    if (it == kinds.end())
      it = kinds.insert(kinds.end(), DroppedKind{std::string(kind), 0, 0});
    it->tensors++;
    it->bytes += t.byte_size;
  }
  if (dropped != nullptr)
    *dropped = kinds;
  if (kinds.empty())
    return reader;
  std::vector<SkippedValue> skipped = reader->skipped();
  return SubsetView(std::move(reader), std::move(kept), std::move(shown), std::move(skipped));
}

}  // namespace cw
