#include "engine/ruleset/rule_lint.h"

#include <algorithm>
#include <set>

#include "engine/ruleset/expression_algebra.h"
#include "engine/ruleset/expression_node.h"
#include "engine/ruleset/rule_file.h"
#include "engine/ruleset/shape_flow.h"

namespace cw {
namespace {

// Parameters that can be enumerated when deciding whether two conditions can hold together.
struct Scenario {
  std::vector<std::pair<std::string, std::vector<Value>>> choices;
};

// Combinations of parameter values tried per pair of rules (10 bool parameters), and sample
// names per pattern. Parameters past the first cap are left unknown ("may hold"); a pattern with
// many placeholders is sampled in part.
constexpr size_t kMaxScenarios = 1024;
constexpr size_t kMaxSamples = 256;

// A parameter's text in patterns, as far as lint can know it: its constant default or "".
std::map<std::string, std::string> SampleParamText(const RuleSet& rs) {
  std::map<std::string, std::string> out;
  for (const ParamDecl& p : rs.params) {
    auto c = p.default_value ? p.default_value->AsConstant() : std::nullopt;
    out[p.name] = c ? c->ToText() : "";
  }
  return out;
}

// Sample names a pattern can match: placeholders take a few typical values each.
std::vector<std::pair<std::string, Bindings>> Samples(
    const RuleSet& rs, const NamePattern& p, const std::map<std::string, std::string>& params) {
  std::vector<Bindings> bindings(1);
  for (const std::string& name : p.placeholders()) {
    const PlaceholderDecl* d = rs.FindPlaceholder(name);
    std::vector<Value> values;
    if (d && !d->type.integer) {
      for (const std::string& v : d->type.values)
        values.push_back(Value::String(v));
      if (values.empty())
        values.push_back(Value::String("x"));
    } else {
      values = {Value::Int(0), Value::Int(1), Value::Int(11)};
    }
    std::vector<Bindings> next;
    for (const Bindings& b : bindings) {
      for (size_t i = 0; i < values.size() && next.size() < kMaxSamples; ++i) {
        Bindings e = b;
        e[name] = values[i];
        next.push_back(std::move(e));
      }
    }
    bindings = std::move(next);
  }
  std::vector<std::pair<std::string, Bindings>> out;
  for (Bindings& b : bindings)
    out.emplace_back(p.Instantiate(b, params), std::move(b));
  return out;
}

class OverlapCheck {
 public:
  explicit OverlapCheck(const RuleSet& rs)
      : rs_(rs), params_(SampleParamText(rs)), types_(rs.PlaceholderTypes()) {
    // Integer parameters without a constant default get a typical value, so that counts and
    // conditions such as `layer >= layers` can be decided.
    for (const ParamDecl& p : rs.params) {
      auto c = p.default_value ? p.default_value->AsConstant() : std::nullopt;
      if (c)
        samples_[p.name] = *c;
      else if (p.type == ValueType::kInt)
        samples_[p.name] = Value::Int(4);
    }
  }

  void Run(Side side, std::vector<Error>& out) {
    std::vector<std::vector<std::optional<PatternMatcher>>> matchers;
    for (const Rule& r : rs_.rules) {
      matchers.emplace_back();
      for (const NamePattern& p : r.side(side)) {
        auto m = PatternMatcher::Compile(p, types_, params_);
        matchers.back().push_back(m.ok() ? std::optional(std::move(m).value()) : std::nullopt);
      }
    }
    std::set<std::pair<size_t, size_t>> reported;
    for (size_t a = 0; a < rs_.rules.size(); ++a) {
      for (const NamePattern& p : rs_.rules[a].side(side)) {
        for (const auto& [name, bound] : Samples(rs_, p, params_)) {
          if (!InDomain(bound))
            continue;
          for (size_t b = 0; b < rs_.rules.size(); ++b) {
            const auto key = std::minmax(a, b);
            if (b == a || reported.count(key))
              continue;
            for (const auto& m : matchers[b]) {
              Bindings other;
              if (!m || !m->Match(name, &other) || !InDomain(other) ||
                  !CanBothApply(a, bound, b, other))
                continue;
              reported.insert(key);
              out.push_back(Finding(side, key.first, key.second, name));
              break;
            }
          }
        }
      }
    }
  }

