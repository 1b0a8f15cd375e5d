#include "engine/plan/planner.h"

#include <set>

#include "engine/plan/plan_context.h"

namespace cw {
namespace {

bool IsEightBitFloat(DType d) { return d == DType::kF8E4M3 || d == DType::kF8E5M2; }

void AddNotes(PlanContext& ctx, Plan& plan) {
  for (const auto& [name, r] : ctx.params.resolved())
    plan.notes.push_back("parameter " + name + " = " + r.value.ToString() + " (" + r.source + ")");
  for (std::string& n : ctx.notes)
    plan.notes.push_back(std::move(n));
  size_t lossy_steps = 0, dropped = 0;
  for (const PlanStep& s : plan.steps)
    lossy_steps += s.lossy ? 1 : 0;
  for (const DroppedInput& d : plan.dropped)
    dropped += d.checked_equal ? 0 : 1;
  if (dropped > 0) {
    plan.lossy = true;
    plan.notes.push_back(std::to_string(dropped) + " input tensor(s) are dropped by drop rules");
  }
  if (lossy_steps > 0)
    plan.notes.push_back(std::to_string(lossy_steps) + " step(s) lose information (marked lossy)");
}

}  // namespace

bool IsNarrowingCast(DType from, DType to) {
  if (from == to || !IsFloat(from) || !IsFloat(to))
    return false;
  switch (to) {
    case DType::kF64:
      return false;
    case DType::kF32:
      return from == DType::kF64;
    case DType::kF16:
    case DType::kBF16:
      return !IsEightBitFloat(from);
    default:
      return true;
  }
}

std::vector<TensorInfo> Plan::Outputs() const {
  std::vector<TensorInfo> out;
  for (const PlanStep& s : steps)
    out.insert(out.end(), s.outputs.begin(), s.outputs.end());
  return out;
}

PlanOutcome CompilePlan(const RuleSet& rules, const std::vector<TensorInfo>& inventory,
                        const PlanOptions& options) {
  PlanOutcome out;
  PlanContext ctx(rules, inventory, options);
  if (Status s = ctx.params.CheckInputs(); !s.ok()) {
    out.errors.push_back(std::move(s).error());
    return out;
  }
  Plan plan;
  plan.direction = options.direction;
  plan.rule_file = rules.file;
  plan.inventory = inventory;
  plan.cast = options.cast;
  SelectRules(ctx);
  const auto matches = MatchInputs(ctx);
  const std::vector<Group> groups = BuildGroups(ctx, matches, plan.dropped);
  BuildSteps(ctx, groups, plan);
  AddNotes(ctx, plan);
  // A parameter that cannot be resolved fails every group that needs it: report it once.
  std::set<std::string> seen;
  for (Error& e : ctx.errors) {
    if (seen.insert(e.ToString()).second)
      out.errors.push_back(std::move(e));
  }
  if (out.errors.empty())
    out.plan = std::move(plan);
  return out;
}

Result<Plan> MakePlan(const RuleSet& rules, const std::vector<TensorInfo>& inventory,
                      const PlanOptions& options) {
  PlanOutcome outcome = CompilePlan(rules, inventory, options);
  if (outcome.errors.empty())
    return std::move(*outcome.plan);
  Error first = std::move(outcome.errors.front());
  if (outcome.errors.size() == 1)
    return first;
  std::string message = first.message();
  for (size_t i = 1; i < outcome.errors.size(); ++i)
    message += "\n" + outcome.errors[i].ToString();
  return Error(first.code(), message + "\n(" + std::to_string(outcome.errors.size()) + " problems)",
               first.where());
}

}  // namespace cw
