// The expression parser: text -> ExprNode tree (grammar in expression.h).
#include <algorithm>
#include <cctype>

#include "engine/base/limits.h"
#include "engine/ruleset/expression_node.h"

namespace cw {
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
  Error Fail(const std::string& message, size_t pos,
             ErrorCode code = ErrorCode::kRuleInvalid) const {
    Location at = where_;
    if (at.column > 0)
      at.column += static_cast<int>(pos);
    return Error(code, "bad expression \"" + text_ + "\": " + message, at);
  }

  Error TooDeep(size_t pos) const {
    return Fail("nested deeper than " + std::to_string(limits::kMaxExpressionDepth) + " levels",
                pos, ErrorCode::kLimitExceeded);
  }

  // Counts the parser's own nesting (parentheses, calls, `not`, `-`) while it recurses; the
  // trees it builds are measured by Make.
  class Nested {
   public:
    explicit Nested(uint64_t& depth) : count_(++depth) {}
    Nested(const Nested&) = delete;
    Nested& operator=(const Nested&) = delete;
    ~Nested() { --count_; }
    bool too_deep() const { return count_ > limits::kMaxExpressionDepth; }

   private:
    uint64_t& count_;
  };

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
                                           "*",  "/",  "%",  "(",  ")", ",", "[", "]"};
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
  bool IsWord(const char* word) const { return Peek().kind == Token::kName && Peek().text == word; }

  // `pos`: the operator's or name's position, for the error when the tree gets too deep.
  Result<NodePtr> Make(NodeKind kind, std::string name, std::vector<NodePtr> args,
                       size_t pos) const {
    auto n = std::make_shared<ExprNode>();
    n->kind = kind;
    n->name = std::move(name);
    n->args = std::move(args);
    for (const NodePtr& a : n->args)
      n->depth = std::max(n->depth, a->depth + 1);
    if (n->depth > limits::kMaxExpressionDepth)
      return TooDeep(pos);
    return NodePtr(n);
  }

  Result<NodePtr> ParseOr() {
    const Nested nested(depth_);
    if (nested.too_deep())
      return TooDeep(Peek().pos);
    CW_ASSIGN_OR_RETURN(NodePtr left, ParseAnd());
    while (IsWord("or")) {
      const size_t pos = tokens_[next_++].pos;
      CW_ASSIGN_OR_RETURN(NodePtr right, ParseAnd());
      CW_ASSIGN_OR_RETURN(left, Make(NodeKind::kBinary, "or", {left, right}, pos));
    }
    return left;
  }

  Result<NodePtr> ParseAnd() {
    CW_ASSIGN_OR_RETURN(NodePtr left, ParseNot());
    while (IsWord("and")) {
      const size_t pos = tokens_[next_++].pos;
      CW_ASSIGN_OR_RETURN(NodePtr right, ParseNot());
      CW_ASSIGN_OR_RETURN(left, Make(NodeKind::kBinary, "and", {left, right}, pos));
    }
    return left;
  }

  Result<NodePtr> ParseNot() {
    if (IsWord("not")) {
      const Nested nested(depth_);
      const size_t pos = tokens_[next_++].pos;
      if (nested.too_deep())
        return TooDeep(pos);
      CW_ASSIGN_OR_RETURN(NodePtr operand, ParseNot());
      return Make(NodeKind::kUnary, "not", {operand}, pos);
    }
    return ParseCompare();
  }

  Result<NodePtr> ParseCompare() {
    CW_ASSIGN_OR_RETURN(NodePtr left, ParseSum());
    if (IsWord("in")) {
      const size_t pos = tokens_[next_++].pos;
      CW_ASSIGN_OR_RETURN(NodePtr right, ParseSum());
      return Make(NodeKind::kBinary, "in", {left, right}, pos);
    }
    if (IsWord("not") && next_ + 1 < tokens_.size() && tokens_[next_ + 1].kind == Token::kName &&
        tokens_[next_ + 1].text == "in") {
      const size_t pos = tokens_[next_].pos;
      next_ += 2;
      CW_ASSIGN_OR_RETURN(NodePtr right, ParseSum());
      CW_ASSIGN_OR_RETURN(NodePtr in, Make(NodeKind::kBinary, "in", {left, right}, pos));
      return Make(NodeKind::kUnary, "not", {in}, pos);
    }
    for (const char* op : {"==", "!=", "<=", ">=", "<", ">"}) {
      if (IsOp(op)) {
        const size_t pos = tokens_[next_++].pos;
        CW_ASSIGN_OR_RETURN(NodePtr right, ParseSum());
        return Make(NodeKind::kBinary, op, {left, right}, pos);
      }
    }
    return left;
  }

  Result<NodePtr> ParseSum() {
    CW_ASSIGN_OR_RETURN(NodePtr left, ParseProduct());
    while (IsOp("+") || IsOp("-")) {
      const Token op = tokens_[next_++];
      CW_ASSIGN_OR_RETURN(NodePtr right, ParseProduct());
      CW_ASSIGN_OR_RETURN(left, Make(NodeKind::kBinary, op.text, {left, right}, op.pos));
    }
    return left;
  }

  Result<NodePtr> ParseProduct() {
    CW_ASSIGN_OR_RETURN(NodePtr left, ParseUnary());
    while (IsOp("*") || IsOp("/") || IsOp("%")) {
      const Token op = tokens_[next_++];
      CW_ASSIGN_OR_RETURN(NodePtr right, ParseUnary());
      CW_ASSIGN_OR_RETURN(left, Make(NodeKind::kBinary, op.text, {left, right}, op.pos));
    }
    return left;
  }

  Result<NodePtr> ParseUnary() {
    if (IsOp("-")) {
      const Nested nested(depth_);
      const size_t pos = tokens_[next_++].pos;
      if (nested.too_deep())
        return TooDeep(pos);
      CW_ASSIGN_OR_RETURN(NodePtr operand, ParseUnary());
      return Make(NodeKind::kUnary, "-", {operand}, pos);
    }
    return ParsePostfix();
  }

  Result<NodePtr> ParsePostfix() {
    CW_ASSIGN_OR_RETURN(NodePtr left, ParseAtom());
    while (IsOp("[")) {
      const Nested nested(depth_);
      const size_t pos = tokens_[next_++].pos;
      if (nested.too_deep())
        return TooDeep(pos);
      CW_ASSIGN_OR_RETURN(NodePtr index, ParseOr());
      if (!IsOp("]"))
        return Fail("expected \"]\" but found \"" + Peek().text + "\"", Peek().pos);
      ++next_;
      CW_ASSIGN_OR_RETURN(left, Make(NodeKind::kBinary, "[]", {left, index}, pos));
    }
    return left;
  }

  // The items of a list literal, after its "[".
  Result<NodePtr> ParseList(size_t pos) {
    const Nested nested(depth_);
    if (nested.too_deep())
      return TooDeep(pos);
    std::vector<NodePtr> items;
    if (IsOp("]")) {
      ++next_;
      return Make(NodeKind::kList, "", {}, pos);
    }
    while (true) {
      CW_ASSIGN_OR_RETURN(NodePtr item, ParseOr());
      items.push_back(item);
      if (IsOp(",")) {
        ++next_;
        continue;
      }
      if (!IsOp("]"))
        return Fail("expected \",\" or \"]\" but found \"" + Peek().text + "\"", Peek().pos);
      ++next_;
      return Make(NodeKind::kList, "", std::move(items), pos);
    }
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
    if (t.kind == Token::kOp && t.text == "[")
      return ParseList(t.pos);
    if (t.kind != Token::kName || t.text == "and" || t.text == "or" || t.text == "not" ||
        t.text == "in")
      return Fail("expected a value but found \"" + t.text + "\"", t.pos);
    if (t.text == "true" || t.text == "false") {
      auto n = std::make_shared<ExprNode>();
      n->value = Value::Bool(t.text == "true");
      return NodePtr(n);
    }
    if (!IsOp("("))
      return Make(NodeKind::kName, t.text, {}, t.pos);
    return ParseCall(t);
  }

  Result<NodePtr> ParseCall(const Token& name) {
    const std::string& f = name.text;
    const size_t arity = f == "if"                                 ? 3
                         : f == "min" || f == "max" || f == "cdiv" ? 2
                         : f == "len" || f == "has"                ? 1
                                                                   : 0;
    if (arity == 0)
      return Fail("unknown function \"" + f + "\" (known: if, min, max, cdiv, len, has)", name.pos);
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
      return Fail(name.text + "() takes " + std::to_string(arity) + " argument" +
                      (arity == 1 ? "" : "s") + ", not " + std::to_string(args.size()),
                  name.pos);
    }
    if (f == "has" && args[0]->kind != NodeKind::kName)
      return Fail("has() takes a parameter name", name.pos);
    return Make(NodeKind::kCall, name.text, std::move(args), name.pos);
  }

  const std::string& text_;
  const Location& where_;
  std::vector<Token> tokens_;
  size_t next_ = 0;
  uint64_t depth_ = 0;
};

}  // namespace

Result<std::shared_ptr<const ExprNode>> ParseExpressionTree(const std::string& text,
                                                            const Location& where) {
  Parser parser(text, where);
  return parser.ParseAll();
}

}  // namespace cw
