// Steps that only move whole blocks of bytes: a rename, an expert stack (concat on the leading
// axis), a QKV split on the leading axis, a vocabulary padded or cut at its end. Such a step runs
// as a few copies from the input files into the outputs, holding no tensor in memory, and with the
// kernel's file copy when no cast is needed.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "engine/plan/plan.h"

namespace cw {

// `size` bytes of the step's input `input` (an index into PlanStep::inputs) from byte `offset`, in
// the step's value dtype; or `size` zero bytes when `input` is kZeros.
struct ByteRun {
  static constexpr uint32_t kZeros = UINT32_MAX;
  uint32_t input = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
  bool operator==(const ByteRun&) const = default;
};

// More runs than this per output means pieces too small to copy one by one.
inline constexpr size_t kMaxRunsPerOutput = 64;

// The runs each output of `step` is made of, in order: their sizes add up to the output's bytes in
// the value dtype. nullopt when the ops reorder elements (a transpose), when an output would need
// more than kMaxRunsPerOutput runs (a concat on an inner axis), or for a kVerifyEqual step.
std::optional<std::vector<std::vector<ByteRun>>> StepRuns(const Plan& plan, const PlanStep& step);

}  // namespace cw
