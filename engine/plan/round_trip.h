// `convert_weight lint --against CHECKPOINT`: the rule file checked on a real inventory.
#pragma once

#include <vector>

#include "cw/error.h"
#include "engine/ruleset/params.h"
#include "engine/ruleset/rule_set.h"
#include "engine/tensor/tensor.h"

namespace cw {

// Compiles the forward plan on `inventory` (hf names), then the reverse plan on its outputs, and
// requires the reverse outputs to be exactly the inventory: same names, dtypes and shapes
// (inputs the forward drops, by a drop rule or a tied rule without ms side, are excepted). The
// reverse gets the values the forward detected (`detect` parameters). Also reports every lossy
// step. Returns all
// findings: planning errors of either direction (with "while planning ..." context), then one
// kPlanInvalid error per kind of difference (missing, extra, changed), listing the names.
std::vector<Error> CheckRoundTrip(const RuleSet& rules, const std::vector<TensorInfo>& inventory,
                                  const ParamInputs& params);

}  // namespace cw
