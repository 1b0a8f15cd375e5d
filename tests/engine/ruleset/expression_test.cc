#include "engine/ruleset/expression.h"

#include <map>

#include <doctest/doctest.h>

namespace cw {
namespace {

const Location kAt = TextLocation("r.yaml", 3, 10);

std::string Repeat(const std::string& part, size_t times) {
  std::string s;
  for (size_t i = 0; i < times; ++i)
    s += part;
  return s;
}

Result<Value> Eval(const std::string& text, std::map<std::string, Value> names = {}) {
  auto e = Expr::Parse(text, kAt);
  if (!e.ok())
    return e.error();
  return e->Evaluate([&](const std::string& n) -> Result<std::optional<Value>> {
    if (auto it = names.find(n); it != names.end())
      return std::optional(it->second);
    return std::optional<Value>();
  });
}

TEST_SUITE("ruleset.expression") {
  TEST_CASE("arithmetic follows the usual precedence with exact integer division") {
    CHECK(Eval("2 + 3 * 4")->as_int() == 14);
    CHECK(Eval("(2 + 3) * 4")->as_int() == 20);
    CHECK(Eval("14 / 2 * 6")->as_int() == 42);
    CHECK(Eval("-7 % 3 + 10")->as_int() == 9);
    CHECK(
        Eval("heads / kv_heads * head_dim",
             {{"heads", Value::Int(14)}, {"kv_heads", Value::Int(2)}, {"head_dim", Value::Int(64)}})
            ->as_int() == 448);
  }

  TEST_CASE("a division with a remainder is an error naming the numbers") {
    auto v = Eval("hidden / heads", {{"hidden", Value::Int(40)}, {"heads", Value::Int(14)}});
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().code() == ErrorCode::kRuleInvalid);
    CHECK(v.error().message().find("40 / 14 is not a whole number") != std::string::npos);
    CHECK(v.error().where().line == 3);
  }

  TEST_CASE("division by zero and overflow are errors and not crashes") {
    CHECK_FALSE(Eval("1 / 0").ok());
    CHECK_FALSE(Eval("1 % 0").ok());
    CHECK_FALSE(Eval("9223372036854775807 + 1").ok());
    CHECK_FALSE(Eval("99999999999999999999").ok());
  }

  TEST_CASE("conditions combine comparisons with and/or/not") {
    const std::map<std::string, Value> n{{"layer", Value::Int(3)},
                                         {"layers", Value::Int(4)},
                                         {"fused", Value::Bool(false)},
                                         {"layout", Value::String("grouped")}};
    CHECK(Eval("layer < layers and not fused", n)->as_bool());
    CHECK_FALSE(Eval("layer >= layers or fused", n)->as_bool());
    CHECK(Eval("layout == 'grouped' and layout != \"plain\"", n)->as_bool());
    CHECK(Eval("not not true")->as_bool());
  }

  TEST_CASE("and/or skip the right side when the left decides it") {
    CHECK_FALSE(Eval("false and missing_param")->as_bool());
    CHECK(Eval("true or missing_param")->as_bool());
    CHECK_FALSE(Eval("true and missing_param").ok());
  }

  TEST_CASE("if() and min() and max() pick values") {
    CHECK(Eval("if(fused, 'encoder.', '')", {{"fused", Value::Bool(true)}})->as_string() ==
          "encoder.");
    CHECK(Eval("min(3, 5) + max(3, 5)")->as_int() == 8);
  }

  TEST_CASE("type mismatches are errors that show the values") {
    auto v = Eval("1 + true");
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().message().find("needs integers but got 1 and true") != std::string::npos);
    CHECK_FALSE(Eval("not 1").ok());
    CHECK_FALSE(Eval("'a' == 1").ok());
  }

