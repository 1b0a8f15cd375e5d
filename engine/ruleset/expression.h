// The small expression language of rule files: sizes (`heads / kv_heads * head_dim`), conditions
// (`layer < layers and not qkv_concat`) and parameter defaults.
//
// Grammar (lowest precedence first):
//   expr    := or
//   or      := and ("or" and)*
//   and     := not ("and" not)*
//   not     := "not" not | compare
//   compare := sum (("==" | "!=" | "<" | "<=" | ">" | ">=") sum)?
//   sum     := product (("+" | "-") product)*
//   product := unary (("*" | "/" | "%") unary)*
//   unary   := "-" unary | atom
//   atom    := INT | "true" | "false" | 'string' | "string" | NAME | NAME "(" expr ("," expr)* ")"
//              | "(" expr ")"
// Functions: if(cond, a, b), min(a, b), max(a, b).
//
// Values are 64-bit integers, booleans or strings; nothing converts implicitly. Arithmetic is
// checked: overflow, division by zero and a division that leaves a remainder are errors ("/" is
// exact integer division; "%" gives the remainder). Every evaluation error names the expression
// and its position in the rule file.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>

#include "cw/error.h"

namespace cw {

enum class ValueType { kInt, kBool, kString };
const char* ValueTypeName(ValueType type);

class Value {
 public:
  Value() : v_(int64_t{0}) {}
  static Value Int(int64_t v) { return Value(v); }
  static Value Bool(bool v) { return Value(v); }
  static Value String(std::string v) { return Value(std::move(v)); }

  ValueType type() const { return static_cast<ValueType>(v_.index()); }
  // REQUIRES: the matching type().
  int64_t as_int() const { return std::get<int64_t>(v_); }
  bool as_bool() const { return std::get<bool>(v_); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  // "12", "true", "'text'" (strings quoted) for messages.
  std::string ToString() const;
  // The text a value contributes to a tensor name: "12", "true", "text" (unquoted).
  std::string ToText() const;

  bool operator==(const Value&) const = default;

 private:
  explicit Value(int64_t v) : v_(v) {}
  explicit Value(bool v) : v_(v) {}
  explicit Value(std::string v) : v_(std::move(v)) {}
  std::variant<int64_t, bool, std::string> v_;
};

// Supplies the value of a name during evaluation. Returning nullopt means "no such name" (an
// error naming the identifier); returning an Error passes that error up (e.g. a parameter that
// cannot be resolved).
using NameLookup = std::function<Result<std::optional<Value>>(const std::string& name)>;

struct ExprNode;

// A parsed expression. Cheap to copy (the tree is shared and immutable).
class Expr {
 public:
  // Parses `text`; errors are kRuleInvalid at `where` moved to the offending column (`where` is
  // the position of text[0] in the rule file).
  static Result<Expr> Parse(const std::string& text, const Location& where);
  // An expression that is just a constant (used for defaults given as YAML scalars).
  static Expr Constant(Value value, const Location& where);

  Result<Value> Evaluate(const NameLookup& lookup) const;
  // Evaluates and requires the given type; the error names `what` ("split size").
  Result<int64_t> EvaluateInt(const NameLookup& lookup, const std::string& what) const;
  Result<bool> EvaluateBool(const NameLookup& lookup, const std::string& what) const;

  // Every identifier the expression reads (function names excluded).
  std::set<std::string> Names() const;
  // The constant value when the expression has no names, else nullopt.
  std::optional<Value> AsConstant() const;

  const std::string& text() const { return text_; }
  const Location& where() const { return where_; }

 private:
  std::shared_ptr<const ExprNode> root_;
  std::string text_;
  Location where_;
};

}  // namespace cw
