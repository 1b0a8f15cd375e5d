// Stage 3 of planning: grouping matched inputs into rule instances, checking each group is
// complete and each non-optional rule covers every value of its placeholders.
#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "engine/base/limits.h"
#include "engine/plan/plan_context.h"

namespace cw {
namespace {

constexpr size_t kMaxListedNames = 20;
// Placeholder tuples, complete or partial, the coverage checks of one plan enumerate at most:
// as many as a checkpoint can have tensors. Past it, they only count missing tuples further.
constexpr uint64_t kMaxCoverageNodes = limits::kMaxTensorCount;

// The placeholder values of `key` but `skip`, as text that tells keys apart.
std::string KeyText(const Bindings& key, const std::string& skip = "") {
  std::string s;
  for (const auto& [name, value] : key) {
    if (name == skip)
      continue;
    s += name;
    s += '=';
    s += value.ToText();
    s += ';';
  }
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
// The groups that can tell a placeholder's values are handed down the enumeration bucketed by
// value, so that each level reads every group once, however many values it has.
class Coverage {
 public:
  Coverage(PlanContext& ctx, const ActiveRule& a) : ctx_(ctx), a_(a) {}

  // The tuples `own` (this rule's groups) lacks, the first kMaxListedNames of them; `total`
  // counts them all, or those found before the plan's coverage checks tried kMaxCoverageNodes
  // tuples (`complete` false). `all_groups`: every group of the plan, for the range of a
  // placeholder without count.
  std::vector<Bindings> Missing(const std::vector<const Group*>& own,
                                const std::vector<Group>& all_groups, size_t& total,
                                bool& complete) {
    for (const InputMatch& m : ctx_.ambiguous) {
      if (ctx_.active[m.active].rule == a_.rule) {
        Bindings key = m.bindings;
        key.erase(a_.over);
        ambiguous_.insert(KeyText(key));
      }
    }
    const std::vector<std::string> shape = a_.rule->side(ctx_.source)[0].placeholders();
    Groups peers;
    for (const Group& g : all_groups) {
      const ActiveRule& other = ctx_.active[g.active];
      if (!other.optional && !other.tied &&
          other.rule->side(ctx_.source)[0].placeholders() == shape)
        peers.push_back(&g);
    }
    Bindings prefix;
    Expand(0, prefix, own, peers);
    total = missing_count_;
    complete = ctx_.coverage_nodes <= kMaxCoverageNodes;
    return std::move(missing_);
  }

 private:
  using Groups = std::vector<const Group*>;

  // The values placeholder `i` takes under the current prefix: a declared list, or 0..count-1,
  // or those `own` has (integers 0..max seen, widened by the peers in scope).
  struct Domain {
    std::vector<Value> listed;
    int64_t integers = 0;  // when `listed` is empty: 0..integers-1
  };

  Domain DomainOf(size_t i, const Groups& own, const Groups& peers) {
    const std::string& name = a_.placeholders[i];
    const PlaceholderDecl* decl = ctx_.rules.FindPlaceholder(name);
    Domain out;
    if (decl && !decl->type.integer && !decl->type.values.empty()) {
      for (const std::string& v : decl->type.values)
        out.listed.push_back(Value::String(v));
      return out;
    }
    std::optional<int64_t> count = decl && decl->type.integer ? ctx_.Count(name) : std::nullopt;
    std::set<std::string> idents;
    int64_t max_seen = -1;
    for (const Group* g : own) {
      const Value& v = g->key.at(name);
      if (v.type() == ValueType::kInt)
        max_seen = std::max(max_seen, v.as_int());
      else
        idents.insert(v.as_string());
    }
    if (decl && decl->type.integer && !count)
      max_seen = std::max(max_seen, MaxInScope(name, peers));
    if (decl && decl->type.integer) {
      out.integers = count.value_or(max_seen + 1);
    } else {
      for (const std::string& v : idents)
        out.listed.push_back(Value::String(v));
    }
    return out;
  }

  // `groups` by their value of one placeholder; those without it (peers of another `over`)
  // agree with every value.
  struct Buckets {
    struct Less {
      bool operator()(const Value& a, const Value& b) const {
        if (a.type() != b.type())
          return a.type() < b.type();
        return a.type() == ValueType::kInt ? a.as_int() < b.as_int() : a.ToText() < b.ToText();
      }
    };
    std::map<Value, Groups, Less> by_value;
    Groups any;

    Buckets(const Groups& groups, const std::string& name) {
      for (const Group* g : groups) {
        const auto it = g->key.find(name);
        if (it == g->key.end())
          any.push_back(g);
        else
          by_value[it->second].push_back(g);
      }
    }

    Groups Agreeing(const Value& v) const {
      Groups out = any;
      if (const auto it = by_value.find(v); it != by_value.end())
        out.insert(out.end(), it->second.begin(), it->second.end());
      return out;
    }
  };

  void Expand(size_t i, Bindings& prefix, const Groups& own, const Groups& peers) {
    if (++ctx_.coverage_nodes > kMaxCoverageNodes)
      return;  // Counts are capped each, but their product may not be: stop counting.
    if (i == a_.placeholders.size()) {
      // `own` holds the group of this tuple, if present.
      if (!own.empty() || (!ambiguous_.empty() && ambiguous_.count(KeyText(prefix))) ||
          !Applies(prefix))
        return;
      if (missing_.size() < kMaxListedNames)
        missing_.push_back(prefix);
      ++missing_count_;
      return;
    }
    const std::string& name = a_.placeholders[i];
    const Domain domain = DomainOf(i, own, peers);
    const Buckets own_buckets(own, name), peer_buckets(peers, name);
    Value& slot = prefix[name];  // map nodes stay put while deeper levels add and erase theirs
    const auto visit = [&](const Value& v) {
      slot = v;
      Expand(i + 1, prefix, own_buckets.Agreeing(v), peer_buckets.Agreeing(v));
    };
    for (const Value& v : domain.listed)
      visit(v);
    for (int64_t v = 0; v < domain.integers && ctx_.coverage_nodes <= kMaxCoverageNodes; ++v)
      visit(Value::Int(v));
    prefix.erase(name);
  }

  // Without a declared count, the values of an integer placeholder are those any required rule
  // of the same scope saw: a tensor missing from the last block is then missing, not unknown.
  // The scope is the pattern text before the placeholder ("blocks." vs "decoder_blocks.") and the
  // placeholders of the pattern (Swin's per-stage downsample has no {block} and exists in every
  // stage but the last, so it is not held to the stages of the blocks); `peers` are the groups of
  // the rules with the same placeholders that agree with the outer placeholders' values.
  int64_t MaxInScope(const std::string& name, const Groups& peers) const {
    const std::optional<std::string> scope = TextBefore(*a_.rule, name);
    int64_t max_seen = -1;
    for (const Group* g : peers) {
      const auto it = g->key.find(name);
      if (it == g->key.end() || it->second.type() != ValueType::kInt ||
          TextBefore(*ctx_.active[g->active].rule, name) != scope)
        continue;
      max_seen = std::max(max_seen, it->second.as_int());
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
  std::set<std::string> ambiguous_;  // tuples whose input two rules claim: counted as present
  std::vector<Bindings> missing_;
  size_t missing_count_ = 0;
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
    size_t total = 0;
    bool complete = true;
    const std::vector<Bindings> missing = Coverage(ctx, a).Missing(mine, groups, total, complete);
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
             "this rule is not optional, but " + std::string(complete ? "" : "at least ") +
                 std::to_string(total) + " of its tensors " + (total == 1 ? "is" : "are") +
                 " missing: " + ListNames(names, total),
             a.rule->where);
  }
}

}  // namespace

std::vector<Group> BuildGroups(PlanContext& ctx,
                               const std::vector<std::optional<InputMatch>>& matches,
                               std::vector<DroppedInput>& dropped) {
  std::vector<Group> groups;
  // Group index by "<active rule>:<KeyText>"; hashed, since `groups` keeps the order in which
  // groups first appear.
  std::unordered_map<std::string, size_t> index;
  for (uint64_t i = 0; i < matches.size(); ++i) {
    if (!matches[i])
      continue;
    const InputMatch& m = *matches[i];
    const ActiveRule& a = ctx.active[m.active];
    if (a.rule->drop) {
      dropped.push_back({i, a.rule->where, "dropped by its rule"});
      continue;
    }
    const auto over = a.over.empty() ? m.bindings.end() : m.bindings.find(a.over);
    const int64_t over_value = over == m.bindings.end() ? -1 : over->second.as_int();
    const auto [it, fresh] = index.try_emplace(
        std::to_string(m.active) + ":" + KeyText(m.bindings, a.over), groups.size());
    if (fresh) {
      Bindings key = m.bindings;
      if (over != m.bindings.end())
        key.erase(a.over);
      groups.push_back(Group{m.active, std::move(key), {}, i});
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
