// Structural checks of a loaded rule set: every name declared, every placeholder bound on both
// sides (or gathered by a stack/unstack), op arity along each chain. Fills reverse_ops.
#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "engine/base/limits.h"
#include "engine/ruleset/rule_build.h"
#include "engine/ruleset/suggest.h"

namespace cw {
namespace {

std::vector<std::string> Keys(const std::set<std::string>& s) { return {s.begin(), s.end()}; }

void CheckNames(const Expr& e, const std::set<std::string>& allowed, const std::string& what,
                Diagnostics& diag) {
  for (const std::string& name : e.Names()) {
    if (!allowed.count(name)) {
      diag.Report("unknown name \"" + name + "\" in " + what + " \"" + e.text() + "\"" +
                      DidYouMean(name, Keys(allowed)),
                  e.where());
    }
  }
}

std::set<std::string> ParamNames(const RuleSet& rs) {
  std::set<std::string> out;
  for (const ParamDecl& p : rs.params)
    out.insert(p.name);
  return out;
}

// A count_of pattern is matched against input names alone, before any parameter has a value:
// exactly one placeholder, an integer one, and no ${param}.
void CheckCountOf(const RuleSet& rs, const NamePattern& pattern, Diagnostics& diag) {
  size_t placeholders = 0;
  for (const PatternSegment& s : pattern.segments()) {
    const Location at = pattern.SegmentLocation(s);
    if (s.kind == PatternSegment::Kind::kParam) {
      diag.Report(
          "a count_of pattern is matched before parameters have values: no ${" + s.text + "}", at);
    } else if (s.kind == PatternSegment::Kind::kPlaceholder) {
      ++placeholders;
      const PlaceholderDecl* decl = rs.FindPlaceholder(s.text);
      if (!decl)
        diag.Report("placeholder {" + s.text + "} is not declared under placeholders", at);
      else if (!decl->type.integer)
        diag.Report("count_of counts the values of an int placeholder; {" + s.text + "} is not",
                    at);
    }
  }
  if (placeholders != 1)
    diag.Report("a count_of pattern has exactly one placeholder, whose values it counts",
                pattern.where());
}

void CheckParams(const RuleSet& rs, Diagnostics& diag) {
  const std::set<std::string> params = ParamNames(rs);
  std::map<std::string, const ParamDecl*> flags;
  size_t candidates = 1;
  for (const ParamDecl& p : rs.params) {
    if (p.default_value) {
      CheckNames(*p.default_value, params, "the default of " + p.name, diag);
      if (auto c = p.default_value->AsConstant(); c && c->type() != p.type) {
        diag.Report(
            "the default of " + p.name + " is " + c->ToString() + ", not " + ValueTypeName(p.type),
            p.default_value->where());
      }
    }
    for (const auto* c : {&p.count_of_hf, &p.count_of_ms}) {
      if (*c)
        CheckCountOf(rs, **c, diag);
    }
    if (!p.flag.empty() && !flags.emplace(p.flag, &p).second)
      diag.Report("flag \"" + p.flag + "\" is given to two parameters", p.where);
    if (p.detect && candidates <= kMaxDetectCandidates) {
      candidates = std::min(candidates * p.allowed.size(), kMaxDetectCandidates + 1);
      if (candidates > kMaxDetectCandidates) {
        diag.Report("the detected parameters have over " + std::to_string(kMaxDetectCandidates) +
                        " combinations of values to try",
                    p.where);
      }
    }
  }
  // A default that needs itself, directly or not, can never be resolved. Reported once, at the
  // parameter where the cycle closes.
  std::map<std::string, int> state;  // 1 = visiting, 2 = done
  std::function<bool(const ParamDecl&)> visit = [&](const ParamDecl& p) {
    int& s = state[p.name];
    if (s == 2 || !p.default_value)
      return true;
    s = 1;
    for (const std::string& n : p.default_value->Names()) {
      const ParamDecl* q = rs.FindParam(n);
      if (q && state[q->name] == 1) {
        diag.Report("the default of " + q->name + " depends on itself", q->where);
        state[p.name] = 2;
        return false;
      }
      if (q && !visit(*q)) {
        state[p.name] = 2;
        return false;
      }
    }
    state[p.name] = 2;
    return true;
  };
  for (const ParamDecl& p : rs.params)
    visit(p);
}

// False when a pattern names an undeclared placeholder or parameter (then the binding checks
// are skipped: they would only repeat the problem).
bool CheckPatterns(const RuleSet& rs, const Rule& rule, Diagnostics& diag) {
  const size_t before = diag.errors.size();
  std::vector<std::string> declared;
  for (const PlaceholderDecl& p : rs.placeholders)
    declared.push_back(p.name);
  const std::set<std::string> params = ParamNames(rs);
  std::vector<const NamePattern*> patterns;
  for (Side side : {Side::kHf, Side::kMs}) {
    for (const NamePattern& pattern : rule.side(side))
      patterns.push_back(&pattern);
  }
  if (rule.tied)
    patterns.push_back(&rule.tied->to);
  if (rule.copy_of)
    patterns.push_back(&rule.copy_of->to);
  for (const NamePattern* pattern : patterns) {
    const bool tied_to = rule.tied && pattern == &rule.tied->to;
    const bool copy_of = rule.copy_of && pattern == &rule.copy_of->to;
    for (const PatternSegment& s : pattern->segments()) {
      const Location at = pattern->SegmentLocation(s);
      if (s.kind == PatternSegment::Kind::kPlaceholder && (tied_to || copy_of)) {
        diag.Report(
            std::string(tied_to ? "tied.to" : "copy_of") + " names one tensor: no placeholders",
            at);
      } else if (s.kind == PatternSegment::Kind::kPlaceholder && !rs.FindPlaceholder(s.text)) {
        diag.Report("placeholder {" + s.text + "} is not declared under placeholders" +
                        DidYouMean(s.text, declared),
                    at);
      } else if (s.kind == PatternSegment::Kind::kParam && !params.count(s.text)) {
        diag.Report("parameter ${" + s.text + "} is not declared under params" +
                        DidYouMean(s.text, Keys(params)),
                    at);
      }
    }
  }
  return diag.errors.size() == before;
}

std::set<std::string> RulePlaceholders(const Rule& rule) {
  std::set<std::string> out;
  for (Side side : {Side::kHf, Side::kMs}) {
    for (const NamePattern& p : rule.side(side)) {
      for (const std::string& n : p.placeholders())
        out.insert(n);
    }
  }
  return out;
}

void CheckExpressions(const RuleSet& rs, const Rule& rule, Diagnostics& diag) {
  std::set<std::string> params = ParamNames(rs);
  // A condition's unknown names are reported where it is defined, not again at each use; the
  // placeholders it reads are checked at each use, where the rule must bind them.
  for (const ConditionDecl& c : rs.conditions) {
    for (const std::string& n : c.expr.Names()) {
      if (!rs.FindPlaceholder(n))
        params.insert(n);
    }
  }
  std::set<std::string> with_placeholders = params;
  for (const std::string& n : RulePlaceholders(rule))
    with_placeholders.insert(n);
  if (rule.when)
    CheckNames(*rule.when, with_placeholders, "when", diag);
  if (rule.optional)
    CheckNames(*rule.optional, params, "optional", diag);
  if (rule.tied && rule.tied->when)
    CheckNames(*rule.tied->when, params, "tied.when", diag);
  for (Side side : {Side::kHf, Side::kMs}) {
    for (const ShapeDecl& shape : rule.shapes(side)) {
      for (const Expr& size : shape)
        CheckNames(size, with_placeholders, "shape", diag);
    }
  }
  for (const OpSpec& op : rule.ops) {
    const std::string what = std::string(OpKindName(op.kind));
    if (op.when)
      CheckNames(*op.when, params, what + " when", diag);
    std::vector<const Expr*> sized;
    for (const auto* list : {&op.sizes, &op.from_shape, &op.to_shape, &op.heads}) {
      for (const Expr& e : *list)
        sized.push_back(&e);
    }
    for (const auto* o : {&op.groups, &op.from_size, &op.to_size}) {
      if (*o)
        sized.push_back(&**o);
    }
    for (const Expr& e : op.block)
      sized.push_back(&e);
    for (const Expr* e : sized)
      CheckNames(*e, with_placeholders, what, diag);
  }
}

// The tensor list along the chain: one entry per list position, naming the placeholder whose
// values it holds (a run of tensors, one per value) or "" for a single tensor.
using Slots = std::vector<std::string>;

std::string SlotOver(const NamePattern& p, const std::set<std::string>& overs, Diagnostics& diag) {
  std::string found;
  for (const std::string& n : p.placeholders()) {
    if (!overs.count(n))
      continue;
    if (!found.empty())
      diag.Report("pattern gathers both {" + found + "} and {" + n + "}; stack one at a time",
                  p.where());
    found = n;
  }
  return found;
}

// Applies one op to the slot list; false (with a problem reported) when the op does not fit.
bool StepSlots(const OpSpec& op, Slots& slots, Diagnostics& diag) {
  const std::string name = OpKindName(op.kind);
  auto fail = [&](const std::string& m) {
    diag.Report(name + ": " + m, op.where);
    return false;
  };
  const size_t n = slots.size();
  const bool any_gathered =
      std::any_of(slots.begin(), slots.end(), [](const std::string& s) { return !s.empty(); });
  if (IsPerTensor(op.kind)) {
    std::set<int> seen;
    for (int t : op.tensors) {
      if (t < 0 || static_cast<size_t>(t) >= n || !seen.insert(t).second)
        return fail("tensors lists " + std::to_string(t) + " but the list has " +
                    std::to_string(n) + " entries (0-based, each once)");
    }
    const size_t selected = op.tensors.empty() ? n : op.tensors.size();
    if (op.heads.size() > 1 && op.heads.size() != selected)
      return fail("heads lists " + std::to_string(op.heads.size()) + " counts for " +
                  std::to_string(selected) + " tensors");
    return true;
  }
  switch (op.kind) {
    case OpKind::kConcat:
    case OpKind::kInterleave:
      if (any_gathered)
        return fail("stack the gathered tensors first");
      if (!op.sizes.empty() && op.sizes.size() != n)
        return fail("gives " + std::to_string(op.sizes.size()) + " sizes for " + std::to_string(n) +
                    " tensors");
      slots.assign(1, "");
      return true;
    case OpKind::kSplit:
    case OpKind::kDeinterleave:
      if (n != 1 || any_gathered)
        return fail("needs exactly one tensor, the list has " + std::to_string(n));
      slots.assign(op.parts ? static_cast<size_t>(*op.parts) : op.sizes.size(), "");
      return true;
    case OpKind::kStack: {
      bool found = false;
      for (std::string& s : slots) {
        if (s == op.over) {
          s.clear();
          found = true;
        }
      }
      return found || fail("no tensor in the list runs over {" + op.over + "}");
    }
    case OpKind::kUnstack:
      if (any_gathered)
        return fail("the list already holds gathered tensors");
      for (std::string& s : slots)
        s = op.over;
      return true;
    case OpKind::kDequantize: {
      if (n % 2 != 0)
        return fail("takes (weight, scale) pairs, the list has " + std::to_string(n) + " entries");
      Slots weights;
      for (size_t i = 0; i < n; i += 2) {
        if (slots[i] != slots[i + 1])
          return fail("a weight and its scale must both run over the same placeholder, or neither");
        weights.push_back(slots[i]);
      }
      slots = std::move(weights);
      return true;
    }
    default:
      return true;
  }
}

// Checks that the forward chain turns the hf list into the ms list; returns the list length
// before each op (for InverseOp).
std::optional<std::vector<int>> SimulateChain(const RuleSet& rs, const Rule& rule,
                                              Diagnostics& diag) {
  std::set<std::string> overs;
  for (const OpSpec& op : rule.ops) {
    if (op.kind != OpKind::kStack && op.kind != OpKind::kUnstack)
      continue;
    const PlaceholderDecl* p = rs.FindPlaceholder(op.over);
    if (!p || !p->type.integer) {
      diag.Report(std::string(OpKindName(op.kind)) + " over {" + op.over +
                      "}: it must be a declared int placeholder",
                  op.where);
      return std::nullopt;
    }
    overs.insert(op.over);
  }
  Slots slots;
  for (const NamePattern& p : rule.hf)
    slots.push_back(SlotOver(p, overs, diag));
  std::vector<int> inputs;
  for (const OpSpec& op : rule.ops) {
    inputs.push_back(static_cast<int>(slots.size()));
    if (!StepSlots(op, slots, diag))
      return std::nullopt;
  }
  if (slots.size() != rule.ms.size()) {
    diag.Report("the ops turn " + std::to_string(rule.hf.size()) + " hf tensor(s) into " +
                    std::to_string(slots.size()) + " but ms names " +
                    std::to_string(rule.ms.size()),
                rule.where);
    return std::nullopt;
  }
  for (size_t i = 0; i < slots.size(); ++i) {
    const std::string want = SlotOver(rule.ms[i], overs, diag);
    if (want != slots[i]) {
      diag.Report("ms pattern \"" + rule.ms[i].text() + "\" " +
                      (want.empty() ? "names one tensor" : "runs over {" + want + "}") +
                      " but the ops give " +
                      (slots[i].empty() ? "one tensor" : "a tensor per {" + slots[i] + "}"),
                  rule.ms[i].where());
    }
  }
  return inputs;
}

void CheckBinding(const Rule& rule, Diagnostics& diag) {
  std::set<std::string> overs;
  for (const OpSpec& op : rule.ops) {
    if (op.kind == OpKind::kStack || op.kind == OpKind::kUnstack)
      overs.insert(op.over);
  }
  for (const std::string& name : RulePlaceholders(rule)) {
    if (overs.count(name))
      continue;
    for (Side side : {Side::kHf, Side::kMs}) {
      for (const NamePattern& p : rule.side(side)) {
        if (p.has_placeholder(name))
          continue;
        const Side other = side == Side::kHf ? Side::kMs : Side::kHf;
        const bool on_other =
            std::any_of(rule.side(other).begin(), rule.side(other).end(),
                        [&](const NamePattern& q) { return q.has_placeholder(name); });
        diag.Report("placeholder {" + name + "} is bound on the " + SideName(other) +
                        " side only; pattern \"" + p.text() + "\" must use it too" +
                        (on_other ? " (or stack/unstack over it)" : ""),
                    p.where());
      }
    }
  }
}

void CheckShape(const RuleSet& rs, Rule& rule, Diagnostics& diag) {
  const bool one_sided = rule.hf.empty() != rule.ms.empty();
  if (rule.drop) {
    if (!one_sided)
      diag.Report("a drop rule names one side only (hf: to drop forward, ms: to drop in reverse)",
                  rule.where);
    if (!rule.ops.empty() || rule.tied || rule.copy_of)
      diag.Report("a drop rule takes no ops, no tied and no copy_of", rule.where);
    return;
  }
  if (rule.copy_of) {
    // The copy is written back from the one tensor `to` becomes: nothing of its own to convert.
    if (rule.hf.size() != 1 || !rule.ms.empty() || !rule.ops.empty() || rule.tied)
      diag.Report("a copy_of rule names one hf tensor, no ms side, no ops and no tied", rule.where);
    else if (!rule.hf[0].placeholders().empty())
      diag.Report("a copy_of rule names one tensor: no placeholders", rule.hf[0].where());
    return;
  }
  if (rule.tied) {
    if (rule.hf.size() != 1 || rule.ms.size() > 1 || !rule.ops.empty())
      diag.Report("a tied rule maps one hf name to at most one ms name, without ops", rule.where);
    else if (!rule.hf[0].placeholders().empty())
      diag.Report("a tied rule names one tensor: no placeholders", rule.hf[0].where());
    return;
  }
  if (one_sided) {
    diag.Report(std::string("this rule has no ") + (rule.hf.empty() ? "hf" : "ms") +
                    " side: add it, or say drop: true",
                rule.where);
    return;
  }
  CheckBinding(rule, diag);
  for (size_t i = 1; i < rule.ops.size(); ++i) {
    if (rule.ops[i].kind == OpKind::kDequantize) {
      diag.Report(
          "dequantize comes first in a chain: it turns FP8 weights and their scales into "
          "the bf16 values the other ops work on",
          rule.ops[i].where);
      return;
    }
  }
  const auto inputs = SimulateChain(rs, rule, diag);
  if (!inputs)
    return;
  rule.hf_written.clear();
  if (!rule.ops.empty() && rule.ops[0].kind == OpKind::kDequantize) {
    for (size_t i = 0; i < rule.hf.size(); i += 2)
      rule.hf_written.push_back(i);
  }
  rule.reverse_ops.clear();
  for (size_t i = rule.ops.size(); i-- > 0;)
    rule.reverse_ops.push_back(InverseOp(rule.ops[i], (*inputs)[i]));
}

// Checks every condition's names, then links the conditions into each other (each after those it
// uses) and into every rule's conditions. A condition that uses itself, directly or not, is
// reported and left unlinked.
void LinkConditions(RuleSet& rs, Diagnostics& diag) {
  if (rs.conditions.empty())
    return;
  std::set<std::string> allowed = ParamNames(rs);
  for (const PlaceholderDecl& p : rs.placeholders)
    allowed.insert(p.name);
  for (const ConditionDecl& c : rs.conditions) {
    if (allowed.count(c.name))
      diag.Report("condition " + c.name + " has the name of a parameter or placeholder", c.where);
  }
  for (const ConditionDecl& c : rs.conditions)
    allowed.insert(c.name);
  std::map<std::string, Expr> linked;
  std::map<std::string, int> state;  // 1 = visiting, 2 = done
  std::function<bool(const ConditionDecl&)> visit = [&](const ConditionDecl& c) {
    if (state[c.name] == 2)
      return linked.count(c.name) > 0;
    if (state[c.name] == 1) {
      diag.Report("condition " + c.name + " depends on itself", c.where);
      return false;
    }
    state[c.name] = 1;
    bool ok = true;
    for (const std::string& n : c.expr.Names()) {
      if (const ConditionDecl* used = rs.FindCondition(n))
        ok = visit(*used) && ok;
    }
    state[c.name] = 2;
    if (!ok)
      return false;
    Expr e = c.expr.WithConditions(linked);
    if (e.depth() > limits::kMaxExpressionDepth) {
      diag.Add(ErrorCode::kLimitExceeded,
               "condition " + c.name + " nests deeper than " +
                   std::to_string(limits::kMaxExpressionDepth) +
                   " levels with the conditions it uses",
               c.where);
      return false;
    }
    linked.emplace(c.name, std::move(e));
    return true;
  };
  for (const ConditionDecl& c : rs.conditions) {
    CheckNames(c.expr, allowed, "condition " + c.name, diag);
    visit(c);
  }
  for (ConditionDecl& c : rs.conditions) {
    if (auto it = linked.find(c.name); it != linked.end())
      c.expr = it->second;
  }
  const auto link = [&](std::optional<Expr>& e) {
    if (e)
      e = e->WithConditions(linked);
  };
  for (Rule& rule : rs.rules) {
    link(rule.when);
    link(rule.optional);
    if (rule.tied)
      link(rule.tied->when);
    for (OpSpec& op : rule.ops)
      link(op.when);
  }
}

}  // namespace

void CheckRuleSet(RuleSet& rs, Diagnostics& diag) {
  CheckParams(rs, diag);
  LinkConditions(rs, diag);
  const std::set<std::string> params = ParamNames(rs);
  for (const PlaceholderDecl& p : rs.placeholders) {
    if (p.count)
      CheckNames(*p.count, params, "the count of {" + p.name + "}", diag);
  }
  for (Rule& rule : rs.rules) {
    const bool declared = CheckPatterns(rs, rule, diag);
    for (const PlaceholderDecl& p : rs.placeholders) {
      if (p.ms_spelling.empty())
        continue;
      for (NamePattern& pattern : rule.ms)
        pattern.SetSpelling(p.name, p.ms_spelling);
    }
    CheckExpressions(rs, rule, diag);
    if (declared)
      CheckShape(rs, rule, diag);
  }
}

}  // namespace cw
