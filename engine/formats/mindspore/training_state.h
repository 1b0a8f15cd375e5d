// Which MindSpore checkpoint values are training state rather than weights: optimizer moments,
// gradient accumulators and the training loop's scalars. A training checkpoint saved by MindSpore
// or MindFormers holds them beside the network's parameters, under names that say their kind:
//   - a prefix before the parameter's own name: adam_m. and adam_v. (AdamWeightDecay, MindFormers'
//     default), moment1. and moment2. (nn.Adam), moments. (Momentum), lamb_m. and lamb_v. (Lamb),
//     accum. (Adagrad), mean_square. and mean_grad. (RMSProp), accu_grads. (gradient accumulation);
//   - whole names: global_step, learning_rate, beta1_power, beta2_power, current_iterator_step,
//     last_overflow_iterator_step, epoch_num, step_num, loss_scale, scale_sense.
// Conversions drop them a whole kind at a time (docs/distributed.md, "Training checkpoints").
#pragma once

#include <string_view>

namespace cw::mindspore {

// The kind of training state `name` is ("adam_m", "accu_grads", "training scalars", ...), or ""
// for anything else (a weight).
std::string_view TrainingStateKind(std::string_view name);

}  // namespace cw::mindspore
