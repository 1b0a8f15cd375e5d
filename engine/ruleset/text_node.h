// A YAML document as a plain tree with source positions, so that only rule_file.cc sees
// yaml-cpp. Internal to the ruleset module.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cw/error.h"

namespace cw {

struct TextEntry;

struct TextNode {
  enum class Kind { kNull, kScalar, kSequence, kMap };
  Kind kind = Kind::kNull;
  std::string scalar;   // kScalar: the text
  bool quoted = false;  // kScalar: written in quotes (so `"true"` is text, not a boolean)
  // kScalar: the text is written as-is on the line of `where` (after the quote when quoted), so
  // that an offset into it is an offset in columns. Not so when folded over lines or escaped.
  bool verbatim = false;
  std::vector<TextNode> items;     // kSequence
  std::vector<TextEntry> entries;  // kMap: in file order
  Location where;                  // 1-based line and column of the node

  bool is_scalar() const { return kind == Kind::kScalar; }
  bool is_map() const { return kind == Kind::kMap; }
  bool is_sequence() const { return kind == Kind::kSequence; }
  const char* KindName() const;  // "a scalar", "a list", "a map", "empty"
};

// A named struct rather than std::pair: std::vector accepts an element type that is still
// incomplete where TextNode declares `entries`, std::pair<TextNode, TextNode> is not (clang
// instantiates it too early).
struct TextEntry {
  TextNode key;
  TextNode value;
};

// Parses one YAML document. Errors are kRuleInvalid at the 1-based position yaml-cpp reports;
// a key repeated in one map is an error at the second occurrence (yaml-cpp would keep both);
// nesting deeper than limits::kMaxNestingDepth is kLimitExceeded. `file` names the text in
// locations.
Result<TextNode> ParseYaml(std::string_view text, const std::string& file);

}  // namespace cw
