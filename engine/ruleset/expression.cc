#include "engine/ruleset/expression.h"

#include <algorithm>
#include <vector>

#include "engine/ruleset/expression_node.h"

namespace cw {

namespace {

class Evaluator {
 public:
  Evaluator(const Expr& expr, const NameLookup& lookup) : expr_(expr), lookup_(lookup) {}

  Result<Value> Eval(const ExprNode& n) {
    switch (n.kind) {
      case NodeKind::kConst:
        return n.value;
      case NodeKind::kName:
        return LookUp(n.name);
      case NodeKind::kUnary:
        return EvalUnary(n);
      case NodeKind::kBinary:
        return EvalBinary(n);
      case NodeKind::kCall:
        return EvalCall(n);
      case NodeKind::kList: {
        std::vector<Value> items;
        for (const auto& a : n.args) {
          CW_ASSIGN_OR_RETURN(Value v, Eval(*a));
          items.push_back(std::move(v));
        }
        return Value::List(std::move(items));
      }
      case NodeKind::kCondition:
        return Typed(*n.args[0], ValueType::kBool, "condition " + n.name);
    }
    return Fail("internal: bad node");
  }

 private:
  Error Fail(const std::string& message) const {
    return Error(ErrorCode::kRuleInvalid, "in \"" + expr_.text() + "\": " + message, expr_.where());
  }

  Result<Value> LookUp(const std::string& name) {
    CW_ASSIGN_OR_RETURN(std::optional<Value> v, lookup_(name));
    if (!v)
      return Fail("unknown name \"" + name + "\"");
    return *v;
  }

  Result<Value> Typed(const ExprNode& n, ValueType want, const std::string& role) {
    CW_ASSIGN_OR_RETURN(Value v, Eval(n));
    if (v.type() != want) {
      return Fail(role + " needs " + ValueTypeName(want) + " but got " + v.ToString() + " (" +
                  ValueTypeName(v.type()) + ")");
    }
    return v;
  }

  Result<Value> EvalUnary(const ExprNode& n) {
    if (n.name == "not") {
      CW_ASSIGN_OR_RETURN(Value v, Typed(*n.args[0], ValueType::kBool, "\"not\""));
      return Value::Bool(!v.as_bool());
    }
    CW_ASSIGN_OR_RETURN(Value v, Typed(*n.args[0], ValueType::kInt, "\"-\""));
    int64_t r = 0;
    if (__builtin_sub_overflow(int64_t{0}, v.as_int(), &r))
      return Fail("overflow negating " + v.ToString());
    return Value::Int(r);
  }

  Result<Value> EvalBinary(const ExprNode& n) {
    const std::string& op = n.name;
    if (op == "and" || op == "or") {
      CW_ASSIGN_OR_RETURN(Value l, Typed(*n.args[0], ValueType::kBool, "\"" + op + "\""));
      if (l.as_bool() == (op == "or"))
        return l;  // short circuit: the right side may need parameters that are absent
      return Typed(*n.args[1], ValueType::kBool, "\"" + op + "\"");
    }
    CW_ASSIGN_OR_RETURN(Value l, Eval(*n.args[0]));
    CW_ASSIGN_OR_RETURN(Value r, Eval(*n.args[1]));
    if (op == "in") {
      if (r.type() != ValueType::kList)
        return Fail("\"in\" needs a list on its right but got " + r.ToString());
      const auto& items = r.as_list();
      return Value::Bool(std::find(items.begin(), items.end(), l) != items.end());
    }
    if (op == "[]") {
      if (l.type() != ValueType::kList || r.type() != ValueType::kInt)
        return Fail("indexing needs a list and an integer but got " + l.ToString() + " and " +
                    r.ToString());
      const auto& items = l.as_list();
      if (r.as_int() < 0 || static_cast<uint64_t>(r.as_int()) >= items.size())
        return Fail("index " + r.ToString() + " is outside " + l.ToString());
      return items[static_cast<size_t>(r.as_int())];
    }
    if (op == "==" || op == "!=") {
      if (l.type() != r.type())
        return Fail("cannot compare " + l.ToString() + " with " + r.ToString());
      return Value::Bool((l == r) == (op == "=="));
    }
    if (l.type() != ValueType::kInt || r.type() != ValueType::kInt) {
      return Fail("\"" + op + "\" needs integers but got " + l.ToString() + " and " + r.ToString());
    }
    return Arithmetic(op, l.as_int(), r.as_int());
  }

