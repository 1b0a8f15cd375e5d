// FP8 weights with block scales through a rule's dequantize op: planning (dtypes, scale shapes,
// names, the scales consumed), running the step, and the reverse that writes bfloat16.
#include <algorithm>
#include <cstring>
#include <map>
#include <vector>

#include <doctest/doctest.h>

#include "engine/plan/planner.h"
#include "engine/plan/round_trip.h"
#include "engine/plan/step_ops.h"
#include "engine/ruleset/rule_file.h"
#include "engine/tensor/fp8.h"
#include "tests/support/inventory_builder.h"
#include "tests/support/plan_fixtures.h"

namespace cw {
namespace {

using test::RulesText;

constexpr const char* kLinear = R"(
rules:
  - hf: [w.weight, w.weight_scale_inv]
    ms: w.weight
    ops:
      - dequantize: {block: [128, 128]}
)";

// Two experts' gate weights (and scales), dequantised then stacked.
constexpr const char* kExperts = R"(
placeholders:
  e: {type: int, count: 2}
rules:
  - hf: ["x.{e}.gate.weight", "x.{e}.gate.weight_scale_inv"]
    ms: x.gate.weight
    ops:
      - dequantize: {block: [128, 128]}
      - stack: {over: e, axis: 0}
)";

std::vector<std::byte> Pattern(size_t n, unsigned seed) {
  std::vector<std::byte> out(n);
  for (size_t i = 0; i < n; ++i)
    out[i] = static_cast<std::byte>((i * 131 + seed) % 256);
  return out;
}

std::vector<std::byte> Scales(size_t n, float first) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = first * static_cast<float>(i + 1);
  std::vector<std::byte> out(4 * n);
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

// A whole checkpoint's FP8 weights, declared once for the file (hf_layout.fp8_scales).
constexpr const char* kFileLevel = R"(
hf_layout:
  fp8_scales: {suffix: _scale_inv, block: [128, 128]}
placeholders:
  e: {type: int, count: 2}
rules:
  - {hf: norm.weight, ms: norm.weight}
  - {hf: proj.weight, ms: linear_proj.weight}
  - hf: "x.{e}.down.weight"
    ms: x.weight2
    ops:
      - stack: {over: e, axis: 0}
      - permute: [0, 2, 1]
)";

