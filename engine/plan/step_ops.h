// Running a plan step's primitive ops on tensor bytes. The executor calls ApplyStep once per
// kConvert step with the step's input bytes; casting to the output dtypes is the executor's job
// afterwards (ApplyStep returns values in step.value_dtype).
#pragma once

#include <vector>

#include "cw/error.h"
#include "engine/plan/plan.h"
#include "engine/tensor/tensor.h"

namespace cw {

// The shapes of the value list after `ops`; kInternal when an op does not fit the list.
Result<std::vector<Shape>> ApplyToShapes(const std::vector<PrimitiveOp>& ops,
                                         std::vector<Shape> shapes);

// Owned bytes held at the busiest point of running `ops` (and the cast to `output_dtypes`) on
// borrowed inputs of `input_shapes`. REQUIRES: the ops fit the shapes (as in a planned step).
uint64_t WorkingBytes(const std::vector<PrimitiveOp>& ops, const std::vector<Shape>& input_shapes,
                      DType value_dtype, const std::vector<TensorInfo>& outputs);

// Applies `step.ops` to `inputs` (one per step.inputs, in order, each holding exactly the bytes
// of its TensorInfo in `plan.inventory`) and returns one TensorData per step output, in order,
// in step.value_dtype. A step without ops returns its inputs as they are: borrowed bytes stay
// borrowed (no copy). Inputs may be borrowed views; they must stay valid during the call, and
// results that are borrowed stay valid as long as the inputs they came from.
// Errors: kInternal when sizes disagree with the plan (a bug or a reader returning wrong bytes),
// naming the step's rule and outputs.
// REQUIRES: step.kind == kConvert.
Result<std::vector<TensorData>> ApplyStep(const Plan& plan, const PlanStep& step,
                                          std::vector<TensorData> inputs);

// True when `a` and `b` hold the same bytes (for kVerifyEqual steps).
bool SameBytes(const TensorData& a, const TensorData& b);

}  // namespace cw
