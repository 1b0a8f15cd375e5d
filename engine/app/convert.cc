// The main flow of a conversion: rules + input -> plan -> execute -> commit.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <ostream>
#include <thread>

#include "cw/convert_weight.h"
#include "engine/app/conversion_setup.h"
#include "engine/app/progress_display.h"
#include "engine/base/byte_size.h"
#include "engine/base/mapped_file.h"
#include "engine/exec/executor.h"
#include "engine/formats/checkpoint_io.h"

namespace cw {
namespace fs = std::filesystem;
namespace {

bool IsWeightFile(const fs::path& p) {
  const std::string name = p.filename().string();
  const std::string ext = p.extension().string();
  return ext == ".safetensors" || ext == ".bin" || ext == ".pth" || ext == ".pt" ||
         ext == ".ckpt" || (name.size() > 11 && name.ends_with(".index.json"));
}

// Refuses an output that would overwrite the input or any file of it.
Status CheckOutputIsNotInput(const std::string& output, const std::string& input,
                             const CheckpointReader& reader) {
  std::error_code ec;
  const fs::path out = fs::weakly_canonical(output, ec);
  auto same = [&](const fs::path& p) { return fs::weakly_canonical(p, ec) == out; };
  bool clash = same(input);
  for (size_t i = 0; i < reader.tensors().size() && !clash; ++i)
    clash = same(reader.FileOf(i));
  if (clash) {
    return Error(ErrorCode::kUsage, "the output would overwrite the input", FileLocation(output));
  }
  return OkStatus();
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
  if (request.reverse)
    options.torch_root_key = c.rules.hf_container;
  options.side_files = SideFiles(request.input, c.config_file);
  return options;
}

void PrintSummary(const Plan& plan, double seconds, std::ostream& err, const std::string& out) {
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
  if (plan.lossy)
    err << "  note: this conversion loses information (see `convert_weight plan`)\n";
}

}  // namespace

Status Convert(const ConvertRequest& request, std::ostream& err) {
  const auto start = std::chrono::steady_clock::now();
  CW_ASSIGN_OR_RETURN(Conversion c, PrepareConversion(request.rules, request.input, request.reverse,
                                                      request.dtype, err));
  CW_RETURN_IF_ERROR(CheckOutputIsNotInput(request.output, request.input, *c.reader));
  CW_ASSIGN_OR_RETURN(const WriterOptions options, OutputOptions(request, c));
  CW_ASSIGN_OR_RETURN(auto writer,
                      CreateCheckpointWriter(request.output, c.plan.Outputs(), options));

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
    PrintSummary(c.plan, seconds, err, request.output);
  return OkStatus();
}

}  // namespace cw
