// Internal to the ruleset module: the parsed form of an expression, shared by the parser
// (expression_parse.cc) and the evaluator (expression.cc).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cw/error.h"
#include "engine/ruleset/expression.h"

namespace cw {

// kBinary operators: or and == != < <= > >= in + - * / % and "[]" (indexing). kList: a list
// literal, its items in `args`. kCondition: a named condition linked in, its tree in args[0].
enum class NodeKind { kConst, kName, kUnary, kBinary, kCall, kList, kCondition };

struct ExprNode {
  NodeKind kind = NodeKind::kConst;
  Value value;       // kConst
  std::string name;  // kName, kCondition, kCall (function), kUnary/kBinary (operator)
  std::vector<std::shared_ptr<const ExprNode>> args;
  uint64_t depth = 1;  // levels of the tree from this node down
};

// Parses `text` (grammar in expression.h); errors are kRuleInvalid at the offending column, or
// kLimitExceeded for an expression deeper than limits::kMaxExpressionDepth.
Result<std::shared_ptr<const ExprNode>> ParseExpressionTree(const std::string& text,
                                                            const Location& where);

}  // namespace cw
