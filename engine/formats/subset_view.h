// A checkpoint that shows some of another's tensors, possibly under other names: the common part
// of the views that leave tensors out (prefix_view.h, training_state_view.h).
#pragma once

#include <memory>
#include <vector>

#include "engine/formats/checkpoint.h"

namespace cw {

// `shown[i]` is `inner`'s tensor `kept[i]` as the view lists it (same dtype, shape and bytes;
// the name may differ); `skipped` replaces inner's skipped().
std::unique_ptr<CheckpointReader> SubsetView(std::unique_ptr<CheckpointReader> inner,
                                             std::vector<size_t> kept,
                                             std::vector<TensorInfo> shown,
                                             std::vector<SkippedValue> skipped);

}  // namespace cw
