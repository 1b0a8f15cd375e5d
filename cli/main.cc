// convert_weight: parses arguments into engine requests, prints errors, returns exit codes.
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/seed_args.h"
#include "cw/convert_weight.h"

namespace {

int Report(const cw::Status& status) {
  if (status.ok())
    return 0;
  std::cerr << "convert_weight: " << status.error().ToString() << "\n";
  return cw::ExitCodeFor(status.error());
}

// "name=value" from --set.
cw::Status ParseSets(const std::vector<std::string>& sets,
                     std::vector<std::pair<std::string, std::string>>& out) {
  for (const std::string& s : sets) {
    const size_t eq = s.find('=');
    if (eq == std::string::npos || eq == 0) {
      return cw::Error(cw::ErrorCode::kUsage, "--set wants name=value, not \"" + s + "\"");
    }
    out.emplace_back(s.substr(0, eq), s.substr(eq + 1));
  }
  return cw::OkStatus();
}

void AddRuleOptions(CLI::App* cmd, cw::RuleChoice& choice, std::vector<std::string>& sets) {
  cmd->add_option("--rules", choice.rules_file, "Rule file (rules/<family>.yaml)");
  cmd->add_option("--model", choice.model, "Model key or alias (see `convert_weight models`)");
  cmd->add_option("--set", sets, "Rule parameter name=value (repeatable)");
  cmd->add_option("--config", choice.config, "config.json to use instead of the input's");
}

void AddDistributedOptions(CLI::App* cmd, cw::DistributedInput& d) {
  cmd->add_option("--strategy", d.strategy,
                  "MindSpore parallel-strategy file or folder of a distributed checkpoint");
  cmd->add_flag("--skip-replica-check", d.skip_replica_check,
                "Do not compare replicas byte for byte (a differing one goes unnoticed)");
  cmd->add_flag("--allow-unused-layouts", d.allow_unused_layouts,
                "Note, not refuse, layouts of parameters no rank file holds");
}

int RunSeedCommand(const std::vector<std::string>& args) {
  auto request = cw::cli::ParseSeedCommand(args);
  if (!request.ok())
    return Report(request.status());
  request->progress = isatty(STDERR_FILENO) != 0;
  return Report(cw::Convert(*request, std::cerr));
}

}  // namespace