 private:
  Error Finding(Side side, size_t a, size_t b, const std::string& name) const {
    const Rule& ra = rs_.rules[a];
    const Rule& rb = rs_.rules[b];
    const std::string what =
        side == Side::kHf ? "overlapping hf patterns: rules " : "duplicate ms outputs: rules ";
    return Error(ErrorCode::kRuleInvalid,
                 what + ra.LabelIn(rb.where.file) + " and " + rb.LabelIn(rb.where.file) +
                     " both match \"" + name +
                     "\" (make their when conditions exclusive, or their patterns distinct)",
                 rb.where);
  }

  // The bool and string-with-values parameters the two conditions read.
  Scenario ScenarioFor(const Rule& a, const Rule& b) const {
    std::set<std::string> names;
    for (const Rule* r : {&a, &b}) {
      if (r->when) {
        for (const std::string& n : r->when->Names())
          names.insert(n);
      }
    }
    Scenario s;
    size_t combinations = 1;
    for (const std::string& n : names) {
      const ParamDecl* p = rs_.FindParam(n);
      std::vector<Value> values;
      if (p && p->type == ValueType::kBool)
        values = {Value::Bool(false), Value::Bool(true)};
      else if (p && p->type == ValueType::kString)
        values = p->allowed;
      if (values.empty() || combinations * values.size() > kMaxScenarios)
        continue;
      combinations *= values.size();
      s.choices.push_back({n, std::move(values)});
    }
    return s;
  }

  NameLookup Lookup(const Bindings& bound, const std::map<std::string, Value>& scenario) const {
    return [&bound, &scenario, this](const std::string& n) -> Result<std::optional<Value>> {
      for (const auto* m : {&bound, &scenario, &samples_}) {
        if (auto it = m->find(n); it != m->end())
          return std::optional(it->second);
      }
      return Error(ErrorCode::kRuleInvalid, "unknown in lint");
    };
  }

  // False when a placeholder value is outside its declared count (for the sample parameters).
  bool InDomain(const Bindings& bound) const {
    const std::map<std::string, Value> none;
    for (const auto& [name, value] : bound) {
      const PlaceholderDecl* d = rs_.FindPlaceholder(name);
      if (!d || !d->count || value.type() != ValueType::kInt)
        continue;
      auto count = d->count->EvaluateInt(Lookup(bound, none), "count");
      if (count.ok() && value.as_int() >= *count)
        return false;
    }
    return true;
  }

  // Unknowable conditions count as "may hold".
  bool MayHold(const Rule& r, const Bindings& bound,
               const std::map<std::string, Value>& scenario) const {
    if (!r.when)
      return true;
    auto v = r.when->EvaluateBool(Lookup(bound, scenario), "when");
    return !v.ok() || *v;
  }

  bool CanBothApply(size_t a, const Bindings& ba, size_t b, const Bindings& bb) const {
    const Scenario s = ScenarioFor(rs_.rules[a], rs_.rules[b]);
    std::vector<size_t> index(s.choices.size(), 0);
    while (true) {
      std::map<std::string, Value> scenario;
      for (size_t i = 0; i < s.choices.size(); ++i)
        scenario[s.choices[i].first] = s.choices[i].second[index[i]];
      if (MayHold(rs_.rules[a], ba, scenario) && MayHold(rs_.rules[b], bb, scenario))
        return true;
      size_t i = 0;
      while (i < index.size() && ++index[i] == s.choices[i].second.size())
        index[i++] = 0;
      if (i == index.size())
        return false;
    }
  }

