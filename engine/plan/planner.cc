#include "engine/plan/planner.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "engine/plan/plan_context.h"

namespace cw {
namespace {

bool IsEightBitFloat(DType d) { return d == DType::kF8E4M3 || d == DType::kF8E5M2; }

void AddNotes(PlanContext& ctx, Plan& plan) {
  for (const auto& [name, r] : ctx.params.resolved()) {
    plan.parameters.push_back(PlanParameter{name, r.value.ToString(), r.source});
    plan.notes.push_back("parameter " + name + " = " + r.value.ToString() + " (" + r.source + ")");
  }
  for (std::string& n : ctx.notes)
    plan.notes.push_back(std::move(n));
  size_t lossy_steps = 0, dropped = 0, dequantized = 0;
  for (const PlanStep& s : plan.steps) {
    lossy_steps += s.lossy ? 1 : 0;
    for (const PrimitiveOp& op : s.ops)
      dequantized += op.kind == PrimitiveOp::Kind::kDequantize ? 1 : 0;
  }
  if (dequantized > 0) {
    plan.notes.push_back(std::to_string(dequantized) +
                         " FP8 weight(s) dequantised to bfloat16 with their block scales, which "
                         "are not written (a reverse writes bfloat16, not FP8)");
  }
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

namespace {

using NamedValues = std::vector<std::pair<std::string, std::string>>;

// A parameter nothing gives a value fails everything that needs it: that cause comes first, once,
// with a count of the problems it causes; the other problems follow, each once.
std::vector<Error> ByCause(std::vector<Error> errors) {
  std::vector<Error> causes, rest;
  std::map<std::string, size_t> cause_index;  // message -> index in causes
  std::vector<size_t> follow;                 // per cause: how many more problems it causes
  std::set<std::string> seen;
  for (Error& e : errors) {
    if (!seen.insert(e.ToString()).second)
      continue;
    if (e.message().find(" has no value") == std::string::npos) {
      rest.push_back(std::move(e));
    } else if (auto it = cause_index.find(e.message()); it != cause_index.end()) {
      ++follow[it->second];
    } else {
      cause_index[e.message()] = causes.size();
      causes.push_back(std::move(e));
      follow.push_back(0);
    }
  }
  for (size_t i = 0; i < causes.size(); ++i) {
    if (follow[i] == 0)
      continue;
    Error folded(causes[i].code(),
                 causes[i].message() + "\n  (" + std::to_string(follow[i]) + " more problem" +
                     (follow[i] == 1 ? " follows" : "s follow") + " from this)",
                 causes[i].where());
    for (const std::string& c : causes[i].context())
      folded = std::move(folded).With(c);
    causes[i] = std::move(folded);
  }
  for (Error& e : rest)
    causes.push_back(std::move(e));
  return causes;
}

// One planning run with fixed parameters.
struct Attempt {
  PlanOutcome outcome;
  size_t matched = 0;  // inputs claimed by some rule
};

Attempt CompileOnce(const RuleSet& rules, const std::vector<TensorInfo>& inventory,
                    const PlanOptions& given) {
  Attempt out;
  PlanOptions options = given;
  for (SolvedParam& s : CountNames(rules, inventory, given))
    options.params.solved.push_back(std::move(s));
  for (SolvedParam& s : SolveShapes(rules, inventory, options))
    options.params.solved.push_back(std::move(s));
  PlanContext ctx(rules, inventory, options);
  Plan plan;
  plan.direction = options.direction;
  plan.rule_file = rules.file;
  plan.inventory = inventory;
  plan.cast = options.cast;
  plan.detected = options.params.detected;
  SelectRules(ctx);
  const auto matches = MatchInputs(ctx);
  for (const auto& m : matches)
    out.matched += m ? 1 : 0;
  CheckSourceShapes(ctx, matches);
  const std::vector<Group> groups = BuildGroups(ctx, matches, plan.dropped);
  BuildSteps(ctx, groups, plan);
  AddNotes(ctx, plan);
  out.outcome.errors = ByCause(std::move(ctx.errors));
  if (out.outcome.errors.empty())
    out.outcome.plan = std::move(plan);
  return out;
}

// Every combination of the parameters' allowed values, the first parameter varying slowest.
std::vector<NamedValues> Candidates(const std::vector<const ParamDecl*>& params) {
  std::vector<NamedValues> out(1);
  for (const ParamDecl* p : params) {
    std::vector<NamedValues> next;
    for (const NamedValues& c : out) {
      for (const Value& v : p->allowed) {
        next.push_back(c);
        next.back().emplace_back(p->name, v.ToText());
      }
    }
    out = std::move(next);
  }
  return out;
}

std::string Describe(const RuleSet& rules, const NamedValues& values) {
  std::string s;
  for (const auto& [name, text] : values) {
    const auto v = ParseValueText(text, rules.FindParam(name)->type);
    s += (s.empty() ? "" : ", ") + name + " = " + (v ? v->ToString() : text);
  }
  return s;
}

// Tries the candidates in order: the first that plans, else the one under which the most inputs
// match (the first of those), with `fits` false.
Attempt TryCandidates(const RuleSet& rules, const std::vector<TensorInfo>& inventory,
                      const PlanOptions& options, const std::vector<NamedValues>& candidates,
                      NamedValues& chosen, bool& fits) {
  Attempt best;
  fits = false;
  for (size_t i = 0; i < candidates.size(); ++i) {
    PlanOptions o = options;
    o.params.detected.insert(o.params.detected.end(), candidates[i].begin(), candidates[i].end());
    Attempt a = CompileOnce(rules, inventory, o);
    if (a.outcome.errors.empty()) {
      chosen = candidates[i];
      fits = true;
      return a;
    }
    if (i == 0 || a.matched > best.matched) {
      chosen = candidates[i];
      best = std::move(a);
    }
  }
  return best;
}

// `options` without the values given to the detect parameters (--set, config keys, carried).
PlanOptions WithoutGiven(const RuleSet& rules, PlanOptions options) {
  for (const ParamDecl& p : rules.params) {
    if (!p.detect)
      continue;
    std::erase_if(options.params.set, [&](const auto& kv) {
      return kv.first == p.name || (!p.flag.empty() && kv.first == p.flag);
    });
    std::erase_if(options.params.detected, [&](const auto& kv) { return kv.first == p.name; });
    for (const std::string& key : p.config_keys) {
      options.params.config.entries.erase(key);
      options.params.config.entries.erase("text_config." + key);
    }
  }
  return options;
}

// Forward with `detect` parameters: those not given are chosen from the input names. When the
// plan fails although the given values are allowed, says which values the names would fit.
PlanOutcome Detect(const RuleSet& rules, const std::vector<TensorInfo>& inventory,
                   const PlanOptions& options) {
  const ParamResolver given(rules, options.params);
  std::vector<const ParamDecl*> free, all;
  for (const ParamDecl& p : rules.params) {
    if (!p.detect)
      continue;
    all.push_back(&p);
    const bool carried = std::any_of(options.params.detected.begin(), options.params.detected.end(),
                                     [&](const auto& kv) { return kv.first == p.name; });
    if (!given.Given(p) && !carried)
      free.push_back(&p);
  }
  NamedValues chosen;
  bool fits = false;
  Attempt a = TryCandidates(rules, inventory, options, Candidates(free), chosen, fits);
  if (fits)
    return std::move(a.outcome);
  PlanOutcome out = std::move(a.outcome);
  if (!free.empty()) {
    std::string tried;
    for (const ParamDecl* p : free) {
      std::string values;
      for (const Value& v : p->allowed)
        values += (values.empty() ? "" : ", ") + v.ToString();
      tried += (tried.empty() ? "" : "; ") + p->name + " in " + values;
    }
    out.errors.emplace_back(ErrorCode::kPlanInvalid,
                            "no value of the detected parameters lets the input plan (tried " +
                                tried + "); the problems above are those under " +
                                Describe(rules, chosen) + ", where " + std::to_string(a.matched) +
                                " of " + std::to_string(inventory.size()) + " inputs match",
                            FileLocation(rules.file));
  }
  if (free.size() != all.size()) {
    NamedValues fit;
    bool other_fits = false;
    TryCandidates(rules, inventory, WithoutGiven(rules, options), Candidates(all), fit, other_fits);
    if (other_fits) {
      ParamResolver r(rules, options.params);
      NamedValues stated;
      for (const ParamDecl* p : all) {
        if (std::find(free.begin(), free.end(), p) != free.end())
          continue;
        if (auto v = r.Get(p->name); v.ok())
          stated.emplace_back(p->name, v->ToText());
      }
      out.errors.emplace_back(ErrorCode::kPlanInvalid,
                              "the input names fit " + Describe(rules, fit) + ", not " +
                                  Describe(rules, stated) + " as given",
                              FileLocation(rules.file));
    }
  }
  return out;
}

}  // namespace

PlanOutcome CompilePlan(const RuleSet& rules, const std::vector<TensorInfo>& inventory,
                        const PlanOptions& options) {
  if (Status s = ParamResolver(rules, options.params).CheckInputs(); !s.ok()) {
    PlanOutcome out;
    out.errors.push_back(std::move(s).error());
    return out;
  }
  const bool detects = std::any_of(rules.params.begin(), rules.params.end(),
                                   [](const ParamDecl& p) { return p.detect; });
  if (options.direction == Direction::kForward && detects)
    return Detect(rules, inventory, options);
  return std::move(CompileOnce(rules, inventory, options).outcome);
}

Result<Plan> MakePlan(const RuleSet& rules, const std::vector<TensorInfo>& inventory,
                      const PlanOptions& options) {
  PlanOutcome outcome = CompilePlan(rules, inventory, options);
  if (outcome.errors.empty())
    return std::move(*outcome.plan);
  Error first = std::move(outcome.errors.front());
  if (outcome.errors.size() == 1)
    return first;
  // The first problem's context ("while reading pattern ...") stays with it, before the others.
  std::string message = first.message();
  for (const std::string& c : first.context())
    message += "\n  while " + c;
  for (size_t i = 1; i < outcome.errors.size(); ++i)
    message += "\n" + outcome.errors[i].ToString();
  return Error(first.code(), message + "\n(" + std::to_string(outcome.errors.size()) + " problems)",
               first.where());
}

Plan CopyPlan(const std::vector<TensorInfo>& tensors) {
  Plan plan;
  plan.inventory = tensors;
  for (size_t i = 0; i < tensors.size(); ++i) {
    PlanStep step;
    step.inputs = {i};
    step.value_dtype = tensors[i].dtype;
    step.outputs = {tensors[i]};
    plan.steps.push_back(std::move(step));
    plan.input_bytes += tensors[i].byte_size;
    plan.output_bytes += tensors[i].byte_size;
  }
  return plan;
}

}  // namespace cw
