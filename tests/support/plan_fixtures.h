// Planner test fixtures: rule files written inline (the text after their `name: t` line, loaded
// as "t.yaml", with the line numbers errors should name), plan options, small inventories, and
// finding the step that writes a tensor.
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

#include "engine/plan/planner.h"
#include "engine/ruleset/rule_file.h"
#include "tests/support/inventory_builder.h"

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

// Float32 tensors of shape [2] with these names.
inline std::vector<TensorInfo> Named(const std::vector<std::string>& names) {
  std::vector<TensorInfo> out;
  for (const std::string& n : names)
    out.push_back(Info(n, DType::kF32, {2}));
  return out;
}

// The step that writes `name`, or nullptr.
inline const PlanStep* StepWriting(const Plan& plan, const std::string& name) {
  for (const PlanStep& s : plan.steps) {
    for (const TensorInfo& out : s.outputs) {
      if (out.name == name)
        return &s;
    }
  }
  return nullptr;
}

}  // namespace cw::test
