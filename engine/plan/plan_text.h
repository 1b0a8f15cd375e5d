// Rendering a plan for people (`convert_weight plan`) and for tools (`plan --json`).
#pragma once

#include <cstdint>
#include <string>

#include "engine/plan/plan.h"

namespace cw {

// One block per step (rule, inputs, primitive ops, outputs with dtype, shape and bytes, lossy
// marks), then dropped inputs, notes and totals with the peak memory. Deterministic.
std::string PlanToText(const Plan& plan);

// The same content as one JSON object:
//   {"direction", "rule_file", "cast", "lossy", "steps": [{"kind", "rule", "inputs": [tensor],
//    "ops": [{"op", "first", "count", "axis", "dims", "perm"}], "value_dtype",
//    "outputs": [tensor], "note", "lossy", "lossy_reason", "working_bytes"}],
//    "dropped": [{"name", "rule", "reason", "checked_equal"}], "notes": [text],
//    "totals": {"input_bytes", "output_bytes", "peak_bytes", "peak_bytes_with_inputs"}}
// where tensor = {"index" (inputs only), "name", "dtype", "shape", "bytes"}. Names are escaped
// as JSON strings (bytes above 0x7e as \u00XX, so the output is ASCII).
std::string PlanToJson(const Plan& plan);

// "0 B", "4.0 KiB (4096 bytes)", "1.5 GiB (1610612736 bytes)".
std::string FormatBytes(uint64_t bytes);

}  // namespace cw
