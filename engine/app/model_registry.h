// The bundled rule files (rules/*.yaml) and the model keys they serve.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "cw/error.h"
#include "engine/ruleset/rule_set.h"

namespace cw {

// $CW_RULES_DIR when set, else the rules/ folder of the source tree the tool was built from.
std::filesystem::path RulesDir();

struct BundledRules {
  std::vector<RuleSet> rules;  // files serving at least one model key, sorted by file name
  std::vector<Error> broken;   // files that did not load: they must not hide the others
};
// Every rule file of RulesDir().
Result<BundledRules> LoadBundledRules();

// The rule file for a --model key or alias. When several files serve the key, the one whose
// name equals a --set value is chosen (`--model telechat --telechat_type telechat_7b`).
// kUsage listing the known keys when nothing matches.
Result<std::string> RuleFileForModel(const std::string& key,
                                     const std::vector<std::pair<std::string, std::string>>& set);

}  // namespace cw
