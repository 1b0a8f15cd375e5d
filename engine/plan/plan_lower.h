// Internal to the plan module: lowering a rule's op chain, for one group of concrete input
// shapes, to primitive ops with concrete numbers, checking every op's shape arithmetic.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cw/error.h"
#include "engine/plan/plan.h"
#include "engine/ruleset/expression.h"
#include "engine/ruleset/rule_set.h"

namespace cw {

// One tensor in the list flowing through a chain.
struct ChainValue {
  Shape shape;
  std::string_view label;  // the input name it comes from, for messages; views the inventory
};

// A list position: one tensor, or a run of tensors, one per value of placeholder `over`.
struct ChainSlot {
  std::string over;  // "" for a single tensor
  std::vector<ChainValue> values;
};

struct LoweredChain {
  std::vector<PrimitiveOp> ops;
  std::vector<ChainSlot> outputs;  // slots after the chain, in target-pattern order
  bool lossy = false;
  std::string lossy_reason;
};

// Lowers `chain` (already in the plan's direction) applied to `inputs`, whose elements are of
// `value_dtype`. `lookup` resolves parameters and the group's placeholder values; `over_count`
// gives the declared count of a stack/unstack placeholder (nullopt when it has none or it cannot
// be resolved). Errors are kPlanInvalid located at the op, naming `rule_label`, the tensors and
// their shapes; among them, any tensor along the chain whose byte size does not fit in 64 bits
// (a pad, stack or concat of huge sizes), so that every size an executor computes fits.
Result<LoweredChain> LowerChain(
    const std::vector<OpSpec>& chain, std::vector<ChainSlot> inputs, DType value_dtype,
    const NameLookup& lookup,
    const std::function<std::optional<int64_t>(const std::string&)>& over_count,
    const std::string& rule_label);

}  // namespace cw
