// `merge`: a distributed MindSpore checkpoint to one checkpoint of full tensors. The same flow as
// convert (open -> plan -> execute -> commit) with a plan of renames: the distributed reader
// presents full tensors whose blocks lie in the rank files, and the executor streams them into
// place, comparing replicas on the way (docs/distributed.md).
#include <chrono>
#include <cstdio>
#include <ostream>
#include <thread>

#include "cw/convert_weight.h"
#include "engine/app/conversion_setup.h"
#include "engine/app/progress_display.h"
#include "engine/base/byte_size.h"
#include "engine/base/mapped_file.h"
#include "engine/exec/executor.h"
#include "engine/formats/checkpoint_io.h"
#include "engine/formats/distributed/rank_folders.h"
#include "engine/plan/planner.h"

namespace cw {
Status Merge(const MergeRequest& request, std::ostream& err) {
  const auto start = std::chrono::steady_clock::now();
  if (!distributed::IsDistributedFolder(request.input)) {
    return Error(ErrorCode::kUsage,
                 "merge reads a distributed checkpoint: a folder of rank_<r>/ folders",
                 FileLocation(request.input));
  }
  std::vector<std::string> notes;
  CW_ASSIGN_OR_RETURN(auto reader,
                      OpenCheckpoint(request.input, OpenOptionsFor(request.distributed), &notes));
  for (const std::string& note : notes) {
    if (!request.quiet)
      err << "note: " << note << "\n";
  }
  std::vector<DroppedKind> dropped;
  if (request.drop_training_state)
    reader = WithoutTrainingState(std::move(reader), &dropped);
  CW_RETURN_IF_ERROR(CheckOutputIsNotInput(request.output, request.input, *reader));
  const Plan plan = CopyPlan(reader->tensors());

  WriterOptions options;
  options.replace_existing = request.force;
  CW_ASSIGN_OR_RETURN(options.max_shard_bytes, ParseByteSize(request.max_shard_size));
  options.metadata["format"] = "ms";  // as MindSpore's own safetensors (unified_safetensors)
  CW_ASSIGN_OR_RETURN(auto writer, CreateCheckpointWriter(request.output, plan.Outputs(), options));

  ExecuteOptions exec;
  exec.threads = request.threads != 0 ? request.threads : std::thread::hardware_concurrency();
  CW_ASSIGN_OR_RETURN(exec.max_bytes_in_flight, ParseByteSize(request.max_memory));
  ExecuteProgress progress;
  exec.progress = &progress;
  {
    ProgressDisplay display(progress, plan.output_bytes, plan.Outputs().size(), err,
                            request.progress && !request.quiet);
    CW_RETURN_IF_ERROR(Execute(plan, *reader, *writer, exec));
  }
  CW_RETURN_IF_ERROR(CheckMappedInputsUnchanged());
  CW_RETURN_IF_ERROR(writer->Commit());
  if (request.quiet)
    return OkStatus();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  char line[256];
  std::snprintf(line, sizeof line, "%zu tensors, %s in %.2f s, peak memory %s",
                plan.Outputs().size(), HumanBytes(plan.output_bytes).c_str(), seconds,
                HumanBytes(PeakResidentBytes()).c_str());
  err << "merged " << line << " -> " << request.output << "\n";
  if (!dropped.empty()) {
    err << "  dropped training state: " << DroppedKindsText(dropped) << "\n";
  } else {
    // Kept, as MindSpore's transform keeps it: say what, since HF conversions leave it out.
    std::vector<DroppedKind> kept;
    (void)WithoutTrainingState(std::move(reader), &kept);
    if (!kept.empty()) {
      err << "  kept training state (--drop-training-state leaves it out): "
          << DroppedKindsText(kept) << "\n";
    }
  }
  return OkStatus();
}

}  // namespace cw
