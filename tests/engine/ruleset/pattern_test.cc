#include "engine/ruleset/pattern.h"

#include <algorithm>
#include <array>

#include <doctest/doctest.h>

namespace cw {
namespace {

const Location kAt = TextLocation("r.yaml", 5, 9);

NamePattern P(const std::string& text) {
  auto p = NamePattern::Parse(text, kAt);
  if (!p.ok())
    FAIL(p.error().ToString());
  return std::move(p).value();
}

PatternMatcher M(const std::string& text, std::map<std::string, PlaceholderType> types,
                 std::map<std::string, std::string> params = {}) {
  auto m = PatternMatcher::Compile(P(text), types, params);
  if (!m.ok())
    FAIL(m.error().ToString());
  return std::move(m).value();
}

const std::map<std::string, PlaceholderType> kTypes{{"layer", {true, {}}},
                                                    {"expert", {true, {}}},
                                                    {"w", {false, {}}},
                                                    {"wb", {false, {"weight", "bias"}}}};

TEST_SUITE("ruleset.pattern") {
  TEST_CASE("integer placeholders match decimal numbers without leading zeros") {
    const PatternMatcher m = M("model.layers.{layer}.mlp.weight", kTypes);
    Bindings b;
    CHECK(m.Match("model.layers.0.mlp.weight", &b));
    CHECK(b.at("layer") == Value::Int(0));
    CHECK(m.Match("model.layers.117.mlp.weight", &b));
    CHECK(b.at("layer") == Value::Int(117));
    CHECK_FALSE(m.Match("model.layers.01.mlp.weight", &b));
    CHECK_FALSE(m.Match("model.layers.x.mlp.weight", &b));
    CHECK_FALSE(m.Match("model.layers.1.mlp.weight.extra", &b));
    CHECK_FALSE(m.Match("xmodel.layers.1.mlp.weight", &b));
    CHECK_FALSE(m.Match("model.layers.99999999999999999999.mlp.weight", &b));
  }

  TEST_CASE("literal dots and regex characters are matched literally") {
    const PatternMatcher m = M("a.b+c(d)", kTypes);
    Bindings b;
    CHECK(m.Match("a.b+c(d)", &b));
    CHECK_FALSE(m.Match("axbbc(d)", &b));
  }

  TEST_CASE("identifier placeholders take any identifier or only their listed values") {
    Bindings b;
    CHECK(M("x.{w}.weight", kTypes).Match("x.gate_proj.weight", &b));
    CHECK(b.at("w") == Value::String("gate_proj"));
    CHECK_FALSE(M("x.{w}.weight", kTypes).Match("x.a.b.weight", &b));
    const PatternMatcher listed = M("x.{wb}", kTypes);
    CHECK(listed.Match("x.bias", &b));
    CHECK_FALSE(listed.Match("x.gamma", &b));
  }

  TEST_CASE("parameters are substituted as literal text before matching") {
    const PatternMatcher m =
        M("${prefix}h.{layer}.ln_1.weight", kTypes, {{"prefix", "transformer."}});
    Bindings b;
    CHECK(m.Match("transformer.h.3.ln_1.weight", &b));
    CHECK_FALSE(m.Match("h.3.ln_1.weight", &b));
    CHECK(M("${prefix}wte", kTypes, {{"prefix", ""}}).Match("wte", &b));
  }

  TEST_CASE("instantiating a matched name gives the name back") {
    const NamePattern p = P("${prefix}layers.{layer}.experts.{expert}.{wb}");
    const PatternMatcher m = M(p.text(), kTypes, {{"prefix", "model."}});
    Bindings b;
    const std::string name = "model.layers.12.experts.10.bias";
    REQUIRE(m.Match(name, &b));
    CHECK(p.Instantiate(b, {{"prefix", "model."}}) == name);
    CHECK(p.placeholders() == std::vector<std::string>{"layer", "expert", "wb"});
    CHECK(p.params() == std::vector<std::string>{"prefix"});
  }

  TEST_CASE("a spelled placeholder matches and writes its spelling but binds the value") {
    const std::vector<std::pair<std::string, std::string>> spelling = {{"gate_proj", "w1"},
                                                                       {"up_proj", "w3"}};
    const std::map<std::string, PlaceholderType> types{{"p", {false, {"gate_proj", "up_proj"}}}};
    // The first is matched in one pass, the second ({p} before an identifier byte) through RE2.
    const std::vector<std::array<std::string, 3>> cases = {
        {"ffn.{p}.weight", "ffn.w3.weight", "ffn.up_proj.weight"},
        {"ffn_{p}x", "ffn_w3x", "ffn_up_projx"}};
    for (const auto& [text, spelled, unspelled] : cases) {
      NamePattern pattern = P(text);
      pattern.SetSpelling("p", spelling);
      auto m = PatternMatcher::Compile(pattern, types, {});
      REQUIRE(m.ok());
      CHECK(pattern.Instantiate({{"p", Value::String("up_proj")}}, {}) == spelled);
      for (const bool regex : {false, true}) {
        Bindings b;
        CHECK((regex ? m->MatchWithRegex(spelled, &b) : m->Match(spelled, &b)));
        CHECK(b.at("p") == Value::String("up_proj"));
        CHECK_FALSE((regex ? m->MatchWithRegex(unspelled, &b) : m->Match(unspelled, &b)));
      }
    }
  }

  TEST_CASE("malformed patterns are errors at the offending column") {
    auto open = NamePattern::Parse("model.{layer.weight", kAt);
    REQUIRE_FALSE(open.ok());
    CHECK(open.error().where().column == 9 + 6);
    CHECK_FALSE(NamePattern::Parse("a}b", kAt).ok());
    CHECK_FALSE(NamePattern::Parse("a.{}.b", kAt).ok());
    CHECK_FALSE(NamePattern::Parse("a.{1x}.b", kAt).ok());
    CHECK_FALSE(NamePattern::Parse("{layer}.{layer}", kAt).ok());
    CHECK_FALSE(NamePattern::Parse("{layer}{expert}", kAt).ok());
    CHECK_FALSE(NamePattern::Parse("", kAt).ok());
  }

  TEST_CASE("matching without RE2 agrees with RE2 on names built from good and bad values") {
    const std::map<std::string, PlaceholderType> types{{"layer", {true, {}}},
                                                       {"expert", {true, {}}},
                                                       {"w", {false, {}}},
                                                       {"v", {false, {"w", "w1", "w_1"}}}};
    const std::vector<std::string> values = {"0",
                                             "7",
                                             "12",
                                             "01",
                                             "",
                                             "x",
                                             "_a",
                                             "a1",
                                             "9a",
                                             "w",
                                             "w1",
                                             "w_1",
                                             "1.2",
                                             "a.b",
                                             "w1_",
                                             "Z",
                                             "99999999999999999999"};
    // Unambiguous patterns (matched in one pass) and, last, one that needs RE2.
    for (const std::string text :
         {"model.layers.{layer}.experts.{expert}.{v}.weight", "x.{w}.weight", "{layer}", "{w}",
          "a{layer}b", "{w}.{layer}", "h.{layer}_x.{v}", "p.{v}", "{w}_{v}"}) {
      CAPTURE(text);
      const NamePattern pattern = P(text);
      const PatternMatcher m = M(text, types);
      const std::vector<std::string> names = pattern.placeholders();
      std::vector<size_t> pick(names.size(), 0);
      for (bool more = true; more;) {
        Bindings chosen;
        std::string name;
        for (const PatternSegment& seg : pattern.segments()) {
          if (seg.kind != PatternSegment::Kind::kPlaceholder) {
            name += seg.text;
            continue;
          }
          const size_t i =
              static_cast<size_t>(std::find(names.begin(), names.end(), seg.text) - names.begin());
          name += values[pick[i]];
        }
        for (const std::string& n :
             {name, name + "x", name + "0", name.substr(name.empty() ? 0 : 1)}) {
          CAPTURE(n);
          Bindings direct, regex;
          const bool matched = m.Match(n, &direct);
          CHECK(matched == m.MatchWithRegex(n, &regex));
          if (matched)
            CHECK(direct == regex);
        }
        more = false;
        for (size_t i = 0; i < pick.size() && !more; ++i) {
          pick[i] = (pick[i] + 1) % values.size();
          more = pick[i] != 0;
        }
      }
    }
  }

  TEST_CASE("a pattern set reports every pattern matching a name") {
    PatternSet set;
    const PatternMatcher a = M("model.layers.{layer}.{w}.weight", kTypes);
    const PatternMatcher b = M("model.layers.{layer}.mlp.weight", kTypes);
    const PatternMatcher c = M("lm_head.weight", kTypes);
    set.Add(a);
    set.Add(b);
    set.Add(c);
    REQUIRE(set.Compile().ok());
    CHECK(set.Match("model.layers.2.mlp.weight") == std::vector<int>{0, 1});
    CHECK(set.Match("lm_head.weight") == std::vector<int>{2});
    CHECK(set.Match("lm_head.weight.x").empty());
  }
}

}  // namespace
}  // namespace cw
