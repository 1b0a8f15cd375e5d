#include "engine/plan/round_trip.h"

#include <algorithm>
#include <map>
#include <set>

#include "engine/plan/planner.h"

namespace cw {
namespace {

constexpr size_t kMaxListed = 20;

std::string Describe(const TensorInfo& t) {
  return t.name + " " + std::string(Name(t.dtype)) + " " + ShapeToString(t.shape);
}

void Report(std::vector<Error>& out, const RuleSet& rules, const std::string& what,
            const std::vector<std::string>& items) {
  if (items.empty())
    return;
  std::string message =
      "round trip hf -> ms -> hf " + what + " (" + std::to_string(items.size()) + "):";
  for (size_t i = 0; i < items.size() && i < kMaxListed; ++i)
    message += "\n    " + items[i];
  if (items.size() > kMaxListed)
    message += "\n    ... and " + std::to_string(items.size() - kMaxListed) + " more";
  out.emplace_back(ErrorCode::kPlanInvalid, message, FileLocation(rules.file));
}

void ReportLossy(std::vector<Error>& out, const Plan& plan) {
  for (const PlanStep& s : plan.steps) {
    if (!s.lossy)
      continue;
    const std::string name = s.outputs.empty() ? "" : s.outputs[0].name;
    out.emplace_back(ErrorCode::kPlanInvalid,
                     std::string(DirectionName(plan.direction)) + " step writing " + name +
                         " is lossy: " + s.lossy_reason,
                     s.rule);
  }
}

}  // namespace

std::vector<Error> CheckRoundTrip(const RuleSet& rules, const std::vector<TensorInfo>& inventory,
                                  const ParamInputs& params) {
  std::vector<Error> out;
  PlanOptions options;
  options.params = params;
  PlanOutcome forward = CompilePlan(rules, inventory, options);
  for (Error& e : forward.errors)
    out.push_back(std::move(e).With("planning forward (hf -> ms) on the checkpoint"));
  if (!forward.plan)
    return out;
  options.direction = Direction::kReverse;
  options.params.detected = forward.plan->detected;
  PlanOutcome reverse = CompilePlan(rules, forward.plan->Outputs(), options);
  for (Error& e : reverse.errors)
    out.push_back(std::move(e).With("planning reverse (ms -> hf) on the forward outputs"));
  if (!reverse.plan)
    return out;
  ReportLossy(out, *forward.plan);
  ReportLossy(out, *reverse.plan);

  // Inputs dropped forward, by drop rules or by tied rules without an ms side (checked equal
  // to the tensor they duplicate), do not come back; nor do the block scales of dequantised FP8
  // weights, which come back as bfloat16. copy_of copies are left out forward but written again
  // by the reverse: they must come back.
  std::set<uint64_t> dropped;
  for (const DroppedInput& d : forward.plan->dropped) {
    if (!d.restored)
      dropped.insert(d.input);
  }
  std::vector<TensorInfo> dequantized;
  for (const PlanStep& s : forward.plan->steps) {
    const bool dequantize = std::any_of(s.ops.begin(), s.ops.end(), [](const PrimitiveOp& op) {
      return op.kind == PrimitiveOp::Kind::kDequantize;
    });
    for (uint64_t i : dequantize ? s.inputs : std::vector<uint64_t>{}) {
      dropped.insert(i);
      if (inventory[i].dtype == DType::kF8E4M3) {
        dequantized.push_back(inventory[i]);
        dequantized.back().dtype = DType::kBF16;
      }
    }
  }
  std::map<std::string, const TensorInfo*> expected, back;
  for (uint64_t i = 0; i < inventory.size(); ++i) {
    if (!dropped.count(i))
      expected[inventory[i].name] = &inventory[i];
  }
  for (const TensorInfo& t : dequantized)
    expected[t.name] = &t;
  const std::vector<TensorInfo> outputs = reverse.plan->Outputs();
  for (const TensorInfo& t : outputs)
    back[t.name] = &t;
  std::vector<std::string> missing, extra, changed;
  for (const auto& [name, t] : expected) {
    const auto it = back.find(name);
    if (it == back.end())
      missing.push_back(Describe(*t));
    else if (it->second->dtype != t->dtype || it->second->shape != t->shape)
      changed.push_back(Describe(*t) + " comes back as " + std::string(Name(it->second->dtype)) +
                        " " + ShapeToString(it->second->shape));
  }
  for (const auto& [name, t] : back) {
    if (!expected.count(name))
      extra.push_back(Describe(*t));
  }
  Report(out, rules, "loses tensors", missing);
  Report(out, rules, "adds tensors", extra);
  Report(out, rules, "changes tensors", changed);
  return out;
}

}  // namespace cw
