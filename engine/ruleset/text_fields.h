// Internal to the ruleset module: typed reading of TextNode maps with exact positions, unknown
// keys reported with "did you mean". Every reader reports its problem to `diag` and returns
// nullopt, so a builder can go on and find more problems.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "engine/ruleset/expression.h"
#include "engine/ruleset/pattern.h"
#include "engine/ruleset/rule_build.h"
#include "engine/ruleset/text_node.h"

namespace cw {

// A map node whose keys must come from `allowed`.
class Fields {
 public:
  // Reports `what` is not a map, and every key not in `allowed`.
  Fields(const TextNode& node, const std::string& what, std::initializer_list<const char*> allowed,
         Diagnostics& diag);

  bool ok() const { return ok_; }
  // The value of `key`, or nullptr when absent (or the node was not a map).
  const TextNode* Get(const char* key) const;

 private:
  const TextNode& node_;
  bool ok_ = false;
};

// The location of a scalar's first character of text (after an opening quote), for messages
// about a part of it (Expr::Parse and NamePattern::Parse add the offset of the part to the
// column). Without a column (0: the line only) when the text is not written verbatim on one line,
// where no column of the file corresponds to an offset into it.
Location TextStart(const TextNode& node);

std::optional<std::string> ReadText(const TextNode& node, const std::string& what,
                                    Diagnostics& diag);
std::optional<int64_t> ReadInt(const TextNode& node, const std::string& what, Diagnostics& diag);
std::optional<bool> ReadBool(const TextNode& node, const std::string& what, Diagnostics& diag);
// A scalar parsed as an expression (YAML numbers and true/false are constants).
std::optional<Expr> ReadExpr(const TextNode& node, const std::string& what, Diagnostics& diag);
// A list of scalars, each read by the matching reader. nullopt when any item fails.
std::optional<std::vector<Expr>> ReadExprList(const TextNode& node, const std::string& what,
                                              Diagnostics& diag);
std::optional<std::vector<int>> ReadIntList(const TextNode& node, const std::string& what,
                                            Diagnostics& diag);
// A scalar or a list of scalars.
std::optional<std::vector<std::string>> ReadTextList(const TextNode& node, const std::string& what,
                                                     Diagnostics& diag);
// A pattern or a list of patterns.
std::optional<std::vector<NamePattern>> ReadPatterns(const TextNode& node, const std::string& what,
                                                     Diagnostics& diag);

}  // namespace cw
