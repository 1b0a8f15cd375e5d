// Stages 1 and 2 of planning: selecting the active rules and matching every input to one rule.
#include <algorithm>
#include <set>

#include "engine/base/limits.h"
#include "engine/plan/name_index.h"
#include "engine/plan/plan_context.h"

namespace cw {
namespace {

constexpr size_t kMaxListedNames = 50;

bool ReadsPlaceholders(const Expr& e, const RuleSet& rules) {
  const auto names = e.Names();
  return std::any_of(names.begin(), names.end(),
                     [&](const std::string& n) { return rules.FindPlaceholder(n) != nullptr; });
}

// Evaluates a parameter-only condition; nullopt (with the error recorded) when it cannot be.
std::optional<bool> Condition(PlanContext& ctx, const Expr& e, const Rule& rule, const char* what) {
  auto v = e.EvaluateBool(ctx.params.Lookup(), what);
  if (!v.ok()) {
    ctx.Add(std::move(v).error().With("deciding whether rule " + rule.Label() + " applies"));
    return std::nullopt;
  }
  return *v;
}

bool SelectOne(PlanContext& ctx, size_t index, ActiveRule& a) {
  const Rule& rule = ctx.rules.rules[index];
  a.index = index;
  a.rule = &rule;
  if (rule.when) {
    a.when_per_match = ReadsPlaceholders(*rule.when, ctx.rules);
    if (!a.when_per_match && !Condition(ctx, *rule.when, rule, "when").value_or(false))
      return false;
  }
  if (rule.optional)
    a.optional = Condition(ctx, *rule.optional, rule, "optional").value_or(false);
  a.copy_of = rule.copy_of.has_value();
  if (rule.tied) {
    a.tied =
        !rule.tied->when || Condition(ctx, *rule.tied->when, rule, "tied.when").value_or(false);
    if (rule.side(ctx.target).empty() && !a.tied)
      return false;  // a check-and-drop tie that does not hold: the tensor has no rule
  }
  for (const OpSpec& op : rule.chain(ctx.options.direction)) {
    if (op.kind == OpKind::kStack || op.kind == OpKind::kUnstack)
      a.over = op.over;
  }
  const auto& sources = rule.side(ctx.source);
  for (const std::string& p : sources[0].placeholders()) {
    if (p != a.over)
      a.placeholders.push_back(p);
  }
  // Only the source side is needed to match. The target side's ${param}s are resolved when a
  // step writes a name, so a rule that matches nothing needs none of them; an optional rule
  // whose own pattern cannot be read matches nothing, which matters only if an input is left
  // unmatched.
  if (auto missing = ctx.MissingPatternParam(sources, rule.where)) {
    if (a.optional)
      ctx.deferred.push_back(std::move(*missing));
    else
      ctx.Add(std::move(*missing));
    return false;
  }
  const OpCondition when = [&ctx](const Expr& e) -> std::optional<bool> {
    auto v = e.EvaluateBool(ctx.params.Lookup(), "when");
    return v.ok() ? std::optional(*v) : std::nullopt;
  };
  a.source_shapes_declared = !rule.shapes(ctx.source).empty();
  if (a.source_shapes_declared) {
    for (const ShapeDecl& s : rule.shapes(ctx.source))
      a.source_shapes.emplace_back(DerivedShape(s.begin(), s.end()));
  } else {
    a.source_shapes = FlowShapes(ctx.rules, rule, ctx.target, when).shapes;
  }
  const auto types = ctx.rules.PlaceholderTypes();
  for (const NamePattern& p : sources) {
    auto m = PatternMatcher::Compile(p, types, ctx.param_text);
    if (!m.ok()) {
      ctx.Add(std::move(m).error());
      return false;
    }
    a.sources.push_back(std::move(m).value());
  }
  return true;
}

// "layer = 1; mlp_only_layers = [0, 1] (config mlp_only_layers)": the values a condition read.
std::string ValuesRead(PlanContext& ctx, const std::vector<std::string>& read, const Bindings& b) {
  std::string s;
  for (const std::string& n : std::set<std::string>(read.begin(), read.end())) {
    s += s.empty() ? "" : "; ";
    if (auto it = b.find(n); it != b.end())
      s += n + " = " + it->second.ToString();
    else if (auto r = ctx.params.resolved().find(n); r != ctx.params.resolved().end())
      s += n + " = " + r->second.value.ToString() + " (" + r->second.source + ")";
    else
      s += n + " has no value";
  }
  return s;
}

// Why a pattern match does not count, or "" when it does.
std::string Rejection(PlanContext& ctx, const ActiveRule& a, const Bindings& b) {
  for (const auto& [name, value] : b) {
    if (value.type() != ValueType::kInt)
      continue;
    const auto count = ctx.Count(name);
    if (count && value.as_int() >= *count) {
      const PlaceholderDecl* decl = ctx.rules.FindPlaceholder(name);
      return "matches rule " + a.rule->Label() + " but " + name + " " + value.ToText() +
             " is not below its count " + std::to_string(*count) + " (\"" + decl->count->text() +
             "\")";
    }
  }
  if (a.when_per_match && a.rule->drop) {
    // A drop rule bounded by a parameter nobody gives (GPT-2's `extra >= layers` without
    // --layers or config.json) drops nothing.
    for (const std::string& name : a.rule->when->Names()) {
      if (!ctx.rules.FindParam(name) || !ctx.params.HasNoValue(name))
        continue;
      const std::string note = "drop rule " + a.rule->Label() + " drops nothing: its when reads " +
                               name + ", which has no value";
      if (std::find(ctx.notes.begin(), ctx.notes.end(), note) == ctx.notes.end())
        ctx.notes.push_back(note);
      return "matches drop rule " + a.rule->Label() + " but " + name + " has no value";
    }
  }
  if (a.when_per_match) {
    const NameLookup lookup = ctx.params.Lookup(&b);
    std::vector<std::string> read;  // the names the evaluation asked for, to show their values
    const NameLookup recording(
        [&](const std::string& n) {
          read.push_back(n);
          return lookup(n);
        },
        [&](const std::string& n) {
          read.push_back(n);
          return lookup.HasValue(n);
        });
    auto on = a.rule->when->EvaluateBool(recording, "when");
    if (!on.ok()) {
      ctx.Add(std::move(on).error().With("matching rule " + a.rule->Label()));
      return "error";
    }
    if (!*on)
      return "matches rule " + a.rule->Label() + " but its when \"" + a.rule->when->text() +
             "\" is false: " + ValuesRead(ctx, read, b);
  }
  return "";
}

void ReportUnmatched(PlanContext& ctx, const std::vector<std::string>& lines) {
  if (lines.empty())
    return;
  std::string message = std::to_string(lines.size()) + " input tensor" +
                        (lines.size() == 1 ? " matches" : "s match") +
                        " no rule (add a rule, or a drop rule to leave them out):";
  for (size_t i = 0; i < lines.size() && i < kMaxListedNames; ++i)
    message += "\n    " + lines[i];
  if (lines.size() > kMaxListedNames)
    message += "\n    ... and " + std::to_string(lines.size() - kMaxListedNames) + " more";
  ctx.Fail(ErrorCode::kPlanInvalid, message, FileLocation(ctx.rules.file));
}

}  // namespace

std::optional<int64_t> PlanContext::Count(const std::string& placeholder) {
  if (auto it = counts.find(placeholder); it != counts.end())
    return it->second;
  const PlaceholderDecl* decl = rules.FindPlaceholder(placeholder);
  std::optional<int64_t> out;
  if (decl && decl->count) {
    auto v = decl->count->EvaluateInt(params.Lookup(), "count of {" + placeholder + "}");
    if (v.ok() && (*v < 0 || static_cast<uint64_t>(*v) > limits::kMaxTensorCount)) {
      Fail(ErrorCode::kLimitExceeded,
           "the count of {" + placeholder + "} (\"" + decl->count->text() + "\") is " +
               std::to_string(*v) + ", outside 0.." + std::to_string(limits::kMaxTensorCount),
           decl->count->where());
    } else if (v.ok()) {
      out = *v;
    } else {
      notes.push_back("the count of {" + placeholder + "} is unknown (" + v.error().message() +
                      "): only checking that its values run from 0 without gaps");
    }
  }
  counts[placeholder] = out;
  return out;
}

bool PlanContext::ResolvePatternParams(const std::vector<NamePattern>& patterns,
                                       const Location& where) {
  if (auto missing = MissingPatternParam(patterns, where)) {
    Add(std::move(*missing));
    return false;
  }
  return true;
}

std::optional<Error> PlanContext::MissingPatternParam(const std::vector<NamePattern>& patterns,
                                                      const Location& where) {
  for (const NamePattern& p : patterns) {
    for (const std::string& name : p.params()) {
      if (param_text.count(name))
        continue;
      auto v = params.Get(name);
      if (!v.ok()) {
        return std::move(v).error().With("reading pattern \"" + p.text() + "\" at " + where.file +
                                         ":" + std::to_string(where.line));
      }
      param_text[name] = v->ToText();
    }
  }
  return std::nullopt;
}

void SelectRules(PlanContext& ctx) {
  ctx.source = SourceSide(ctx.options.direction);
  ctx.target = TargetSide(ctx.options.direction);
  for (size_t i = 0; i < ctx.rules.rules.size(); ++i) {
    if (ctx.rules.rules[i].side(ctx.source).empty())
      continue;
    ActiveRule a;
    if (SelectOne(ctx, i, a))
      ctx.active.push_back(std::move(a));
  }
}

std::vector<std::optional<InputMatch>> MatchInputs(PlanContext& ctx) {
  PairFp8Scales(ctx);
  PatternSet set;
  std::vector<std::pair<size_t, size_t>> entries;  // set index -> (active, pattern)
  for (size_t a = 0; a < ctx.active.size(); ++a) {
    for (size_t k = 0; k < ctx.active[a].sources.size(); ++k) {
      set.Add(ctx.active[a].sources[k]);
      entries.emplace_back(a, k);
    }
  }
  std::vector<std::optional<InputMatch>> out(ctx.inventory.size());
  if (auto s = set.Compile(); !s.ok()) {
    ctx.Add(std::move(s).error());
    return out;
  }
  NameIndex seen(ctx.inventory.size());  // views into ctx.inventory
  std::vector<std::string> unmatched;
  std::vector<InputMatch> hits;  // of one name; kept to reuse its storage
  for (uint64_t i = 0; i < ctx.inventory.size(); ++i) {
    const std::string& name = ctx.inventory[i].name;
    if (seen.Insert(name, i)) {
      ctx.Fail(ErrorCode::kPlanInvalid, "the input holds two tensors named \"" + name + "\"",
               FileLocation(ctx.rules.file));
      continue;
    }
    if (ctx.fp8_scales.count(i))
      continue;  // read by the step of its weight
    hits.clear();
    std::string reasons;
    for (int e : set.Match(name)) {
      const auto [a, k] = entries[static_cast<size_t>(e)];
      InputMatch m{a, k, {}};
      if (!ctx.active[a].sources[k].Match(name, &m.bindings))
        continue;
      const std::string why = Rejection(ctx, ctx.active[a], m.bindings);
      if (why.empty())
        hits.push_back(std::move(m));
      else if (why != "error")
        reasons += (reasons.empty() ? " (" : "; ") + why;
    }
    if (hits.empty()) {
      unmatched.push_back(name + (reasons.empty() ? "" : reasons + ")"));
    } else if (hits.size() > 1 && hits[0].active != hits[1].active) {
      const Rule& r0 = *ctx.active[hits[0].active].rule;
      const Rule& r1 = *ctx.active[hits[1].active].rule;
      ctx.Fail(ErrorCode::kPlanInvalid,
               "tensor \"" + name + "\" matches two rules: " + r0.Label() + " and " + r1.Label(),
               r1.where);
      ctx.ambiguous.insert(ctx.ambiguous.end(), hits.begin(), hits.end());
    } else if (hits.size() > 1) {
      ctx.Fail(ErrorCode::kPlanInvalid,
               "tensor \"" + name + "\" matches two patterns of rule " +
                   ctx.active[hits[0].active].rule->Label(),
               ctx.active[hits[0].active].rule->where);
    } else {
      out[i] = std::move(hits[0]);
    }
  }
  if (!unmatched.empty()) {
    for (const Error& e : ctx.deferred)
      ctx.Add(e);
  }
  ReportUnmatched(ctx, unmatched);
  return out;
}

}  // namespace cw
