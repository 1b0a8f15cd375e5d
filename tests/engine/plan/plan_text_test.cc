// Plan rendering, with text snapshots in tests/data/plans/ (regenerate with
// CW_UPDATE_GOLDENS=1 and review the diff).
#include "engine/plan/plan_text.h"

#include <cstdlib>

#include <doctest/doctest.h>

#include "engine/plan/planner.h"
#include "engine/ruleset/rule_file.h"
#include "tests/support/inventory_builder.h"
#include "tests/support/test_files.h"

namespace cw {
namespace {

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

Plan SmallPlan(Direction direction, bool fused) {
  auto rules = LoadRuleFile(test::SourcePath("rules/qwen2.yaml"));
  REQUIRE(rules.ok());
  test::LlamaShape shape;
  shape.model_type = "qwen2";
  shape.layers = 1;
  shape.hidden = 8;
  shape.heads = 4;
  shape.kv_heads = 2;
  shape.intermediate = 12;
  shape.vocab = 16;
  shape.qkv_bias = true;
  shape.tied = true;
  shape.lm_head = false;
  PlanOptions options;
  options.params = test::LlamaParams(shape);
  if (fused)
    options.params.set = {{"qkv_concat", "true"}};
  auto forward = MakePlan(*rules, test::LlamaInventory(shape), options);
  REQUIRE(forward.ok());
  if (direction == Direction::kForward)
    return std::move(forward).value();
  options.direction = Direction::kReverse;
  auto reverse = MakePlan(*rules, forward->Outputs(), options);
  REQUIRE(reverse.ok());
  return std::move(reverse).value();
}

void CheckGolden(const std::string& name, const std::string& actual) {
  const std::string text = Replace(actual, test::SourcePath("").string(), "");
  const auto path = test::SourcePath("tests/data/plans/" + name);
  if (std::getenv("CW_UPDATE_GOLDENS")) {
    test::WriteFile(path, text);
    return;
  }
  CHECK(test::ReadFile(path) == text);
}

TEST_SUITE("plan.text") {
  TEST_CASE("the fused qwen2 forward plan matches its snapshot") {
    CheckGolden("qwen2_fused_tied.forward.txt", PlanToText(SmallPlan(Direction::kForward, true)));
  }

  TEST_CASE("the fused qwen2 reverse plan matches its snapshot") {
    CheckGolden("qwen2_fused_tied.reverse.txt", PlanToText(SmallPlan(Direction::kReverse, true)));
  }

  TEST_CASE("the JSON rendering holds every step and op and the totals") {
    const Plan plan = SmallPlan(Direction::kForward, true);
    const std::string json = PlanToJson(plan);
    CHECK(json.find("\"direction\": \"forward\"") != std::string::npos);
    CHECK(json.find("\"op\": \"concat\"") != std::string::npos);
    CHECK(json.find("\"name\": \"model.layers.0.attention.w_qkv.weight\"") != std::string::npos);
    CHECK(json.find("\"peak_bytes\": " + std::to_string(plan.peak_bytes)) != std::string::npos);
    size_t steps = 0;
    for (size_t at = json.find("\"kind\": "); at != std::string::npos;
         at = json.find("\"kind\": ", at + 1))
      ++steps;
    CHECK(steps == plan.steps.size());
  }

  TEST_CASE("names with quotes and control bytes are escaped in JSON") {
    Plan plan;
    plan.inventory = {test::Info("a\"b\\c\x01\xc3", DType::kF32, {1})};
    plan.dropped = {{0, {}, "x", false}};
    const std::string json = PlanToJson(plan);
    CHECK(json.find(R"("a\"b\\c\u0001\u00c3")") != std::string::npos);
  }

  TEST_CASE("byte counts read as binary units with the exact count") {
    CHECK(FormatBytes(0) == "0 B");
    CHECK(FormatBytes(1023) == "1023 B");
    CHECK(FormatBytes(4096) == "4.0 KiB (4096 bytes)");
    CHECK(FormatBytes(3ull << 30) == "3.0 GiB (3221225472 bytes)");
  }
}

}  // namespace
}  // namespace cw
