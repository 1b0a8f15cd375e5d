#include "engine/ruleset/rule_file.h"

#include <doctest/doctest.h>

#include "tests/support/test_files.h"

namespace cw {
namespace {

RuleLoad Parse(const std::string& text) { return ParseRuleText(text, "t.yaml"); }

TEST_SUITE("ruleset.rule_file") {
  TEST_CASE("llama.yaml loads with its parameters and placeholders and positioned rules") {
    auto rules = LoadRuleFile(test::SourcePath("rules/llama.yaml"));
    REQUIRE(rules.ok());
    CHECK(rules->name == "llama");
    CHECK(rules->models == std::vector<std::string>{"llama"});
    CHECK(rules->FindParam("kv_heads")->config_keys.size() == 2);
    CHECK(rules->FindParamByFlag("qkv_concat")->name == "qkv_concat");
    CHECK(rules->FindPlaceholder("layer")->count->text() == "layers");
    REQUIRE_FALSE(rules->rules.empty());
    CHECK(rules->rules[0].where.line > 1);
    CHECK(rules->rules[0].where.column == 5);
    CHECK(rules->rules[0].hf[0].text() == "model.embed_tokens.weight");
  }

  TEST_CASE("each rule gets the inverted and reversed chain for the reverse direction") {
    auto load = Parse(R"(
name: t
rules:
  - hf: [a, b]
    ms: [c, d]
    ops:
      - permute: [1, 2, 0]
      - concat: {axis: 0, equal: true}
      - split: {axis: 1, sizes: [2, 3]}
)");
    REQUIRE(load.errors.empty());
    const auto& rev = load.rules->rules[0].reverse_ops;
    REQUIRE(rev.size() == 3);
    CHECK(rev[0].kind == OpKind::kConcat);
    CHECK(rev[0].sizes.size() == 2);
    CHECK(rev[1].kind == OpKind::kSplit);
    CHECK(rev[1].parts == 2);
    CHECK(rev[2].kind == OpKind::kPermute);
    CHECK(rev[2].perm == std::vector<int>{2, 0, 1});
  }

  TEST_CASE("qwen2.yaml extends llama.yaml and overrides one parameter") {
    auto rules = LoadRuleFile(test::SourcePath("rules/qwen2.yaml"));
    REQUIRE(rules.ok());
    CHECK(rules->name == "qwen2");
    CHECK(rules->models == std::vector<std::string>{"qwen2", "qwen"});
    CHECK(rules->sources.size() == 2);
    const ParamDecl* bias = rules->FindParam("qkv_bias");
    REQUIRE(bias != nullptr);
    CHECK(bias->config_keys.empty());
    CHECK(bias->default_value->AsConstant() == Value::Bool(true));
    CHECK(rules->rules[0].where.file.ends_with("llama.yaml"));
  }

  TEST_CASE("ms_layout.folder chooses the MindSpore side of folder outputs; hf is the default") {
    auto plain = Parse("name: t\nrules:\n  - {hf: a, ms: b}\n");
    REQUIRE(plain.errors.empty());
    CHECK(plain.rules->ms_folder == RuleSet::MsFolder::kHfIndex);
    auto mindformers =
        Parse("name: t\nms_layout: {folder: mindformers}\nrules:\n  - {hf: a, ms: b}\n");
    REQUIRE(mindformers.errors.empty());
    CHECK(mindformers.rules->ms_folder == RuleSet::MsFolder::kMindFormers);
    auto hf = Parse("name: t\nms_layout: {folder: hf}\nrules:\n  - {hf: a, ms: b}\n");
    REQUIRE(hf.errors.empty());
    CHECK(hf.rules->ms_folder == RuleSet::MsFolder::kHfIndex);
  }

  TEST_CASE("ms_layout is inherited through extends unless the file gives its own") {
    test::TempDir dir;
    test::WriteFile(dir / "base.yaml",
                    "name: base\nms_layout: {folder: mindformers}\nrules:\n  - {hf: a, ms: b}\n");
    test::WriteFile(dir / "same.yaml", "name: same\nextends: base.yaml\n");
    test::WriteFile(dir / "other.yaml",
                    "name: other\nextends: base.yaml\nms_layout: {folder: hf}\n");
    auto same = LoadRuleFile(dir / "same.yaml");
    REQUIRE(same.ok());
    CHECK(same->ms_folder == RuleSet::MsFolder::kMindFormers);
    auto other = LoadRuleFile(dir / "other.yaml");
    REQUIRE(other.ok());
    CHECK(other->ms_folder == RuleSet::MsFolder::kHfIndex);
  }

  TEST_CASE("the MCore families write MindFormers folders, the others HF-indexed ones") {
    for (const char* family : {"qwen3", "qwen3_moe", "qwen2_moe", "deepseek3", "deepseek3_research",
                               "glm4", "glm4_moe"}) {
      CAPTURE(family);
      auto rules = LoadRuleFile(test::SourcePath(std::string("rules/") + family + ".yaml"));
      REQUIRE(rules.ok());
      CHECK(rules->ms_folder == RuleSet::MsFolder::kMindFormers);
    }
    for (const char* family : {"llama", "qwen2", "glm3", "mixtral"}) {
      CAPTURE(family);
      auto rules = LoadRuleFile(test::SourcePath(std::string("rules/") + family + ".yaml"));
      REQUIRE(rules.ok());
      CHECK(rules->ms_folder == RuleSet::MsFolder::kHfIndex);
    }
  }

  TEST_CASE("an unknown ms_layout key or folder layout is reported where it is written") {
    auto key = Parse("name: t\nms_layout: {fodler: hf}\nrules:\n  - {hf: a, ms: b}\n");
    REQUIRE(key.errors.size() == 1);
    CHECK(key.errors[0].code() == ErrorCode::kRuleInvalid);
    CHECK(key.errors[0].where().line == 2);
    auto value = Parse("name: t\nms_layout: {folder: ckpt}\nrules:\n  - {hf: a, ms: b}\n");
    REQUIRE(value.errors.size() == 1);
    CHECK(value.errors[0].code() == ErrorCode::kRuleInvalid);
    CHECK(value.errors[0].where().line == 2);
    CHECK(value.errors[0].where().column == 21);
  }

  TEST_CASE("a missing or cyclic extends is reported at the extends key") {
    test::TempDir dir;
    test::WriteFile(dir / "a.yaml", "name: a\nextends: b.yaml\n");
    test::WriteFile(dir / "b.yaml", "name: b\nextends: a.yaml\n");
    test::WriteFile(dir / "c.yaml", "name: c\nextends: none.yaml\n");
    auto cyclic = ParseRuleFile(dir / "a.yaml");
    REQUIRE(cyclic.errors.size() == 1);
    CHECK(cyclic.errors[0].message().find("cycle") != std::string::npos);
    auto missing = ParseRuleFile(dir / "c.yaml");
    REQUIRE(missing.errors.size() == 1);
    CHECK(missing.errors[0].code() == ErrorCode::kIo);
    CHECK(missing.errors[0].context().at(0).find("c.yaml:2") != std::string::npos);
  }

  TEST_CASE("every problem of a file is reported and not only the first") {
    auto load = Parse(R"(
name: t
rules:
  - {hf: a, ms: b, colour: red}
  - {hf: c, ms: d, ops: [{flip: 1}]}
  - {hf: e, ms: f, drop: "true"}
)");
    REQUIRE(load.errors.size() == 3);
    CHECK(load.errors[0].where().line == 4);
    CHECK(load.errors[1].where().line == 5);
    CHECK(load.errors[2].where().line == 6);
    CHECK(load.errors[2].message().find("true or false") != std::string::npos);
    auto first = LoadRuleText(R"(
name: t
rules:
  - {hf: a, ms: b, colour: red}
  - {hf: c, ms: d, ops: [{flip: 1}]}
)",
                              "t.yaml");
    REQUIRE_FALSE(first.ok());
    CHECK(first.error().message().find("(and 1 more problems)") != std::string::npos);
  }

