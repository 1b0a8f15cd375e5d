// The main flow of a conversion: rules + input -> plan -> execute -> commit.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <ostream>
#include <thread>

#include "cw/convert_weight.h"
#include "engine/app/conversion_setup.h"
#include "engine/app/progress_display.h"
#include "engine/base/byte_size.h"
#include "engine/base/mapped_file.h"
#include "engine/exec/executor.h"
#include "engine/formats/checkpoint_io.h"
#include "engine/formats/distributed/rank_writer.h"
#include "engine/formats/hf_folder.h"
#include "engine/formats/mindspore/parallel_strategy.h"

namespace cw {
namespace fs = std::filesystem;
namespace {

bool IsWeightFile(const fs::path& p) {
  const std::string name = p.filename().string();
  const std::string ext = p.extension().string();
  return ext == ".safetensors" || ext == ".bin" || ext == ".pth" || ext == ".pt" ||
         ext == ".ckpt" || (name.size() > 11 && name.ends_with(".index.json")) ||
         name == kParamNameMapName;
}

// Non-weight files of the input folder (config, tokenizer, generation config) and --config.
std::vector<std::string> SideFiles(const std::string& input, const std::string& config) {
  std::vector<std::string> files;
  std::error_code ec;
  const fs::path in(input);
  const fs::path dir = fs::is_directory(in, ec) ? in : in.parent_path();
  if (fs::is_directory(in, ec) || fs::exists(dir / "config.json", ec)) {
    for (const auto& e : fs::directory_iterator(dir.empty() ? fs::path(".") : dir, ec)) {
      if (e.is_regular_file() && !IsWeightFile(e.path()))
        files.push_back(e.path().string());
    }
  }
  if (!config.empty())
    files.push_back(config);
  std::sort(files.begin(), files.end());
  return files;
}

Result<WriterOptions> OutputOptions(const ConvertRequest& request, const Conversion& c) {
  WriterOptions options;
  options.replace_existing = request.force;
  CW_ASSIGN_OR_RETURN(options.max_shard_bytes, ParseByteSize(request.max_shard_size));
  options.metadata["format"] = request.reverse ? "pt" : "ms";
  // ms_layout.folder: the MindSpore side of a folder output as MindFormers 1.7+ loads it.
  if (!request.reverse && c.rules.ms_folder == RuleSet::MsFolder::kMindFormers)
    options.folder_layout = FolderLayout::kParamNameMap;
  if (request.reverse)
    options.torch_root_key = c.rules.hf_container;
  options.side_files = SideFiles(request.input, c.config_file);
  const std::vector<TensorInfo> outputs = c.plan.Outputs();
  options.drop_quantization_config = std::none_of(
      outputs.begin(), outputs.end(),
      [](const TensorInfo& t) { return t.dtype == DType::kF8E4M3 || t.dtype == DType::kF8E5M2; });
  return options;
}

void PrintSummary(const Conversion& c, double seconds, std::ostream& err, const std::string& out) {
  const Plan& plan = c.plan;
  char line[256];
  std::snprintf(
      line, sizeof line, "%zu tensors, %s in %.2f s (%s/s), peak memory %s", plan.Outputs().size(),
      HumanBytes(plan.output_bytes).c_str(), seconds,
      HumanBytes(
          seconds > 0 ? static_cast<uint64_t>(static_cast<double>(plan.output_bytes) / seconds) : 0)
          .c_str(),
      HumanBytes(PeakResidentBytes()).c_str());
  err << "converted " << line << " -> " << out << "\n";
  // Where each value came from: a reverse conversion needs detected values back (--set) to
  // reproduce the same names, and a solved or default value is worth a second look.
  for (const PlanParameter& p : plan.parameters)
    err << "  parameter " << p.name << " = " << p.value << " (" << p.source << ")\n";
  for (const DroppedInput& d : plan.dropped) {
    err << "  dropped " << plan.inventory[d.input].name << ": " << d.reason << "\n";
  }
  if (!c.dropped_state.empty())
    err << "  dropped training state: " << DroppedKindsText(c.dropped_state) << "\n";
  // What is lost, once per kind of step (a cast, FP8 dequantised, a truncation).
  std::map<std::string, size_t> lossy;
  for (const PlanStep& s : plan.steps) {
    if (s.lossy)
      ++lossy[s.lossy_reason];
  }
  for (const auto& [reason, steps] : lossy)
    err << "  note: " << reason << " (" << steps << " step" << (steps == 1 ? "" : "s") << ")\n";
  if (plan.lossy)
    err << "  note: this conversion loses information (see `convert_weight plan`)\n";
}

// Forward with --strategy: the MindSpore tensors cut into the ranks' slices, a folder of rank
// folders.
Result<std::unique_ptr<CheckpointWriter>> CreateSplitWriter(const ConvertRequest& request,
                                                            const Conversion& c,
                                                            const WriterOptions& options,
                                                            std::ostream& err) {
  CW_ASSIGN_OR_RETURN(const mindspore::ParallelStrategy strategy,
                      mindspore::LoadParallelStrategy(request.distributed.strategy));
  distributed::RankWriterOptions split;
  split.writer = options;
  split.allow_unused_layouts = request.distributed.allow_unused_layouts;
  if (!request.ranks.empty()) {
    CW_ASSIGN_OR_RETURN(
        split.ranks, distributed::ParseRankList(
                         request.ranks, strategy.devices_per_stage() * strategy.stages().size()));
  }
  std::vector<std::string> notes;
  CW_ASSIGN_OR_RETURN(auto writer, distributed::CreateRankFolderWriter(
                                       request.output, c.plan.Outputs(), strategy, split, &notes));
  if (!request.quiet) {
    for (const std::string& note : notes)
      err << "note: " << note << "\n";
  }
  return writer;
}

}  // namespace

Status Convert(const ConvertRequest& request, std::ostream& err) {
  const auto start = std::chrono::steady_clock::now();
  // With a strategy, reverse reads a distributed checkpoint; forward writes one (its strategy
  // then describes the output, not the input).
  const bool split = !request.distributed.strategy.empty() && !request.reverse;
  if (!request.ranks.empty() && !split) {
    return Error(ErrorCode::kUsage,
                 "--rank chooses the ranks a forward conversion with --strategy writes");
  }
  const OpenOptions open = split ? OpenOptions() : OpenOptionsFor(request.distributed);
  std::ostream silent(nullptr);  // --quiet: no notes either
  CW_ASSIGN_OR_RETURN(
      Conversion c, PrepareConversion(request.rules, request.input, request.reverse, request.dtype,
                                      open, request.quiet ? silent : err));
  CW_RETURN_IF_ERROR(CheckOutputIsNotInput(request.output, request.input, *c.reader));
  CW_ASSIGN_OR_RETURN(const WriterOptions options, OutputOptions(request, c));
  std::unique_ptr<CheckpointWriter> writer;
  if (split) {
    CW_ASSIGN_OR_RETURN(writer, CreateSplitWriter(request, c, options, err));
  } else {
    CW_ASSIGN_OR_RETURN(writer, CreateCheckpointWriter(request.output, c.plan.Outputs(), options));
  }

  ExecuteOptions exec;
  exec.threads = request.threads != 0 ? request.threads : std::thread::hardware_concurrency();
  CW_ASSIGN_OR_RETURN(exec.max_bytes_in_flight, ParseByteSize(request.max_memory));
  ExecuteProgress progress;
  exec.progress = &progress;
  {
    ProgressDisplay display(progress, c.plan.output_bytes, c.plan.Outputs().size(), err,
                            request.progress && !request.quiet);
    CW_RETURN_IF_ERROR(Execute(c.plan, *c.reader, *writer, exec));
  }
  // Reads of a file rewritten in place succeed with mixed bytes: only its identity tells.
  CW_RETURN_IF_ERROR(CheckMappedInputsUnchanged());
  CW_RETURN_IF_ERROR(writer->Commit());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!request.quiet)
    PrintSummary(c, seconds, err, request.output);
  return OkStatus();
}

}  // namespace cw
