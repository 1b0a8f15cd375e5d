// copy_of: an hf tensor declared a copy of another is checked equal and left out forward, and
// written again from the one ms tensor in reverse (DeepSeek-V3's MTP embedding and head).
#include <algorithm>
#include <string>

#include <doctest/doctest.h>

#include "engine/plan/planner.h"
#include "engine/plan/round_trip.h"
#include "engine/ruleset/rule_file.h"
#include "engine/ruleset/rule_lint.h"
#include "tests/support/inventory_builder.h"
#include "tests/support/plan_fixtures.h"

namespace cw {
namespace {

using test::LineOf;
using test::Opts;
using test::RulesText;
using test::StepWriting;

std::vector<TensorInfo> Named(const std::vector<std::string>& names, Shape shape = {4, 2}) {
  std::vector<TensorInfo> out;
  for (const std::string& n : names)
    out.push_back(test::Info(n, DType::kBF16, shape));
  return out;
}

// An MTP-like layer at index ${mtp} holding copies of the embedding and the head.
constexpr const char* kCopies = R"(
params:
  mtp: {type: int, default: 2}
  with_mtp: {type: bool, default: true}
  sure: {type: bool, default: true}
rules:
  - {hf: emb, ms: word, shape: [4, 2]}
  - {hf: head, ms: out}
  - hf: layers.${mtp}.emb
    copy_of: emb
    when: with_mtp
    optional: not sure
    shape: [4, 2]
  - hf: layers.${mtp}.head
    copy_of: head
    when: with_mtp
    optional: not sure
)";

TEST_SUITE("plan.plan_steps") {
  TEST_CASE(
      "a copy_of tensor is checked equal forward, left out, and written again by the reverse") {
    const RuleSet rules = RulesText(kCopies);
    const auto inventory = Named({"emb", "head", "layers.2.emb", "layers.2.head"});
    auto forward = MakePlan(rules, inventory, Opts(Direction::kForward));
    REQUIRE_MESSAGE(forward.ok(), forward.error().ToString());
    CHECK(StepWriting(*forward, "layers.2.emb") == nullptr);
    REQUIRE(forward->dropped.size() == 2);
    for (const DroppedInput& d : forward->dropped) {
      CHECK(d.checked_equal);
      CHECK(d.restored);
    }
    CHECK(forward->dropped[0].reason ==
          "a copy of emb; checked equal, written again by the reverse");
    const auto verifies = std::count_if(forward->steps.begin(), forward->steps.end(), [](auto& s) {
      return s.kind == PlanStep::Kind::kVerifyEqual;
    });
    CHECK(verifies == 2);
    CHECK_FALSE(forward->lossy);

    auto reverse = MakePlan(rules, forward->Outputs(), Opts(Direction::kReverse));
    REQUIRE_MESSAGE(reverse.ok(), reverse.error().ToString());
    const PlanStep* copy = StepWriting(*reverse, "layers.2.emb");
    const PlanStep* original = StepWriting(*reverse, "emb");
    REQUIRE(copy != nullptr);
    REQUIRE(original != nullptr);
    CHECK(copy->inputs == original->inputs);
    CHECK(copy->note == "copy of emb (copy_of)");
    CHECK(copy->rule.line == LineOf(kCopies, "- hf: layers.${mtp}.emb"));
    REQUIRE(StepWriting(*reverse, "layers.2.head") != nullptr);
    CHECK(test::SortedByName(reverse->Outputs()) == test::SortedByName(inventory));
    CHECK(CheckRoundTrip(rules, inventory, {}).empty());
  }

  TEST_CASE("the reverse writes no copy where the copy_of rule's when is false") {
    const RuleSet rules = RulesText(kCopies);
    auto reverse =
        MakePlan(rules, Named({"word", "out"}), Opts(Direction::kReverse, {{"with_mtp", "false"}}));
    REQUIRE_MESSAGE(reverse.ok(), reverse.error().ToString());
    CHECK(reverse->Outputs().size() == 2);
  }

  TEST_CASE("an optional copy_of rule writes nothing in reverse and the plan says why") {
    const RuleSet rules = RulesText(kCopies);
    auto reverse =
        MakePlan(rules, Named({"word", "out"}), Opts(Direction::kReverse, {{"sure", "false"}}));
    REQUIRE_MESSAGE(reverse.ok(), reverse.error().ToString());
    CHECK(reverse->Outputs().size() == 2);
    CHECK(std::any_of(reverse->notes.begin(), reverse->notes.end(), [](const std::string& n) {
      return n.find("is optional: whether the hf input had its copy is unknown") !=
             std::string::npos;
    }));
  }

  TEST_CASE("a copy_of tensor of another shape is refused forward at its copy_of") {
    const RuleSet rules = RulesText(kCopies);
    auto inventory = Named({"emb", "head", "layers.2.emb"});
    inventory.push_back(test::Info("layers.2.head", DType::kBF16, {2, 4}));
    auto forward = MakePlan(rules, inventory, Opts(Direction::kForward));
    REQUIRE_FALSE(forward.ok());
    CHECK(forward.error().code() == ErrorCode::kPlanInvalid);
    CHECK(forward.error().where().file == "t.yaml");
    CHECK(forward.error().where().line == LineOf(kCopies, "copy_of: head"));
    CHECK(forward.error().message().find(
              "layers.2.head [2, 4] BF16 is declared a copy of head [4, 2] BF16 "
              "but cannot equal it") != std::string::npos);
  }

  TEST_CASE("a missing copy_of tensor is reported forward like any required tensor") {
    const RuleSet rules = RulesText(kCopies);
    auto forward =
        MakePlan(rules, Named({"emb", "head", "layers.2.emb"}), Opts(Direction::kForward));
    REQUIRE_FALSE(forward.ok());
    CHECK(forward.error().message().find("layers.2.head") != std::string::npos);
  }

  TEST_CASE("a copy of a tensor the reverse does not write fails at the copy_of") {
    const std::string text = R"(
rules:
  - {hf: emb, ms: word}
  - {hf: head, ms: out, optional: true}
  - {hf: copy.head, copy_of: head}
)";
    const RuleSet rules = RulesText(text);
    auto reverse = MakePlan(rules, Named({"word"}), Opts(Direction::kReverse));
    REQUIRE_FALSE(reverse.ok());
    CHECK(reverse.error().where().line == LineOf(text, "{hf: copy.head"));
    CHECK(reverse.error().message().find(
              "copy.head is a copy of \"head\", which no step of this plan writes alone") !=
          std::string::npos);
  }