  TEST_CASE("a drop rule may name either side and an ms-only drop applies in reverse") {
    auto load = Parse(R"(
name: t
rules:
  - {hf: inv_freq, drop: true}
  - {ms: optimizer_state, drop: true, optional: true}
  - {hf: a, ms: b}
)");
    REQUIRE(load.errors.empty());
    CHECK(load.rules->rules[1].hf.empty());
  }

  TEST_CASE("string parameters take literal defaults and expressions go under expr") {
    auto load = Parse(R"y(
name: t
params:
  pre: {type: bool, default: false}
  prefix: {type: string, default: {expr: "if(pre, 'encoder.', '')"}}
  plain: {type: string, default: transformer.}
rules:
  - {hf: "${prefix}a", ms: "${plain}b"}
)y");
    REQUIRE(load.errors.empty());
    CHECK(load.rules->FindParam("plain")->default_value->AsConstant() ==
          Value::String("transformer."));
    CHECK_FALSE(load.rules->FindParam("prefix")->default_value->AsConstant());
  }

  TEST_CASE("named conditions are linked into rules, through each other, and checked") {
    auto load = Parse(R"(
name: t
params:
  dense: {type: list, default: [0]}
placeholders: {layer: int}
conditions:
  moe: not dense_layer
  dense_layer: layer in dense
rules:
  - {hf: "a.{layer}", ms: "b.{layer}", when: dense_layer}
  - {hf: "c.{layer}", ms: "d.{layer}", when: moe}
)");
    REQUIRE(load.errors.empty());
    CHECK(load.rules->rules[1].when->Names() == std::set<std::string>{"dense", "layer"});
    CHECK(load.rules->rules[1].when->Conditions() == std::set<std::string>{"dense_layer", "moe"});

    auto bad = Parse(R"(
name: t
params:
  n: {type: int, default: 1}
conditions:
  a: b and n > 0
  b: a
  c: nn > 1
  n: true
rules:
  - {hf: x, ms: y, when: c}
)");
    std::string all;
    for (const Error& e : bad.errors)
      all += e.ToString() + "\n";
    CHECK(all.find("condition a depends on itself") != std::string::npos);
    CHECK(all.find("t.yaml:8:6: error: unknown name \"nn\" in condition c") != std::string::npos);
    CHECK(all.find("condition n has the name of a parameter or placeholder") != std::string::npos);
  }

