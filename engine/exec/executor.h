// Runs a plan: reads each step's inputs, applies its ops and casts, hands the outputs to a
// writer. The only code that touches tensor bytes during a conversion.
//
// I/O: steps read their inputs in plan order (the order of the input files), one step at a time,
// with positional reads, so the disk serves one sequential stream. A step that only moves whole
// blocks (a rename, a stack or split on the leading axis, see step_runs.h) is run as copies from
// the input files into the writer: inside the kernel (copy_file_range) when no cast is needed,
// else in chunks through a buffer. An input's extents may lie in several files (the rank files of
// a distributed checkpoint); an input without extents whose reader gives ranges
// (CheckpointReader::ReadRange) is copied in chunks too, never read whole.
// Checks: every input copied through extents or ranges is first passed to
// CheckpointReader::Verify (replicas compared), in its step's read turn.
// Partial writers: only the bytes of CheckpointWriter::NeededRanges are read and written, and a
// step none of whose outputs' bytes are needed is skipped (a subset of a distributed output's
// ranks).
//
// Memory: a step whose ops reorder elements (a transpose) holds its inputs and the values its ops
// make (PlanStep::working_bytes); such steps run together only while their bytes fit under
// `max_bytes_in_flight` (a step larger than the cap runs alone), freed buffers kept for reuse
// (buffer_pool.h) included. Casts run in fixed-size chunks
// straight into the writer, so a cast never holds a whole tensor.
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
