#include "engine/plan/round_trip.h"

#include <doctest/doctest.h>

#include "engine/plan/planner.h"
#include "engine/ruleset/rule_file.h"
#include "tests/support/inventory_builder.h"
#include "tests/support/test_files.h"

namespace cw {
namespace {

RuleSet Shipped(const std::string& file) {
  auto r = LoadRuleFile(test::SourcePath("rules/" + file));
  if (!r.ok())
    FAIL(r.error().ToString());
  return std::move(r).value();
}

RuleSet Inline(const std::string& text) {
  auto r = LoadRuleText(text, "t.yaml");
  if (!r.ok())
    FAIL(r.error().ToString());
  return std::move(r).value();
}

std::string Joined(const std::vector<Error>& errors) {
  std::string s;
  for (const Error& e : errors)
    s += e.ToString() + "\n";
  return s;
}

TEST_SUITE("plan.round_trip") {
  TEST_CASE("the shipped rules come back exactly on llama and qwen2 inventories in every variant") {
    for (const char* file : {"llama.yaml", "qwen2.yaml"}) {
      const RuleSet rules = Shipped(file);
      for (int variant = 0; variant < 6; ++variant) {
        CAPTURE(file);
        CAPTURE(variant);
        test::LlamaShape shape;
        shape.model_type = std::string(file) == "qwen2.yaml" ? "qwen2" : "llama";
        shape.qkv_bias = shape.model_type == "qwen2" || variant == 5;
        shape.heads = 14;
        shape.kv_heads = 2;
        shape.head_dim = 4;
        shape.tied = variant % 2 == 1;
        shape.lm_head = !shape.tied;
        ParamInputs params = test::LlamaParams(shape);
        if (variant >= 2)
          params.set.push_back({"qkv_concat", "true"});
        if (variant == 4)
          params.set.push_back({"concat_layout", "plain"});
        const auto errors = CheckRoundTrip(rules, test::LlamaInventory(shape), params);
        CHECK_MESSAGE(errors.empty(), Joined(errors));
      }
    }
  }

  TEST_CASE("a tied model that also ships lm_head loses it on the way back and lint says so") {
    const RuleSet rules = Shipped("qwen2.yaml");
    test::LlamaShape shape;
    shape.model_type = "qwen2";
    shape.qkv_bias = true;
    shape.tied = true;
    shape.lm_head = true;
    const auto errors =
        CheckRoundTrip(rules, test::LlamaInventory(shape), test::LlamaParams(shape));
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].message().find("loses tensors (1):\n    lm_head.weight BF16 [64, 32]") !=
          std::string::npos);
  }

  TEST_CASE("a dtype override that changes the dtype is reported as a change") {
    const RuleSet rules = Inline(R"(
name: t
rules:
  - {hf: norm, ms: norm_out, dtype: {ms: F32}}
)");
    const auto errors =
        CheckRoundTrip(rules, {test::Info("norm", DType::kBF16, {4})}, ParamInputs{});
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].message().find("norm BF16 [4] comes back as F32 [4]") != std::string::npos);
  }

  TEST_CASE("a forward planning error is reported with its context") {
    const RuleSet rules = Shipped("llama.yaml");
    const auto errors =
        CheckRoundTrip(rules, {test::Info("unknown.weight", DType::kF32, {2})}, ParamInputs{});
    REQUIRE_FALSE(errors.empty());
    CHECK(errors[0].context().at(0).find("planning forward") != std::string::npos);
  }

  TEST_CASE("a truncating rule is reported as lossy") {
    const RuleSet rules = Inline(R"(
name: t
rules:
  - hf: embed
    ms: embed
    ops: [{truncate: {axis: 0, from: 8, to: 6}}]
)");
    const auto errors =
        CheckRoundTrip(rules, {test::Info("embed", DType::kF32, {8, 2})}, ParamInputs{});
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].message().find("lossy: truncate drops entries 6..7") != std::string::npos);
  }
}

}  // namespace
}  // namespace cw
