// Steps of whole blocks lower to byte runs that, copied in order, give exactly the bytes ApplyStep
// computes; steps that reorder elements do not lower.
#include "engine/plan/step_runs.h"

#include <random>

#include <doctest/doctest.h>

#include "engine/plan/step_ops.h"
#include "tests/support/inventory_builder.h"

namespace cw {
namespace {

using Kind = PrimitiveOp::Kind;

PrimitiveOp Op(Kind kind, uint32_t first, int axis, std::vector<uint64_t> dims = {},
               uint32_t count = 1) {
  PrimitiveOp op;
  op.kind = kind;
  op.first = first;
  op.axis = axis;
  op.dims = std::move(dims);
  op.count = count;
  return op;
}

PrimitiveOp Permute(std::vector<int> perm) {
  PrimitiveOp op;
  op.kind = Kind::kPermute;
  op.perm = std::move(perm);
  return op;
}

// A one-step plan over U16 inputs of `shapes`; the outputs' shapes come from the ops.
Plan OneStep(const std::vector<Shape>& shapes, std::vector<PrimitiveOp> ops) {
  Plan plan;
  PlanStep step;
  step.value_dtype = DType::kU16;
  for (size_t i = 0; i < shapes.size(); ++i) {
    plan.inventory.push_back(test::Info("in" + std::to_string(i), DType::kU16, shapes[i]));
    step.inputs.push_back(i);
  }
  step.ops = std::move(ops);
  const auto out_shapes = ApplyToShapes(step.ops, shapes);
  REQUIRE(out_shapes.ok());
  for (size_t o = 0; o < out_shapes->size(); ++o)
    step.outputs.push_back(test::Info("out" + std::to_string(o), DType::kU16, (*out_shapes)[o]));
  plan.steps.push_back(std::move(step));
  return plan;
}

std::vector<TensorData> RandomInputs(const Plan& plan) {
  std::mt19937 rng(7);
  std::vector<TensorData> inputs;
  for (const TensorInfo& info : plan.inventory) {
    TensorData data = TensorData::Allocate(info.byte_size);
    for (std::byte& b : data.mutable_bytes())
      b = static_cast<std::byte>(rng() & 0xff);
    inputs.push_back(std::move(data));
  }
  return inputs;
}

// Copies the runs of each output from the inputs, as the executor does from the input files.
std::vector<std::string> Materialize(const std::vector<std::vector<ByteRun>>& runs,
                                     const std::vector<TensorData>& inputs) {
  std::vector<std::string> outputs;
  for (const std::vector<ByteRun>& output : runs) {
    std::string bytes;
    for (const ByteRun& run : output) {
      if (run.input == ByteRun::kZeros) {
        bytes.append(run.size, '\0');
      } else {
        REQUIRE(run.offset + run.size <= inputs.at(run.input).size());
        bytes += AsChars(inputs[run.input].bytes().subspan(run.offset, run.size));
      }
    }
    outputs.push_back(std::move(bytes));
  }
  return outputs;
}

// The runs of the plan's step, checked against ApplyStep on random bytes.
std::vector<std::vector<ByteRun>> CheckedRuns(const Plan& plan) {
  const auto runs = StepRuns(plan, plan.steps[0]);
  REQUIRE(runs.has_value());
  const std::vector<TensorData> inputs = RandomInputs(plan);
  std::vector<TensorData> copies;
  for (const TensorData& in : inputs)
    copies.push_back(TensorData::Borrow(in.bytes()));
  const auto values = ApplyStep(plan, plan.steps[0], std::move(copies));
  REQUIRE(values.ok());
  const std::vector<std::string> got = Materialize(*runs, inputs);
  REQUIRE(got.size() == values->size());
  for (size_t o = 0; o < got.size(); ++o) {
    CAPTURE(o);
    CHECK(got[o] == AsChars((*values)[o].bytes()));
  }
  return *runs;
}

TEST_SUITE("plan.step_runs") {
  TEST_CASE("a rename is one run of its whole input") {
    const auto runs = CheckedRuns(OneStep({{4, 6}}, {}));
    CHECK(runs == std::vector<std::vector<ByteRun>>{{{0, 0, 48}}});
  }

  TEST_CASE("stacking experts on a new leading axis is one run per expert") {
    const auto runs = CheckedRuns(
        OneStep({{4, 6}, {4, 6}, {4, 6}},
                {Op(Kind::kReshape, 0, 0, {1, 4, 6}), Op(Kind::kReshape, 1, 0, {1, 4, 6}),
                 Op(Kind::kReshape, 2, 0, {1, 4, 6}), Op(Kind::kConcat, 0, 0, {}, 3)}));
    CHECK(runs == std::vector<std::vector<ByteRun>>{{{0, 0, 48}, {1, 0, 48}, {2, 0, 48}}});
  }

  TEST_CASE("a split on the leading axis gives each part one run at its offset") {
    const auto runs = CheckedRuns(OneStep({{6, 4}}, {Op(Kind::kSplit, 0, 0, {1, 2, 3})}));
    CHECK(runs == std::vector<std::vector<ByteRun>>{{{0, 0, 8}}, {{0, 8, 16}}, {{0, 24, 24}}});
  }

  TEST_CASE("a split or concat on an inner axis gives one run per row") {
    const auto split = CheckedRuns(OneStep({{3, 6}}, {Op(Kind::kSplit, 0, 1, {2, 4})}));
    CHECK(split[0] == std::vector<ByteRun>{{0, 0, 4}, {0, 12, 4}, {0, 24, 4}});
    const auto joined = CheckedRuns(OneStep({{3, 2}, {3, 4}}, {Op(Kind::kConcat, 0, 1, {}, 2)}));
    CHECK(joined[0].size() == 6);
  }

  TEST_CASE("splitting and joining back the same rows merges into one run") {
    const auto runs = CheckedRuns(
        OneStep({{3, 6}}, {Op(Kind::kSplit, 0, 1, {2, 4}), Op(Kind::kConcat, 0, 1, {}, 2)}));
    CHECK(runs == std::vector<std::vector<ByteRun>>{{{0, 0, 36}}});
  }

  TEST_CASE("a pad adds zero runs and a cut keeps the leading rows") {
    const auto padded = CheckedRuns(OneStep({{3, 4}}, {Op(Kind::kPad, 0, 0, {5})}));
    CHECK(padded == std::vector<std::vector<ByteRun>>{{{0, 0, 24}, {ByteRun::kZeros, 0, 16}}});
    const auto cut = CheckedRuns(OneStep({{3, 4}}, {Op(Kind::kSlice, 0, 0, {2})}));
    CHECK(cut == std::vector<std::vector<ByteRun>>{{{0, 0, 16}}});
    CheckedRuns(OneStep({{3, 4}}, {Op(Kind::kPad, 0, 1, {6})}));
    CheckedRuns(OneStep({{3, 4}}, {Op(Kind::kSlice, 0, 1, {1})}));
  }

  TEST_CASE("a permutation that only moves axes of size 1 keeps the bytes in place") {
    const auto runs = CheckedRuns(OneStep({{1, 4, 1, 3}}, {Permute({2, 1, 0, 3})}));
    CHECK(runs == std::vector<std::vector<ByteRun>>{{{0, 0, 24}}});
  }

  TEST_CASE("a transpose does not lower") {
    const Plan plan = OneStep({{3, 4}}, {Permute({1, 0})});
    CHECK_FALSE(StepRuns(plan, plan.steps[0]).has_value());
  }

  TEST_CASE("an inner-axis concat of many rows does not lower") {
    const Plan plan = OneStep({{kMaxRunsPerOutput + 1, 2}, {kMaxRunsPerOutput + 1, 2}},
                              {Op(Kind::kConcat, 0, 1, {}, 2)});
    CHECK_FALSE(StepRuns(plan, plan.steps[0]).has_value());
  }

  TEST_CASE("a tie check does not lower") {
    Plan plan = OneStep({{2}, {2}}, {});
    plan.steps[0].kind = PlanStep::Kind::kVerifyEqual;
    plan.steps[0].outputs.clear();
    CHECK_FALSE(StepRuns(plan, plan.steps[0]).has_value());
  }
}

}  // namespace
}  // namespace cw
