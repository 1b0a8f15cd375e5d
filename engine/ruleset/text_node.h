// A YAML document as a plain tree with source positions, so that only rule_file.cc sees
// yaml-cpp. Internal to the ruleset module.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cw/error.h"

namespace cw {

struct TextNode {
  enum class Kind { kNull, kScalar, kSequence, kMap };
  Kind kind = Kind::kNull;
  std::string scalar;           // kScalar: the text
  bool quoted = false;          // kScalar: written in quotes (so `"true"` is text, not a boolean)
  std::vector<TextNode> items;  // kSequence
  std::vector<std::pair<TextNode, TextNode>> entries;  // kMap: key, value in file order
  Location where;                                      // 1-based line and column of the node

  bool is_scalar() const { return kind == Kind::kScalar; }
  bool is_map() const { return kind == Kind::kMap; }
  bool is_sequence() const { return kind == Kind::kSequence; }
  const char* KindName() const;  // "a scalar", "a list", "a map", "empty"
};

// Parses one YAML document. Errors are kRuleInvalid at the 1-based position yaml-cpp reports;
// a key repeated in one map is an error at the second occurrence (yaml-cpp would keep both);
// nesting deeper than limits::kMaxNestingDepth is kLimitExceeded. `file` names the text in
// locations.
Result<TextNode> ParseYaml(std::string_view text, const std::string& file);

}  // namespace cw
