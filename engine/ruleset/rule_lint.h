// `convert_weight lint`: static checks of rule files, every finding an Error located at
// file:line:column (kRuleInvalid).
//
// Loading already reports YAML and schema errors, unknown keys ("did you mean"), bad patterns
// and placeholders, undeclared placeholders and parameters, a placeholder bound on one side
// only, ops that could not be inverted (a reshape without `from`, a concat without sizes) and op
// chains that do not turn the hf list into the ms list. LintRuleSet adds the checks that look
// across rules:
//  - overlapping patterns: a name two rules could both read (hf side: forward; ms side:
//    reverse) or write, unless their `when` conditions exclude each other;
//  - a tied rule whose `to`, or a copy_of rule whose tensor, is not converted by a one-to-one
//    rule without ops;
//  - a rotary permutation applied to several tensors with one head count (q and k differ under
//    grouped-query attention: give one count per tensor).
#pragma once

#include <filesystem>
#include <vector>

#include "cw/error.h"
#include "engine/ruleset/rule_set.h"

namespace cw {

std::vector<Error> LintRuleSet(const RuleSet& rules);

// Loads `path` and lints it: the load problems, or when it loads, LintRuleSet's findings.
std::vector<Error> LintRuleFile(const std::filesystem::path& path);

}  // namespace cw
