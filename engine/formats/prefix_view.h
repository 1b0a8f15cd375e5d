// A view of a checkpoint that shows only the tensors nested under one top-level key.
//
// timm/MAE/Swin .pth files hold the state dict under "model" next to training state ("optimizer",
// "epoch", ...); the torch reader flattens nested dicts with ".", so the weights arrive as
// "model.blocks.0...". The view lists those tensors without the "model." prefix and reports every
// other tensor in skipped().
#pragma once

#include <memory>
#include <string>

#include "engine/formats/checkpoint.h"

namespace cw {

// The tensors of `reader` whose names start with `key` + ".", renamed without that prefix. When
// no tensor is nested under `key`, returns `reader` unchanged (a file saved without the nesting).
std::unique_ptr<CheckpointReader> ViewUnderKey(std::unique_ptr<CheckpointReader> reader,
                                               const std::string& key);

}  // namespace cw
