// Loading rule files (rules/<family>.yaml; the language is described in docs/rules.md).
//
// Loading parses the YAML, follows `extends:`, builds the RuleSet, and runs the structural
// checks the planner relies on (declared placeholders and parameters, placeholder binding on
// both sides, op arity along the chain, invertibility); it also computes every rule's reverse
// chain. Every problem is an Error with code kRuleInvalid (kIo for unreadable files,
// kLimitExceeded for oversized ones) located at file:line:column, 1-based. The loader collects
// all problems it can find rather than stopping at the first.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cw/error.h"
#include "engine/ruleset/rule_set.h"

namespace cw {

struct RuleLoad {
  std::optional<RuleSet> rules;  // set only when `errors` is empty
  std::vector<Error> errors;
};

// Reads and checks `path`. Files named by `extends:` are resolved relative to the folder of the
// file that names them.
RuleLoad ParseRuleFile(const std::filesystem::path& path);
// The same for text in memory; `file` names it in locations and `extends:` is resolved relative
// to `base_dir`.
RuleLoad ParseRuleText(std::string_view text, const std::string& file,
                       const std::filesystem::path& base_dir = {});

// The loaded rule set, or the first problem (its message ends with "(and N more problems)" when
// there were several). For callers that only need a usable RuleSet (convert, plan).
Result<RuleSet> LoadRuleFile(const std::filesystem::path& path);
Result<RuleSet> LoadRuleText(std::string_view text, const std::string& file,
                             const std::filesystem::path& base_dir = {});

}  // namespace cw
