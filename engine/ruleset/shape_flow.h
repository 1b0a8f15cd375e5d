// Declared shapes carried through a rule's op chain: from the shapes one side declares, the
// shapes the other side's tensors must have, as expressions (a concat's output is the sum of its
// parts, a stack adds the count of its placeholder, ...). The planner uses them to check and
// solve the tensors of the side a rule declares nothing for; lint compares them with what the
// other side declares and checks each op's own sizes against them.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cw/error.h"
#include "engine/ruleset/rule_set.h"

namespace cw {

// A shape some of whose sizes may be unknown (an op left them open: a reshape to -1, a stack over
// a placeholder without a count).
using DerivedShape = std::vector<std::optional<Expr>>;

struct ShapeFlow {
  // Per pattern of the other side; nullopt when the chain could not be followed (an op's `when`
  // undecided, an axis outside a shape).
  std::vector<std::optional<DerivedShape>> shapes;
  // Sizes an op states that contradict the declared shapes it receives ("split sizes add up to
  // ... but the axis is ..."), at the op.
  std::vector<Error> findings;
};

// Decides an op's `when:`; nullopt when it cannot.
using OpCondition = std::function<std::optional<bool>(const Expr& when)>;

// The shapes the `from` side declares (Rule::shapes), carried through the chain from `from` to the
// other side. All nullopt when `from` declares nothing.
ShapeFlow FlowShapes(const RuleSet& rules, const Rule& rule, Side from, const OpCondition& when);

// "[vocab, hidden_size]"; unknown sizes as "?".
std::string ShapeText(const DerivedShape& shape);
std::string ShapeText(const ShapeDecl& shape);

}  // namespace cw
