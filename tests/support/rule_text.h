// Rule files written inline in planner tests: the text of a rule file after its `name: t` line,
// loaded as "t.yaml", with the line numbers errors should name.
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

#include "engine/plan/planner.h"
#include "engine/ruleset/rule_file.h"

namespace cw::test {

inline const std::string kRuleHeader = "name: t\n";

// The rule set of `body`; a load error fails the test.
inline RuleSet RulesText(const std::string& body) {
  auto r = LoadRuleText(kRuleHeader + body, "t.yaml");
  if (!r.ok())
    FAIL(r.error().ToString());
  return std::move(r).value();
}

// The 1-based line of t.yaml holding the first `needle` of `body`.
inline int LineOf(const std::string& body, const std::string& needle) {
  const std::string all = kRuleHeader + body;
  const size_t at = all.find(needle);
  REQUIRE(at != std::string::npos);
  return static_cast<int>(std::count(all.begin(), all.begin() + static_cast<long>(at), '\n')) + 1;
}

inline PlanOptions Opts(Direction d, std::vector<std::pair<std::string, std::string>> set = {}) {
  PlanOptions o;
  o.direction = d;
  o.params.set = std::move(set);
  return o;
}

}  // namespace cw::test