int main(int argc, char** argv) {
  cw::InstallInterruptCleanup();
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (cw::cli::LooksLikeSeedCommand(args))
      return RunSeedCommand(args);

    CLI::App app{"ConvertWeight: converts model weights between HuggingFace/PyTorch and MindSpore"};
    app.require_subcommand(1);
    app.footer(
        "The reference tool's command line (MindFormers convert_weight.py) works too:\n"
        "  convert_weight --model llama --input_path IN --output_path OUT [--reversed]\n"
        "                 [--dtype fp32|fp16|bf16] [--layers N] [--is_pretrain] [--qkv_concat]\n"
        "                 [--telechat_type telechat_7b] [--config config.json] [--KEY VALUE]...\n"
        "Any other --KEY VALUE sets the rule parameter KEY; `convert_weight models` lists the\n"
        "model keys and their parameters.");

    cw::ConvertRequest convert;
    std::vector<std::string> convert_sets;
    CLI::App* convert_cmd = app.add_subcommand("convert", "Convert a checkpoint with a rule file");
    AddRuleOptions(convert_cmd, convert.rules, convert_sets);
    convert_cmd->add_option("--input", convert.input, "Checkpoint file or folder")->required();
    convert_cmd
        ->add_option("--output", convert.output, ".ckpt, .safetensors, .bin, .pth or folder/")
        ->required();
    convert_cmd->add_flag("--reverse", convert.reverse, "MindSpore -> HuggingFace/PyTorch");
    AddDistributedOptions(convert_cmd, convert.distributed);
    convert_cmd->add_option("--rank", convert.ranks,
                            "Forward with --strategy: write only these ranks (3, 0-7, 0,4-7)");
    convert_cmd->add_option("--dtype", convert.dtype, "Cast floating tensors: fp32, fp16 or bf16");
    convert_cmd->add_option("--threads", convert.threads, "Worker threads (default: all cores)");
    convert_cmd->add_option("--max-shard-size", convert.max_shard_size, "Folder output shard size");
    convert_cmd->add_option("--max-memory", convert.max_memory, "Cap on tensor bytes held at once");
    convert_cmd->add_flag("--force", convert.force, "Replace an existing output");
    convert_cmd->add_flag("--quiet", convert.quiet, "No progress and no summary");
    convert_cmd->allow_extras();
    convert_cmd->footer(
        "Other --KEY VALUE options set the rule parameter of that name or flag, as in "
        "the reference tool's form (--layers 4, --use_gmm true).");

    cw::PlanRequest plan;
    std::vector<std::string> plan_sets;
    CLI::App* plan_cmd =
        app.add_subcommand("plan", "Show what a conversion would do, read nothing");
    AddRuleOptions(plan_cmd, plan.rules, plan_sets);
    plan_cmd->add_option("--input", plan.input, "Checkpoint file or folder")->required();
    plan_cmd->add_flag("--reverse", plan.reverse, "MindSpore -> HuggingFace/PyTorch");
    AddDistributedOptions(plan_cmd, plan.distributed);
    plan_cmd->add_option("--dtype", plan.dtype, "Cast floating tensors: fp32, fp16 or bf16");
    plan_cmd->add_flag("--json", plan.json, "Machine-readable output");
    plan_cmd->allow_extras();

    cw::LintRequest lint;
    std::vector<std::string> lint_sets;
    CLI::App* lint_cmd = app.add_subcommand("lint", "Check rule files");
    lint_cmd->add_option("rules", lint.rule_files, "Rule files")->required();
    lint_cmd->add_option("--against", lint.against, "Also check both directions on a checkpoint");
    lint_cmd->add_option("--config", lint.config, "config.json for --against");
    AddDistributedOptions(lint_cmd, lint.distributed);
    lint_cmd->add_option("--set", lint_sets, "Rule parameter name=value (repeatable)");

    bool models_markdown = false;
    CLI::App* models_cmd = app.add_subcommand("models", "List the bundled rule files and models");
    models_cmd->add_flag("--markdown", models_markdown, "The table of docs/models.md");

    cw::InspectRequest inspect;
    CLI::App* inspect_cmd =
        app.add_subcommand("inspect",
                           "List the tensors of a checkpoint file or folder, or the layouts of a "
                           "MindSpore parallel-strategy file or folder");
    inspect_cmd->add_option("path", inspect.path, "Checkpoint or strategy file or folder")
        ->required();
    inspect_cmd->add_flag("--json", inspect.json, "Machine-readable output");
    AddDistributedOptions(inspect_cmd, inspect.distributed);

    cw::MergeRequest merge;
    CLI::App* merge_cmd = app.add_subcommand(
        "merge", "Merge a distributed MindSpore checkpoint (rank_<r>/ folders) into full tensors");
    merge_cmd->add_option("--input", merge.input, "Folder of rank_<r>/ folders")->required();
    merge_cmd->add_option("--output", merge.output, ".ckpt, .safetensors or folder/")->required();
    AddDistributedOptions(merge_cmd, merge.distributed);
    merge_cmd->add_flag("--drop-training-state", merge.drop_training_state,
                        "Leave out optimizer state and training scalars (whole kinds)");
    merge_cmd->add_option("--threads", merge.threads, "Worker threads (default: all cores)");
    merge_cmd->add_option("--max-shard-size", merge.max_shard_size, "Folder output shard size");
    merge_cmd->add_option("--max-memory", merge.max_memory, "Cap on tensor bytes held at once");
    merge_cmd->add_flag("--force", merge.force, "Replace an existing output");
    merge_cmd->add_flag("--quiet", merge.quiet, "No progress and no summary");

    cw::RewriteRequest rewrite;
    CLI::App* rewrite_cmd = app.add_subcommand(
        "rewrite", "Write the same tensors in another file format (chosen by the output name)");
    rewrite_cmd->add_option("input", rewrite.input, "Checkpoint file or folder")->required();
    rewrite_cmd->add_option("output", rewrite.output, ".safetensors, .bin, .pth, .ckpt or folder/")
        ->required();
    rewrite_cmd->add_flag("--force", rewrite.force, "Replace an existing output");
    rewrite_cmd->add_flag("--crc", rewrite.ckpt_crc, ".ckpt: append MindSpore's CRC trailer");
    rewrite_cmd->add_option("--chunk-bytes", rewrite.ckpt_chunk_bytes,
                            ".ckpt: split tensors above this size into records");
    rewrite_cmd->add_option("--max-shard-size", rewrite.max_shard_size, "Folder output shard size");
    rewrite_cmd->add_option("--root-key", rewrite.torch_root_key,
                            ".bin/.pth: nest the tensors under this key");

    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e) == 0 ? 0 : 2;
    }

    if (*convert_cmd) {
      if (int rc = Report(ParseSets(convert_sets, convert.rules.set)); rc != 0)
        return rc;
      if (int rc = Report(cw::cli::AddFlagSets(convert_cmd->remaining(), convert.rules.set));
          rc != 0)
        return rc;
      convert.progress = isatty(STDERR_FILENO) != 0;
      return Report(cw::Convert(convert, std::cerr));
    }
    if (*plan_cmd) {
      if (int rc = Report(ParseSets(plan_sets, plan.rules.set)); rc != 0)
        return rc;
      if (int rc = Report(cw::cli::AddFlagSets(plan_cmd->remaining(), plan.rules.set)); rc != 0)
        return rc;
      return Report(cw::PrintPlan(plan, std::cout, std::cerr));
    }
    if (*lint_cmd) {
      if (int rc = Report(ParseSets(lint_sets, lint.set)); rc != 0)
        return rc;
      return Report(cw::Lint(lint, std::cout));
    }
    if (*models_cmd)
      return Report(cw::ListModels(std::cout, models_markdown));
    if (*inspect_cmd)
      return Report(cw::Inspect(inspect, std::cout, std::cerr));
    if (*rewrite_cmd)
      return Report(cw::Rewrite(rewrite, std::cerr));
    if (*merge_cmd) {
      merge.progress = isatty(STDERR_FILENO) != 0;
      return Report(cw::Merge(merge, std::cerr));
    }
  } catch (const std::exception& e) {
    std::cerr << "convert_weight: internal error, please report: " << e.what() << "\n";
    return 70;
  }
  return 2;
}
