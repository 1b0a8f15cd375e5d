// Planner behaviour on small in-memory rule files: groups, coverage, ties, drops and dtypes
// (plan_groups.cc, with the steps plan_steps.cc makes of them).
#include <doctest/doctest.h>

#include "engine/plan/planner.h"
#include "engine/ruleset/rule_file.h"
#include "tests/support/inventory_builder.h"
#include "tests/support/plan_fixtures.h"

namespace cw {
namespace {

using test::RulesText;

using test::Info;

PlanOptions Options(Direction d, std::vector<std::pair<std::string, std::string>> set = {}) {
  PlanOptions o;
  o.direction = d;
  o.params.set = std::move(set);
  return o;
}

std::string AllMessages(const PlanOutcome& outcome) {
  std::string s;
  for (const Error& e : outcome.errors)
    s += e.ToString() + "\n";
  return s;
}

const char* kMoe = R"(
params: {experts: {type: int}}
placeholders: {layer: int, expert: {type: int, count: experts}}
rules:
  - hf: "l.{layer}.experts.{expert}.w1"
    ms: "l.{layer}.ffn.w1"
    ops: [{stack: {over: expert, axis: 0}}]
)";

const char* kBlocks = R"(
placeholders: {block: int, stage: int}
rules:
  - {hf: "blocks.{block}.a", ms: "b.{block}.a"}
  - {hf: "blocks.{block}.b", ms: "b.{block}.b"}
  - {hf: "decoder_blocks.{block}.a", ms: "d.{block}.a"}
  - {hf: "layers.{stage}.blocks.{block}.w", ms: "s.{stage}.{block}.w"}
  - {hf: "layers.{stage}.down", ms: "s.{stage}.down"}
)";

std::vector<TensorInfo> BlockInventory(const std::vector<std::string>& names) {
  std::vector<TensorInfo> inventory;
  for (const std::string& n : names)
    inventory.push_back(Info(n, DType::kF32, {2}));
  return inventory;
}