  const RuleSet& rs_;
  std::map<std::string, std::string> params_;
  std::map<std::string, PlaceholderType> types_;
  std::map<std::string, Value> samples_;
};

// tied.to and copy_of name a tensor one one-to-one rule without ops converts: the copy (or the
// check) reuses that rule's single output.
void CheckTied(const RuleSet& rs, std::vector<Error>& out) {
  const auto params = SampleParamText(rs);
  const auto types = rs.PlaceholderTypes();
  for (const Rule& r : rs.rules) {
    if (!r.tied && !r.copy_of)
      continue;
    const NamePattern& pattern = r.tied ? r.tied->to : r.copy_of->to;
    const std::string to = pattern.Instantiate({}, params);
    bool found = false;
    for (const Rule& t : rs.rules) {
      if (t.tied || t.copy_of || t.drop || t.hf.size() != 1 || t.ms.size() != 1 || !t.ops.empty())
        continue;
      auto m = PatternMatcher::Compile(t.hf[0], types, params);
      Bindings b;
      found = found || (m.ok() && m->Match(to, &b));
    }
    if (!found) {
      out.emplace_back(ErrorCode::kRuleInvalid,
                       std::string(r.tied ? "tied.to" : "copy_of") + " \"" + to +
                           "\" is not converted by any one-to-one rule without ops",
                       r.tied ? r.tied->where : r.copy_of->where);
    }
  }
}

void CheckRopeHeads(const RuleSet& rs, std::vector<Error>& out) {
  for (const Rule& r : rs.rules) {
    size_t list = r.hf.size();
    for (const OpSpec& op : r.ops) {
      const bool rope = op.kind == OpKind::kRopeInterleave || op.kind == OpKind::kRopeDeinterleave;
      const size_t selected = op.tensors.empty() ? list : op.tensors.size();
      if (rope && selected > 1 && op.heads.size() == 1) {
        out.emplace_back(ErrorCode::kRuleInvalid,
                         std::string(OpKindName(op.kind)) + " applies one head count (\"" +
                             op.heads[0].text() + "\") to " + std::to_string(selected) +
                             " tensors; give one per tensor (k uses the KV head count)",
                         op.where);
      }
      if (op.kind == OpKind::kConcat || op.kind == OpKind::kInterleave)
        list = 1;
      else if (op.kind == OpKind::kSplit || op.kind == OpKind::kDeinterleave)
        list = op.parts ? static_cast<size_t>(*op.parts) : op.sizes.size();
    }
  }
}

// Every combination of the bool and enumerated string parameters the op conditions of `rule`
// read (at most kMaxScenarios; past that, the rest stay undecided).
std::vector<std::map<std::string, Value>> OpScenarios(const RuleSet& rs, const Rule& rule) {
  std::vector<std::map<std::string, Value>> out(1);
  for (const auto* chain : {&rule.ops, &rule.reverse_ops}) {
    for (const OpSpec& op : *chain) {
      if (!op.when)
        continue;
      for (const std::string& n : op.when->Names()) {
        const ParamDecl* p = rs.FindParam(n);
        std::vector<Value> values;
        if (p && p->type == ValueType::kBool)
          values = {Value::Bool(false), Value::Bool(true)};
        else if (p && p->type == ValueType::kString)
          values = p->allowed;
        if (values.empty() || out.front().count(n) || out.size() * values.size() > kMaxScenarios)
          continue;
        std::vector<std::map<std::string, Value>> next;
        for (const auto& s : out) {
          for (const Value& v : values) {
            next.push_back(s);
            next.back()[n] = v;
          }
        }
        out = std::move(next);
      }
    }
  }
  return out;
}

// The shapes a rule declares against its ops: each side's declaration carried through the chain
// must agree with every size an op states and with what the other side declares.
void CheckShapes(const RuleSet& rs, std::vector<Error>& out) {
  for (const Rule& rule : rs.rules) {
    std::set<std::string> seen;
    bool sides_differ = false;  // reported once: the other direction says the same
    auto report = [&](Error e) {
      if (seen.insert(e.ToString()).second)
        out.push_back(std::move(e));
    };
    for (const auto& scenario : OpScenarios(rs, rule)) {
      const OpCondition when = [&](const Expr& e) -> std::optional<bool> {
        auto v = e.EvaluateBool(
            [&](const std::string& n) -> Result<std::optional<Value>> {
              if (auto it = scenario.find(n); it != scenario.end())
                return std::optional(it->second);
              return Error(ErrorCode::kRuleInvalid, "undecided in lint");
            },
            "when");
        return v.ok() ? std::optional(*v) : std::nullopt;
      };
      for (Side from : {Side::kHf, Side::kMs}) {
        const Side to = from == Side::kHf ? Side::kMs : Side::kHf;
        ShapeFlow flow = FlowShapes(rs, rule, from, when);
        for (Error& e : flow.findings)
          report(std::move(e));
        const auto& declared = rule.shapes(to);
        for (size_t i = 0; i < declared.size() && i < flow.shapes.size(); ++i) {
          if (!flow.shapes[i])
            continue;
          const DerivedShape& derived = *flow.shapes[i];
          bool differs = derived.size() != declared[i].size();
          for (size_t d = 0; !differs && d < derived.size(); ++d)
            differs = derived[d] && SameValue(*derived[d], declared[i][d]) == false;
          if (!differs || sides_differ)
            continue;
          sides_differ = true;
          report(Error(ErrorCode::kRuleInvalid,
                       std::string(SideName(to)) + " pattern \"" + rule.side(to)[i].text() +
                           "\" declares " + ShapeText(declared[i]) + ", but the " + SideName(from) +
                           " shapes through the ops make it " + ShapeText(derived),
                       declared[i].empty() ? rule.where : declared[i][0].where()));
        }
      }
    }
  }
}

// Conditions that no rule uses, directly or through other conditions.
void CheckUnusedConditions(const RuleSet& rs, std::vector<Error>& out) {
  std::set<std::string> used;
  auto collect = [&](const std::optional<Expr>& e) {
    if (e) {
      for (const std::string& c : e->Conditions())
        used.insert(c);
    }
  };
  for (const Rule& r : rs.rules) {
    collect(r.when);
    collect(r.optional);
    if (r.tied)
      collect(r.tied->when);
    for (const OpSpec& op : r.ops)
      collect(op.when);
  }
  for (const ConditionDecl& c : rs.conditions) {
    if (!used.count(c.name))
      out.emplace_back(ErrorCode::kRuleInvalid, "condition " + c.name + " is not used", c.where);
  }
}

bool IsList(const RuleSet& rs, const ExprNode& n) {
  if (n.kind == NodeKind::kList)
    return true;
  const ParamDecl* p = n.kind == NodeKind::kName ? rs.FindParam(n.name) : nullptr;
  return p && p->type == ValueType::kList;
}

void FindListComparisons(const RuleSet& rs, const ExprNode& n, const Expr& e,
                         std::vector<Error>& out) {
  if (n.kind == NodeKind::kBinary && (n.name == "==" || n.name == "!=") &&
      (IsList(rs, *n.args[0]) || IsList(rs, *n.args[1]))) {
    out.emplace_back(ErrorCode::kRuleInvalid,
                     "\"" + e.text() + "\" compares a list with " + n.name +
                         "; test membership with \"in\" (or len() for its size)",
                     e.where());
    return;
  }
  if (n.kind == NodeKind::kCondition)
    return;  // checked where the condition is defined
  for (const auto& a : n.args)
    FindListComparisons(rs, *a, e, out);
}

// A list compared with == (almost always a mistake for `in`).
void CheckListComparisons(const RuleSet& rs, std::vector<Error>& out) {
  auto check = [&](const std::optional<Expr>& e) {
    if (e)
      FindListComparisons(rs, *e->node(), *e, out);
  };
  for (const ConditionDecl& c : rs.conditions)
    check(c.expr);
  for (const ParamDecl& p : rs.params)
    check(p.default_value);
  for (const Rule& r : rs.rules) {
    check(r.when);
    check(r.optional);
    if (r.tied)
      check(r.tied->when);
    for (const OpSpec& op : r.ops)
      check(op.when);
  }
}

}  // namespace

std::vector<Error> LintRuleSet(const RuleSet& rules) {
  std::vector<Error> out;
  OverlapCheck overlap(rules);
  overlap.Run(Side::kHf, out);
  overlap.Run(Side::kMs, out);
  CheckTied(rules, out);
  CheckRopeHeads(rules, out);
  CheckShapes(rules, out);
  CheckUnusedConditions(rules, out);
  CheckListComparisons(rules, out);
  return out;
}

std::vector<Error> LintRuleFile(const std::filesystem::path& path) {
  RuleLoad load = ParseRuleFile(path);
  if (!load.errors.empty())
    return std::move(load.errors);
  return LintRuleSet(*load.rules);
}

}  // namespace cw