  TEST_CASE("an unknown name is an error naming it") {
    auto v = Eval("heads * 2");
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().message().find("unknown name \"heads\"") != std::string::npos);
  }

  TEST_CASE("syntax errors point at the column of the offending token") {
    auto e = Expr::Parse("heads * * 2", kAt);
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().where().column == 10 + 8);
    CHECK_FALSE(Expr::Parse("(1 + 2", kAt).ok());
    CHECK_FALSE(Expr::Parse("1 $ 2", kAt).ok());
    CHECK_FALSE(Expr::Parse("'open", kAt).ok());
    CHECK_FALSE(Expr::Parse("foo(1)", kAt).ok());
    CHECK_FALSE(Expr::Parse("min(1)", kAt).ok());
    CHECK_FALSE(Expr::Parse("", kAt).ok());
  }

  TEST_CASE("an expression nested past the depth cap is a limit error, not a stack overflow") {
    // tests/fuzz/regressions/rules/stack_overflow_*.yaml: each level recursed in the parser,
    // the evaluator and the tree's destructor.
    const std::string deep = std::string(5000, '(') + "1" + std::string(5000, ')');
    for (const std::string& text :
         {deep, std::string(5000, '-') + "1", Repeat("not ", 5000) + "true",
          Repeat("1 + ", 5000) + "1", Repeat("min(1, ", 5000) + "1" + std::string(5000, ')')}) {
      CAPTURE(text.substr(0, 20));
      auto e = Expr::Parse(text, kAt);
      REQUIRE_FALSE(e.ok());
      CHECK(e.error().code() == ErrorCode::kLimitExceeded);
      CHECK(e.error().where().line == 3);
    }
    const std::string at_cap = std::string(255, '(') + "7" + std::string(255, ')');
    CHECK(Eval(at_cap)->as_int() == 7);
    CHECK(Eval(Repeat("1 + ", 255) + "1")->as_int() == 256);
  }

  TEST_CASE("cdiv counts the blocks that cover a size") {
    CHECK(Eval("cdiv(576, 128)")->as_int() == 5);
    CHECK(Eval("cdiv(512, 128)")->as_int() == 4);
    CHECK(Eval("cdiv(0, 128)")->as_int() == 0);
    CHECK_FALSE(Eval("cdiv(5, 0)").ok());
  }

  TEST_CASE("lists: literals, membership, indexing and len") {
    const Value layers = Value::List({Value::Int(0), Value::Int(2)});
    const std::map<std::string, Value> n{{"layer", Value::Int(2)}, {"dense", layers}};
    CHECK(Eval("layer in dense", n)->as_bool());
    CHECK_FALSE(Eval("layer not in dense", n)->as_bool());
    CHECK(Eval("3 not in dense and 1 + 1 in [1, 2]", n)->as_bool());
    CHECK(Eval("dense[1] * 10 + len(dense)", n)->as_int() == 22);
    CHECK(Eval("len([])")->as_int() == 0);
    CHECK(Eval("['a', 'b'][0] == 'a'")->as_bool());
    CHECK(Eval("dense == [0, 2]", n)->as_bool());
    CHECK(Eval("dense", n)->ToString() == "[0, 2]");
    CHECK(Eval("dense", n)->ToText() == "0,2");
  }

  TEST_CASE("list misuse is an error showing the values") {
    const std::map<std::string, Value> n{{"dense", Value::List({Value::Int(0)})}};
    auto out = Eval("dense[3]", n);
    REQUIRE_FALSE(out.ok());
    CHECK(out.error().message().find("index 3 is outside [0]") != std::string::npos);
    CHECK(Eval("1 in 2").error().message().find("\"in\" needs a list") != std::string::npos);
    CHECK(Eval("len(3)").error().message().find("len() needs list") != std::string::npos);
    CHECK(Eval("dense + 1", n).error().message().find("needs integers") != std::string::npos);
    CHECK(Expr::Parse("[1, 2", kAt).error().message().find("expected \",\" or \"]\"") !=
          std::string::npos);
    CHECK(Expr::Parse("has(1)", kAt).error().message().find("has() takes a parameter name") !=
          std::string::npos);
  }

  TEST_CASE("has() asks the lookup whether a name has a value") {
    auto e = Expr::Parse("has(cfg) and cfg > 1 or not has(cfg)", kAt);
    REQUIRE(e.ok());
    bool given = false;
    const NameLookup lookup(
        [&](const std::string&) -> Result<std::optional<Value>> {
          if (!given)
            return Error(ErrorCode::kPlanInvalid, "cfg has no value");
          return std::optional(Value::Int(2));
        },
        [&](const std::string&) -> Result<bool> { return given; });
    CHECK(e->Evaluate(lookup)->as_bool());  // not has(cfg); cfg itself is never read
    given = true;
    CHECK(e->Evaluate(lookup)->as_bool());
  }

  TEST_CASE("a linked condition is evaluated in place and seen through by Names") {
    auto dense = Expr::Parse("layer in dense_layers", kAt);
    auto when = Expr::Parse("not is_dense and layer < 4", kAt);
    REQUIRE(dense.ok());
    REQUIRE(when.ok());
    const Expr linked = when->WithConditions({{"is_dense", *dense}});
    CHECK(linked.Names() == std::set<std::string>{"dense_layers", "layer"});
    CHECK(linked.Conditions() == std::set<std::string>{"is_dense"});
    CHECK(linked.text() == when->text());
    const std::map<std::string, Value> n{{"layer", Value::Int(1)},
                                         {"dense_layers", Value::List({Value::Int(0)})}};
    CHECK(linked
              .Evaluate([&](const std::string& name) -> Result<std::optional<Value>> {
                if (auto it = n.find(name); it != n.end())
                  return std::optional(it->second);
                return std::optional<Value>();
              })
              ->as_bool());
    CHECK(when->Names().count("is_dense") == 1);  // the original is unchanged
  }

  TEST_CASE("names lists every identifier read and constants are recognised") {
    auto e = Expr::Parse("if(a, b + 1, min(c, 2))", kAt);
    REQUIRE(e.ok());
    CHECK(e->Names() == std::set<std::string>{"a", "b", "c"});
    CHECK_FALSE(e->AsConstant());
    CHECK(Expr::Parse("12", kAt)->AsConstant() == Value::Int(12));
  }
}

}  // namespace
}  // namespace cw