  Result<Value> Arithmetic(const std::string& op, int64_t a, int64_t b) {
    int64_t r = 0;
    bool overflow = false;
    if (op == "<")
      return Value::Bool(a < b);
    if (op == "<=")
      return Value::Bool(a <= b);
    if (op == ">")
      return Value::Bool(a > b);
    if (op == ">=")
      return Value::Bool(a >= b);
    if (op == "+")
      overflow = __builtin_add_overflow(a, b, &r);
    else if (op == "-")
      overflow = __builtin_sub_overflow(a, b, &r);
    else if (op == "*")
      overflow = __builtin_mul_overflow(a, b, &r);
    else {
      if (b == 0)
        return Fail("division by zero in " + std::to_string(a) + " " + op + " 0");
      if (a == INT64_MIN && b == -1)
        return Fail("overflow");
      if (op == "%")
        return Value::Int(a % b);
      if (a % b != 0) {
        return Fail(std::to_string(a) + " / " + std::to_string(b) +
                    " is not a whole number (\"/\" must divide exactly)");
      }
      r = a / b;
    }
    if (overflow)
      return Fail("overflow in " + std::to_string(a) + " " + op + " " + std::to_string(b));
    return Value::Int(r);
  }

  Result<Value> EvalCall(const ExprNode& n) {
    if (n.name == "has") {
      CW_ASSIGN_OR_RETURN(bool has, lookup_.HasValue(n.args[0]->name));
      return Value::Bool(has);
    }
    if (n.name == "len") {
      CW_ASSIGN_OR_RETURN(Value l, Typed(*n.args[0], ValueType::kList, "len()"));
      return Value::Int(static_cast<int64_t>(l.as_list().size()));
    }
    if (n.name == "if") {
      CW_ASSIGN_OR_RETURN(Value c, Typed(*n.args[0], ValueType::kBool, "if()"));
      return Eval(*n.args[c.as_bool() ? 1 : 2]);
    }
    CW_ASSIGN_OR_RETURN(Value a, Typed(*n.args[0], ValueType::kInt, n.name + "()"));
    CW_ASSIGN_OR_RETURN(Value b, Typed(*n.args[1], ValueType::kInt, n.name + "()"));
    if (n.name == "cdiv") {
      if (b.as_int() <= 0 || a.as_int() < 0)
        return Fail("cdiv(" + a.ToString() + ", " + b.ToString() +
                    ") needs a count and a positive divisor");
      return Value::Int(a.as_int() / b.as_int() + (a.as_int() % b.as_int() != 0 ? 1 : 0));
    }
    const bool take_a = n.name == "min" ? a.as_int() <= b.as_int() : a.as_int() >= b.as_int();
    return take_a ? a : b;
  }

