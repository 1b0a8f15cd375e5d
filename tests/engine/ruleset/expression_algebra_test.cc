#include "engine/ruleset/expression_algebra.h"

#include <doctest/doctest.h>

namespace cw {
namespace {

const Location kAt = TextLocation("r.yaml", 2, 4);

Expr E(const std::string& text) {
  auto e = Expr::Parse(text, kAt);
  if (!e.ok())
    FAIL(e.error().ToString());
  return std::move(e).value();
}

std::map<std::string, Value> Ints(std::map<std::string, int64_t> values) {
  std::map<std::string, Value> out;
  for (const auto& [k, v] : values)
    out[k] = Value::Int(v);
  return out;
}

TEST_SUITE("ruleset.expression_algebra") {
  TEST_CASE("built expressions print with the parentheses their operators need") {
    const Expr sum = SumOf({E("heads * head_dim"), E("kv_heads * head_dim"), E("2")}, kAt);
    CHECK(sum.text() == "heads * head_dim + kv_heads * head_dim + 2");
    CHECK(ProductOf(E("a + b"), E("c"), kAt).text() == "(a + b) * c");
    CHECK(QuotientOf(E("a * b"), E("c * d"), kAt).text() == "a * b / (c * d)");
    CHECK(QuotientOf(E("a"), E("b - c"), kAt).text() == "a / (b - c)");
    CHECK(IntConstant(7, kAt).text() == "7");
    const auto v = sum.Evaluate([](const std::string& n) -> Result<std::optional<Value>> {
      return std::optional(Value::Int(n == "head_dim" ? 8 : n == "heads" ? 4 : 2));
    });
    CHECK(v->as_int() == 4 * 8 + 2 * 8 + 2);
  }

  TEST_CASE("equal sizes written differently are the same value") {
    CHECK(SameValue(E("heads / kv_heads * head_dim * kv_heads"), E("heads * head_dim")) == true);
    CHECK(SameValue(E("(a + b) * c"), E("c * b + a * c")) == true);
    CHECK(SameValue(E("2 * f"), E("f + f")) == true);
    CHECK(SameValue(E("h / 2 + h / 2"), E("h")) == true);
    CHECK(SameValue(E("x - x"), E("0")) == true);
    CHECK(SameValue(E("if(a, b, c) * 2"), E("2 * if(a, b, c)")) == true);
  }

  TEST_CASE("different polynomials differ and opaque parts leave it open") {
    CHECK(SameValue(E("heads * head_dim"), E("kv_heads * head_dim")) == false);
    CHECK(SameValue(E("a + 1"), E("a")) == false);
    CHECK(SameValue(E("a / b"), E("b / a")) == false);
    CHECK_FALSE(SameValue(E("min(a, b)"), E("a")).has_value());
    CHECK_FALSE(SameValue(E("a % 4"), E("a")).has_value());
    CHECK_FALSE(SameValue(E("a / (b + c)"), E("a / b")).has_value());
  }

  TEST_CASE("a lone unknown name is solved through + - * / and unary minus") {
    auto s = SolveFor(E("experts * hidden"), 1024, Ints({{"hidden", 128}}));
    REQUIRE(s);
    CHECK(s->name == "experts");
    CHECK(s->value == 8);
    CHECK(s->exact);
    CHECK(SolveFor(E("2 * f"), 96, {})->value == 48);
    CHECK(SolveFor(E("h / heads"), 64, Ints({{"heads", 4}}))->value == 256);
    CHECK(SolveFor(E("total / n"), 4, Ints({{"total", 32}}))->value == 8);
    CHECK(SolveFor(E("a - b"), 3, Ints({{"a", 10}}))->value == 7);
    CHECK(SolveFor(E("-(x + 1)"), -5, {})->value == 4);
    CHECK(SolveFor(E("v"), 32000, {})->value == 32000);
  }

  TEST_CASE("an if() whose condition is known is solved through the branch it takes") {
    auto s = SolveFor(E("if(p == 'down', hidden, ffn)"), 96,
                      {{"p", Value::String("up")}, {"hidden", Value::Int(32)}});
    REQUIRE(s);
    CHECK(s->name == "ffn");
    CHECK(s->value == 96);
    // The other branch's unknown does not count.
    s = SolveFor(E("if(p == 'down', hidden, ffn)"), 32, {{"p", Value::String("down")}});
    REQUIRE(s);
    CHECK(s->name == "hidden");
    CHECK_FALSE(SolveFor(E("if(p == 'down', hidden, ffn)"), 32, {}));
  }

  TEST_CASE("no solution without exactly one unknown name or through other operators") {
    CHECK_FALSE(SolveFor(E("a * b"), 6, {}));
    CHECK_FALSE(SolveFor(E("4"), 4, {}));
    CHECK_FALSE(SolveFor(E("min(a, 4)"), 4, {}));
    CHECK_FALSE(SolveFor(E("x * x"), 4, {}));
    CHECK_FALSE(SolveFor(E("0 * x"), 0, {}));
    const auto inexact = SolveFor(E("2 * f"), 7, {});
    REQUIRE(inexact);
    CHECK_FALSE(inexact->exact);
  }
}

}  // namespace
}  // namespace cw
