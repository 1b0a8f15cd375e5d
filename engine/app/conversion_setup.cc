#include "engine/app/conversion_setup.h"

#include <filesystem>
#include <ostream>

#include "engine/app/model_registry.h"
#include "engine/app/progress_display.h"
#include "engine/formats/checkpoint_io.h"
#include "engine/formats/prefix_view.h"
#include "engine/plan/planner.h"
#include "engine/ruleset/rule_file.h"

namespace cw {
namespace fs = std::filesystem;
namespace {

Result<RuleSet> ChooseRules(const RuleChoice& choice) {
  if (!choice.rules_file.empty() && !choice.model.empty()) {
    return Error(ErrorCode::kUsage, "give --rules or --model, not both");
  }
  if (!choice.rules_file.empty())
    return LoadRuleFile(choice.rules_file);
  if (choice.model.empty())
    return Error(ErrorCode::kUsage, "--rules or --model is required");
  CW_ASSIGN_OR_RETURN(const std::string file, RuleFileForModel(choice.model, choice.set));
  return LoadRuleFile(file);
}

}  // namespace

std::string FindConfig(const std::string& given, const std::string& input) {
  if (!given.empty())
    return given;
  std::error_code ec;
  const fs::path in(input);
  const fs::path dir = fs::is_directory(in, ec) ? in : in.parent_path();
  const fs::path config = (dir.empty() ? fs::path(".") : dir) / "config.json";
  return fs::is_regular_file(config, ec) ? config.string() : std::string();
}

OpenOptions OpenOptionsFor(const DistributedInput& distributed) {
  OpenOptions open;
  open.distributed.strategy = distributed.strategy;
  open.distributed.compare_replicas = !distributed.skip_replica_check;
  open.distributed.allow_unused_layouts = distributed.allow_unused_layouts;
  return open;
}

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

std::string DroppedKindsText(const std::vector<DroppedKind>& dropped) {
  std::string out;
  for (const DroppedKind& d : dropped) {
    out += (out.empty() ? "" : ", ") + d.kind + " (" + std::to_string(d.tensors) +
           (d.tensors == 1 ? " tensor, " : " tensors, ") + HumanBytes(d.bytes) + ")";
  }
  return out;
}

Result<Conversion> PrepareConversion(const RuleChoice& choice, const std::string& input,
                                     bool reverse, const std::string& dtype,
                                     const OpenOptions& open, std::ostream& err) {
  Conversion c;
  CW_ASSIGN_OR_RETURN(c.rules, ChooseRules(choice));
  CW_ASSIGN_OR_RETURN(c.reader, OpenCheckpoint(input, open, &c.notes));
  for (const std::string& note : c.notes)
    err << "note: " << note << "\n";
  // No rule maps optimizer state: a training checkpoint converts as its weights.
  if (c.reader->format() == FileFormat::kMindSpore)
    c.reader = WithoutTrainingState(std::move(c.reader), &c.dropped_state);
  // hf_layout.container: forward reads only the tensors nested under that key (prefix removed);
  // every other value of the file is reported and skipped.
  if (!reverse && !c.rules.hf_container.empty()) {
    c.reader = ViewUnderKey(std::move(c.reader), c.rules.hf_container);
    for (const SkippedValue& s : c.reader->skipped())
      err << "note: skipped " << s.name << ": " << s.description << "\n";
  }
  c.config_file = FindConfig(choice.config, input);
  if (!c.config_file.empty()) {
    CW_ASSIGN_OR_RETURN(c.params.config, LoadConfigJson(c.config_file));
  }
  c.params.set = choice.set;
  PlanOptions options;
  options.direction = reverse ? Direction::kReverse : Direction::kForward;
  options.params = c.params;
  if (!dtype.empty()) {
    const std::optional<DType> cast = DTypeFromUserName(dtype);
    if (!cast || !IsFloat(*cast) || *cast == DType::kF8E4M3 || *cast == DType::kF8E5M2) {
      return Error(ErrorCode::kUsage, "--dtype must be fp32, fp16 or bf16, not \"" + dtype + "\"");
    }
    options.cast = cast;
  }
  CW_ASSIGN_OR_RETURN(c.plan, MakePlan(c.rules, c.reader->tensors(), options));
  return c;
}

}  // namespace cw
