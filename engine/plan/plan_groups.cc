// Stage 3 of planning: grouping matched inputs into rule instances, checking each group is
// complete and each non-optional rule covers every value of its placeholders.
#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "engine/plan/plan_context.h"

namespace cw {
namespace {

constexpr size_t kMaxListedNames = 20;
// Placeholder tuples one rule's coverage check enumerates at most.
constexpr uint64_t kMaxCoverageTuples = 10'000'000;

std::string KeyText(const Bindings& key) {
  std::string s;
  for (const auto& [name, value] : key)
    s += name + "=" + value.ToText() + ";";
  return s;
}

std::string KeyDisplay(const Bindings& key) {
  std::string s;
  for (const auto& [name, value] : key)
    s += (s.empty() ? "" : ", ") + name + " " + value.ToText();
  return s;
}

bool PatternGathers(const PlanContext& ctx, const ActiveRule& a, size_t k) {
  return !a.over.empty() && a.rule->side(ctx.source)[k].has_placeholder(a.over);
}

// The first names, and how many more there are of `total`.
std::string ListNames(const std::vector<std::string>& names, size_t total = 0) {
  total = std::max(total, names.size());
  std::string s;
  for (size_t i = 0; i < names.size() && i < kMaxListedNames; ++i)
    s += (s.empty() ? "" : ", ") + names[i];
  const size_t shown = std::min(names.size(), kMaxListedNames);
  if (total > shown)
    s += " and " + std::to_string(total - shown) + " more";
  return s;
}

// Missing members of a group, as concrete names (the first few), and how many are missing.
std::vector<std::string> MissingMembers(PlanContext& ctx, const Group& g, size_t& total) {
  total = 0;
  const ActiveRule& a = ctx.active[g.active];
  const auto& patterns = a.rule->side(ctx.source);
  std::vector<std::string> missing;
  for (size_t k = 0; k < patterns.size(); ++k) {
    const auto& members = g.members[k];
    if (!PatternGathers(ctx, a, k)) {
      if (members.empty()) {
        missing.push_back(patterns[k].Instantiate(g.key, ctx.param_text));
        ++total;
      }
      continue;
    }
    const int64_t n = ctx.Count(a.over).value_or(members.empty() ? 1 : members.rbegin()->first + 1);
    const auto present = static_cast<int64_t>(
        std::count_if(members.begin(), members.end(), [n](const auto& m) { return m.first < n; }));
    total += static_cast<size_t>(n - present);
    for (int64_t v = 0; v < n && missing.size() <= kMaxListedNames; ++v) {
      if (members.count(v))
        continue;
      Bindings b = g.key;
      b[a.over] = Value::Int(v);
      missing.push_back(patterns[k].Instantiate(b, ctx.param_text));
    }
  }
  return missing;
}

// Every placeholder tuple a non-optional rule must cover, enumerated placeholder by placeholder:
// declared counts and value lists where known, else the values seen (integers 0..max seen).
class Coverage {
 public:
  Coverage(PlanContext& ctx, const ActiveRule& a, const std::vector<const Group*>& groups,
           const std::vector<Group>& all_groups)
      : ctx_(ctx), a_(a), groups_(groups), all_groups_(all_groups) {}

  std::vector<Bindings> Missing() {
    for (const Group* g : groups_)
      seen_.insert(KeyText(g->key));
    for (const InputMatch& m : ctx_.ambiguous) {
      if (ctx_.active[m.active].rule == a_.rule) {
        Bindings key = m.bindings;
        key.erase(a_.over);
        seen_.insert(KeyText(key));
      }
    }
    Bindings prefix;
    Expand(0, prefix);
    return missing_;
  }

 private:
  std::vector<Value> Domain(size_t i, const Bindings& prefix) {
    const std::string& name = a_.placeholders[i];
    const PlaceholderDecl* decl = ctx_.rules.FindPlaceholder(name);
    std::vector<Value> out;
    if (decl && !decl->type.integer && !decl->type.values.empty()) {
      for (const std::string& v : decl->type.values)
        out.push_back(Value::String(v));
      return out;
    }
    std::optional<int64_t> count = decl && decl->type.integer ? ctx_.Count(name) : std::nullopt;
    std::set<std::string> idents;
    int64_t max_seen = -1;
    for (const Group* g : groups_) {
      const bool agrees = std::all_of(prefix.begin(), prefix.end(), [&](const auto& kv) {
        return g->key.at(kv.first) == kv.second;
      });
      if (!agrees)
        continue;
      const Value& v = g->key.at(name);
      if (v.type() == ValueType::kInt)
        max_seen = std::max(max_seen, v.as_int());
      else
        idents.insert(v.as_string());
    }
    if (decl && decl->type.integer && !count)
      max_seen = std::max(max_seen, MaxInScope(name, prefix));
    if (decl && decl->type.integer) {
      for (int64_t v = 0; v < count.value_or(max_seen + 1); ++v)
        out.push_back(Value::Int(v));
    } else {
      for (const std::string& s : idents)
        out.push_back(Value::String(s));
    }
    return out;
  }

  void Expand(size_t i, Bindings& prefix) {
    if (visited_ > kMaxCoverageTuples)
      return;  // Counts are capped each, but their product may not be: stop listing.
    if (i == a_.placeholders.size()) {
      ++visited_;
      if (seen_.count(KeyText(prefix)) || !Applies(prefix))
        return;
      missing_.push_back(prefix);
      return;
    }
    for (const Value& v : Domain(i, prefix)) {
      prefix[a_.placeholders[i]] = v;
      Expand(i + 1, prefix);
      prefix.erase(a_.placeholders[i]);
    }
  }

