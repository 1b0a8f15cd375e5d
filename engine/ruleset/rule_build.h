// Internal to the ruleset module: TextNode -> RuleSet (schema checks) and the structural checks.
#pragma once

#include <string>
#include <vector>

#include "cw/error.h"
#include "engine/ruleset/rule_set.h"
#include "engine/ruleset/text_node.h"

namespace cw {

// Collected problems of one load.
struct Diagnostics {
  std::vector<Error> errors;
  void Add(Error e) { errors.push_back(std::move(e)); }
  void Add(ErrorCode code, const std::string& message, const Location& where) {
    errors.emplace_back(code, message, where);
  }
  // A kRuleInvalid problem.
  void Report(const std::string& message, const Location& where) {
    Add(ErrorCode::kRuleInvalid, message, where);
  }
};

// The parts of one file, before `extends:` is applied.
struct RuleFileParts {
  RuleSet rules;        // header, params, placeholders, rules of this file only
  std::string extends;  // the file named by `extends:`, empty if none
  Location extends_where;
  bool has_description = false;
  bool has_models = false;
  bool has_container = false;
  bool has_fp8_scales = false;
  bool has_ms_folder = false;
};

// Reads the top-level map. Problems go to `diag`; the result holds whatever could be read.
RuleFileParts BuildRuleFile(const TextNode& root, Diagnostics& diag);

// Parses one entry of an `ops:` list. nullopt (with problems in `diag`) when unusable.
std::optional<OpSpec> BuildOp(const TextNode& item, Diagnostics& diag);

// The structural checks (names, binding, op arity); fills every rule's reverse_ops.
void CheckRuleSet(RuleSet& rules, Diagnostics& diag);

}  // namespace cw
