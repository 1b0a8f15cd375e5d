#include "engine/ruleset/params.h"

#include <doctest/doctest.h>

#include "engine/ruleset/rule_file.h"

namespace cw {
namespace {

RuleSet Rules() {
  auto r = LoadRuleText(R"(
name: t
params:
  layers: {type: int, config: [num_hidden_layers, n_layer], flag: layers}
  heads: {type: int, config: num_attention_heads}
  kv_heads: {type: int, config: num_key_value_heads, default: heads}
  head_dim: {type: int, config: head_dim, default: hidden / heads}
  hidden: {type: int, config: hidden_size}
  tied: {type: bool, config: tie_word_embeddings, default: false}
  kind: {type: string, default: telechat_12b, values: [telechat_7b, telechat_12b], flag: telechat_type}
rules:
  - {hf: a, ms: b}
)",
                        "t.yaml");
  REQUIRE(r.ok());
  return std::move(r).value();
}

ParamInputs Config(const std::string& json) {
  ParamInputs p;
  auto c = ParseConfigJson(json, "config.json");
  REQUIRE(c.ok());
  p.config = std::move(c).value();
  return p;
}

TEST_SUITE("ruleset.params") {
  TEST_CASE("config.json flattens nested objects and arrays to dotted keys") {
    auto c = ParseConfigJson(R"({"a": 1, "t": {"b": true, "c": "x"}, "arch": ["L"], "f": 1.5,
                                 "n": null, "big": 18446744073709551615})",
                             "config.json");
    REQUIRE(c.ok());
    CHECK(c->entries.at("a").value == Value::Int(1));
    CHECK(c->entries.at("t.b").value == Value::Bool(true));
    CHECK(c->entries.at("t.c").value == Value::String("x"));
    CHECK(c->entries.at("arch.0").value == Value::String("L"));
    CHECK_FALSE(c->entries.at("f").value);
    CHECK(c->entries.at("n").json == "null");
    CHECK_FALSE(c->entries.at("big").value);
  }

  TEST_CASE("bad config.json is corrupt at the byte where parsing failed") {
    auto c = ParseConfigJson("{\"a\": 1,\n  oops}", "config.json");
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().code() == ErrorCode::kCorrupt);
    CHECK(c.error().where().offset.has_value());
    CHECK(ParseConfigJson("[1]", "config.json").error().code() == ErrorCode::kCorrupt);
  }

  TEST_CASE("values come from --set then config keys in order then text_config then defaults") {
    const RuleSet rules = Rules();
    ParamInputs in = Config(R"({"n_layer": 6, "text_config": {"num_attention_heads": 8,
                               "hidden_size": 64}, "num_key_value_heads": null})");
    ParamResolver r(rules, in);
    CHECK(r.Get("layers")->as_int() == 6);
    CHECK(r.Get("heads")->as_int() == 8);
    CHECK(r.Get("kv_heads")->as_int() == 8);  // null is absent: the default applies
    CHECK(r.Get("head_dim")->as_int() == 8);  // 64 / 8
    CHECK(r.resolved().at("heads").source == "config text_config.num_attention_heads");
    in.set = {{"layers", "3"}, {"telechat_type", "telechat_7b"}};
    ParamResolver s(rules, in);
    CHECK(s.Get("layers")->as_int() == 3);
    CHECK(s.Get("kind")->as_string() == "telechat_7b");
  }

  TEST_CASE("a parameter without a value names the keys tried") {
    const RuleSet rules = Rules();
    const ParamInputs in = Config("{}");
    ParamResolver r(rules, in);
    auto v = r.Get("heads");
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().code() == ErrorCode::kPlanInvalid);
    CHECK(v.error().message().find("num_attention_heads, text_config.num_attention_heads") !=
          std::string::npos);
    CHECK_FALSE(r.Get("head_dim").ok());
  }

  TEST_CASE("a config value of the wrong type is an error naming key and value") {
    const RuleSet rules = Rules();
    const ParamInputs in = Config(R"({"tie_word_embeddings": 1, "num_hidden_layers": 2.5})");
    ParamResolver r(rules, in);
    CHECK(r.Get("tied").error().message().find("\"tie_word_embeddings\" is 1") !=
          std::string::npos);
    CHECK_FALSE(r.Get("layers").ok());
  }

  TEST_CASE("--set values are typed by their parameter and checked against allowed values") {
    const RuleSet rules = Rules();
    ParamInputs in;
    in.set = {{"tied", "Yes"}};
    CHECK(ParamResolver(rules, in).Get("tied")->as_bool());
    in.set = {{"layers", "many"}};
    CHECK(ParamResolver(rules, in).CheckInputs().error().code() == ErrorCode::kUsage);
    in.set = {{"telechat_type", "telechat_9b"}};
    CHECK(ParamResolver(rules, in).CheckInputs().error().message().find(
              "'telechat_7b', 'telechat_12b'") != std::string::npos);
    in.set = {{"layer", "2"}};
    CHECK(ParamResolver(rules, in).CheckInputs().error().message().find(
              "did you mean \"layers\"") != std::string::npos);
  }

  TEST_CASE("bool text accepts the usual spellings and nothing else") {
    CHECK(ParseValueText("TRUE", ValueType::kBool) == Value::Bool(true));
    CHECK(ParseValueText("0", ValueType::kBool) == Value::Bool(false));
    CHECK_FALSE(ParseValueText("False ", ValueType::kBool));
    CHECK(ParseValueText("-12", ValueType::kInt) == Value::Int(-12));
    CHECK_FALSE(ParseValueText("1e3", ValueType::kInt));
  }
  TEST_CASE("a detected value comes after --set and config.json and before the default") {
    auto r = LoadRuleText(R"(
name: t
params:
  prefix: {type: string, values: ["", "transformer."], detect: true, default: ""}
  kind: {type: string, config: kind, values: [a, b], detect: true, flag: kind_flag}
  layers: {type: int, config: n_layer}
rules:
  - {hf: "${prefix}a", ms: b}
)",
                          "t.yaml");
    REQUIRE(r.ok());
    ParamInputs in;
    in.detected = {{"prefix", "transformer."}, {"kind", "b"}};
    ParamResolver d(*r, in);
    CHECK(d.Get("prefix")->as_string() == "transformer.");
    CHECK(d.resolved().at("prefix").source == "detected from the input names");
    CHECK_FALSE(d.Given(*r->FindParam("prefix")));
    in.set = {{"kind_flag", "a"}};
    ParamResolver s(*r, in);
    CHECK(s.Get("kind")->as_string() == "a");
    CHECK(s.Given(*r->FindParam("kind")));
    ParamInputs config = Config(R"({"kind": "a", "n_layer": null})");
    ParamResolver c(*r, config);
    CHECK(c.Given(*r->FindParam("kind")));
    CHECK(c.HasNoValue("layers"));        // null is absent
    CHECK_FALSE(c.HasNoValue("prefix"));  // it has a default
    CHECK_FALSE(ParamResolver(*r, Config(R"({"n_layer": 2})")).HasNoValue("layers"));
  }

  TEST_CASE("detect needs the values to try") {
    auto r = LoadRuleText(R"(
name: t
params:
  prefix: {type: string, detect: true}
rules:
  - {hf: "${prefix}a", ms: b}
)",
                          "t.yaml");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().ToString().find("detect needs values") != std::string::npos);
    auto many = LoadRuleText(R"(
name: t
params:
  a: {type: int, values: [1, 2, 3, 4, 5], detect: true}
  b: {type: int, values: [1, 2, 3, 4, 5], detect: true}
  c: {type: int, values: [1, 2, 3], detect: true}
rules:
  - {hf: "${a}${b}${c}", ms: b}
)",
                             "t.yaml");
    REQUIRE_FALSE(many.ok());
    CHECK(many.error().ToString().find("t.yaml:6:3: error: the detected parameters have over 64 "
                                       "combinations") != std::string::npos);
  }

  TEST_CASE("list parameters come from config arrays, --set lists and list defaults") {
    auto r = LoadRuleText(R"(
name: t
params:
  dense: {type: list, config: mlp_only_layers, default: []}
  kinds: {type: list, items: string, config: layer_types}
rules:
  - {hf: a, ms: b}
)",
                          "t.yaml");
    REQUIRE(r.ok());
    {
      const ParamInputs in = Config(R"({"mlp_only_layers": [0, 3], "layer_types": ["full"]})");
      ParamResolver p(*r, in);
      CHECK(p.Get("dense")->ToString() == "[0, 3]");
      CHECK(p.Get("kinds")->ToString() == "['full']");
    }
    {
      ParamInputs in = Config("{}");
      in.set = {{"dense", "1,2,5"}};
      ParamResolver p(*r, in);
      CHECK(p.Get("dense")->ToString() == "[1, 2, 5]");
      CHECK(p.resolved().at("dense").source == "--set");
    }
    {
      const ParamInputs in = Config("{}");
      ParamResolver p(*r, in);
      CHECK(p.Get("dense")->ToString() == "[]");
    }
    {
      const ParamInputs in = Config(R"({"mlp_only_layers": ["a"]})");
      ParamResolver p(*r, in);
      const auto v = p.Get("dense");
      REQUIRE_FALSE(v.ok());
      CHECK(v.error().message().find("is [\"a\"], but parameter dense is a list of int") !=
            std::string::npos);
    }
    {
      ParamInputs in = Config("{}");
      in.set = {{"dense", "1,x"}};
      const Status s = ParamResolver(*r, in).CheckInputs();
      REQUIRE_FALSE(s.ok());
      CHECK(s.error().message().find("dense is a list of int parameter") != std::string::npos);
    }
  }

  TEST_CASE("has() is false for a parameter nothing gives and true once something does") {
    auto r = LoadRuleText(R"(
name: t
params:
  dense: {type: list, config: mlp_only_layers}
  n: {type: int, config: n}
conditions:
  listed: has(dense) and 3 in dense
rules:
  - {hf: a, ms: b, when: not listed}
)",
                          "t.yaml");
    REQUIRE(r.ok());
    const Expr& when = *r->rules[0].when;
    {
      const ParamInputs in = Config("{}");
      ParamResolver p(*r, in);
      CHECK(when.EvaluateBool(p.Lookup(), "when").value());
    }
    {
      const ParamInputs in = Config(R"({"mlp_only_layers": [3]})");
      ParamResolver p(*r, in);
      CHECK_FALSE(when.EvaluateBool(p.Lookup(), "when").value());
    }
    {
      // A config value of the wrong type is still an error, not "no value".
      const ParamInputs in = Config(R"({"mlp_only_layers": 3})");
      ParamResolver p(*r, in);
      CHECK_FALSE(when.EvaluateBool(p.Lookup(), "when").ok());
    }
  }

  TEST_CASE("tied.to takes parameters but no placeholders") {
    const RuleLoad load = ParseRuleText(R"(
name: t
params:
  prefix: {type: string, default: ""}
placeholders: {layer: int}
rules:
  - {hf: "${prefix}e", ms: e}
  - {hf: head, tied: {to: "${prefx}e"}}
  - {hf: head2, tied: {to: "e.{layer}"}}
)",
                                        "t.yaml");
    REQUIRE(load.errors.size() == 2);
    const std::string m = load.errors[0].ToString() + load.errors[1].ToString();
    CHECK(m.find("parameter ${prefx} is not declared") != std::string::npos);
    CHECK(m.find("tied.to names one tensor: no placeholders") != std::string::npos);
  }
}

}  // namespace
}  // namespace cw
