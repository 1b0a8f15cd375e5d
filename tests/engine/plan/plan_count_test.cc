// count_of: a parameter read off the input names, as the number of distinct values one int
// placeholder takes in the names a pattern matches (a MindSpore file's layer count).
#include <algorithm>
#include <string>

#include <doctest/doctest.h>

#include "engine/plan/planner.h"
#include "engine/ruleset/rule_file.h"
#include "tests/support/inventory_builder.h"
#include "tests/support/plan_fixtures.h"

namespace cw {
namespace {

using test::LineOf;
using test::Named;
using test::Opts;
using test::RulesText;

const PlanParameter* Parameter(const Plan& plan, const std::string& name) {
  for (const PlanParameter& p : plan.parameters) {
    if (p.name == name)
      return &p;
  }
  return nullptr;
}

bool HasOutput(const Plan& plan, const std::string& name) {
  const auto out = plan.Outputs();
  return std::any_of(out.begin(), out.end(), [&](const TensorInfo& t) { return t.name == name; });
}

// Decoder layers d.N, and one extra layer whose hf index is the layer count (an MTP layer).
constexpr const char* kLayers = R"(
params:
  layers: {type: int, config: num_layers, count_of: {ms: "d.{layer}.n"}}
  nextn: {type: int, values: [0, 1], count_of: {ms: "mtp.{k}.n"}}
  last: {type: int, default: layers}
placeholders:
  layer: {type: int, count: layers}
  k: int
rules:
  - {hf: "l.{layer}.n", ms: "d.{layer}.n"}
  - {hf: "l.{layer}.w", ms: "d.{layer}.w"}
  - {hf: "l.${last}.n", ms: mtp.0.n, when: nextn == 1}
)";

TEST_SUITE("plan.plan_count") {
  TEST_CASE("count_of counts the distinct values of its placeholder in the source names") {
    const RuleSet rules = RulesText(kLayers);
    auto plan = MakePlan(rules, Named({"d.0.n", "d.0.w", "d.1.n", "d.1.w", "mtp.0.n"}),
                         Opts(Direction::kReverse));
    REQUIRE_MESSAGE(plan.ok(), plan.error().ToString());
    CHECK(HasOutput(*plan, "l.2.n"));
    const PlanParameter* layers = Parameter(*plan, "layers");
    REQUIRE(layers != nullptr);
    CHECK(layers->value == "2");
    CHECK(layers->source == "counted: 2 values of {layer} in the input names like d.{layer}.n");
    REQUIRE(Parameter(*plan, "nextn") != nullptr);
    CHECK(Parameter(*plan, "nextn")->value == "1");
  }

  TEST_CASE("a count of zero turns the rules it guards off, and their parameters are not needed") {
    const RuleSet rules = RulesText(kLayers);
    auto plan = MakePlan(rules, Named({"d.0.n", "d.0.w"}), Opts(Direction::kReverse));
    REQUIRE_MESSAGE(plan.ok(), plan.error().ToString());
    CHECK(plan->Outputs().size() == 2);
    CHECK(Parameter(*plan, "nextn")->value == "0");
  }

  TEST_CASE("a value given by --set is not replaced by the count") {
    const RuleSet rules = RulesText(kLayers);
    auto plan = MakePlan(rules, Named({"d.0.n", "d.0.w", "d.1.n", "d.1.w"}),
                         Opts(Direction::kReverse, {{"layers", "3"}}));
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().message().find("d.2.n") != std::string::npos);
  }

  TEST_CASE("count_of for the ms side counts nothing forward") {
    const RuleSet rules = RulesText(kLayers);
    auto plan = MakePlan(rules, Named({"l.0.n", "l.0.w"}), Opts(Direction::kForward));
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().message().find("parameter nextn has no value") != std::string::npos);
  }

  TEST_CASE("a gap in the counted values is reported as a missing tensor") {
    const RuleSet rules = RulesText(kLayers);
    auto plan =
        MakePlan(rules, Named({"d.0.n", "d.0.w", "d.2.n", "d.2.w"}), Opts(Direction::kReverse));
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().ToString().find("d.1.n") != std::string::npos);
  }

  TEST_CASE("a counted value the parameter does not allow is refused, saying it was counted") {
    const RuleSet rules = RulesText(kLayers);
    auto plan =
        MakePlan(rules, Named({"d.0.n", "d.0.w", "mtp.0.n", "mtp.1.n"}), Opts(Direction::kReverse));
    REQUIRE_FALSE(plan.ok());
    const std::string text = plan.error().ToString();
    CHECK(text.find("parameter nextn is 2 (from counted: 2 values of {k} in the input names like "
                    "mtp.{k}.n), but it takes 0, 1") != std::string::npos);
    CHECK(plan.error().where().line == LineOf(kLayers, "nextn: {"));
  }

  TEST_CASE("count_of takes one pattern per side with exactly one int placeholder") {
    struct Case {
      const char* param;
      const char* message;
    };
    const Case cases[] = {
        {"{type: int, count_of: {ms: \"d.{layer}.{k}\"}}", "exactly one placeholder"},
        {"{type: int, count_of: {ms: \"d.n\"}}", "exactly one placeholder"},
        {"{type: int, count_of: {ms: \"d.{name}.n\"}}", "{name} is not"},
        {"{type: int, count_of: {ms: \"d.{layer}.${x}\"}}", "no ${x}"},
        {"{type: bool, count_of: {ms: \"d.{layer}.n\"}}", "count_of gives int parameters only"},
        {"{type: int, count_of: {}}", "count_of needs an hf or an ms pattern"},
        {"{type: int, count_of: {hs: \"d.{layer}\"}}", "unknown key"},
    };
    for (const Case& c : cases) {
      CAPTURE(c.param);
      const std::string text =
          "params:\n  x: {type: int, default: 1}\n  p: " + std::string(c.param) +
          "\nplaceholders: {layer: int, k: int, name: ident}\n"
          "rules:\n  - {hf: a, ms: b}\n";
      auto r = LoadRuleText(test::kRuleHeader + text, "t.yaml");
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().code() == ErrorCode::kRuleInvalid);
      CHECK(r.error().where().line == 4);
      CHECK(r.error().ToString().find(c.message) != std::string::npos);
    }
  }
}

}  // namespace
}  // namespace cw