TEST_SUITE("plan.dequantize") {
  TEST_CASE("with fp8_scales, every FP8 weight is dequantised before its rule's ops") {
    const RuleSet rules = RulesText(kFileLevel);
    const std::vector<TensorInfo> inventory = {
        test::Info("norm.weight", DType::kBF16, {130}),
        test::Info("proj.weight", DType::kF8E4M3, {130, 260}),
        test::Info("proj.weight_scale_inv", DType::kF32, {2, 3}),
        test::Info("x.0.down.weight", DType::kF8E4M3, {130, 70}),
        test::Info("x.0.down.weight_scale_inv", DType::kF32, {2, 1}),
        test::Info("x.1.down.weight", DType::kF8E4M3, {130, 70}),
        test::Info("x.1.down.weight_scale_inv", DType::kF32, {2, 1})};
    auto plan = MakePlan(rules, inventory, {});
    REQUIRE(plan.ok());
    std::map<std::string, TensorInfo> out;
    for (const TensorInfo& t : plan->Outputs())
      out[t.name] = t;
    REQUIRE(out.size() == 3);
    CHECK(out.at("norm.weight").dtype == DType::kBF16);
    CHECK(out.at("linear_proj.weight").dtype == DType::kBF16);
    CHECK(out.at("x.weight2").shape == Shape{2, 70, 130});
    CHECK(out.at("x.weight2").dtype == DType::kBF16);
    for (const PlanStep& s : plan->steps)
      CHECK(s.lossy == (s.outputs[0].name != "norm.weight"));
    CHECK(std::any_of(plan->notes.begin(), plan->notes.end(), [](const std::string& n) {
      return n.find("3 FP8 weight(s) dequantised to bfloat16") == 0;
    }));
    // The stacked experts: each dequantised with its own scale, then stacked and transposed.
    const PlanStep* experts = nullptr;
    for (const PlanStep& s : plan->steps)
      experts = s.outputs[0].name == "x.weight2" ? &s : experts;
    REQUIRE(experts);
    std::map<uint64_t, std::vector<std::byte>> bytes = {{3, Pattern(130 * 70, 3)},
                                                        {4, Scales(2, 0.5f)},
                                                        {5, Pattern(130 * 70, 9)},
                                                        {6, Scales(2, 2.0f)}};
    std::vector<TensorData> inputs;
    for (uint64_t i : experts->inputs)
      inputs.push_back(TensorData::Borrow(bytes.at(i)));
    auto got = ApplyStep(*plan, *experts, std::move(inputs));
    REQUIRE(got.ok());
    for (uint64_t e = 0; e < 2; ++e) {
      std::vector<std::byte> want(2 * 130 * 70);
      DequantizeE4M3ToBF16(bytes.at(3 + 2 * e), bytes.at(4 + 2 * e), 130, 70, 128, 128, want);
      // Transposed: element (r, c) of expert e lands at (e, c, r).
      for (uint64_t r = 0; r < 130; r += 43) {
        for (uint64_t c = 0; c < 70; c += 23) {
          CHECK(std::memcmp((*got)[0].bytes().data() + 2 * ((e * 70 + c) * 130 + r),
                            want.data() + 2 * (r * 70 + c), 2) == 0);
        }
      }
    }
  }

  TEST_CASE("with fp8_scales, an FP8 weight without its scale is named") {
    const RuleSet rules = RulesText(kFileLevel);
    auto plan = MakePlan(rules,
                         {test::Info("norm.weight", DType::kBF16, {130}),
                          test::Info("proj.weight", DType::kF8E4M3, {130, 260})},
                         {});
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().message().find("1 FP8 (F8_E4M3) tensor(s) have no float32 block scale "
                                      "named like them plus \"_scale_inv\":\n    proj.weight") !=
          std::string::npos);
  }

  TEST_CASE("an FP8 weight and its scale plan to one bfloat16 tensor and run exactly") {
    const RuleSet rules = RulesText(kLinear);
    // 300 x 200: blocks of 128 leave edge blocks of 44 rows and 72 columns.
    const std::vector<TensorInfo> inventory = {
        test::Info("w.weight", DType::kF8E4M3, {300, 200}),
        test::Info("w.weight_scale_inv", DType::kF32, {3, 2})};
    auto plan = MakePlan(rules, inventory, {});
    REQUIRE(plan.ok());
    REQUIRE(plan->steps.size() == 1);
    const PlanStep& step = plan->steps[0];
    REQUIRE(step.outputs.size() == 1);
    CHECK(step.outputs[0].name == "w.weight");
    CHECK(step.outputs[0].dtype == DType::kBF16);
    CHECK(step.outputs[0].shape == Shape{300, 200});
    CHECK(step.lossy);
    CHECK(step.working_bytes == 300 * 200 * 2);
    const std::vector<std::byte> w = Pattern(300 * 200, 7), s = Scales(6, 0.25f);
    std::vector<TensorData> inputs;
    inputs.push_back(TensorData::Borrow(w));
    inputs.push_back(TensorData::Borrow(s));
    auto out = ApplyStep(*plan, step, std::move(inputs));
    REQUIRE(out.ok());
    std::vector<std::byte> want(2 * 300 * 200);
    DequantizeE4M3ToBF16(w, s, 300, 200, 128, 128, want);
    REQUIRE(out->size() == 1);
    CHECK(std::memcmp((*out)[0].bytes().data(), want.data(), want.size()) == 0);
  }

  TEST_CASE("the reverse writes the weight in bfloat16 and no scale, marked lossy") {
    const RuleSet rules = RulesText(kLinear);
    PlanOptions options;
    options.direction = Direction::kReverse;
    auto plan = MakePlan(rules, {test::Info("w.weight", DType::kBF16, {300, 200})}, options);
    REQUIRE(plan.ok());
    REQUIRE(plan->Outputs().size() == 1);
    CHECK(plan->Outputs()[0].name == "w.weight");
    CHECK(plan->Outputs()[0].dtype == DType::kBF16);
    CHECK(plan->steps[0].lossy);
    CHECK(plan->steps[0].lossy_reason.find("FP8") != std::string::npos);
  }

  TEST_CASE("the round trip expects the weights back in bfloat16 and the scales not at all") {
    const RuleSet rules = RulesText(kLinear);
    const auto problems = CheckRoundTrip(rules,
                                         {test::Info("w.weight", DType::kF8E4M3, {300, 200}),
                                          test::Info("w.weight_scale_inv", DType::kF32, {3, 2})},
                                         {});
    // Only the lossy steps are reported: nothing lost, added or changed.
    REQUIRE_FALSE(problems.empty());
    for (const Error& e : problems)
      CHECK(e.message().find("is lossy") != std::string::npos);
  }

  TEST_CASE("experts are dequantised one by one, then stacked") {
    const RuleSet rules = RulesText(kExperts);
    const std::vector<TensorInfo> inventory = {
        test::Info("x.0.gate.weight", DType::kF8E4M3, {130, 70}),
        test::Info("x.1.gate.weight", DType::kF8E4M3, {130, 70}),
        test::Info("x.0.gate.weight_scale_inv", DType::kF32, {2, 1}),
        test::Info("x.1.gate.weight_scale_inv", DType::kF32, {2, 1})};
    auto plan = MakePlan(rules, inventory, {});
    REQUIRE(plan.ok());
    const PlanStep& step = plan->steps[0];
    REQUIRE(step.outputs.size() == 1);
    CHECK(step.outputs[0].shape == Shape{2, 130, 70});
    std::vector<std::vector<std::byte>> bytes = {Pattern(130 * 70, 1), Pattern(130 * 70, 2),
                                                 Scales(2, 0.5f), Scales(2, -3.0f)};
    std::vector<TensorData> inputs;
    for (uint64_t i : step.inputs)
      inputs.push_back(TensorData::Borrow(bytes[i]));
    auto out = ApplyStep(*plan, step, std::move(inputs));
    REQUIRE(out.ok());
    for (size_t e = 0; e < 2; ++e) {
      std::vector<std::byte> want(2 * 130 * 70);
      DequantizeE4M3ToBF16(bytes[e], bytes[2 + e], 130, 70, 128, 128, want);
      CHECK(std::memcmp((*out)[0].bytes().data() + e * want.size(), want.data(), want.size()) == 0);
    }
  }

  TEST_CASE("a scale of the wrong shape or a weight of the wrong dtype is refused naming it") {
    const RuleSet rules = RulesText(kLinear);
    auto shape = MakePlan(rules,
                          {test::Info("w.weight", DType::kF8E4M3, {300, 200}),
                           test::Info("w.weight_scale_inv", DType::kF32, {2, 2})},
                          {});
    REQUIRE_FALSE(shape.ok());
    CHECK(shape.error().message().find("w.weight_scale_inv [2, 2] of w.weight [300, 200] should "
                                       "be [3, 2] (blocks of 128 x 128)") != std::string::npos);
    auto dtype = MakePlan(rules,
                          {test::Info("w.weight", DType::kBF16, {300, 200}),
                           test::Info("w.weight_scale_inv", DType::kF32, {3, 2})},
                          {});
    REQUIRE_FALSE(dtype.ok());
    CHECK(dtype.error().message().find("dequantize reads F8_E4M3, but w.weight is BF16") !=
          std::string::npos);
  }

  TEST_CASE("dequantize must come first and take pairs") {
    auto late = LoadRuleText(R"(name: t
rules:
  - hf: [a, b]
    ms: c
    ops:
      - transpose: [0, 1]
      - dequantize: {block: [128, 128]}
)",
                             "t.yaml");
    REQUIRE_FALSE(late.ok());
    CHECK(late.error().message().find("dequantize comes first") != std::string::npos);
    auto odd = LoadRuleText(R"(name: t
rules:
  - hf: [a, b, c]
    ms: d
    ops:
      - dequantize: {block: [128, 128]}
)",
                            "t.yaml");
    REQUIRE_FALSE(odd.ok());
    CHECK(odd.error().message().find("takes (weight, scale) pairs") != std::string::npos);
  }
}

}  // namespace
}  // namespace cw
