// The planner: rule set + parameters + input inventory -> Plan. Pure: reads no files and no
// tensor bytes, so it serves `plan`, `lint --against`, dry runs and the executor alike.
//
// Checks, each reported as a kPlanInvalid Error naming the rule (file:line:column), tensors and
// shapes (kRuleInvalid for an expression a rule gets wrong, kUsage for bad --set values):
//  - every input is used by exactly one rule (or dropped by a drop rule); unmatched inputs are
//    listed, and a name two rules match names both rules;
//  - every group is complete (all of q/k/v, every expert 0..count-1), and every non-optional
//    rule covers each value of its placeholders (every layer 0..layers-1);
//  - every op's shape arithmetic holds for the concrete shapes (split sizes add up, concat
//    parts agree with the declared sizes, heads divide rows, ...);
//  - the inputs of one step share a dtype; no two steps write the same name.
#pragma once

#include <optional>
#include <vector>

#include "cw/error.h"
#include "engine/plan/plan.h"
#include "engine/ruleset/params.h"
#include "engine/ruleset/rule_set.h"
#include "engine/tensor/tensor.h"

namespace cw {

struct PlanOptions {
  Direction direction = Direction::kForward;
  ParamInputs params;
  // --dtype: the dtype every floating tensor is written in, unless its rule says otherwise.
  std::optional<DType> cast;
};

struct PlanOutcome {
  std::optional<Plan> plan;  // set only when `errors` is empty
  std::vector<Error> errors;
};

// Compiles the plan, collecting every problem found. Forward, `detect` parameters that neither
// --set nor config.json gives are tried in order (docs/rules.md §3): the plan is the first that
// compiles, with the choice in Plan::detected; when none does, the problems are those of the
// choice under which the most inputs match, followed by one naming the values tried.
PlanOutcome CompilePlan(const RuleSet& rules, const std::vector<TensorInfo>& inventory,
                        const PlanOptions& options);

// The plan, or the first problem (its message ends with "(and N more problems)" when there were
// several).
Result<Plan> MakePlan(const RuleSet& rules, const std::vector<TensorInfo>& inventory,
                      const PlanOptions& options);

// Every tensor to itself, unchanged, in the given order: the plan of `merge`, where the reader
// (a distributed checkpoint) does the work.
Plan CopyPlan(const std::vector<TensorInfo>& tensors);

// True when casting `from` to `to` can change a value (a narrowing cast).
bool IsNarrowingCast(DType from, DType to);

}  // namespace cw
