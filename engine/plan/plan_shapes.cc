// Declared shapes in planning: parameters solved from the inputs' shapes, and every input (and
// output) checked against the shape its rule declares, with the values behind each size and where
// each came from.
#include <algorithm>
#include <map>
#include <set>

#include "engine/plan/plan_context.h"
#include "engine/ruleset/expression_algebra.h"

namespace cw {
namespace {

std::string DimsText(const Shape& shape) {
  std::string s;
  for (uint64_t d : shape)
    s += (s.empty() ? "" : ", ") + std::to_string(d);
  return "[" + s + "]";
}

bool ReadsAny(const Expr& e, const std::set<std::string>& names) {
  for (const std::string& n : e.Names()) {
    if (names.count(n))
      return true;
  }
  return false;
}

// Parameters some declared shape mentions that nothing gives a value (nor a count of names): the
// ones to solve. A default
// computed from other parameters derives the value from them, so it is checked, not replaced;
// a constant default is a guess the shapes may overrule.
std::set<std::string> Unknowns(const RuleSet& rules, const PlanOptions& options) {
  const ParamResolver given(rules, options.params);
  std::set<std::string> out;
  for (const Rule& r : rules.rules) {
    for (Side side : {Side::kHf, Side::kMs}) {
      for (const ShapeDecl& shape : r.shapes(side)) {
        for (const Expr& size : shape) {
          for (const std::string& n : size.Names()) {
            const ParamDecl* p = rules.FindParam(n);
            const bool counted =
                std::any_of(options.params.solved.begin(), options.params.solved.end(),
                            [&](const SolvedParam& s) { return s.name == n; });
            if (p && !given.Given(*p) && !given.Detected(*p) && !counted &&
                (!p->default_value || p->default_value->AsConstant()))
              out.insert(n);
          }
        }
      }
    }
  }
  return out;
}

// The evaluated sizes of one declared shape for one match; nullopt for a size that cannot be
// evaluated (a parameter without a value: the check is skipped, not failed).
std::vector<std::optional<int64_t>> Evaluate(PlanContext& ctx, const DerivedShape& shape,
                                             const Bindings& bound) {
  std::vector<std::optional<int64_t>> out;
  const NameLookup lookup = ctx.params.Lookup(&bound);
  for (const auto& size : shape) {
    auto v = size ? size->EvaluateInt(lookup, "shape size")
                  : Result<int64_t>(Error(ErrorCode::kInternal, ""));
    out.push_back(v.ok() ? std::optional(*v) : std::nullopt);
  }
  return out;
}

// "vocab = 32000 (solved from model.tok_embeddings.embedding_weight dim 0)" for each parameter
// the sizes read, and for those the computed defaults among them read.
std::string Provenance(PlanContext& ctx, const DerivedShape& shape) {
  std::set<std::string> names;
  std::vector<std::string> todo;
  for (const auto& size : shape) {
    if (size) {
      for (const std::string& n : size->Names())
        todo.push_back(n);
    }
  }
  while (!todo.empty()) {
    const std::string n = todo.back();
    todo.pop_back();
    const ParamDecl* p = ctx.rules.FindParam(n);
    const auto it = ctx.params.resolved().find(n);
    if (!p || it == ctx.params.resolved().end() || !names.insert(n).second)
      continue;
    if (it->second.source == "default" && !p->default_value->AsConstant()) {
      for (const std::string& m : p->default_value->Names())
        todo.push_back(m);
    }
  }
  std::string s;
  for (const std::string& n : names) {
    const auto& r = ctx.params.resolved().at(n);
    const ParamDecl* p = ctx.rules.FindParam(n);
    const bool computed = r.source == "default" && !p->default_value->AsConstant();
    s += (s.empty() ? "" : "; ") + n + " = " + r.value.ToString() + " (" +
         (computed ? "default " + p->default_value->text() : r.source) + ")";
  }
  return s;
}

// Why the sizes may differ, where a reason fits.
std::string Hints(PlanContext& ctx, const DerivedShape& shape,
                  const std::vector<std::optional<int64_t>>& want, const Shape& have) {
  std::vector<int64_t> sorted_want, sorted_have(have.begin(), have.end());
  for (const auto& w : want)
    sorted_want.push_back(w.value_or(-1));
  std::sort(sorted_want.begin(), sorted_want.end());
  std::sort(sorted_have.begin(), sorted_have.end());
  if (sorted_want == sorted_have) {
    return "\n  hint: the sizes are the declared ones in another order: is the checkpoint in "
           "another layout than the parameters say (a transposed variant such as use_gmm)?";
  }
  std::string s;
  for (size_t d = 0; d < want.size() && d < have.size(); ++d) {
    if (want[d] && have[d] > 0 && *want[d] > static_cast<int64_t>(have[d]) &&
        *want[d] % static_cast<int64_t>(have[d]) == 0) {
      s += "\n  hint: dim " + std::to_string(d) + " holds 1/" +
           std::to_string(*want[d] / static_cast<int64_t>(have[d])) +
           " of the declared size, as one rank of a distributed (tensor-parallel) checkpoint "
           "does: convert the whole set of ranks, not one rank's file";
      break;
    }
  }
  for (const auto& size : shape) {
    if (!size)
      continue;
    for (const std::string& n : size->Names()) {
      const auto it = ctx.params.resolved().find(n);
      if (s.empty() && it != ctx.params.resolved().end() &&
          it->second.source.rfind("config", 0) == 0) {
        return "\n  hint: values come from " + ctx.params.inputs().config.file +
               ": is it the config.json of this checkpoint?";
      }
    }
  }
  return s;
}

bool Fits(const std::vector<std::optional<int64_t>>& want, const Shape& have) {
  if (want.size() != have.size())
    return false;
  for (size_t d = 0; d < want.size(); ++d) {
    if (want[d] && *want[d] != static_cast<int64_t>(have[d]))
      return false;
  }
  return true;
}

// `lead` + " [sizes] = [values]: provenance" + hints.
std::string Mismatch(PlanContext& ctx, const std::string& lead, const DerivedShape& shape,
                     const std::vector<std::optional<int64_t>>& want, const Shape& have,
                     bool input) {
  std::string values;
  for (const auto& v : want)
    values += (values.empty() ? "" : ", ") + (v ? std::to_string(*v) : std::string("?"));
  std::string m = lead + " " + ShapeText(shape) + " = [" + values + "]";
  if (const std::string p = Provenance(ctx, shape); !p.empty())
    m += ": " + p;
  return input ? m + Hints(ctx, shape, want, have) : m;
}

// Whether a declared shape reads a placeholder (then it is evaluated for each match).
bool ReadsPlaceholders(const RuleSet& rules, const DerivedShape& shape) {
  for (const auto& size : shape) {
    if (!size)
      continue;
    for (const std::string& n : size->Names()) {
      if (rules.FindPlaceholder(n))
        return true;
    }
  }
  return false;
}

}  // namespace

std::vector<SolvedParam> SolveShapes(const RuleSet& rules, const std::vector<TensorInfo>& inventory,
                                     const PlanOptions& options) {
  const std::set<std::string> unknown = Unknowns(rules, options);
  if (unknown.empty())
    return {};
  PlanContext ctx(rules, inventory, options);
  SelectRules(ctx);
  const auto matches = MatchInputs(ctx);
  struct Pending {
    uint64_t input;
    const InputMatch* match;
    size_t dim;
  };
  std::vector<Pending> pending;
  for (uint64_t i = 0; i < matches.size(); ++i) {
    if (!matches[i])
      continue;
    const auto& shape = ctx.active[matches[i]->active].source_shapes[matches[i]->pattern];
    if (!shape || shape->size() != inventory[i].shape.size())
      continue;
    for (size_t d = 0; d < shape->size(); ++d) {
      if ((*shape)[d] && ReadsAny(*(*shape)[d], unknown))
        pending.push_back(Pending{i, &*matches[i], d});
    }
  }
  std::map<std::string, SolvedParam> solved;
  for (bool progress = true; progress;) {
    progress = false;
    std::vector<Pending> left;
    for (const Pending& p : pending) {
      const Expr& size = *(*ctx.active[p.match->active].source_shapes[p.match->pattern])[p.dim];
      std::map<std::string, Value> known;
      bool open = false;
      for (const std::string& n : size.Names()) {
        if (auto b = p.match->bindings.find(n); b != p.match->bindings.end()) {
          known[n] = b->second;
        } else if (auto s = solved.find(n); s != solved.end()) {
          known[n] = s->second.value;
        } else if (!unknown.count(n)) {
          if (auto v = ctx.params.Get(n); v.ok())
            known[n] = *v;
        } else {
          open = true;
        }
      }
      if (!open)
        continue;  // nothing left to learn here; CheckSourceShapes checks it
      const int64_t have = static_cast<int64_t>(inventory[p.input].shape[p.dim]);
      const auto s = SolveFor(size, have, known);
      if (s && s->exact && unknown.count(s->name)) {
        solved[s->name] =
            SolvedParam{s->name, Value::Int(s->value),
                        "solved from " + inventory[p.input].name + " dim " + std::to_string(p.dim)};
        progress = true;
      } else {
        left.push_back(p);
      }
    }
    pending = std::move(left);
  }
  std::vector<SolvedParam> out;
  for (auto& [name, s] : solved)
    out.push_back(std::move(s));
  return out;
}

void CheckSourceShapes(PlanContext& ctx, const std::vector<std::optional<InputMatch>>& matches) {
  // One problem per rule pattern, with a count of the other tensors it also fits.
  std::map<std::pair<size_t, size_t>, std::pair<size_t, size_t>> reported;  // -> error, more
  // Shapes without placeholders are evaluated once per rule pattern.
  std::map<std::pair<size_t, size_t>, std::vector<std::optional<int64_t>>> fixed;
  for (uint64_t i = 0; i < matches.size(); ++i) {
    if (!matches[i])
      continue;
    const InputMatch& m = *matches[i];
    const ActiveRule& a = ctx.active[m.active];
    const auto& shape = a.source_shapes[m.pattern];
    if (!shape)
      continue;
    const auto key = std::make_pair(m.active, m.pattern);
    std::vector<std::optional<int64_t>> want;
    if (ReadsPlaceholders(ctx.rules, *shape)) {
      want = Evaluate(ctx, *shape, m.bindings);
    } else {
      auto it = fixed.find(key);
      if (it == fixed.end())
        it = fixed.emplace(key, Evaluate(ctx, *shape, m.bindings)).first;
      want = it->second;
    }
    const TensorInfo& t = ctx.inventory[i];
    if (Fits(want, t.shape))
      continue;
    ctx.misshapen.insert(i);
    if (auto r = reported.find(key); r != reported.end()) {
      ++r->second.second;
      continue;
    }
    reported[key] = {ctx.errors.size(), 0};
    const Location at = a.source_shapes_declared && !shape->empty() && (*shape)[0]
                            ? (*shape)[0]->where()
                            : a.rule->where;
    ctx.Fail(ErrorCode::kPlanInvalid,
             Mismatch(ctx,
                      "tensor \"" + t.name + "\" is " + DimsText(t.shape) + ", but rule " +
                          a.rule->Label() + " declares",
                      *shape, want, t.shape, true),
             at);
  }
  for (const auto& [key, r] : reported) {
    if (r.second == 0)
      continue;
    Error& e = ctx.errors[r.first];
    e = Error(e.code(),
              e.message() + "\n  (and " + std::to_string(r.second) + " more tensor" +
                  (r.second == 1 ? "" : "s") + " of this rule)",
              e.where());
  }
}

bool CheckTargetShape(PlanContext& ctx, const Rule& rule, size_t pattern, const Bindings& bound,
                      const TensorInfo& output) {
  const auto& declared = rule.shapes(ctx.target);
  if (pattern >= declared.size())
    return true;
  const DerivedShape shape(declared[pattern].begin(), declared[pattern].end());
  const auto want = Evaluate(ctx, shape, bound);
  if (Fits(want, output.shape))
    return true;
  ctx.Fail(ErrorCode::kRuleInvalid,
           Mismatch(ctx,
                    "the ops of rule " + rule.Label() + " make \"" + output.name + "\" " +
                        DimsText(output.shape) + ", but the rule declares",
                    shape, want, output.shape, false),
           declared[pattern].empty() ? rule.where : declared[pattern][0].where());
  return false;
}

}  // namespace cw
