#include "engine/plan/planner.h"

#include <algorithm>
#include <string>

#include <doctest/doctest.h>

#include "engine/plan/round_trip.h"
#include "engine/ruleset/rule_file.h"
#include "tests/support/inventory_builder.h"
#include "tests/support/plan_fixtures.h"
#include "tests/support/test_files.h"

namespace cw {
namespace {

using test::Opts;
using test::RulesText;
using test::StepWriting;

RuleSet Rules(const std::string& file) {
  auto r = LoadRuleFile(test::SourcePath("rules/" + file));
  if (!r.ok())
    FAIL(r.error().ToString());
  return std::move(r).value();
}

Plan PlanOrFail(const RuleSet& rules, const std::vector<TensorInfo>& inventory,
                const PlanOptions& options) {
  auto plan = MakePlan(rules, inventory, options);
  if (!plan.ok())
    FAIL(plan.error().ToString());
  return std::move(plan).value();
}

// Forward, then reverse on the forward outputs; returns the reverse outputs.
std::vector<TensorInfo> RoundTrip(const RuleSet& rules, const std::vector<TensorInfo>& inventory,
                                  PlanOptions options) {
  options.direction = Direction::kForward;
  const Plan forward = PlanOrFail(rules, inventory, options);
  options.direction = Direction::kReverse;
  const Plan reverse = PlanOrFail(rules, forward.Outputs(), options);
  return reverse.Outputs();
}

bool HasOutput(const Plan& plan, const std::string& name) { return StepWriting(plan, name); }

std::vector<TensorInfo> Named(const std::vector<std::string>& names) {
  std::vector<TensorInfo> out;
  for (const std::string& n : names)
    out.push_back(test::Info(n, DType::kF32, {2, 2}));
  return out;
}

bool HasNote(const Plan& plan, const std::string& text) {
  return std::any_of(plan.notes.begin(), plan.notes.end(),
                     [&](const std::string& n) { return n.find(text) != std::string::npos; });
}

// A prefix spelled two ways, as GPT-2 and TeleChat files do.
constexpr const char* kPrefixed = R"(
params:
  prefix: {type: string, values: ["", "transformer."], detect: true, default: ""}
rules:
  - {hf: "${prefix}wte", ms: embedding}
  - {hf: "${prefix}h.0.w", ms: w}
  - {hf: lm_head, tied: {to: "${prefix}wte"}}
)";

// TeleChat's inventory (hidden 4, FFN 12, vocabulary 16): prefix and head as given.
std::vector<TensorInfo> TelechatInventory(bool prefixed, bool head) {
  const std::string p = prefixed ? "transformer." : "";
  std::vector<TensorInfo> out = {test::Info(p + "word_embeddings.weight", DType::kF32, {16, 4})};
  const std::vector<std::pair<const char*, Shape>> layer = {
      {"input_layernorm.weight", {4}},
      {"self_attention.query.weight", {4, 4}},
      {"self_attention.key_value.weight", {8, 4}},
      {"self_attention.dense.weight", {4, 4}},
      {"self_attention.dense.bias", {4}},
      {"post_attention_layernorm.weight", {4}},
      {"mlp.gate_proj.weight", {12, 4}},
      {"mlp.up_proj.weight", {12, 4}},
      {"mlp.down_proj.weight", {4, 12}},
      {"mlp.down_proj.bias", {4}}};
  for (int l = 0; l < 2; ++l) {
    for (const auto& [name, shape] : layer)
      out.push_back(test::Info(p + "h." + std::to_string(l) + "." + name, DType::kF32, shape));
  }
  out.push_back(test::Info(p + "ln_f.weight", DType::kF32, {4}));
  if (head)
    out.push_back(test::Info("lm_head.weight", DType::kF32, {16, 4}));
  return out;
}

std::string Detected(const Plan& plan, const std::string& name) {
  for (const auto& [n, v] : plan.detected) {
    if (n == name)
      return v;
  }
  return "(none)";
}

TEST_SUITE("plan.planner") {
  TEST_CASE("a missing parameter comes first, once, with the count of problems it causes") {
    const RuleSet rules = RulesText(R"(
params:
  n: {type: int, config: n}
placeholders: {l: int}
rules:
  - {hf: "a.{l}", ms: "b.{l}", when: "l < n"}
  - {hf: "c.{l}", ms: "d.{l}", when: "l < n"}
)");
    const PlanOutcome out = CompilePlan(rules, Named({"z", "a.0", "c.0"}), {});
    REQUIRE(out.errors.size() == 2);
    CHECK(out.errors[0].message().find("parameter n has no value") == 0);
    CHECK(out.errors[0].message().find("(no config.json was given)") != std::string::npos);
    CHECK(out.errors[0].message().find("(1 more problem follows from this)") != std::string::npos);
    CHECK(out.errors[1].message().find("3 input tensors match no rule") != std::string::npos);
  }

  TEST_CASE("a placeholder value map spells the values differently on the two sides") {
    const RuleSet rules = RulesText(R"(
placeholders:
  layer: int
  proj: {type: ident, values: {gate_proj: w1, up_proj: w3, down_proj: w2}}
rules:
  - hf: "l.{layer}.mlp.{proj}.weight"
    ms: "l.{layer}.ffn.{proj}.weight"
    when: proj != 'down_proj' or layer == 0
)");
    const auto inventory =
        Named({"l.0.mlp.gate_proj.weight", "l.0.mlp.up_proj.weight", "l.0.mlp.down_proj.weight",
               "l.1.mlp.gate_proj.weight", "l.1.mlp.up_proj.weight"});
    const Plan forward = PlanOrFail(rules, inventory, Opts(Direction::kForward));
    CHECK(HasOutput(forward, "l.0.ffn.w1.weight"));
    CHECK(HasOutput(forward, "l.0.ffn.w3.weight"));
    CHECK(HasOutput(forward, "l.0.ffn.w2.weight"));
    CHECK(HasOutput(forward, "l.1.ffn.w1.weight"));
    CHECK(test::SortedByName(RoundTrip(rules, inventory, Opts(Direction::kForward))) ==
          test::SortedByName(inventory));
    // Each side matches only its own spelling.
    const auto wrong = MakePlan(rules, Named({"l.0.mlp.w1.weight"}), Opts(Direction::kForward));
    REQUIRE_FALSE(wrong.ok());
    CHECK(wrong.error().message().find("l.0.mlp.w1.weight") != std::string::npos);
    // The condition reads the hf spelling on both sides: ms l.1.ffn.w2 is down_proj of layer 1.
    const auto reverse = MakePlan(rules, Named({"l.1.ffn.w2.weight"}), Opts(Direction::kReverse));
    REQUIRE_FALSE(reverse.ok());
    CHECK(reverse.error().message().find("is false") != std::string::npos);
  }

  TEST_CASE("llama forward renames every tensor and the reverse gives back the inventory") {
    const RuleSet rules = Rules("llama.yaml");
    test::LlamaShape shape;
    const auto inventory = test::LlamaInventory(shape);
    PlanOptions options;
    options.params = test::LlamaParams(shape);
    const Plan forward = PlanOrFail(rules, inventory, options);
    CHECK(forward.steps.size() == inventory.size());
    CHECK(HasOutput(forward, "model.tok_embeddings.embedding_weight"));
    CHECK(HasOutput(forward, "model.layers.1.attention.wq.weight"));
    CHECK(HasOutput(forward, "model.layers.0.feed_forward.w3.weight"));
    CHECK(HasOutput(forward, "model.norm_out.weight"));
    for (const PlanStep& s : forward.steps)
      CHECK(s.is_rename());
    CHECK(forward.peak_bytes == 0);
    CHECK(test::SortedByName(RoundTrip(rules, inventory, options)) ==
          test::SortedByName(inventory));
  }

  TEST_CASE("steps follow the order of their first input in the inventory") {
    const RuleSet rules = Rules("llama.yaml");
    test::LlamaShape shape;
    auto inventory = test::LlamaInventory(shape);
    std::reverse(inventory.begin(), inventory.end());
    PlanOptions options;
    options.params = test::LlamaParams(shape);
    const Plan plan = PlanOrFail(rules, inventory, options);
    for (size_t i = 0; i < plan.steps.size(); ++i)
      CHECK(plan.steps[i].inputs[0] == i);
  }

  TEST_CASE("qwen2 tied without lm_head emits a copy forward and checks it in reverse") {
    const RuleSet rules = Rules("qwen2.yaml");
    test::LlamaShape shape;
    shape.model_type = "qwen2";
    shape.qkv_bias = true;
    shape.tied = true;
    shape.lm_head = false;
    const auto inventory = test::LlamaInventory(shape);
    PlanOptions options;
    options.params = test::LlamaParams(shape);
    const Plan forward = PlanOrFail(rules, inventory, options);
    const PlanStep* head = StepWriting(forward, "lm_head.weight");
    REQUIRE(head != nullptr);
    CHECK(forward.inventory[head->inputs[0]].name == "model.embed_tokens.weight");
    CHECK(head->note.find("copy of model.embed_tokens.weight") != std::string::npos);
    CHECK(HasOutput(forward, "model.layers.1.attention.wk.bias"));

    options.direction = Direction::kReverse;
    const Plan reverse = PlanOrFail(rules, forward.Outputs(), options);
    CHECK_FALSE(HasOutput(reverse, "lm_head.weight"));
    REQUIRE(reverse.dropped.size() == 1);
    CHECK(reverse.dropped[0].checked_equal);
    const auto verify =
        std::find_if(reverse.steps.begin(), reverse.steps.end(),
                     [](const PlanStep& s) { return s.kind == PlanStep::Kind::kVerifyEqual; });
    REQUIRE(verify != reverse.steps.end());
    CHECK(reverse.inventory[verify->inputs[0]].name == "lm_head.weight");
    CHECK(reverse.inventory[verify->inputs[1]].name == "model.tok_embeddings.embedding_weight");
    CHECK_FALSE(reverse.lossy);
    CHECK(test::SortedByName(reverse.Outputs()) == test::SortedByName(inventory));
  }

  TEST_CASE("qwen2 untied keeps lm_head in both directions") {
    const RuleSet rules = Rules("qwen2.yaml");
    test::LlamaShape shape;
    shape.model_type = "qwen2";
    shape.qkv_bias = true;
    const auto inventory = test::LlamaInventory(shape);
    PlanOptions options;
    options.params = test::LlamaParams(shape);
    CHECK(test::SortedByName(RoundTrip(rules, inventory, options)) ==
          test::SortedByName(inventory));
  }

  TEST_CASE("an untied model without lm_head fails naming the missing tensor") {
    const RuleSet rules = Rules("llama.yaml");
    test::LlamaShape shape;
    shape.lm_head = false;
    PlanOptions options;
    options.params = test::LlamaParams(shape);
    auto plan = MakePlan(rules, test::LlamaInventory(shape), options);
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().code() == ErrorCode::kPlanInvalid);
    CHECK(plan.error().message().find("lm_head.weight") != std::string::npos);
    CHECK(plan.error().where().line > 0);
  }