TEST_SUITE("plan.plan_groups") {
  TEST_CASE("a missing expert makes its layer's group incomplete and is named") {
    const RuleSet rules = RulesText(kMoe);
    std::vector<TensorInfo> inv;
    for (int e : {0, 1, 3})
      inv.push_back(Info("l.0.experts." + std::to_string(e) + ".w1", DType::kF32, {4, 2}));
    auto plan = MakePlan(rules, inv, Options(Direction::kForward, {{"experts", "4"}}));
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().message().find(
              "group of this rule for layer 0 is incomplete; missing l.0.experts.2.w1") !=
          std::string::npos);
    CHECK(plan.error().where().line == 6);
  }

  TEST_CASE("an expert past the count is unmatched rather than silently dropped") {
    const RuleSet rules = RulesText(kMoe);
    std::vector<TensorInfo> inv;
    for (int e = 0; e < 3; ++e)
      inv.push_back(Info("l.0.experts." + std::to_string(e) + ".w1", DType::kF32, {4, 2}));
    auto plan = MakePlan(rules, inv, Options(Direction::kForward, {{"experts", "2"}}));
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().message().find("l.0.experts.2.w1 (matches rule") != std::string::npos);
  }

  TEST_CASE("unstacking checks the stacked axis against the declared count") {
    const RuleSet rules = RulesText(kMoe);
    auto plan = MakePlan(rules, {Info("l.0.ffn.w1", DType::kF32, {3, 4, 2})},
                         Options(Direction::kReverse, {{"experts", "4"}}));
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().message().find("holds 3 values of {expert} but its count is 4") !=
          std::string::npos);
    auto ok = MakePlan(rules, {Info("l.0.ffn.w1", DType::kF32, {4, 4, 2})},
                       Options(Direction::kReverse, {{"experts", "4"}}));
    REQUIRE(ok.ok());
    CHECK(ok->steps[0].outputs.size() == 4);
    CHECK(ok->steps[0].outputs[3].name == "l.0.experts.3.w1");
    CHECK(ok->steps[0].outputs[3].shape == Shape{4, 2});
  }

  TEST_CASE("a name two rules match at plan time names both rules") {
    const RuleSet rules = RulesText(R"(
placeholders: {part: ident}
rules:
  - {hf: "x.{part}", ms: "a.{part}"}
  - {hf: x.norm, ms: norm}
)");
    const PlanOutcome plan = CompilePlan(rules, {Info("x.norm", DType::kF32, {2})}, {});
    REQUIRE(plan.errors.size() == 1);
    CHECK(plan.errors[0].message().find("matches two rules: t.yaml:5:5 and t.yaml:6:5") !=
          std::string::npos);
  }

  TEST_CASE("two rules writing one name fail naming the rule") {
    // Lint catches literal duplicates; a parameter's text can still make two names equal.
    const RuleSet dup = RulesText(R"(
params: {n: {type: string, default: x}}
rules:
  - {hf: a, ms: "${n}"}
  - {hf: b, ms: x}
)");
    auto plan = CompilePlan(dup, {Info("a", DType::kF32, {1}), Info("b", DType::kF32, {1})}, {});
    REQUIRE(plan.errors.size() == 1);
    CHECK(plan.errors[0].message().find("two steps write \"x\"") != std::string::npos);
  }

  TEST_CASE("layers past --layers are dropped by an explicit rule and listed") {
    const RuleSet rules = RulesText(R"(
params: {layers: {type: int, config: n_layer, flag: layers}}
placeholders: {layer: {type: int, count: layers}, extra: int}
rules:
  - {hf: "h.{layer}.w", ms: "b.{layer}.w"}
  - {hf: "h.{extra}.w", drop: true, optional: true, when: extra >= layers}
)");
    std::vector<TensorInfo> inv;
    for (int l = 0; l < 4; ++l)
      inv.push_back(Info("h." + std::to_string(l) + ".w", DType::kF32, {2}));
    auto plan = MakePlan(rules, inv, Options(Direction::kForward, {{"layers", "2"}}));
    REQUIRE(plan.ok());
    CHECK(plan->steps.size() == 2);
    REQUIRE(plan->dropped.size() == 2);
    CHECK(plan->inventory[plan->dropped[1].input].name == "h.3.w");
    CHECK(plan->lossy);
  }

  TEST_CASE("an ms-only drop rule applies in reverse only") {
    const RuleSet rules = RulesText(R"(
rules:
  - {hf: a, ms: b}
  - {ms: global_step, drop: true, optional: true}
)");
    auto reverse =
        MakePlan(rules, {Info("b", DType::kF32, {1}), Info("global_step", DType::kI32, {})},
                 Options(Direction::kReverse));
    REQUIRE(reverse.ok());
    CHECK(reverse->dropped.size() == 1);
    auto forward =
        MakePlan(rules, {Info("a", DType::kF32, {1}), Info("global_step", DType::kI32, {})},
                 Options(Direction::kForward));
    CHECK_FALSE(forward.ok());
  }

  TEST_CASE("a tied tensor whose shape differs from its target cannot be checked equal") {
    const RuleSet rules = RulesText(R"(
params: {tied: {type: bool, default: true}}
rules:
  - {hf: embed, ms: embedding}
  - {hf: head, ms: head, tied: {to: embed, when: tied}}
)");
    auto plan =
        MakePlan(rules, {Info("embedding", DType::kF32, {4, 2}), Info("head", DType::kF32, {2, 4})},
                 Options(Direction::kReverse));
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().message().find("head [2, 4] F32 is tied to embedding [4, 2] F32") !=
          std::string::npos);
  }

  TEST_CASE("a one-sided tie checks the tensor equal and drops it") {
    const RuleSet rules = RulesText(R"(
rules:
  - {hf: wte, ms: embedding_table}
  - {hf: lm_head.weight, tied: {to: wte}}
)");
    auto plan = MakePlan(
        rules, {Info("wte", DType::kF16, {4, 2}), Info("lm_head.weight", DType::kF16, {4, 2})},
        Options(Direction::kForward));
    REQUIRE(plan.ok());
    REQUIRE(plan->steps.size() == 2);
    CHECK(plan->steps[1].kind == PlanStep::Kind::kVerifyEqual);
    CHECK(plan->dropped.size() == 1);
    CHECK_FALSE(plan->lossy);
    auto without =
        MakePlan(rules, {Info("wte", DType::kF16, {4, 2})}, Options(Direction::kForward));
    CHECK(without.ok());
  }

  TEST_CASE("a per-rule dtype keeps a tensor out of the requested cast") {
    const RuleSet rules = RulesText(R"(
rules:
  - {hf: w, ms: W}
  - {hf: norm, ms: NORM, dtype: keep}
  - {hf: index, ms: INDEX}
)");
    PlanOptions o;
    o.cast = DType::kF16;
    auto plan = MakePlan(rules,
                         {Info("w", DType::kF32, {2}), Info("norm", DType::kF32, {2}),
                          Info("index", DType::kI64, {2})},
                         o);
    REQUIRE(plan.ok());
    CHECK(plan->steps[0].outputs[0].dtype == DType::kF16);
    CHECK(plan->steps[1].outputs[0].dtype == DType::kF32);
    CHECK(plan->steps[2].outputs[0].dtype == DType::kI64);
  }

  TEST_CASE("inputs of one step must share a dtype") {
    const RuleSet rules = RulesText(R"(
rules:
  - hf: [q, k]
    ms: qk
    ops: [{concat: {axis: 0, equal: true}}]
)");
    auto plan = MakePlan(rules, {Info("q", DType::kF32, {2}), Info("k", DType::kBF16, {2})}, {});
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().message().find("inputs differ in dtype: q is F32, k is BF16") !=
          std::string::npos);
  }

  TEST_CASE("equal parts that are not equal are refused so the reverse cannot cut wrongly") {
    const RuleSet rules = RulesText(R"(
rules:
  - hf: [q, k]
    ms: qk
    ops: [{concat: {axis: 0, equal: true}}]
)");
    auto plan = MakePlan(rules, {Info("q", DType::kF32, {4}), Info("k", DType::kF32, {2})}, {});
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().message().find("equal parts declared but q [4] and k [2] differ") !=
          std::string::npos);
  }

  TEST_CASE("a split whose sizes do not add up names the rule and the tensor with its shape") {
    const RuleSet rules = RulesText(R"(
rules:
  - hf: qkv
    ms: [q, k, v]
    ops: [{split: {axis: 0, sizes: [4, 2, 1]}}]
)");
    auto plan = MakePlan(rules, {Info("qkv", DType::kF32, {8, 3})}, {});
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().message() ==
          "rule t.yaml:4:5: split: sizes 4 + 2 + 1 = 7 do not add up to axis 0 of qkv [8, 3]");
    CHECK(plan.error().where().line == 6);
  }

  TEST_CASE("duplicate input names are refused") {
    const RuleSet rules = RulesText("rules: [{hf: a, ms: b}]\n");
    const PlanOutcome plan =
        CompilePlan(rules, {Info("a", DType::kF32, {1}), Info("a", DType::kF32, {1})}, {});
    CHECK(AllMessages(plan).find("two tensors named \"a\"") != std::string::npos);
  }

  TEST_CASE("an optional rule may match nothing but a partial group is still an error") {
    const RuleSet rules = RulesText(R"(
placeholders: {layer: int}
rules:
  - hf: ["l.{layer}.q.bias", "l.{layer}.k.bias"]
    ms: "l.{layer}.qk.bias"
    optional: true
    ops: [{concat: {axis: 0, equal: true}}]
  - {hf: "l.{layer}.w", ms: "L.{layer}.w"}
)");
    CHECK(MakePlan(rules, {Info("l.0.w", DType::kF32, {1})}, {}).ok());
    auto partial = MakePlan(
        rules, {Info("l.0.w", DType::kF32, {1}), Info("l.0.q.bias", DType::kF32, {1})}, {});
    REQUIRE_FALSE(partial.ok());
    CHECK(partial.error().message().find("missing l.0.k.bias") != std::string::npos);
  }

  TEST_CASE("without a count a tensor missing from the last block is named") {
    const RuleSet rules = RulesText(kBlocks);
    const auto outcome =
        CompilePlan(rules,
                    BlockInventory({"blocks.0.a", "blocks.0.b", "blocks.1.a", "decoder_blocks.0.a",
                                    "layers.0.blocks.0.w", "layers.1.blocks.0.w", "layers.0.down"}),
                    Options(Direction::kForward));
    REQUIRE_FALSE(outcome.errors.empty());
    CHECK(AllMessages(outcome).find("blocks.1.b") != std::string::npos);
    CHECK(AllMessages(outcome).find("decoder_blocks.1.a") == std::string::npos);
    CHECK(AllMessages(outcome).find("layers.1.down") == std::string::npos);
  }

  TEST_CASE("without a count each scope keeps its own values: decoder blocks and downsamples") {
    const RuleSet rules = RulesText(kBlocks);
    const auto outcome =
        CompilePlan(rules,
                    BlockInventory({"blocks.0.a", "blocks.0.b", "blocks.1.a", "blocks.1.b",
                                    "decoder_blocks.0.a", "layers.0.blocks.0.w",
                                    "layers.0.blocks.1.w", "layers.1.blocks.0.w", "layers.0.down"}),
                    Options(Direction::kForward));
    CHECK(AllMessages(outcome).empty());
  }

  TEST_CASE("without a count a block missing in one stage is named within that stage") {
    const RuleSet rules = RulesText(kBlocks);
    const auto outcome =
        CompilePlan(rules,
                    BlockInventory({"blocks.0.a", "blocks.0.b", "decoder_blocks.0.a",
                                    "layers.0.blocks.0.w", "layers.0.blocks.2.w", "layers.0.down"}),
                    Options(Direction::kForward));
    REQUIRE_FALSE(outcome.errors.empty());
    CHECK(AllMessages(outcome).find("layers.0.blocks.1.w") != std::string::npos);
  }
}

}  // namespace
}  // namespace cw