  TEST_CASE("copy_of takes one hf tensor without ms side, ops or placeholders") {
    struct Case {
      const char* rule;
      const char* message;
    };
    const Case cases[] = {
        {"  - {hf: c, ms: d, copy_of: a}", "a copy_of rule names one hf tensor, no ms side"},
        {"  - {hf: \"c.{layer}\", copy_of: a}", "a copy_of rule names one tensor: no placeholders"},
        {"  - {hf: c, copy_of: \"a.{layer}\"}", "copy_of names one tensor: no placeholders"},
        {"  - {hf: c, drop: true, copy_of: a}", "a drop rule takes no ops, no tied and no copy_of"},
    };
    for (const Case& c : cases) {
      CAPTURE(c.rule);
      const std::string text =
          "placeholders: {layer: int}\nrules:\n  - {hf: a, ms: b}\n" + std::string(c.rule) + "\n";
      auto r = LoadRuleText(test::kRuleHeader + text, "t.yaml");
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().code() == ErrorCode::kRuleInvalid);
      CHECK(r.error().where().line == 5);
      CHECK(r.error().message().find(c.message) != std::string::npos);
    }
  }

  TEST_CASE("lint reports a copy_of whose tensor no one-to-one rule converts") {
    const std::string text = "rules:\n  - {hf: a, ms: b}\n  - {hf: c, copy_of: z}\n";
    const RuleSet rules = RulesText(text);
    const std::vector<Error> found = LintRuleSet(rules);
    REQUIRE(found.size() == 1);
    CHECK(found[0].where().line == 4);
    CHECK(found[0].message() ==
          "copy_of \"z\" is not converted by any one-to-one rule without ops");
  }
}

}  // namespace
}  // namespace cw
