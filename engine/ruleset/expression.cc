#include "engine/ruleset/expression.h"

#include <cctype>
#include <vector>

namespace cw {

enum class NodeKind { kConst, kName, kUnary, kBinary, kCall };

struct ExprNode {
  NodeKind kind = NodeKind::kConst;
  Value value;       // kConst
  std::string name;  // kName, kCall (function), kUnary/kBinary (operator)
  std::vector<std::shared_ptr<const ExprNode>> args;
};

namespace {

using NodePtr = std::shared_ptr<const ExprNode>;

struct Token {
  enum Kind { kEnd, kInt, kString, kName, kOp } kind = kEnd;
  std::string text;
  size_t pos = 0;
};

class Parser {
 public:
  Parser(const std::string& text, const Location& where) : text_(text), where_(where) {}

  Result<NodePtr> ParseAll() {
    CW_RETURN_IF_ERROR(Lex());
    CW_ASSIGN_OR_RETURN(NodePtr root, ParseOr());
    if (Peek().kind != Token::kEnd)
      return Fail("unexpected \"" + Peek().text + "\"", Peek().pos);
    return root;
  }

 private:
  Error Fail(const std::string& message, size_t pos) const {
    Location at = where_;
    if (at.column > 0)
      at.column += static_cast<int>(pos);
    return Error(ErrorCode::kRuleInvalid,
                 "bad expression \"" + text_ + "\": " + message, at);
  }

  Status Lex() {
    size_t i = 0;
    while (i < text_.size()) {
      const char c = text_[i];
      if (std::isspace(static_cast<unsigned char>(c))) {
        ++i;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        size_t j = i;
        while (j < text_.size() && std::isdigit(static_cast<unsigned char>(text_[j])))
          ++j;
        tokens_.push_back({Token::kInt, text_.substr(i, j - i), i});
        i = j;
      } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t j = i;
        while (j < text_.size() &&
               (std::isalnum(static_cast<unsigned char>(text_[j])) || text_[j] == '_'))
          ++j;
        tokens_.push_back({Token::kName, text_.substr(i, j - i), i});
        i = j;
      } else if (c == '\'' || c == '"') {
        const size_t end = text_.find(c, i + 1);
        if (end == std::string::npos)
          return Fail("unterminated string", i);
        tokens_.push_back({Token::kString, text_.substr(i + 1, end - i - 1), i});
        i = end + 1;
      } else {
        static const char* const kOps[] = {"==", "!=", "<=", ">=", "<", ">", "+", "-",
                                           "*",  "/",  "%",  "(",  ")", ","};
        bool found = false;
        for (const char* op : kOps) {
          if (text_.compare(i, std::char_traits<char>::length(op), op) == 0) {
            tokens_.push_back({Token::kOp, op, i});
            i += std::char_traits<char>::length(op);
            found = true;
            break;
          }
        }
        if (!found)
          return Fail(std::string("unexpected character '") + c + "'", i);
      }
    }
    tokens_.push_back({Token::kEnd, "end of expression", text_.size()});
    return OkStatus();
  }

  const Token& Peek() const { return tokens_[next_]; }
  bool IsOp(const char* op) const { return Peek().kind == Token::kOp && Peek().text == op; }
  bool IsWord(const char* word) const {
    return Peek().kind == Token::kName && Peek().text == word;
  }

  static NodePtr Make(NodeKind kind, std::string name, std::vector<NodePtr> args) {
    auto n = std::make_shared<ExprNode>();
    n->kind = kind;
    n->name = std::move(name);
    n->args = std::move(args);
    return n;
  }

  Result<NodePtr> ParseOr() {
    CW_ASSIGN_OR_RETURN(NodePtr left, ParseAnd());
    while (IsWord("or")) {
      ++next_;
      CW_ASSIGN_OR_RETURN(NodePtr right, ParseAnd());
      left = Make(NodeKind::kBinary, "or", {left, right});
    }
    return left;
  }

  Result<NodePtr> ParseAnd() {
    CW_ASSIGN_OR_RETURN(NodePtr left, ParseNot());
    while (IsWord("and")) {
      ++next_;
      CW_ASSIGN_OR_RETURN(NodePtr right, ParseNot());
      left = Make(NodeKind::kBinary, "and", {left, right});
    }
    return left;
  }

  Result<NodePtr> ParseNot() {
    if (IsWord("not")) {
      ++next_;
      CW_ASSIGN_OR_RETURN(NodePtr operand, ParseNot());
      return Make(NodeKind::kUnary, "not", {operand});
    }
    return ParseCompare();
  }

  Result<NodePtr> ParseCompare() {
    CW_ASSIGN_OR_RETURN(NodePtr left, ParseSum());
    for (const char* op : {"==", "!=", "<=", ">=", "<", ">"}) {
      if (IsOp(op)) {
        ++next_;
        CW_ASSIGN_OR_RETURN(NodePtr right, ParseSum());
        return Make(NodeKind::kBinary, op, {left, right});
      }
    }
    return left;
  }

