// Runs a plan: reads each step's inputs, applies its ops and casts, hands the outputs to a
// writer. The only code that touches tensor bytes during a conversion.
//
// Memory: inputs are borrowed from memory-mapped files; a step holds only the owned bytes its ops
// need (PlanStep::working_bytes) plus a fixed cast buffer, and steps run together only while
// their working bytes fit under `max_bytes_in_flight` (a step larger than the cap runs alone).
// Casts run in fixed-size chunks straight into the writer, so a cast never holds a whole tensor.
// Determinism: every output's place in the files is fixed by the writer at creation, so the
// bytes written do not depend on the thread count or on which step finishes first.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

#include "cw/error.h"
#include "engine/formats/checkpoint.h"
#include "engine/plan/plan.h"

namespace cw {

// Counters updated as steps complete; read them from any thread.
struct ExecuteProgress {
  std::atomic<uint64_t> tensors_done{0};
  std::atomic<uint64_t> bytes_done{0};  // output bytes written
};

struct ExecuteOptions {
  unsigned threads = 1;
  // Cap on the owned bytes of steps running at once (0: no cap).
  uint64_t max_bytes_in_flight = 0;
  // Checked between steps; when it becomes true, execution stops with kCancelled.
  const std::atomic<bool>* cancel = nullptr;
  ExecuteProgress* progress = nullptr;
};

// Executes every step of `plan`, writing output k of plan.Outputs() as writer tensor k. Does not
// commit the writer. On error, stops all threads and returns the first error (naming the rule
// and tensors of the failing step).
// REQUIRES: reader.tensors() == plan.inventory; the writer was created from plan.Outputs().
Status Execute(const Plan& plan, const CheckpointReader& reader, CheckpointWriter& writer,
               const ExecuteOptions& options);

// Bytes of the buffer each thread uses for chunked casts.
inline constexpr uint64_t kCastChunkBytes = 8ull << 20;

}  // namespace cw
