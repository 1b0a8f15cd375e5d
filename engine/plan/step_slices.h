// Steps that run slice by slice. A step that stacks tensors on the leading axis and then works
// only inside each stacked slice (DeepSeek-V3's 256 experts fused into one weight1 of 14 GiB)
// runs as that many small steps, each making its part of every output: the memory of one slice,
// not of the whole tensor. Pure: found from the step's ops and shapes alone.
#pragma once

#include <optional>
#include <vector>

#include "engine/plan/plan.h"

namespace cw {

// The decomposition of a step whose inputs have `input_shapes`, or nullopt when it has none: a
// concat on axis 0 of equal free values splits the list into slices, after which every op must
// stay inside them (an axis other than 0, a permutation keeping axis 0 first, a reshape whose
// leading size the slices divide) and every input must belong to one slice.
std::optional<StepSlices> SliceStep(const PlanStep& step, const std::vector<Shape>& input_shapes);

// Slice k of a sliced step as a step of its own: its inputs (indices into the inventory), the
// slice's ops, and outputs of the part's shape (same names and dtypes). Its values are written at
// k times their size into the step's outputs.
// REQUIRES: step.slices and k < step.slices->count.
PlanStep SliceOf(const PlanStep& step, uint32_t k);

}  // namespace cw
