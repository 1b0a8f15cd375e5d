// Steps that run slice by slice: which steps decompose, and that the slices' parts, put side by
// side, are the bytes the whole step makes.
#include "engine/plan/step_slices.h"

#include <cstring>
#include <map>
#include <vector>

#include <doctest/doctest.h>

#include "engine/plan/planner.h"
#include "engine/plan/step_ops.h"
#include "engine/ruleset/rule_file.h"
#include "tests/support/inventory_builder.h"
#include "tests/support/plan_fixtures.h"

namespace cw {
namespace {

using test::RulesText;

std::vector<std::byte> Pattern(size_t n, unsigned seed) {
  std::vector<std::byte> out(n);
  for (size_t i = 0; i < n; ++i)
    out[i] = static_cast<std::byte>((i * 131 + seed * 17) % 251);
  return out;
}

// Runs `step` whole and slice by slice on pattern bytes; each output's parts side by side must be
// the whole step's output.
void CheckSlicesMakeTheWholeStep(const Plan& plan, const PlanStep& step) {
  REQUIRE(step.slices);
  std::map<uint64_t, std::vector<std::byte>> bytes;
  for (const uint64_t i : step.inputs)
    bytes[i] = Pattern(plan.inventory[i].byte_size, static_cast<unsigned>(i));
  std::vector<TensorData> inputs;
  for (const uint64_t i : step.inputs)
    inputs.push_back(TensorData::Borrow(bytes.at(i)));
  auto whole = ApplyStep(plan, step, std::move(inputs));
  REQUIRE(whole.ok());
  std::vector<std::vector<std::byte>> joined(step.outputs.size());
  for (uint32_t k = 0; k < step.slices->count; ++k) {
    const PlanStep part = SliceOf(step, k);
    std::vector<TensorData> part_inputs;
    for (const uint64_t i : part.inputs)
      part_inputs.push_back(TensorData::Borrow(bytes.at(i)));
    auto got = ApplyStep(plan, part, std::move(part_inputs));
    REQUIRE(got.ok());
    for (size_t o = 0; o < got->size(); ++o) {
      const ByteSpan b = (*got)[o].bytes();
      joined[o].insert(joined[o].end(), b.begin(), b.end());
    }
  }
  for (size_t o = 0; o < joined.size(); ++o) {
    REQUIRE(joined[o].size() == (*whole)[o].size());
    CHECK(std::memcmp(joined[o].data(), (*whole)[o].bytes().data(), joined[o].size()) == 0);
  }
}

const PlanStep& StepWriting(const Plan& plan, const std::string& name) {
  const PlanStep* step = test::StepWriting(plan, name);
  REQUIRE(step != nullptr);
  return *step;
}

// MCore experts as deepseek3.yaml fuses them: gate and up of each expert dequantised, stacked,
// joined and transposed into weight1 [E * H, 2F]; down stacked and transposed into weight2.
constexpr const char* kExperts = R"(
hf_layout:
  fp8_scales: {suffix: _scale_inv, block: [4, 4]}
placeholders:
  e: {type: int, count: 3}
rules:
  - hf: ["x.{e}.gate.weight", "x.{e}.up.weight"]
    ms: x.weight1
    ops:
      - stack: {over: e, axis: 0}
      - concat: {axis: 1, sizes: [6, 6]}
      - permute: [0, 2, 1]
      - reshape: {from: [3, 10, 12], to: [30, 12]}
  - hf: "x.{e}.down.weight"
    ms: x.weight2
    ops:
      - stack: {over: e, axis: 0}
      - permute: [0, 2, 1]
)";

std::vector<TensorInfo> ExpertInventory() {
  std::vector<TensorInfo> inv;
  for (int e = 0; e < 3; ++e) {
    const std::string x = "x." + std::to_string(e) + ".";
    inv.push_back(test::Info(x + "gate.weight", DType::kF8E4M3, {6, 10}));
    inv.push_back(test::Info(x + "gate.weight_scale_inv", DType::kF32, {2, 3}));
    inv.push_back(test::Info(x + "up.weight", DType::kF8E4M3, {6, 10}));
    inv.push_back(test::Info(x + "up.weight_scale_inv", DType::kF32, {2, 3}));
    inv.push_back(test::Info(x + "down.weight", DType::kBF16, {10, 6}));
  }
  return inv;
}

TEST_SUITE("plan.step_slices") {
  TEST_CASE("stacked experts dequantised, joined and transposed run one expert at a time") {
    auto plan = MakePlan(RulesText(kExperts), ExpertInventory(), {});
    REQUIRE(plan.ok());
    const PlanStep& w1 = StepWriting(*plan, "x.weight1");
    REQUIRE(w1.slices);
    CHECK(w1.slices->count == 3);
    CHECK(w1.slices->output_shapes == std::vector<Shape>{{10, 12}});
    // Expert 1's gate, its scale, up and its scale, in the step's input order.
    for (const uint32_t p : w1.slices->inputs[1])
      CHECK(plan->inventory[w1.inputs[p]].name.rfind("x.1.", 0) == 0);
    CHECK(w1.slices->inputs[1].size() == 4);
    CheckSlicesMakeTheWholeStep(*plan, w1);
    CheckSlicesMakeTheWholeStep(*plan, StepWriting(*plan, "x.weight2"));
  }

  TEST_CASE("a sliced step holds one slice's values, not the whole tensor's") {
    auto plan = MakePlan(RulesText(kExperts), ExpertInventory(), {});
    REQUIRE(plan.ok());
    const PlanStep& w1 = StepWriting(*plan, "x.weight1");
    // One expert: gate and up dequantised to bfloat16 (2 x 120 bytes) next to their join (240);
    // the whole step would hold three times that.
    CHECK(w1.working_bytes == 480);
    std::vector<Shape> shapes;
    for (const uint64_t i : w1.inputs)
      shapes.push_back(plan->inventory[i].shape);
    CHECK(WorkingBytes(w1.ops, shapes, w1.value_dtype, w1.outputs) == 3 * 480);
  }

  TEST_CASE("the reverse of a stack, an unstack, is not a slicing step") {
    auto forward = MakePlan(RulesText(kExperts), ExpertInventory(), {});
    REQUIRE(forward.ok());
    PlanOptions options;
    options.direction = Direction::kReverse;
    auto reverse = MakePlan(RulesText(kExperts), forward->Outputs(), options);
    REQUIRE(reverse.ok());
    for (const PlanStep& s : reverse->steps)
      CHECK_FALSE(s.slices);
  }

  TEST_CASE("ops that cross the slices keep the step whole") {
    const std::vector<Shape> two = {{1, 2, 3}, {1, 2, 3}};
    PlanStep step;
    step.inputs = {0, 1};
    step.outputs = {test::Info("y", DType::kBF16, {2, 2, 3})};
    auto concat0 = [] {
      PrimitiveOp op;
      op.kind = PrimitiveOp::Kind::kConcat;
      op.count = 2;
      return op;
    };
    step.ops = {concat0()};
    CHECK(SliceStep(step, two));

    SUBCASE("a permutation that moves the stacked axis") {
      PrimitiveOp permute;
      permute.kind = PrimitiveOp::Kind::kPermute;
      permute.perm = {1, 0, 2};
      step.ops.push_back(permute);
      step.outputs[0].shape = {2, 2, 3};
      CHECK_FALSE(SliceStep(step, two));
    }
    SUBCASE("a reshape whose leading size the slices do not divide") {
      PrimitiveOp reshape;
      reshape.dims = {3, 4};
      step.ops.push_back(reshape);
      step.outputs[0].shape = {3, 4};
      CHECK_FALSE(SliceStep(step, two));
    }
    SUBCASE("a split along the stacked axis") {
      PrimitiveOp split;
      split.kind = PrimitiveOp::Kind::kSplit;
      split.dims = {1, 1};
      step.ops.push_back(split);
      step.outputs = {test::Info("a", DType::kBF16, {1, 2, 3}),
                      test::Info("b", DType::kBF16, {1, 2, 3})};
      CHECK_FALSE(SliceStep(step, two));
    }
    SUBCASE("a tensor joined to every slice") {
      step.inputs = {0, 1, 2};
      PrimitiveOp join = concat0();
      join.axis = 1;
      step.ops.push_back(join);
      step.outputs[0].shape = {2, 4, 3};
      CHECK_FALSE(SliceStep(step, {{1, 2, 3}, {1, 2, 3}, {2, 2, 3}}));
    }
  }
}

}  // namespace
}  // namespace cw
