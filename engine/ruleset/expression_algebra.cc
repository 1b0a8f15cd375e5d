#include "engine/ruleset/expression_algebra.h"

#include <memory>
#include <numeric>
#include <set>

#include "engine/ruleset/expression_node.h"

namespace cw {
namespace {

using NodePtr = std::shared_ptr<const ExprNode>;

int Precedence(const ExprNode& n) {
  if (n.kind == NodeKind::kUnary)
    return n.name == "not" ? 3 : 7;
  if (n.kind != NodeKind::kBinary)
    return 8;
  const std::string& op = n.name;
  if (op == "or")
    return 1;
  if (op == "and")
    return 2;
  if (op == "+" || op == "-")
    return 5;
  if (op == "*" || op == "/" || op == "%")
    return 6;
  if (op == "[]")
    return 8;
  return 4;  // comparisons and `in`
}

// The text of a tree, parenthesised only where precedence needs it.
std::string Print(const ExprNode& n, int outer = 0) {
  std::string s;
  switch (n.kind) {
    case NodeKind::kConst:
      return n.value.ToString();
    case NodeKind::kName:
    case NodeKind::kCondition:
      return n.name;
    case NodeKind::kList:
    case NodeKind::kCall:
      for (const NodePtr& a : n.args)
        s += (s.empty() ? "" : ", ") + Print(*a);
      return n.kind == NodeKind::kList ? "[" + s + "]" : n.name + "(" + s + ")";
    case NodeKind::kUnary:
      s = n.name == "not" ? "not " + Print(*n.args[0], 3) : "-" + Print(*n.args[0], 7);
      break;
    case NodeKind::kBinary:
      if (n.name == "[]")
        return Print(*n.args[0], 8) + "[" + Print(*n.args[1]) + "]";
      // Operators group to the left, so a right operand of equal precedence needs parentheses.
      s = Print(*n.args[0], Precedence(n)) + " " + n.name + " " +
          Print(*n.args[1], Precedence(n) + 1);
      break;
  }
  return Precedence(n) < outer ? "(" + s + ")" : s;
}

NodePtr Node(NodeKind kind, std::string name, std::vector<NodePtr> args) {
  auto n = std::make_shared<ExprNode>();
  n->kind = kind;
  n->name = std::move(name);
  n->args = std::move(args);
  for (const NodePtr& a : n->args)
    n->depth = std::max(n->depth, a->depth + 1);
  return n;
}

Expr Build(const NodePtr& n, const Location& where) { return Expr::FromNode(n, Print(*n), where); }

// ---- normal form ----------------------------------------------------------------------------

struct Rational {
  int64_t num = 0;
  int64_t den = 1;
};

std::optional<Rational> Reduced(int64_t num, int64_t den) {
  if (den == 0 || num == INT64_MIN || den == INT64_MIN)
    return std::nullopt;
  if (den < 0) {
    num = -num;
    den = -den;
  }
  const int64_t g = std::gcd(num, den);
  return Rational{num / (g ? g : 1), den / (g ? g : 1)};
}

std::optional<Rational> Add(Rational a, Rational b) {
  int64_t x = 0, y = 0, n = 0, d = 0;
  if (__builtin_mul_overflow(a.num, b.den, &x) || __builtin_mul_overflow(b.num, a.den, &y) ||
      __builtin_add_overflow(x, y, &n) || __builtin_mul_overflow(a.den, b.den, &d))
    return std::nullopt;
  return Reduced(n, d);
}

std::optional<Rational> Mul(Rational a, Rational b) {
  int64_t n = 0, d = 0;
  if (__builtin_mul_overflow(a.num, b.num, &n) || __builtin_mul_overflow(a.den, b.den, &d))
    return std::nullopt;
  return Reduced(n, d);
}

// A product of names (and opaque parts, keyed "#<text>") with their exponents, none zero.
using Monomial = std::map<std::string, int>;
// A sum of monomials with non-zero coefficients.
using Poly = std::map<Monomial, Rational>;

constexpr size_t kMaxTerms = 256;

std::optional<Poly> Plus(const Poly& a, const Poly& b, int sign) {
  Poly out = a;
  for (const auto& [m, c] : b) {
    const Rational term{sign * c.num, c.den};
    auto sum = out.count(m) ? Add(out[m], term) : std::optional(term);
    if (!sum)
      return std::nullopt;
    if (sum->num == 0)
      out.erase(m);
    else
      out[m] = *sum;
  }
  if (out.size() > kMaxTerms)
    return std::nullopt;
  return out;
}

std::optional<Poly> Times(const Poly& a, const Poly& b) {
  Poly out;
  for (const auto& [ma, ca] : a) {
    for (const auto& [mb, cb] : b) {
      Monomial m = ma;
      for (const auto& [name, e] : mb) {
        if ((m[name] += e) == 0)
          m.erase(name);
      }
      auto c = Mul(ca, cb);
      if (!c)
        return std::nullopt;
      auto sum = Plus(out, Poly{{m, *c}}, 1);
      if (!sum)
        return std::nullopt;
      out = std::move(*sum);
    }
  }
  return out;
}

// 1 / p when p is a single monomial.
std::optional<Poly> Inverse(const Poly& p) {
  if (p.size() != 1)
    return std::nullopt;
  Monomial m;
  for (const auto& [name, e] : p.begin()->first)
    m[name] = -e;
  auto c = Reduced(p.begin()->second.den, p.begin()->second.num);
  if (!c)
    return std::nullopt;
  return Poly{{m, *c}};
}

Poly Opaque(const ExprNode& n) { return Poly{{Monomial{{"#" + Print(n), 1}}, Rational{1, 1}}}; }

std::optional<Poly> Normal(const ExprNode& n) {
  if (n.kind == NodeKind::kConst && n.value.type() == ValueType::kInt) {
    if (n.value.as_int() == 0)
      return Poly{};
    return Poly{{Monomial{}, Rational{n.value.as_int(), 1}}};
  }
  if (n.kind == NodeKind::kName)
    return Poly{{Monomial{{n.name, 1}}, Rational{1, 1}}};
  if (n.kind == NodeKind::kUnary && n.name == "-") {
    auto p = Normal(*n.args[0]);
    return p ? Plus(Poly{}, *p, -1) : std::nullopt;
  }
  if (n.kind == NodeKind::kBinary &&
      (n.name == "+" || n.name == "-" || n.name == "*" || n.name == "/")) {
    auto a = Normal(*n.args[0]);
    auto b = Normal(*n.args[1]);
    if (!a || !b)
      return std::nullopt;
    if (n.name == "+" || n.name == "-")
      return Plus(*a, *b, n.name == "+" ? 1 : -1);
    if (n.name == "*")
      return Times(*a, *b);
    auto inverse = Inverse(*b);
    return inverse ? Times(*a, *inverse) : Opaque(n);
  }
  return Opaque(n);
}

bool HasOpaque(const Poly& p) {
  for (const auto& [m, c] : p) {
    for (const auto& [name, e] : m) {
      if (name[0] == '#')
        return true;
    }
  }
  return false;
}

// ---- solving --------------------------------------------------------------------------------

bool Reads(const ExprNode& n, const std::string& name) {
  if (n.kind == NodeKind::kName)
    return n.name == name;
  for (const NodePtr& a : n.args) {
    if (Reads(*a, name))
      return true;
  }
  return false;
}

std::optional<Value> KnownValue(const ExprNode& n, const std::map<std::string, Value>& known) {
  const NodePtr view(NodePtr{}, &n);  // not owning: `n` outlives the evaluation
  const auto v = Build(view, Location{})
                     .Evaluate([&](const std::string& name) -> Result<std::optional<Value>> {
                       if (auto it = known.find(name); it != known.end())
                         return std::optional(it->second);
                       return Error(ErrorCode::kPlanInvalid, "unknown");
                     });
  return v.ok() ? std::optional(*v) : std::nullopt;
}

std::optional<int64_t> Known(const ExprNode& n, const std::map<std::string, Value>& known) {
  const auto v = KnownValue(n, known);
  if (!v || v->type() != ValueType::kInt)
    return std::nullopt;
  return v->as_int();
}

// `n` with every if() whose condition `known` decides replaced by the branch it takes.
NodePtr Prune(const NodePtr& n, const std::map<std::string, Value>& known) {
  if (n->kind == NodeKind::kCall && n->name == "if") {
    const auto c = KnownValue(*n->args[0], known);
    if (c && c->type() == ValueType::kBool)
      return Prune(n->args[c->as_bool() ? 1 : 2], known);
  }
  std::vector<NodePtr> args;
  bool changed = false;
  for (const NodePtr& a : n->args) {
    args.push_back(Prune(a, known));
    changed = changed || args.back() != a;
  }
  return changed ? Node(n->kind, n->name, std::move(args)) : n;
}

void CollectNames(const ExprNode& n, std::set<std::string>& out) {
  if (n.kind == NodeKind::kName)
    out.insert(n.name);
  for (const NodePtr& a : n.args)
    CollectNames(*a, out);
}

// Walks down from `n` (whose value must be `target`) to the name, inverting each operator.
std::optional<Solution> Invert(const ExprNode& n, int64_t target, const std::string& name,
                               const std::map<std::string, Value>& known, bool exact) {
  if (n.kind == NodeKind::kName)
    return Solution{name, target, exact};
  if (n.kind == NodeKind::kUnary && n.name == "-" && target != INT64_MIN)
    return Invert(*n.args[0], -target, name, known, exact);
  if (n.kind != NodeKind::kBinary)
    return std::nullopt;
  const bool left = Reads(*n.args[0], name);
  const ExprNode& unknown = *n.args[left ? 0 : 1];
  const auto other = Known(*n.args[left ? 1 : 0], known);
  if (!other)
    return std::nullopt;
  int64_t next = 0;
  const std::string& op = n.name;
  if (op == "+") {
    if (__builtin_sub_overflow(target, *other, &next))
      return std::nullopt;
  } else if (op == "-") {
    // left: u - other = target; right: other - u = target.
    if (left ? __builtin_add_overflow(target, *other, &next)
             : __builtin_sub_overflow(*other, target, &next))
      return std::nullopt;
  } else if (op == "*") {
    if (*other == 0)
      return std::nullopt;
    exact = exact && target % *other == 0;
    next = target / *other;
  } else if (op == "/") {
    // left: u / other = target; right: other / u = target.
    if (left) {
      if (__builtin_mul_overflow(target, *other, &next))
        return std::nullopt;
    } else {
      if (target == 0)
        return std::nullopt;
      exact = exact && *other % target == 0;
      next = *other / target;
    }
  } else {
    return std::nullopt;
  }
  return Invert(unknown, next, name, known, exact);
}

}  // namespace

Expr IntConstant(int64_t value, const Location& where) {
  return Expr::Constant(Value::Int(value), where);
}

Expr SumOf(const std::vector<Expr>& terms, const Location& where) {
  NodePtr sum = terms.front().node();
  for (size_t i = 1; i < terms.size(); ++i)
    sum = Node(NodeKind::kBinary, "+", {sum, terms[i].node()});
  return Build(sum, where);
}

Expr ProductOf(const Expr& a, const Expr& b, const Location& where) {
  return Build(Node(NodeKind::kBinary, "*", {a.node(), b.node()}), where);
}

Expr QuotientOf(const Expr& a, const Expr& b, const Location& where) {
  return Build(Node(NodeKind::kBinary, "/", {a.node(), b.node()}), where);
}

std::optional<bool> SameValue(const Expr& a, const Expr& b) {
  const auto pa = Normal(*a.node());
  const auto pb = Normal(*b.node());
  if (!pa || !pb)
    return std::nullopt;
  const bool equal =
      pa->size() == pb->size() &&
      std::equal(pa->begin(), pa->end(), pb->begin(), [](const auto& x, const auto& y) {
        return x.first == y.first && x.second.num == y.second.num && x.second.den == y.second.den;
      });
  if (equal)
    return true;
  if (HasOpaque(*pa) || HasOpaque(*pb))
    return std::nullopt;
  return false;
}

std::optional<Solution> SolveFor(const Expr& expr, int64_t target,
                                 const std::map<std::string, Value>& known) {
  const NodePtr pruned = Prune(expr.node(), known);
  std::set<std::string> names;
  CollectNames(*pruned, names);
  std::string unknown;
  for (const std::string& name : names) {
    if (known.count(name))
      continue;
    if (!unknown.empty())
      return std::nullopt;
    unknown = name;
  }
  if (unknown.empty())
    return std::nullopt;
  return Invert(*pruned, target, unknown, known, true);
}

}  // namespace cw
