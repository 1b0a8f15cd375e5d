// What convert and plan share: rules chosen, input opened, parameters gathered, plan compiled.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "cw/convert_weight.h"
#include "engine/formats/checkpoint.h"
#include "engine/formats/checkpoint_io.h"
#include "engine/formats/training_state_view.h"
#include "engine/plan/plan.h"
#include "engine/ruleset/params.h"
#include "engine/ruleset/rule_set.h"

namespace cw {

struct Conversion {
  RuleSet rules;
  std::unique_ptr<CheckpointReader> reader;
  ParamInputs params;
  std::string config_file;  // the config.json used, "" when none
  Plan plan;
  std::vector<std::string> notes;          // choices made while opening the input
  std::vector<DroppedKind> dropped_state;  // training state left out of a MindSpore input
};

// The config.json to use: `given` (--config) when set, else the one beside `input` (in the input
// folder, or the folder of the input file), else "".
std::string FindConfig(const std::string& given, const std::string& input);

// Resolves --rules / --model, opens `input` with `open` (its notes go to `err`), leaves out the
// training state of a MindSpore input (optimizer moments, accumulators, step counters: no rule
// maps them), reads config.json (from choice.config, else beside the input) and compiles the plan
// in `direction`.
Result<Conversion> PrepareConversion(const RuleChoice& choice, const std::string& input,
                                     bool reverse, const std::string& dtype,
                                     const OpenOptions& open, std::ostream& err);

// The reader options for a distributed input given on the command line.
OpenOptions OpenOptionsFor(const DistributedInput& distributed);

// Refuses an output that would overwrite the input or any file of it.
Status CheckOutputIsNotInput(const std::string& output, const std::string& input,
                             const CheckpointReader& reader);

// "adam_m (291 tensors, 3.1 GB), ..." for a summary.
std::string DroppedKindsText(const std::vector<DroppedKind>& dropped);

}  // namespace cw