  // Without a declared count, the values of an integer placeholder are those any required rule
  // of the same scope saw: a tensor missing from the last block is then missing, not unknown.
  // The scope is the pattern text before the placeholder ("blocks." vs "decoder_blocks.") and the
  // placeholders of the pattern (Swin's per-stage downsample has no {block} and exists in every
  // stage but the last, so it is not held to the stages of the blocks); groups count only where
  // they agree with the outer placeholders' values.
  int64_t MaxInScope(const std::string& name, const Bindings& prefix) const {
    const std::optional<std::string> scope = TextBefore(*a_.rule, name);
    const std::vector<std::string> shape = a_.rule->side(ctx_.source)[0].placeholders();
    int64_t max_seen = -1;
    for (const Group& g : all_groups_) {
      const ActiveRule& other = ctx_.active[g.active];
      if (other.optional || other.tied || !g.key.count(name) ||
          g.key.at(name).type() != ValueType::kInt || TextBefore(*other.rule, name) != scope ||
          other.rule->side(ctx_.source)[0].placeholders() != shape) {
        continue;
      }
      const bool agrees = std::all_of(prefix.begin(), prefix.end(), [&](const auto& kv) {
        const auto it = g.key.find(kv.first);
        return it == g.key.end() || it->second == kv.second;
      });
      if (agrees)
        max_seen = std::max(max_seen, g.key.at(name).as_int());
    }
    return max_seen;
  }

  // The text of the rule's first source pattern up to `{name}`, nullopt when it has none.
  std::optional<std::string> TextBefore(const Rule& rule, const std::string& name) const {
    std::string text;
    for (const PatternSegment& seg : rule.side(ctx_.source)[0].segments()) {
      if (seg.kind == PatternSegment::Kind::kPlaceholder && seg.text == name)
        return text;
      text += seg.kind == PatternSegment::Kind::kLiteral ? seg.text : "{" + seg.text + "}";
    }
    return std::nullopt;
  }

  bool Applies(const Bindings& b) {
    if (!a_.when_per_match)
      return true;
    auto on = a_.rule->when->EvaluateBool(ctx_.params.Lookup(&b), "when");
    return on.ok() && *on;
  }

  PlanContext& ctx_;
  const ActiveRule& a_;
  const std::vector<const Group*>& groups_;
  const std::vector<Group>& all_groups_;
  std::set<std::string> seen_;
  std::vector<Bindings> missing_;
  uint64_t visited_ = 0;
};

void CheckCoverage(PlanContext& ctx, const std::vector<Group>& groups) {
  for (size_t ai = 0; ai < ctx.active.size(); ++ai) {
    const ActiveRule& a = ctx.active[ai];
    if (a.optional || a.tied)
      continue;
    std::vector<const Group*> mine;
    for (const Group& g : groups) {
      if (g.active == ai)
        mine.push_back(&g);
    }
    const std::vector<Bindings> missing = Coverage(ctx, a, mine, groups).Missing();
    if (missing.empty())
      continue;
    std::vector<std::string> names;
    const NamePattern& first = a.rule->side(ctx.source)[0];
    for (Bindings b : missing) {
      if (!a.over.empty() && first.has_placeholder(a.over))
        b[a.over] = Value::Int(0);
      names.push_back(first.Instantiate(b, ctx.param_text));
    }
    ctx.Fail(ErrorCode::kPlanInvalid,
             "this rule is not optional, but " + std::to_string(names.size()) + " of its tensors " +
                 (names.size() == 1 ? "is" : "are") + " missing: " + ListNames(names),
             a.rule->where);
  }
}

}  // namespace

std::vector<Group> BuildGroups(PlanContext& ctx,
                               const std::vector<std::optional<InputMatch>>& matches,
                               std::vector<DroppedInput>& dropped) {
  std::vector<Group> groups;
  std::map<std::pair<size_t, std::string>, size_t> index;
  for (uint64_t i = 0; i < matches.size(); ++i) {
    if (!matches[i])
      continue;
    const InputMatch& m = *matches[i];
    const ActiveRule& a = ctx.active[m.active];
    if (a.rule->drop) {
      dropped.push_back({i, a.rule->where, "dropped by its rule"});
      continue;
    }
    Bindings key = m.bindings;
    int64_t over_value = -1;
    if (!a.over.empty() && key.count(a.over)) {
      over_value = key.at(a.over).as_int();
      key.erase(a.over);
    }
    const auto [it, fresh] = index.emplace(std::make_pair(m.active, KeyText(key)), groups.size());
    if (fresh) {
      groups.push_back(Group{m.active, key, {}, i});
      groups.back().members.resize(a.sources.size());
    }
    Group& g = groups[it->second];
    g.members[m.pattern][over_value] = i;
    g.first_input = std::min(g.first_input, i);
  }
  CheckCoverage(ctx, groups);
  std::vector<Group> complete;
  for (Group& g : groups) {
    size_t total = 0;
    const std::vector<std::string> missing = MissingMembers(ctx, g, total);
    if (missing.empty()) {
      complete.push_back(std::move(g));
      continue;
    }
    const Rule& rule = *ctx.active[g.active].rule;
    ctx.Fail(ErrorCode::kPlanInvalid,
             "the group of this rule" + (g.key.empty() ? "" : " for " + KeyDisplay(g.key)) +
                 " is incomplete; missing " + ListNames(missing, total),
             rule.where);
  }
  return complete;
}

}  // namespace cw