  TEST_CASE("qwen2 requires the q/k/v biases and names the one that is missing") {
    const RuleSet rules = Rules("qwen2.yaml");
    test::LlamaShape shape;
    shape.model_type = "qwen2";
    shape.qkv_bias = true;
    auto inventory = test::LlamaInventory(shape);
    std::erase_if(inventory, [](const TensorInfo& t) {
      return t.name == "model.layers.1.self_attn.v_proj.bias";
    });
    PlanOptions options;
    options.params = test::LlamaParams(shape);
    auto plan = MakePlan(rules, inventory, options);
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().message().find("model.layers.1.self_attn.v_proj.bias") != std::string::npos);
  }

  TEST_CASE("an unknown extra tensor fails with the list of unmatched names") {
    const RuleSet rules = Rules("llama.yaml");
    test::LlamaShape shape;
    auto inventory = test::LlamaInventory(shape);
    inventory.push_back(test::Info("model.layers.0.self_attn.q_norm.weight", DType::kBF16, {8}));
    inventory.push_back(test::Info("optimizer.step", DType::kI64, {}));
    PlanOptions options;
    options.params = test::LlamaParams(shape);
    auto plan = MakePlan(rules, inventory, options);
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().code() == ErrorCode::kPlanInvalid);
    const std::string m = plan.error().message();
    CHECK(m.find("2 input tensors match no rule") != std::string::npos);
    CHECK(m.find("model.layers.0.self_attn.q_norm.weight") != std::string::npos);
    CHECK(m.find("optimizer.step") != std::string::npos);
  }

  TEST_CASE("a layer missing in the middle is reported with its tensor names") {
    const RuleSet rules = Rules("llama.yaml");
    test::LlamaShape shape;
    shape.layers = 3;
    auto inventory = test::LlamaInventory(shape);
    std::erase_if(inventory,
                  [](const TensorInfo& t) { return t.name.rfind("model.layers.1.", 0) == 0; });
    PlanOptions options;
    options.params = test::LlamaParams(shape);
    auto plan = CompilePlan(rules, inventory, options);
    REQUIRE(plan.errors.size() >= 9);
    bool found = false;
    for (const Error& e : plan.errors)
      found =
          found || e.message().find("model.layers.1.self_attn.q_proj.weight") != std::string::npos;
    CHECK(found);
  }

  TEST_CASE("a layer past the configured count is unmatched and the message says why") {
    const RuleSet rules = Rules("llama.yaml");
    test::LlamaShape shape;
    shape.layers = 3;
    const auto inventory = test::LlamaInventory(shape);
    PlanOptions options;
    options.params = test::LlamaParams(shape);
    options.params.set = {{"layers", "2"}};
    auto plan = MakePlan(rules, inventory, options);
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().message().find("layer 2 is not below its count 2") != std::string::npos);
  }

  TEST_CASE("without a layer count coverage still finds a gap in the layers") {
    const RuleSet rules = Rules("llama.yaml");
    test::LlamaShape shape;
    shape.layers = 3;
    auto inventory = test::LlamaInventory(shape);
    std::erase_if(inventory, [](const TensorInfo& t) {
      return t.name == "model.layers.1.mlp.up_proj.weight";
    });
    auto plan = MakePlan(rules, inventory, {});
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().message().find("model.layers.1.mlp.up_proj.weight") != std::string::npos);
  }

  TEST_CASE("rotary inv_freq buffers are dropped and reported and left out of the round trip") {
    const RuleSet rules = Rules("llama.yaml");
    test::LlamaShape shape;
    shape.inv_freq = true;
    const auto inventory = test::LlamaInventory(shape);
    PlanOptions options;
    options.params = test::LlamaParams(shape);
    const Plan forward = PlanOrFail(rules, inventory, options);
    CHECK(forward.dropped.size() == 2);
    CHECK(forward.lossy);
    std::vector<TensorInfo> kept = inventory;
    std::erase_if(kept, [](const TensorInfo& t) { return t.name.ends_with("inv_freq"); });
    CHECK(test::SortedByName(RoundTrip(rules, inventory, options)) == test::SortedByName(kept));
  }

  TEST_CASE("fused grouped q/k/v with 14 heads and 2 KV heads and head_dim 6 round trips") {
    const RuleSet rules = Rules("qwen2.yaml");
    test::LlamaShape shape;
    shape.model_type = "qwen2";
    shape.qkv_bias = true;
    shape.hidden = 32;
    shape.heads = 14;
    shape.kv_heads = 2;
    shape.head_dim = 6;  // not hidden / heads
    const auto inventory = test::LlamaInventory(shape);
    PlanOptions options;
    options.params = test::LlamaParams(shape);
    options.params.set = {{"qkv_concat", "true"}};
    const Plan forward = PlanOrFail(rules, inventory, options);
    const PlanStep* qkv = StepWriting(forward, "model.layers.0.attention.w_qkv.weight");
    REQUIRE(qkv != nullptr);
    CHECK(qkv->inputs.size() == 3);
    CHECK(qkv->outputs[0].shape == Shape{(14 + 2 + 2) * 6, 32});
    CHECK_FALSE(qkv->ops.empty());
    CHECK(StepWriting(forward, "model.layers.1.attention.w_qkv.bias"));
    CHECK(StepWriting(forward, "model.layers.1.feed_forward.w_gate_hidden.weight"));
    CHECK_FALSE(HasOutput(forward, "model.layers.0.attention.wq.weight"));
    CHECK(forward.peak_bytes > 0);
    CHECK(test::SortedByName(RoundTrip(rules, inventory, options)) ==
          test::SortedByName(inventory));
    options.params.set.push_back({"concat_layout", "plain"});
    CHECK(test::SortedByName(RoundTrip(rules, inventory, options)) ==
          test::SortedByName(inventory));
  }

  TEST_CASE(
      "fused q/k/v whose shapes disagree with the config names the rule and the tensor shapes") {
    const RuleSet rules = Rules("llama.yaml");
    test::LlamaShape shape;
    shape.heads = 4;
    shape.kv_heads = 2;
    PlanOptions options;
    options.params = test::LlamaParams(shape);
    options.params.set = {{"qkv_concat", "true"}, {"kv_heads", "1"}};
    auto plan = MakePlan(rules, test::LlamaInventory(shape), options);
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().code() == ErrorCode::kPlanInvalid);
    // The declared shape of k_proj catches it before the interleave does, with the value given.
    const std::string m = plan.error().message();
    CHECK(m.find("tensor \"model.layers.0.self_attn.k_proj.weight\" is [16, 32], but rule") !=
          std::string::npos);
    CHECK(m.find("llama.yaml") != std::string::npos);
    CHECK(m.find("declares [kv_heads * head_dim, hidden_size] = [8, 32]") != std::string::npos);
    CHECK(m.find("kv_heads = 1 (--set)") != std::string::npos);
  }

  TEST_CASE("a parameter an active rule needs but nobody gives is named with the keys tried") {
    const RuleSet rules = Rules("llama.yaml");
    test::LlamaShape shape;
    PlanOptions options;
    options.params.set = {{"qkv_concat", "true"}};
    auto plan = MakePlan(rules, test::LlamaInventory(shape), options);
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().message().find("parameter heads has no value") != std::string::npos);
    CHECK(plan.error().message().find("num_attention_heads") != std::string::npos);
  }

  TEST_CASE("an unknown --set name is a usage error listing the accepted names") {
    const RuleSet rules = Rules("llama.yaml");
    PlanOptions options;
    options.params.set = {{"qkv_concatt", "true"}};
    auto plan = MakePlan(rules, {}, options);
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().code() == ErrorCode::kUsage);
    CHECK(plan.error().message().find("did you mean \"qkv_concat\"") != std::string::npos);
  }

  TEST_CASE("a cast narrows floating tensors only and marks the steps lossy") {
    const RuleSet rules = Rules("llama.yaml");
    test::LlamaShape shape;
    shape.dtype = DType::kF32;
    shape.inv_freq = false;
    PlanOptions options;
    options.params = test::LlamaParams(shape);
    options.cast = DType::kBF16;
    const Plan plan = PlanOrFail(rules, test::LlamaInventory(shape), options);
    for (const PlanStep& s : plan.steps) {
      CHECK(s.outputs[0].dtype == DType::kBF16);
      CHECK(s.value_dtype == DType::kF32);
      CHECK(s.lossy);
      CHECK(s.working_bytes == s.outputs[0].byte_size);
    }
    options.cast = DType::kF32;
    shape.dtype = DType::kBF16;
    const Plan wider = PlanOrFail(rules, test::LlamaInventory(shape), options);
    CHECK_FALSE(wider.lossy);
  }
  TEST_CASE("a detected parameter takes the first value under which the names plan") {
    const RuleSet rules = RulesText(kPrefixed);
    const Plan bare = PlanOrFail(rules, Named({"wte", "h.0.w"}), {});
    CHECK(Detected(bare, "prefix") == "");
    const Plan prefixed =
        PlanOrFail(rules, Named({"transformer.wte", "transformer.h.0.w", "lm_head"}), {});
    CHECK(Detected(prefixed, "prefix") == "transformer.");
    CHECK(HasNote(prefixed, "parameter prefix = 'transformer.' (detected from the input names)"));
    CHECK(HasOutput(prefixed, "w"));
    // lm_head is tied to the prefixed embedding: checked equal to it and dropped.
    REQUIRE(prefixed.dropped.size() == 1);
    CHECK(prefixed.dropped[0].checked_equal);
    const auto verify =
        std::find_if(prefixed.steps.begin(), prefixed.steps.end(),
                     [](const PlanStep& st) { return st.kind == PlanStep::Kind::kVerifyEqual; });
    REQUIRE(verify != prefixed.steps.end());
    CHECK(prefixed.inventory[verify->inputs[1]].name == "transformer.wte");
  }

  TEST_CASE("reverse takes the prefix from --set or the default, never from detection") {
    const RuleSet rules = RulesText(kPrefixed);
    const auto ms = Named({"embedding", "w"});
    const Plan plain = PlanOrFail(rules, ms, Opts(Direction::kReverse));
    CHECK(HasOutput(plain, "wte"));
    CHECK(plain.detected.empty());
    const Plan set = PlanOrFail(rules, ms, Opts(Direction::kReverse, {{"prefix", "transformer."}}));
    CHECK(HasOutput(set, "transformer.h.0.w"));
  }

  TEST_CASE("lint --against reverses with the detected value, so the round trip holds") {
    const RuleSet rules = RulesText(kPrefixed);
    const auto inventory = Named({"transformer.wte", "transformer.h.0.w", "lm_head"});
    CHECK(CheckRoundTrip(rules, inventory, {}).empty());
  }

  TEST_CASE("a given value is kept, and when it fails the message names the value that fits") {
    const RuleSet rules = RulesText(kPrefixed);
    auto plan = MakePlan(rules, Named({"wte", "h.0.w"}),
                         Opts(Direction::kForward, {{"prefix", "transformer."}}));
    REQUIRE_FALSE(plan.ok());
    const std::string m = plan.error().message();
    CHECK(m.find("2 input tensors match no rule") != std::string::npos);
    CHECK(m.find("the input names fit prefix = '', not prefix = 'transformer.' as given") !=
          std::string::npos);
  }

  TEST_CASE("when no value fits, the problems reported are those of the best match") {
    const RuleSet rules = RulesText(kPrefixed);
    auto plan = MakePlan(rules, Named({"transformer.wte", "transformer.h.0.w", "h.1.w"}), {});
    REQUIRE_FALSE(plan.ok());
    const std::string m = plan.error().message();
    CHECK(m.find("1 input tensor matches no rule") != std::string::npos);
    CHECK(m.find("\n    h.1.w") != std::string::npos);
    CHECK(m.find("no value of the detected parameters lets the input plan (tried prefix in '', "
                 "'transformer.'); "
                 "the problems above are those under prefix = 'transformer.', where 2 of 3 "
                 "inputs match") != std::string::npos);
  }

  TEST_CASE("the first value that plans wins over the one under which the most names match") {
    // Under "big" every name matches but the required head is missing; "small" plans.
    const RuleSet rules = RulesText(R"(
params:
  kind: {type: string, values: [big, small], detect: true}
rules:
  - {hf: a, ms: a}
  - {hf: head, ms: head, optional: kind == 'small'}
)");
    const Plan plan = PlanOrFail(rules, Named({"a"}), {});
    CHECK(Detected(plan, "kind") == "small");
  }

  TEST_CASE("telechat: the type and prefix are detected from the key spelling") {
    const RuleSet rules = Rules("telechat_12b.yaml");
    PlanOptions options;
    auto config = ParseConfigJson(R"({"n_layer": 2})", "config.json");
    REQUIRE(config.ok());
    options.params.config = *config;
    struct Case {
      bool prefixed, head;
      const char* type;
      const char* prefix;
    };
    for (const Case& c :
         {Case{true, true, "telechat_12b", "transformer."}, Case{false, false, "telechat_7b", ""},
          Case{true, false, "telechat_7b", "transformer."}, Case{false, true, "telechat_7b", ""}}) {
      CAPTURE(c.prefixed);
      CAPTURE(c.head);
      const Plan plan = PlanOrFail(rules, TelechatInventory(c.prefixed, c.head), options);
      CHECK(Detected(plan, "telechat_type") == c.type);
      CHECK(Detected(plan, "hf_prefix") == c.prefix);
      CHECK(HasOutput(plan, "model.layers.1.attention.wk_v.weight"));
      CHECK(HasOutput(plan, "lm_head.weight") == c.head);
      CHECK(CheckRoundTrip(rules, TelechatInventory(c.prefixed, c.head), options.params).empty());
    }
  }

  TEST_CASE("telechat: a --telechat_type the names contradict fails and says which type fits") {
    const RuleSet rules = Rules("telechat_12b.yaml");
    PlanOptions options;
    auto config = ParseConfigJson(R"({"n_layer": 2})", "config.json");
    REQUIRE(config.ok());
    options.params.config = *config;
    options.params.set = {{"telechat_type", "telechat_12b"}};
    auto as_12b = MakePlan(rules, TelechatInventory(false, false), options);
    REQUIRE_FALSE(as_12b.ok());
    CHECK(as_12b.error().message().find(
              "the input names fit telechat_type = 'telechat_7b', hf_prefix = '', not "
              "telechat_type = 'telechat_12b' as given") != std::string::npos);
    options.params.set = {{"telechat_type", "telechat_7b"}};
    auto as_7b = MakePlan(rules, TelechatInventory(true, true), options);
    REQUIRE_FALSE(as_7b.ok());
    CHECK(as_7b.error().message().find("lm_head.weight") != std::string::npos);
    CHECK(as_7b.error().message().find("fit telechat_type = 'telechat_12b'") != std::string::npos);
    const RuleSet seven = Rules("telechat_7b.yaml");
    options.params.set = {};
    CHECK_FALSE(MakePlan(seven, TelechatInventory(true, true), options).ok());
    CHECK(MakePlan(seven, TelechatInventory(true, false), options).ok());
  }

  TEST_CASE("an op or cast that makes a tensor of 2^64 bytes or more fails at its rule") {
    // tests/fuzz/regressions/rules/output_size_overflow_pad.yaml: the output's byte size wrapped
    // to 0, and the executor would have been asked for the real size.
    const auto fails = [](const std::string& ops, std::vector<TensorInfo> inventory,
                          std::optional<DType> cast = std::nullopt) {
      const RuleSet rules = RulesText("rules:\n  - hf: [a, b]\n    ms: [c]\n    ops:\n" + ops);
      PlanOptions options;
      options.cast = cast;
      auto plan = MakePlan(rules, inventory, options);
      REQUIRE_FALSE(plan.ok());
      CHECK(plan.error().code() == ErrorCode::kPlanInvalid);
      CHECK(plan.error().message().find("2^64") != std::string::npos);
    };
    const uint64_t half = uint64_t{1} << 63;
    const std::vector<TensorInfo> two = {test::Info("a", DType::kF32, {2}),
                                         test::Info("b", DType::kF32, {2})};
    fails("      - concat: {axis: 0, equal: true}\n      - pad: {axis: 0, from: 4, to: " +
              std::to_string(uint64_t{1} << 62) + "}\n",
          two);
    const std::vector<TensorInfo> huge = {test::Info("a", DType::kU8, {half}),
                                          test::Info("b", DType::kU8, {half})};
    fails("      - concat: {axis: 0, equal: true}\n", huge);
    fails("      - concat: {axis: 0, equal: true}\n      - split: {axis: 0, sizes: [" +
              std::to_string(half - 1) + ", " + std::to_string(half - 1) + ", 6]}\n" +
              "      - concat: {axis: 0, equal: true}\n",
          two);
    const std::vector<TensorInfo> wide = {test::Info("a", DType::kF16, {half / 4}),
                                          test::Info("b", DType::kF16, {half / 4})};
    fails("      - concat: {axis: 0, equal: true}\n", wide, DType::kF64);
  }

  TEST_CASE("a missing layer far past the others is reported without listing every layer") {
    // tests/fuzz/regressions/rules/oom_coverage_of_layer_99999999999.yaml: coverage listed
    // every layer index up to the largest seen, 10^11 of them.
    const RuleSet rules =
        RulesText("placeholders: {l: int}\nrules:\n  - {hf: \"x.{l}\", ms: \"y.{l}\"}\n");
    auto plan = MakePlan(rules, Named({"x.99999999999"}), {});
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().message().find("at least 999999 of its tensors are missing: x.0, x.1") !=
          std::string::npos);
  }

  TEST_CASE("gpt2: without --layers or n_layer every layer is converted and nothing dropped") {
    const RuleSet rules = Rules("gpt2.yaml");
    // Hidden size 4, vocabulary 8, 6 positions, MLP 16 wide: the shapes gpt2.yaml declares.
    std::vector<TensorInfo> inventory = {test::Info("wte.weight", DType::kF32, {8, 4}),
                                         test::Info("wpe.weight", DType::kF32, {6, 4}),
                                         test::Info("ln_f.weight", DType::kF32, {4}),
                                         test::Info("ln_f.bias", DType::kF32, {4})};
    const std::vector<std::pair<const char*, Shape>> layer = {{"ln_1.weight", {4}},
                                                              {"ln_1.bias", {4}},
                                                              {"ln_2.weight", {4}},
                                                              {"ln_2.bias", {4}},
                                                              {"attn.c_attn.weight", {4, 12}},
                                                              {"attn.c_attn.bias", {12}},
                                                              {"attn.c_proj.weight", {4, 4}},
                                                              {"attn.c_proj.bias", {4}},
                                                              {"mlp.c_fc.weight", {4, 16}},
                                                              {"mlp.c_fc.bias", {16}},
                                                              {"mlp.c_proj.weight", {16, 4}},
                                                              {"mlp.c_proj.bias", {4}}};
    for (int l = 0; l < 3; ++l) {
      for (const auto& [name, shape] : layer)
        inventory.push_back(test::Info("h." + std::to_string(l) + "." + name, DType::kF32, shape));
    }
    const Plan all = PlanOrFail(rules, inventory, {});
    CHECK(all.dropped.empty());
    CHECK(HasOutput(all, "backbone.blocks.2.attention.dense3.weight"));
    CHECK(HasNote(all, "drops nothing: its when reads layers, which has no value"));
    const Plan two = PlanOrFail(rules, inventory, Opts(Direction::kForward, {{"layers", "2"}}));
    CHECK(two.dropped.size() == 12);
    CHECK_FALSE(HasOutput(two, "backbone.blocks.2.attention.dense3.weight"));
    CHECK_FALSE(MakePlan(rules, inventory, Opts(Direction::kForward, {{"layers", "4"}})).ok());
  }
}

}  // namespace
}  // namespace cw
