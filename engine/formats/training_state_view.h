// A view of a MindSpore checkpoint without its training state (optimizer moments, gradient
// accumulators, the training loop's scalars: mindspore/training_state.h), which no conversion to
// a network's weights uses. Kinds are dropped whole: every adam_m.* tensor, never some of them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/formats/checkpoint.h"

namespace cw {

struct DroppedKind {
  std::string kind;  // "adam_m", "training scalars", ...
  uint64_t tensors = 0;
  uint64_t bytes = 0;
};

// The tensors of `reader` that are not training state; `dropped` receives each kind left out, in
// order of first appearance. Returns `reader` itself when it holds no training state.
std::unique_ptr<CheckpointReader> WithoutTrainingState(std::unique_ptr<CheckpointReader> reader,
                                                       std::vector<DroppedKind>* dropped);

}  // namespace cw
