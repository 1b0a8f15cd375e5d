// Lint: the shipped rule files are clean; every file in tests/data/bad_rules/ produces exactly
// the error its first line announces:
//   # expect: <line>:<column>: <message>
#include "engine/ruleset/rule_lint.h"

#include <filesystem>

#include <doctest/doctest.h>

#include "engine/ruleset/rule_file.h"
#include "tests/support/test_files.h"

namespace cw {
namespace {

namespace fs = std::filesystem;

std::string Joined(const std::vector<Error>& errors) {
  std::string s;
  for (const Error& e : errors)
    s += e.ToString() + "\n";
  return s;
}

std::vector<Error> LintText(const std::string& text) {
  RuleLoad load = ParseRuleText(text, "t.yaml");
  if (!load.errors.empty())
    return load.errors;
  return LintRuleSet(*load.rules);
}

TEST_SUITE("ruleset.lint") {
  TEST_CASE("the shipped rule files lint clean") {
    for (const auto& entry : fs::directory_iterator(test::SourcePath("rules"))) {
      if (entry.path().extension() != ".yaml")
        continue;
      CAPTURE(entry.path().string());
      const std::vector<Error> errors = LintRuleFile(entry.path());
      CHECK_MESSAGE(errors.empty(), Joined(errors));
    }
  }

  TEST_CASE("every bad rule file gives exactly the error and position it announces") {
    size_t files = 0;
    for (const auto& entry : fs::directory_iterator(test::SourcePath("tests/data/bad_rules"))) {
      if (entry.path().extension() != ".yaml")
        continue;
      ++files;
      const std::string path = entry.path().string();
      CAPTURE(path);
      const std::string text = test::ReadFile(entry.path());
      const std::string prefix = "# expect: ";
      REQUIRE(text.rfind(prefix, 0) == 0);
      const std::string expect = text.substr(prefix.size(), text.find('\n') - prefix.size());
      const std::vector<Error> errors = LintRuleFile(entry.path());
      CHECK_MESSAGE(errors.size() == 1, Joined(errors));
      if (errors.empty())
        continue;
      CHECK(errors[0].code() == ErrorCode::kRuleInvalid);
      CHECK(errors[0].where().file == path);
      CHECK(errors[0].ToString() == path + ":" + expect);
    }
    CHECK(files >= 20);
  }

  TEST_CASE("conditions that exclude each other let patterns overlap") {
    const auto errors = LintText(R"(
name: t
params: {fused: {type: bool, default: false}, layout: {type: string, default: a, values: [a, b]}}
rules:
  - {hf: x, ms: X, when: not fused}
  - {hf: x, ms: Y, when: fused and layout == 'a'}
  - {hf: x, ms: Z, when: fused and layout == 'b'}
)");
    CHECK_MESSAGE(errors.empty(), Joined(errors));
  }

  TEST_CASE("a drop rule for layers past the count does not overlap the layer rules") {
    const auto errors = LintText(R"(
name: t
params: {layers: {type: int}}
placeholders: {layer: {type: int, count: layers}, extra: int}
rules:
  - {hf: "h.{layer}.w", ms: "b.{layer}.w"}
  - {hf: "h.{extra}.w", drop: true, optional: true, when: extra >= layers}
)");
    CHECK_MESSAGE(errors.empty(), Joined(errors));
  }

  TEST_CASE("lint samples a pattern of many placeholders and conditions of many parameters") {
    // tests/fuzz/regressions/rules/timeout_lint_*.yaml: 16 placeholders gave 3^16 sample names
    // per pattern; 10 parameters of 30 values, 30^10 scenarios per pair of rules.
    std::string text = "name: t\nplaceholders:\n";
    std::string pattern;
    for (int i = 0; i < 16; ++i) {
      text += "  p" + std::to_string(i) + ": int\n";
      pattern += ".{p" + std::to_string(i) + "}";
    }
    text += "rules:\n  - {hf: \"a" + pattern + "\", ms: \"b" + pattern + "\"}\n";
    text += "  - {hf: \"a.0" + pattern.substr(5) + "\", ms: \"c" + pattern.substr(5) + "\"}\n";
    const auto placeholders = LintText(text);
    REQUIRE(placeholders.size() == 1);
    CHECK(placeholders[0].message().find("overlapping hf patterns") != std::string::npos);

    std::string params = "name: t\nparams:\n";
    std::string when;
    for (int i = 0; i < 10; ++i) {
      params += "  s" + std::to_string(i) + ": {type: string, values: [";
      for (int v = 0; v < 30; ++v)
        params += (v ? ", v" : "v") + std::to_string(v);
      params += "], default: v0}\n";
      when += std::string(i ? " and " : "") + "s" + std::to_string(i) + " == 'v1'";
    }
    const auto scenarios = LintText(params + "rules:\n  - {hf: a, ms: b, when: \"" + when +
                                    "\"}\n  - {hf: a, ms: c, when: \"not (" + when + ")\"}\n");
    // Decided on the combinations of the first two parameters and the others' defaults.
    CHECK(scenarios.empty());
  }

  TEST_CASE("a literal name inside a placeholder pattern is an overlap whichever comes first") {
    const auto errors = LintText(R"(
name: t
placeholders: {layer: int}
rules:
  - {hf: "h.0.w", ms: "first.w"}
  - {hf: "h.{layer}.w", ms: "b.{layer}.w"}
)");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].where().line == 6);
    CHECK(errors[0].message().find("both match \"h.0.w\"") != std::string::npos);
  }
}

}  // namespace
}  // namespace cw