  TEST_CASE("a rule file over the size cap is a limit error") {
    test::TempDir dir;
    test::WriteFile(dir / "big.yaml", "name: x\n# " + std::string(2u << 20, 'x') + "\n");
    auto load = ParseRuleFile(dir / "big.yaml");
    REQUIRE(load.errors.size() == 1);
    CHECK(load.errors[0].code() == ErrorCode::kLimitExceeded);
  }

  TEST_CASE("positions of nested values are 1-based line and column") {
    auto load = Parse(
        "name: t\nrules:\n  - hf: a\n    ms: b\n    ops:\n      - split: {axis: 0, parts: 0}\n");
    REQUIRE(load.errors.size() == 1);
    CHECK(load.errors[0].where().line == 6);
    CHECK(load.errors[0].where().column == 33);
  }

  TEST_CASE("an error in a scalar gets a column only when the scalar is written on one line") {
    // tests/fuzz/regressions/rules/column_past_line_in_folded_scalar.yaml: an offset into a
    // scalar folded over lines or written with escapes is no column of the file.
    auto folded = Parse(
        "name: t\nrules:\n  - hf: a\n    ms: b\n    ops:\n"
        "      - split: {axis: 0, sizes: [heads * hea\nx.y, 1]}\n");
    REQUIRE(folded.errors.size() == 1);
    CHECK(folded.errors[0].where().line == 6);
    CHECK(folded.errors[0].where().column == 0);
    auto escaped = Parse("name: t\nrules:\n  - hf: a\n    ms: b\n    when: \"\\x41 +\"\n");
    REQUIRE(escaped.errors.size() == 1);
    CHECK(escaped.errors[0].where().line == 5);
    CHECK(escaped.errors[0].where().column == 0);
    auto one_line = Parse("name: t\nrules:\n  - hf: a\n    ms: b\n    when: \"x ? y\"\n");
    REQUIRE(one_line.errors.size() == 1);
    CHECK(one_line.errors[0].where().line == 5);
    CHECK(one_line.errors[0].where().column == 14);
  }

  TEST_CASE("a YAML error yaml-cpp marks past the end of the text is located at its end") {
    // tests/fuzz/regressions/rules/column_past_end_after_nul_byte.yaml: yaml-cpp reads on past
    // a NUL byte and marked column 4 of a 2-byte last line.
    auto load = Parse(std::string("#: x\nname: t\nrules:\n  - hf: buffer\n \0", 37));
    REQUIRE(load.errors.size() == 1);
    CHECK(load.errors[0].where().line == 5);
    CHECK(load.errors[0].where().column == 3);
  }

  TEST_CASE("aliases may repeat a part of a file but not expand it past its size in bytes") {
    // tests/fuzz/regressions/rules/oom_alias_expansion.yaml: nine lines of aliases of aliases
    // expanded to a billion nodes.
    std::string text = "name: t\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
    for (int i = 1; i < 9; ++i) {
      text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
      for (int j = 0; j < 10; ++j)
        text += (j ? ", *a" : "*a") + std::to_string(i - 1);
      text += "]\n";
    }
    auto load = Parse(text + "rules: *a8\n");
    REQUIRE_FALSE(load.errors.empty());
    CHECK(load.errors[0].code() == ErrorCode::kLimitExceeded);
    CHECK(load.errors[0].where().file == "t.yaml");
    auto reused = Parse(
        "name: t\nrules:\n  - hf: &pair [a, b]\n    ms: c\n    ops: &join\n"
        "      - concat: {axis: 0, equal: true}\n  - hf: *pair\n    ms: d\n    ops: *join\n");
    REQUIRE(reused.errors.empty());
    CHECK(reused.rules->rules[1].hf.size() == 2);
    CHECK(reused.rules->rules[1].ops.size() == 1);
  }

  TEST_CASE("truncated or damaged rule files load or give located errors and never crash") {
    const std::string text = test::ReadFile(test::SourcePath("rules/llama.yaml"));
    auto check = [](const RuleLoad& load) {
      for (const Error& e : load.errors) {
        CHECK(e.where().file == "t.yaml");
        CHECK(e.where().line > 0);
      }
      CHECK(load.rules.has_value() == load.errors.empty());
    };
    for (size_t cut = 0; cut < text.size(); cut += 13)
      check(Parse(text.substr(0, cut)));
    const std::string flips = "{}[]:-'\"#&*!|>%@` \n\t$x0";
    for (size_t at = 0; at < text.size(); at += 17) {
      std::string damaged = text;
      damaged[at] = flips[at % flips.size()];
      check(Parse(damaged));
    }
  }
}

}  // namespace
}  // namespace cw