  Result<NodePtr> ParseSum() {
    CW_ASSIGN_OR_RETURN(NodePtr left, ParseProduct());
    while (IsOp("+") || IsOp("-")) {
      const std::string op = tokens_[next_++].text;
      CW_ASSIGN_OR_RETURN(NodePtr right, ParseProduct());
      left = Make(NodeKind::kBinary, op, {left, right});
    }
    return left;
  }

  Result<NodePtr> ParseProduct() {
    CW_ASSIGN_OR_RETURN(NodePtr left, ParseUnary());
    while (IsOp("*") || IsOp("/") || IsOp("%")) {
      const std::string op = tokens_[next_++].text;
      CW_ASSIGN_OR_RETURN(NodePtr right, ParseUnary());
      left = Make(NodeKind::kBinary, op, {left, right});
    }
    return left;
  }

  Result<NodePtr> ParseUnary() {
    if (IsOp("-")) {
      ++next_;
      CW_ASSIGN_OR_RETURN(NodePtr operand, ParseUnary());
      return Make(NodeKind::kUnary, "-", {operand});
    }
    return ParseAtom();
  }

  Result<NodePtr> ParseAtom() {
    const Token t = Peek();
    ++next_;
    if (t.kind == Token::kInt) {
      auto n = std::make_shared<ExprNode>();
      int64_t v = 0;
      for (char c : t.text) {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, c - '0', &v))
          return Fail("integer " + t.text + " is too large", t.pos);
      }
      n->value = Value::Int(v);
      return NodePtr(n);
    }
    if (t.kind == Token::kString) {
      auto n = std::make_shared<ExprNode>();
      n->value = Value::String(t.text);
      return NodePtr(n);
    }
    if (t.kind == Token::kOp && t.text == "(") {
      CW_ASSIGN_OR_RETURN(NodePtr inner, ParseOr());
      if (!IsOp(")"))
        return Fail("expected \")\" but found \"" + Peek().text + "\"", Peek().pos);
      ++next_;
      return inner;
    }
    if (t.kind != Token::kName || t.text == "and" || t.text == "or" || t.text == "not")
      return Fail("expected a value but found \"" + t.text + "\"", t.pos);
    if (t.text == "true" || t.text == "false") {
      auto n = std::make_shared<ExprNode>();
      n->value = Value::Bool(t.text == "true");
      return NodePtr(n);
    }
    if (!IsOp("("))
      return Make(NodeKind::kName, t.text, {});
    return ParseCall(t);
  }

  Result<NodePtr> ParseCall(const Token& name) {
    const size_t arity = name.text == "if" ? 3 : (name.text == "min" || name.text == "max") ? 2 : 0;
    if (arity == 0)
      return Fail("unknown function \"" + name.text + "\" (known: if, min, max)", name.pos);
    ++next_;  // "("
    std::vector<NodePtr> args;
    while (true) {
      CW_ASSIGN_OR_RETURN(NodePtr arg, ParseOr());
      args.push_back(arg);
      if (IsOp(",")) {
        ++next_;
        continue;
      }
      if (!IsOp(")"))
        return Fail("expected \",\" or \")\" but found \"" + Peek().text + "\"", Peek().pos);
      ++next_;
      break;
    }
    if (args.size() != arity) {
      return Fail(name.text + "() takes " + std::to_string(arity) + " arguments, not " +
                      std::to_string(args.size()),
                  name.pos);
    }
    return Make(NodeKind::kCall, name.text, std::move(args));
  }

  const std::string& text_;
  const Location& where_;
  std::vector<Token> tokens_;
  size_t next_ = 0;
};

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
    }
    return Fail("internal: bad node");
  }

 private:
  Error Fail(const std::string& message) const {
    return Error(ErrorCode::kRuleInvalid, "in \"" + expr_.text() + "\": " + message,
                 expr_.where());
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
    if (op == "==" || op == "!=") {
      if (l.type() != r.type())
        return Fail("cannot compare " + l.ToString() + " with " + r.ToString());
      return Value::Bool((l == r) == (op == "=="));
    }
    if (l.type() != ValueType::kInt || r.type() != ValueType::kInt) {
      return Fail("\"" + op + "\" needs integers but got " + l.ToString() + " and " +
                  r.ToString());
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
    if (n.name == "if") {
      CW_ASSIGN_OR_RETURN(Value c, Typed(*n.args[0], ValueType::kBool, "if()"));
      return Eval(*n.args[c.as_bool() ? 1 : 2]);
    }
    CW_ASSIGN_OR_RETURN(Value a, Typed(*n.args[0], ValueType::kInt, n.name + "()"));
    CW_ASSIGN_OR_RETURN(Value b, Typed(*n.args[1], ValueType::kInt, n.name + "()"));
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

}  // namespace

const char* ValueTypeName(ValueType type) {
  switch (type) {
    case ValueType::kInt:
      return "int";
    case ValueType::kBool:
      return "bool";
    case ValueType::kString:
      return "string";
  }
  return "?";
}

std::string Value::ToString() const {
  if (type() == ValueType::kString)
    return "'" + as_string() + "'";
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
  }
  return "";
}

Result<Expr> Expr::Parse(const std::string& text, const Location& where) {
  Parser parser(text, where);
  CW_ASSIGN_OR_RETURN(NodePtr root, parser.ParseAll());
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
