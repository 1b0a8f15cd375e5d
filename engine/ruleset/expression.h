// The small expression language of rule files: sizes (`heads / kv_heads * head_dim`), conditions
// (`layer < layers and not qkv_concat`) and parameter defaults.
//
// Grammar (lowest precedence first):
//   expr    := or
//   or      := and ("or" and)*
//   and     := not ("and" not)*
//   not     := "not" not | compare
//   compare := sum (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in") sum)?
//   sum     := product (("+" | "-") product)*
//   product := unary (("*" | "/" | "%") unary)*
//   unary   := "-" unary | postfix
//   postfix := atom ("[" expr "]")*
//   atom    := INT | "true" | "false" | 'string' | "string" | NAME | NAME "(" expr ("," expr)* ")"
//              | "[" (expr ("," expr)*)? "]" | "(" expr ")"
// Functions: if(cond, a, b), min(a, b), max(a, b), cdiv(a, b) (a / b rounded up: the blocks of b
// that cover a), len(list), has(NAME).
//
// Values are 64-bit integers, booleans, strings or lists of those; nothing converts implicitly.
// Arithmetic is checked: overflow, division by zero and a division that leaves a remainder are
// errors ("/" is exact integer division; "%" gives the remainder). `x in list` is membership,
// `list[i]` indexing (from 0; out of range is an error), `has(p)` is true when parameter p has a
// value. Lists compare with == only as a whole; rule lint flags such comparisons. Every evaluation
// error names the expression and its position in the rule file.
//
// Named conditions (a rule file's `conditions:`) are linked into the expressions that use them
// (WithConditions): the tree then holds the condition's own tree under its name, so evaluation,
// Names() and everything reading an expression see through it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "cw/error.h"

namespace cw {

enum class ValueType { kInt, kBool, kString, kList };
const char* ValueTypeName(ValueType type);

class Value {
 public:
  Value() : v_(int64_t{0}) {}
  static Value Int(int64_t v) { return Value(v); }
  static Value Bool(bool v) { return Value(v); }
  static Value String(std::string v) { return Value(std::move(v)); }
  static Value List(std::vector<Value> items) {
    return Value(std::make_shared<const std::vector<Value>>(std::move(items)));
  }

  ValueType type() const { return static_cast<ValueType>(v_.index()); }
  // REQUIRES: the matching type().
  int64_t as_int() const { return std::get<int64_t>(v_); }
  bool as_bool() const { return std::get<bool>(v_); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const std::vector<Value>& as_list() const { return *std::get<ListPtr>(v_); }
  // "12", "true", "'text'" (strings quoted), "[1, 2]" for messages.
  std::string ToString() const;
  // The text of a value as --set takes it and a tensor name shows it: "12", "true", "text"
  // (unquoted), "1,2" for a list.
  std::string ToText() const;

  bool operator==(const Value& other) const;

 private:
  using ListPtr = std::shared_ptr<const std::vector<Value>>;
  explicit Value(int64_t v) : v_(v) {}
  explicit Value(bool v) : v_(v) {}
  explicit Value(std::string v) : v_(std::move(v)) {}
  explicit Value(ListPtr v) : v_(std::move(v)) {}
  std::variant<int64_t, bool, std::string, ListPtr> v_;
};

// Supplies the value of a name during evaluation. `get` returning nullopt means "no such name"
// (an error naming the identifier); returning an Error passes that error up (e.g. a parameter
// that cannot be resolved). `has` answers has(name): true when the name has a value, false when
// it is declared without one, an Error for anything else; without it, has(name) is true when
// `get` succeeds.
class NameLookup {
 public:
  using Get = std::function<Result<std::optional<Value>>(const std::string& name)>;
  using Has = std::function<Result<bool>(const std::string& name)>;
  template <typename F>
  NameLookup(F get) : get_(std::move(get)) {}  // NOLINT(google-explicit-constructor)
  NameLookup(Get get, Has has) : get_(std::move(get)), has_(std::move(has)) {}

  Result<std::optional<Value>> operator()(const std::string& name) const { return get_(name); }
  Result<bool> HasValue(const std::string& name) const;

 private:
  Get get_;
  Has has_;
};

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

  // The expression with every name in `conditions` replaced by that condition (linked; the
  // conditions are linked already). The text and location stay this expression's.
  Expr WithConditions(const std::map<std::string, Expr>& conditions) const;
  // Every identifier the expression reads (function names excluded), through linked conditions.
  std::set<std::string> Names() const;
  // The names of the linked conditions it uses, directly or through other conditions.
  std::set<std::string> Conditions() const;
  // Levels of the tree, linked conditions included.
  uint64_t depth() const;
  // The name when the expression is a lone identifier (`hidden_size`), else nullopt.
  std::optional<std::string> AsName() const;
  // The constant value when the expression has no names, else nullopt.
  std::optional<Value> AsConstant() const;

  const std::string& text() const { return text_; }
  const Location& where() const { return where_; }

  // Internal to the ruleset module (expression_node.h): the tree, and an expression over a tree
  // built there (derived shapes).
  const std::shared_ptr<const ExprNode>& node() const { return root_; }
  static Expr FromNode(std::shared_ptr<const ExprNode> node, std::string text,
                       const Location& where);

 private:
  std::shared_ptr<const ExprNode> root_;
  std::string text_;
  Location where_;
};

}  // namespace cw
