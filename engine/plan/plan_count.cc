// Parameters counted from the input names (`count_of:`, docs/rules.md §3): the number of
// distinct values one int placeholder takes in the names a pattern matches. Names are facts
// about the checkpoint that no shape carries (how many decoder layers a MindSpore file holds,
// whether it has an MTP layer), so the count comes before shapes and defaults.
#include <set>

#include "engine/plan/plan_context.h"

namespace cw {

std::vector<SolvedParam> CountNames(const RuleSet& rules, const std::vector<TensorInfo>& inventory,
                                    const PlanOptions& options) {
  const Side source = SourceSide(options.direction);
  const ParamResolver given(rules, options.params);
  const auto types = rules.PlaceholderTypes();
  std::vector<SolvedParam> out;
  for (const ParamDecl& p : rules.params) {
    const std::optional<NamePattern>& pattern = p.count_of(source);
    if (!pattern || given.Given(p) || given.Detected(p))
      continue;
    // The load checked the pattern: one int placeholder, no ${param}.
    auto matcher = PatternMatcher::Compile(*pattern, types, {});
    const std::vector<std::string> placeholders = pattern->placeholders();
    if (!matcher.ok() || placeholders.size() != 1)
      continue;
    std::set<int64_t> values;
    Bindings b;
    for (const TensorInfo& t : inventory) {
      b.clear();
      if (matcher->Match(t.name, &b))
        values.insert(b.at(placeholders[0]).as_int());
    }
    out.push_back(SolvedParam{p.name, Value::Int(static_cast<int64_t>(values.size())),
                              "counted: " + std::to_string(values.size()) + " value" +
                                  (values.size() == 1 ? "" : "s") + " of {" + placeholders[0] +
                                  "} in the input names like " + pattern->text()});
  }
  return out;
}

}  // namespace cw
