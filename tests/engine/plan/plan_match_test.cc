// Parameters in patterns are needed only where a rule reads or writes a name: a rule that matches
// nothing needs no value for its target side's ${param}s, and an optional rule whose own pattern
// cannot be read matches nothing.
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

// `extra` has no config key and no default: nothing gives it a value.
constexpr const char* kExtra = R"(
params:
  extra: {type: int}
rules:
  - {hf: w, ms: w}
  - {hf: "x.${extra}.a", ms: m.a, optional: true}
)";

TEST_SUITE("plan.plan_match") {
  TEST_CASE("an optional rule whose hf pattern needs a parameter without a value matches nothing") {
    const RuleSet rules = RulesText(kExtra);
    auto plan = MakePlan(rules, Named({"w"}), Opts(Direction::kForward));
    REQUIRE_MESSAGE(plan.ok(), plan.error().ToString());
    CHECK(plan->Outputs().size() == 1);
  }

  TEST_CASE("a reverse rule that matches nothing needs no value for its target's parameters") {
    const RuleSet rules = RulesText(kExtra);
    auto plan = MakePlan(rules, Named({"w"}), Opts(Direction::kReverse));
    REQUIRE_MESSAGE(plan.ok(), plan.error().ToString());
    CHECK(plan->Outputs().size() == 1);
  }

  TEST_CASE("a reverse rule that matches asks for its target's parameter, naming the rule") {
    const RuleSet rules = RulesText(kExtra);
    auto plan = MakePlan(rules, Named({"w", "m.a"}), Opts(Direction::kReverse));
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().code() == ErrorCode::kPlanInvalid);
    CHECK(plan.error().where().file == "t.yaml");
    CHECK(plan.error().where().line == LineOf(kExtra, "extra: {type: int}"));
    const std::string text = plan.error().ToString();
    CHECK(text.find("parameter extra has no value: give --set extra=...") != std::string::npos);
    CHECK(text.find("reading pattern \"x.${extra}.a\" at t.yaml:" +
                    std::to_string(LineOf(kExtra, "- {hf: \"x."))) != std::string::npos);
  }

  TEST_CASE("an input left unmatched by an unreadable optional pattern names the parameter") {
    const RuleSet rules = RulesText(kExtra);
    auto plan = MakePlan(rules, Named({"w", "x.3.a"}), Opts(Direction::kForward));
    REQUIRE_FALSE(plan.ok());
    const std::string text = plan.error().ToString();
    CHECK(text.find("parameter extra has no value") != std::string::npos);
    CAPTURE(text);
    CHECK(text.find("reading pattern \"x.${extra}.a\"") != std::string::npos);
    CHECK(text.find("x.3.a") != std::string::npos);
  }

  TEST_CASE("a required rule whose pattern cannot be read still fails at once") {
    const std::string text = R"(
params:
  extra: {type: int}
rules:
  - {hf: w, ms: w}
  - {hf: "x.${extra}.a", ms: m.a}
)";
    const RuleSet rules = RulesText(text);
    auto plan = MakePlan(rules, Named({"w"}), Opts(Direction::kForward));
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().message().find("parameter extra has no value") != std::string::npos);
    CHECK(plan.error().where().line == LineOf(text, "extra: {type: int}"));
  }
}

}  // namespace
}  // namespace cw
