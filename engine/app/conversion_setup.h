// What convert and plan share: rules chosen, input opened, parameters gathered, plan compiled.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "cw/convert_weight.h"
#include "engine/formats/checkpoint.h"
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
};

// The config.json to use: `given` (--config) when set, else the one beside `input` (in the input
// folder, or the folder of the input file), else "".
std::string FindConfig(const std::string& given, const std::string& input);

// Resolves --rules / --model, opens `input` (notes go to `err`), reads config.json (from
// choice.config, else beside the input) and compiles the plan in `direction`.
Result<Conversion> PrepareConversion(const RuleChoice& choice, const std::string& input,
                                     bool reverse, const std::string& dtype, std::ostream& err);

}  // namespace cw
