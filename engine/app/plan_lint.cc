// `plan`, `lint` and `models`: the commands that read rules and headers but no tensor data.
#include <ostream>

#include "cw/convert_weight.h"
#include "engine/app/conversion_setup.h"
#include "engine/app/model_registry.h"
#include "engine/formats/checkpoint_io.h"
#include "engine/formats/prefix_view.h"
#include "engine/plan/plan_text.h"
#include "engine/plan/round_trip.h"
#include "engine/ruleset/rule_file.h"
#include "engine/ruleset/rule_lint.h"

namespace cw {
namespace {

std::string Joined(const std::vector<std::string>& items) {
  std::string s;
  for (const std::string& i : items)
    s += (s.empty() ? "" : ", ") + i;
  return s;
}

std::string ParamLine(const ParamDecl& p) {
  std::string s = p.name + " (" + ValueTypeName(p.type);
  if (!p.config_keys.empty())
    s += ", config.json " + Joined(p.config_keys);
  if (p.default_value)
    s += ", default " + p.default_value->text();
  if (!p.flag.empty())
    s += ", flag --" + p.flag;
  s += ")";
  if (!p.description.empty())
    s += ": " + p.description;
  return s;
}

std::string Code(const std::string& s) { return "`" + s + "`"; }

// One row per rule file: what docs/models.md shows, so that the page cannot drift from the rules.
void PrintModelTable(const std::vector<RuleSet>& all, std::ostream& out) {
  out << "| family | `--model` keys | directions | parameters (seed flag) | HF-side input | "
         "MindSpore-side folder output |\n"
      << "|---|---|---|---|---|---|\n";
  for (const RuleSet& r : all) {
    std::vector<std::string> keys;
    for (const std::string& m : r.models)
      keys.push_back(Code(m));
    std::vector<std::string> params;
    for (const ParamDecl& p : r.params) {
      params.push_back(Code(p.name) + (p.flag.empty() ? "" : " (`--" + p.flag + "`)"));
    }
    const std::string layout =
        r.hf_container.empty() ? "HF folder or file: safetensors or `.bin`, sharded or not"
                               : "`.pth`/`.bin` with the tensors under `" + r.hf_container + "`";
    const std::string ms_folder = r.ms_folder == RuleSet::MsFolder::kMindFormers
                                      ? "MindFormers: safetensors + `param_name_map.json`"
                                      : "safetensors + `model.safetensors.index.json`";
    out << "| " << r.name << " | " << Joined(keys) << " | HF -> MindSpore, MindSpore -> HF | "
        << Joined(params) << " | " << layout << " | " << ms_folder << " |\n";
  }
}

}  // namespace

Status PrintPlan(const PlanRequest& request, std::ostream& out, std::ostream& err) {
  CW_ASSIGN_OR_RETURN(const Conversion c,
                      PrepareConversion(request.rules, request.input, request.reverse,
                                        request.dtype, OpenOptionsFor(request.distributed), err));
  if (!c.dropped_state.empty())
    err << "note: training state left out: " << DroppedKindsText(c.dropped_state) << "\n";
  out << (request.json ? PlanToJson(c.plan) : PlanToText(c.plan));
  return OkStatus();
}

Status Lint(const LintRequest& request, std::ostream& out) {
  size_t problems = 0;
  for (const std::string& file : request.rule_files) {
    std::vector<Error> findings = LintRuleFile(file);
    if (findings.empty() && !request.against.empty()) {
      CW_ASSIGN_OR_RETURN(const RuleSet rules, LoadRuleFile(file));
      CW_ASSIGN_OR_RETURN(
          auto reader,
          OpenCheckpoint(request.against, OpenOptionsFor(request.distributed), nullptr));
      if (!rules.hf_container.empty())
        reader = ViewUnderKey(std::move(reader), rules.hf_container);
      // As convert does: optimizer state is no network weight.
      if (reader->format() == FileFormat::kMindSpore)
        reader = WithoutTrainingState(std::move(reader), nullptr);
      ParamInputs params;
      params.set = request.set;
      if (const std::string config = FindConfig(request.config, request.against); !config.empty()) {
        CW_ASSIGN_OR_RETURN(params.config, LoadConfigJson(config));
      }
      findings = CheckRoundTrip(rules, reader->tensors(), params);
    }
    for (const Error& e : findings)
      out << e.ToString() << "\n";
    problems += findings.size();
    if (findings.empty())
      out << file << ": ok\n";
  }
  if (problems != 0) {
    return Error(ErrorCode::kRuleInvalid,
                 std::to_string(problems) + " problem" + (problems == 1 ? "" : "s") + " found");
  }
  return OkStatus();
}

Status ListModels(std::ostream& out, bool markdown) {
  CW_ASSIGN_OR_RETURN(const BundledRules bundled, LoadBundledRules());
  const std::vector<RuleSet>& all = bundled.rules;
  if (!bundled.broken.empty())
    return bundled.broken.front();
  if (markdown) {
    PrintModelTable(all, out);
    return OkStatus();
  }
  for (const RuleSet& r : all) {
    out << r.name << "  (" << r.file << ")\n";
    out << "  keys: " << Joined(r.models) << "\n";
    if (!r.description.empty())
      out << "  " << r.description << "\n";
    for (const ParamDecl& p : r.params)
      out << "  param " << ParamLine(p) << "\n";
  }
  return OkStatus();
}

}  // namespace cw
