#include "engine/formats/mindspore/training_state.h"

#include <array>

namespace cw::mindspore {
namespace {

// Prefixes MindSpore's optimizers give the copies of the parameters they keep
// (Parameter.clone(prefix=...) in mindspore/nn/optim and MindFormers' optimizers).
constexpr std::array<std::string_view, 11> kPrefixKinds = {
    "adam_m", "adam_v", "moment1",     "moment2",   "moments",   "lamb_m",
    "lamb_v", "accum",  "mean_square", "mean_grad", "accu_grads"};

// Scalars of the training loop and the loss scaler, saved by every rank.
constexpr std::array<std::string_view, 10> kScalarNames = {"global_step",
                                                           "learning_rate",
                                                           "beta1_power",
                                                           "beta2_power",
                                                           "current_iterator_step",
                                                           "last_overflow_iterator_step",
                                                           "epoch_num",
                                                           "step_num",
                                                           "loss_scale",
                                                           "scale_sense"};

}  // namespace

std::string_view TrainingStateKind(std::string_view name) {
  for (const std::string_view kind : kPrefixKinds) {
    if (name.size() > kind.size() + 1 && name.starts_with(kind) && name[kind.size()] == '.')
      return kind;
  }
  for (const std::string_view scalar : kScalarNames) {
    if (name == scalar)
      return "training scalars";
  }
  return {};
}

}  // namespace cw::mindspore