  const Expr& expr_;
  const NameLookup& lookup_;
};

void CollectNames(const ExprNode& n, std::set<std::string>& out) {
  if (n.kind == NodeKind::kName)
    out.insert(n.name);
  for (const auto& a : n.args)
    CollectNames(*a, out);
}

void CollectConditions(const ExprNode& n, std::set<std::string>& out) {
  if (n.kind == NodeKind::kCondition)
    out.insert(n.name);
  for (const auto& a : n.args)
    CollectConditions(*a, out);
}

// `n` with its condition names linked; `n` itself when it holds none (trees are shared).
std::shared_ptr<const ExprNode> Link(const std::shared_ptr<const ExprNode>& n,
                                     const std::map<std::string, Expr>& conditions) {
  if (n->kind == NodeKind::kName) {
    const auto it = conditions.find(n->name);
    if (it == conditions.end())
      return n;
    auto linked = std::make_shared<ExprNode>();
    linked->kind = NodeKind::kCondition;
    linked->name = n->name;
    linked->args = {it->second.node()};
    linked->depth = it->second.node()->depth + 1;
    return linked;
  }
  if (n->kind == NodeKind::kCall && n->name == "has")
    return n;
  std::vector<std::shared_ptr<const ExprNode>> args;
  bool changed = false;
  for (const auto& a : n->args) {
    args.push_back(Link(a, conditions));
    changed = changed || args.back() != a;
  }
  if (!changed)
    return n;
  auto copy = std::make_shared<ExprNode>(*n);
  copy->args = std::move(args);
  copy->depth = 1;
  for (const auto& a : copy->args)
    copy->depth = std::max(copy->depth, a->depth + 1);
  return copy;
}

}  // namespace

const char* ValueTypeName(ValueType type) {
  switch (type) {
    case ValueType::kInt:
      return "int";
    case ValueType::kBool:
      return "bool";
    case ValueType::kString:
      return "string";
    case ValueType::kList:
      return "list";
  }
  return "?";
}

std::string Value::ToString() const {
  if (type() == ValueType::kString)
    return "'" + as_string() + "'";
  if (type() == ValueType::kList) {
    std::string s = "[";
    for (const Value& v : as_list())
      s += (s.size() > 1 ? ", " : "") + v.ToString();
    return s + "]";
  }
  return ToText();
}

std::string Value::ToText() const {
  switch (type()) {
    case ValueType::kInt:
      return std::to_string(as_int());
    case ValueType::kBool:
      return as_bool() ? "true" : "false";
    case ValueType::kString:
      return as_string();
    case ValueType::kList: {
      std::string s;
      for (const Value& v : as_list())
        s += (s.empty() ? "" : ",") + v.ToText();
      return s;
    }
  }
  return "";
}

bool Value::operator==(const Value& other) const {
  if (type() != other.type())
    return false;
  if (type() == ValueType::kList)
    return as_list() == other.as_list();
  return v_ == other.v_;
}

Result<bool> NameLookup::HasValue(const std::string& name) const {
  if (has_)
    return has_(name);
  auto v = get_(name);
  return v.ok() && v->has_value();
}

Result<Expr> Expr::Parse(const std::string& text, const Location& where) {
  CW_ASSIGN_OR_RETURN(std::shared_ptr<const ExprNode> root, ParseExpressionTree(text, where));
  Expr e;
  e.root_ = std::move(root);
  e.text_ = text;
  e.where_ = where;
  return e;
}

Expr Expr::Constant(Value value, const Location& where) {
  auto n = std::make_shared<ExprNode>();
  n->value = value;
  Expr e;
  e.root_ = n;
  e.text_ = value.ToString();
  e.where_ = where;
  return e;
}

Result<Value> Expr::Evaluate(const NameLookup& lookup) const {
  if (!root_)
    return Error(ErrorCode::kInternal, "evaluating an empty expression", where_);
  Evaluator ev(*this, lookup);
  return ev.Eval(*root_);
}

Result<int64_t> Expr::EvaluateInt(const NameLookup& lookup, const std::string& what) const {
  CW_ASSIGN_OR_RETURN(Value v, Evaluate(lookup));
  if (v.type() != ValueType::kInt) {
    return Error(ErrorCode::kRuleInvalid,
                 what + " \"" + text_ + "\" is " + v.ToString() + ", not an integer", where_);
  }
  return v.as_int();
}

Result<bool> Expr::EvaluateBool(const NameLookup& lookup, const std::string& what) const {
  CW_ASSIGN_OR_RETURN(Value v, Evaluate(lookup));
  if (v.type() != ValueType::kBool) {
    return Error(ErrorCode::kRuleInvalid,
                 what + " \"" + text_ + "\" is " + v.ToString() + ", not true or false", where_);
  }
  return v.as_bool();
}

Expr Expr::FromNode(std::shared_ptr<const ExprNode> node, std::string text, const Location& where) {
  Expr e;
  e.root_ = std::move(node);
  e.text_ = std::move(text);
  e.where_ = where;
  return e;
}

Expr Expr::WithConditions(const std::map<std::string, Expr>& conditions) const {
  Expr e = *this;
  if (root_)
    e.root_ = Link(root_, conditions);
  return e;
}

std::set<std::string> Expr::Conditions() const {
  std::set<std::string> out;
  if (root_)
    CollectConditions(*root_, out);
  return out;
}

uint64_t Expr::depth() const { return root_ ? root_->depth : 0; }

std::optional<std::string> Expr::AsName() const {
  if (root_ && root_->kind == NodeKind::kName)
    return root_->name;
  return std::nullopt;
}

std::set<std::string> Expr::Names() const {
  std::set<std::string> out;
  if (root_)
    CollectNames(*root_, out);
  return out;
}

std::optional<Value> Expr::AsConstant() const {
  if (root_ && root_->kind == NodeKind::kConst)
    return root_->value;
  return std::nullopt;
}

}  // namespace cw
