// Expressions as algebra, for declared tensor shapes: building size expressions from others
// (the shape after a concat is the sum of the parts), deciding whether two size expressions are
// the same function of the parameters (lint), and solving `expr = value` for the one parameter
// nobody gave (the planner's shape solving).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/ruleset/expression.h"

namespace cw {

// New integer expressions, located at `where`, their text written with as few parentheses as
// their operators need. REQUIRES: the operands are integer expressions.
Expr IntConstant(int64_t value, const Location& where);
Expr SumOf(const std::vector<Expr>& terms, const Location& where);  // REQUIRES: not empty
Expr ProductOf(const Expr& a, const Expr& b, const Location& where);
Expr QuotientOf(const Expr& a, const Expr& b, const Location& where);

// Whether `a` and `b` have the same value for all parameter values: true when their normal forms
// (sums of products of names with rational coefficients; `/` exact division) are equal; false
// when they differ and are made of + - * and / by products only; nullopt when other parts
// (if(), min(), %, indexing, division by a sum) keep them from being compared.
std::optional<bool> SameValue(const Expr& a, const Expr& b);

// `expr` = `target` solved for the one name of `expr` that `known` does not hold, when the path
// from the root to it is made of + - * / and unary minus, with the other operands known (an
// if() whose condition `known` decides counts as the branch it takes).
// nullopt when there is no such name, more than one, or the path cannot be inverted; the value
// may then still be checked by evaluation. `exact` is false when a division on the way left a
// remainder (no integer value can satisfy the equation).
struct Solution {
  std::string name;
  int64_t value = 0;
  bool exact = true;
};
std::optional<Solution> SolveFor(const Expr& expr, int64_t target,
                                 const std::map<std::string, Value>& known);

}  // namespace cw
