// Internal to the plan module: the state of one CompilePlan run, shared by its stages
// (rule selection and matching in plan_match.cc, steps in plan_steps.cc).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/plan/plan.h"
#include "engine/plan/planner.h"
#include "engine/ruleset/params.h"
#include "engine/ruleset/pattern.h"
#include "engine/ruleset/shape_flow.h"

namespace cw {

// A rule taking part in this plan (its `when`, if it reads only parameters, holds).
struct ActiveRule {
  size_t index = 0;  // in RuleSet::rules
  const Rule* rule = nullptr;
  std::vector<PatternMatcher> sources;  // compiled source-side patterns
  std::string over;                     // the stack/unstack placeholder, "" if none
  bool optional = false;
  bool tied = false;                      // a tied rule whose condition holds
  bool copy_of = false;                   // a copy_of rule (forward: checked equal, not written)
  bool when_per_match = false;            // `when` reads placeholders: evaluated for each match
  std::vector<std::string> placeholders;  // of the source side, in order, `over` excluded
  // The shape each source pattern's tensors must have: declared on the source side, or carried
  // from the target side's declaration through the chain; nullopt where neither says.
  std::vector<std::optional<DerivedShape>> source_shapes;
  bool source_shapes_declared = false;  // declared on the source side, not carried
};

struct InputMatch {
  size_t active = 0;   // index into PlanContext::active
  size_t pattern = 0;  // index into the rule's source patterns
  Bindings bindings;
};

// The inputs of one rule instance: one entry per source pattern, mapping the value of `over`
// (or -1 when the pattern does not gather) to the input index.
struct Group {
  size_t active = 0;
  Bindings key;
  std::vector<std::map<int64_t, uint64_t>> members;
  uint64_t first_input = 0;
};

struct PlanContext {
  PlanContext(const RuleSet& r, const std::vector<TensorInfo>& inv, const PlanOptions& o)
      : rules(r), inventory(inv), options(o), params(r, o.params) {}

  const RuleSet& rules;
  const std::vector<TensorInfo>& inventory;
  const PlanOptions& options;
  ParamResolver params;
  Side source = Side::kHf;
  Side target = Side::kMs;
  std::map<std::string, std::string> param_text;  // `${param}` values for patterns
  std::vector<ActiveRule> active;
  std::vector<Error> errors;
  // Problems that matter only if some input is left unmatched: an optional rule whose pattern
  // needs a parameter without a value matches nothing (docs/rules.md §4).
  std::vector<Error> deferred;
  std::vector<std::string> notes;
  std::map<std::string, std::optional<int64_t>> counts;  // placeholder counts, once resolved
  // Matches of inputs two rules claim (already reported): coverage counts them as present, so
  // that the ambiguity is not reported again as a missing tensor.
  std::vector<InputMatch> ambiguous;
  // Placeholder tuples the coverage checks have enumerated so far (plan_groups.cc caps them).
  uint64_t coverage_nodes = 0;
  // Inputs that do not have the shape their rule declares (already reported): no step is made
  // for them, as its op checks would only repeat the problem.
  std::set<uint64_t> misshapen;
  // Forward with the rule set's hf_layout.fp8_scales: per FP8 input, the input holding its block
  // scale; the scales are consumed by the steps of their weights, matched by no rule.
  std::map<uint64_t, uint64_t> fp8_scale_of;
  std::set<uint64_t> fp8_scales;

  void Fail(ErrorCode code, const std::string& message, const Location& where) {
    errors.emplace_back(code, message, where);
  }
  void Add(Error e) { errors.push_back(std::move(e)); }
  // The declared count of an int placeholder, nullopt when it has none or it is unresolvable
  // (then a note says coverage checks only that the values seen are contiguous from 0).
  std::optional<int64_t> Count(const std::string& placeholder);
  // Resolves `${param}` texts of `patterns`; false (with an error) when one is missing.
  bool ResolvePatternParams(const std::vector<NamePattern>& patterns, const Location& where);
  // The same without recording the problem: the error naming the parameter without a value and
  // the pattern of the rule at `where` that needs it, or nullopt when all are resolved.
  std::optional<Error> MissingPatternParam(const std::vector<NamePattern>& patterns,
                                           const Location& where);
};

// Stage 1: the rules active in this direction, with compiled source patterns.
void SelectRules(PlanContext& ctx);
// Before stage 2: pairs FP8 weights with their block scales (plan_fp8.cc); an FP8 weight
// without its scale is an error.
void PairFp8Scales(PlanContext& ctx);
// Stage 2: for each input, the one rule instance it belongs to (nullopt when unmatched, with the
// problem recorded).
std::vector<std::optional<InputMatch>> MatchInputs(PlanContext& ctx);
// Before stage 1, when parameters that shapes mention have no value from --set, config.json or
// detection: their values read off the shapes of the inputs that match (plan_shapes.cc).
std::vector<SolvedParam> SolveShapes(const RuleSet& rules, const std::vector<TensorInfo>& inventory,
                                     const PlanOptions& options);
// After stage 2: every matched input against the shape its rule declares for it.
void CheckSourceShapes(PlanContext& ctx, const std::vector<std::optional<InputMatch>>& matches);
// In stage 4: an output against the shape its rule declares on the target side (a rule file
// whose ops and declarations disagree). False (with the problem recorded) on a mismatch.
bool CheckTargetShape(PlanContext& ctx, const Rule& rule, size_t pattern, const Bindings& bound,
                      const TensorInfo& output);
// Stage 3: groups by rule and placeholder values, checked complete; coverage of every
// non-optional rule checked. Drop-rule inputs are appended to `dropped`.
std::vector<Group> BuildGroups(PlanContext& ctx,
                               const std::vector<std::optional<InputMatch>>& matches,
                               std::vector<DroppedInput>& dropped);
// Before stage 1: parameters with `count_of` for the source side that --set and config.json do
// not give, counted from the input names (plan_count.cc).
std::vector<SolvedParam> CountNames(const RuleSet& rules, const std::vector<TensorInfo>& inventory,
                                    const PlanOptions& options);
// Stage 4: steps for the groups (with tied copies and checks), in input order; fills `plan`.
void BuildSteps(PlanContext& ctx, const std::vector<Group>& groups, Plan& plan);

}  // namespace cw
