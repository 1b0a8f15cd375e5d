// Every rule op, planned and executed forward and then in reverse, gives back the input bytes;
// the fused layouts produce the exact row orders of the examples in docs/rules.md, '6. Ops'.
#include "engine/plan/step_ops.h"

#include <map>
#include <random>

#include <doctest/doctest.h>

#include "engine/plan/planner.h"
#include "engine/ruleset/rule_file.h"
#include "tests/support/inventory_builder.h"
#include "tests/support/plan_fixtures.h"

namespace cw {
namespace {

using test::RulesText;

struct Tensor {
  TensorInfo info;
  std::vector<std::byte> bytes;
};
using Tensors = std::map<std::string, Tensor>;

Tensor RandomTensor(const std::string& name, DType dtype, const Shape& shape, std::mt19937& rng) {
  Tensor t{test::Info(name, dtype, shape), {}};
  t.bytes.resize(t.info.byte_size);
  for (std::byte& b : t.bytes)
    b = static_cast<std::byte>(rng() & 0xff);
  return t;
}

// Rows numbered 0, 1, 2, ... as one-byte elements of a [rows, 1] tensor.
Tensor RowTensor(const std::string& name, uint64_t first, uint64_t rows) {
  Tensor t{test::Info(name, DType::kU8, {rows, 1}), {}};
  for (uint64_t i = 0; i < rows; ++i)
    t.bytes.push_back(static_cast<std::byte>(first + i));
  return t;
}

std::vector<int> Rows(const Tensor& t) {
  std::vector<int> out;
  for (std::byte b : t.bytes)
    out.push_back(static_cast<int>(b));
  return out;
}

// Plans `direction` on the tensors and runs every step the way the executor will.
Tensors Run(const RuleSet& rules, const Tensors& in, Direction direction,
            const ParamInputs& params = {}) {
  std::vector<TensorInfo> inventory;
  for (const auto& [name, t] : in)
    inventory.push_back(t.info);
  PlanOptions options;
  options.direction = direction;
  options.params = params;
  auto plan = MakePlan(rules, inventory, options);
  if (!plan.ok())
    FAIL(plan.error().ToString());
  Tensors out;
  for (const PlanStep& step : plan->steps) {
    std::vector<TensorData> data;
    for (uint64_t i : step.inputs)
      data.push_back(TensorData::Borrow(in.at(plan->inventory[i].name).bytes));
    if (step.kind == PlanStep::Kind::kVerifyEqual) {
      CHECK(SameBytes(data[0], data[1]));
      continue;
    }
    auto result = ApplyStep(*plan, step, std::move(data));
    REQUIRE(result.ok());
    REQUIRE(result->size() == step.outputs.size());
    for (size_t i = 0; i < step.outputs.size(); ++i) {
      const ByteSpan b = (*result)[i].bytes();
      out[step.outputs[i].name] = Tensor{step.outputs[i], {b.begin(), b.end()}};
    }
  }
  return out;
}

void CheckRoundTrip(const RuleSet& rules, const Tensors& in, const ParamInputs& params = {}) {
  const Tensors there = Run(rules, in, Direction::kForward, params);
  const Tensors back = Run(rules, there, Direction::kReverse, params);
  REQUIRE(back.size() == in.size());
  // Not a structured binding: clang 14 cannot capture one in CAPTURE's lambda.
  for (const auto& entry : in) {
    const std::string& name = entry.first;
    CAPTURE(name);
    REQUIRE(back.count(name));
    CHECK(back.at(name).info == entry.second.info);
    CHECK(back.at(name).bytes == entry.second.bytes);
  }
}

ParamInputs Set(std::vector<std::pair<std::string, std::string>> values) {
  ParamInputs p;
  p.set = std::move(values);
  return p;
}

const char* kGqaParams = R"(
params:
  heads: {type: int}
  kv_heads: {type: int}
  head_dim: {type: int}
  inter: {type: int}
placeholders:
  layer: int
  wb: {type: ident, values: [weight, bias]}
)";

TEST_SUITE("plan.step_ops") {
  TEST_CASE("transpose and permute round trip on random shapes and dtypes") {
    const RuleSet rules = RulesText(R"(
rules:
  - {hf: a, ms: A, ops: [{transpose: [0, 1]}]}
  - {hf: b, ms: B, ops: [{permute: [2, 0, 1]}]}
  - {hf: c, ms: C, ops: [{transpose: [-1, 0]}]}
)");
    std::mt19937 rng(1);
    for (DType d : {DType::kF32, DType::kBF16, DType::kI64, DType::kU8}) {
      Tensors in;
      in["a"] = RandomTensor("a", d, {1 + rng() % 9, 1 + rng() % 9}, rng);
      in["b"] = RandomTensor("b", d, {1 + rng() % 5, 1 + rng() % 5, 1 + rng() % 5}, rng);
      in["c"] = RandomTensor("c", d, {3, 1 + rng() % 5, 4}, rng);
      CheckRoundTrip(rules, in);
    }
  }

  TEST_CASE("reshape round trips and restores the declared source shape") {
    const RuleSet rules = RulesText(R"(
params: {d: {type: int, default: 4}}
rules:
  - {hf: a, ms: A, ops: [{reshape: {from: [-1, d], to: [2, -1, d]}}]}
)");
    std::mt19937 rng(2);
    Tensors in;
    in["a"] = RandomTensor("a", DType::kF16, {6, 4}, rng);
    const Tensors there = Run(rules, in, Direction::kForward);
    CHECK(there.at("A").info.shape == Shape{2, 3, 4});
    CheckRoundTrip(rules, in);
  }

  TEST_CASE("concat with sizes and split round trip unequal GQA parts (14 heads and 2 KV heads)") {
    const RuleSet rules = RulesText(std::string(kGqaParams) + R"(
rules:
  - hf: ["l.{layer}.q.weight", "l.{layer}.k.weight", "l.{layer}.v.weight"]
    ms: l.{layer}.qkv.weight
    ops:
      - concat: {axis: 0, sizes: [heads * head_dim, kv_heads * head_dim, kv_heads * head_dim]}
)");
    std::mt19937 rng(3);
    Tensors in;
    // head_dim 6 differs from hidden / heads = 40 / 14.
    in["l.0.q.weight"] = RandomTensor("l.0.q.weight", DType::kBF16, {14 * 6, 40}, rng);
    in["l.0.k.weight"] = RandomTensor("l.0.k.weight", DType::kBF16, {2 * 6, 40}, rng);
    in["l.0.v.weight"] = RandomTensor("l.0.v.weight", DType::kBF16, {2 * 6, 40}, rng);
    CheckRoundTrip(rules, in, Set({{"heads", "14"}, {"kv_heads", "2"}, {"head_dim", "6"}}));
  }

  TEST_CASE("a split into equal parts round trips with the equal concat it inverts to") {
    const RuleSet rules = RulesText(R"(
placeholders: {layer: int, wb: {type: ident, values: [weight, bias]}}
rules:
  - hf: blocks.{layer}.attn.qkv.{wb}
    ms: ["b.{layer}.dense1.{wb}", "b.{layer}.dense2.{wb}", "b.{layer}.dense3.{wb}"]
    ops: [{split: {axis: 0, parts: 3}}]
)");
    std::mt19937 rng(4);
    Tensors in;
    in["blocks.0.attn.qkv.weight"] =
        RandomTensor("blocks.0.attn.qkv.weight", DType::kF32, {24, 8}, rng);
    in["blocks.0.attn.qkv.bias"] = RandomTensor("blocks.0.attn.qkv.bias", DType::kF32, {24}, rng);
    CheckRoundTrip(rules, in);
  }

  TEST_CASE("a split of the last axis followed by transposes round trips (GPT-2 c_attn)") {
    const RuleSet rules = RulesText(R"(
placeholders: {layer: int}
rules:
  - hf: h.{layer}.attn.c_attn.weight
    ms: ["d.{layer}.dense1.weight", "d.{layer}.dense2.weight", "d.{layer}.dense3.weight"]
    ops:
      - split: {axis: -1, parts: 3}
      - transpose: [0, 1]
)");
    std::mt19937 rng(5);
    Tensors in;
    in["h.0.attn.c_attn.weight"] =
        RandomTensor("h.0.attn.c_attn.weight", DType::kF16, {8, 24}, rng);
    const Tensors there = Run(rules, in, Direction::kForward);
    CHECK(there.at("d.0.dense2.weight").info.shape == Shape{8, 8});
    CheckRoundTrip(rules, in);
  }

  TEST_CASE(
      "stack and unstack over eleven experts keep numeric order with and without the gmm permute") {
    const RuleSet rules = RulesText(R"(
params:
  experts: {type: int}
  use_gmm: {type: bool, default: false}
placeholders:
  layer: int
  expert: {type: int, count: experts}
  w: {type: ident, values: [w1, w2, w3]}
rules:
  - hf: m.layers.{layer}.experts.{expert}.{w}.weight
    ms: m.layers.{layer}.ffn.{w}.weight
    ops:
      - stack: {over: expert, axis: 0}
      - permute: [0, 2, 1]
        when: use_gmm
)");
    std::mt19937 rng(6);
    Tensors in;
    for (int e = 0; e < 11; ++e) {
      for (const char* w : {"w1", "w2", "w3"}) {
        const std::string name = "m.layers.0.experts." + std::to_string(e) + "." + w + ".weight";
        in[name] = RandomTensor(name, DType::kBF16, {6, 4}, rng);
      }
    }
    for (const char* gmm : {"false", "true"}) {
      CAPTURE(gmm);
      const ParamInputs p = Set({{"experts", "11"}, {"use_gmm", gmm}});
      const Tensors there = Run(rules, in, Direction::kForward, p);
      const Tensor& w1 = there.at("m.layers.0.ffn.w1.weight");
      CHECK(w1.info.shape == (std::string(gmm) == "true" ? Shape{11, 4, 6} : Shape{11, 6, 4}));
      if (std::string(gmm) == "false") {
        const auto& e10 = in.at("m.layers.0.experts.10.w1.weight").bytes;
        CHECK(std::equal(e10.begin(), e10.end(), w1.bytes.begin() + 10 * 6 * 4 * 2));
      }
      CheckRoundTrip(rules, in, p);
    }
  }

  TEST_CASE("grouped q/k/v interleave gives the documented row order and round trips") {
    const RuleSet rules = RulesText(std::string(kGqaParams) + R"(
rules:
  - hf: ["l.{layer}.q", "l.{layer}.k", "l.{layer}.v"]
    ms: l.{layer}.qkv
    ops:
      - interleave: {axis: 0, groups: kv_heads, chunks: [heads / kv_heads * head_dim, head_dim, head_dim]}
)");
    Tensors in;
    in["l.0.q"] = RowTensor("l.0.q", 0, 8);
    in["l.0.k"] = RowTensor("l.0.k", 8, 4);
    in["l.0.v"] = RowTensor("l.0.v", 12, 4);
    const ParamInputs p = Set({{"heads", "4"}, {"kv_heads", "2"}, {"head_dim", "2"}});
    const Tensors there = Run(rules, in, Direction::kForward, p);
    CHECK(Rows(there.at("l.0.qkv")) ==
          std::vector<int>{0, 1, 2, 3, 8, 9, 12, 13, 4, 5, 6, 7, 10, 11, 14, 15});
    CheckRoundTrip(rules, in, p);
  }

  TEST_CASE(
      "grouped q/k/v interleave round trips weights and biases with 14 heads and 2 KV heads of 6 "
      "rows") {
    const RuleSet rules = RulesText(std::string(kGqaParams) + R"(
rules:
  - hf: ["l.{layer}.q.{wb}", "l.{layer}.k.{wb}", "l.{layer}.v.{wb}"]
    ms: l.{layer}.qkv.{wb}
    ops:
      - interleave: {axis: 0, groups: kv_heads, chunks: [heads / kv_heads * head_dim, head_dim, head_dim]}
)");
    std::mt19937 rng(8);
    Tensors in;
    for (const char* wb : {"weight", "bias"}) {
      const bool w = std::string(wb) == "weight";
      for (const auto& [n, rows] :
           std::map<std::string, uint64_t>{{"q", 84}, {"k", 12}, {"v", 12}}) {
        const std::string name = "l.0." + n + "." + wb;
        in[name] = RandomTensor(name, DType::kBF16, w ? Shape{rows, 40} : Shape{rows}, rng);
      }
    }
    CheckRoundTrip(rules, in, Set({{"heads", "14"}, {"kv_heads", "2"}, {"head_dim", "6"}}));
  }

  TEST_CASE("gate/up interleave alternates rows one by one and round trips") {
    const RuleSet rules = RulesText(std::string(kGqaParams) + R"(
rules:
  - hf: ["l.{layer}.gate", "l.{layer}.up"]
    ms: l.{layer}.gate_up
    ops: [{interleave: {axis: 0, groups: inter, chunks: [1, 1]}}]
)");
    Tensors in;
    in["l.0.gate"] = RowTensor("l.0.gate", 0, 4);
    in["l.0.up"] = RowTensor("l.0.up", 4, 4);
    const ParamInputs p = Set({{"inter", "4"}});
    CHECK(Rows(Run(rules, in, Direction::kForward, p).at("l.0.gate_up")) ==
          std::vector<int>{0, 4, 1, 5, 2, 6, 3, 7});
    CheckRoundTrip(rules, in, p);
  }

  TEST_CASE("rope interleave uses each tensor's head count (heads for q and kv_heads for k)") {
    const RuleSet rules = RulesText(std::string(kGqaParams) + R"(
rules:
  - hf: ["l.{layer}.q", "l.{layer}.k"]
    ms: ["l.{layer}.wq", "l.{layer}.wk"]
    ops: [{rope_interleave: {heads: [heads, kv_heads]}}]
)");
    const uint64_t d = 6;
    Tensors in;
    in["l.0.q"] = RowTensor("l.0.q", 0, 14 * d);
    in["l.0.k"] = RowTensor("l.0.k", 100, 2 * d);
    const ParamInputs p = Set({{"heads", "14"}, {"kv_heads", "2"}});
    const Tensors there = Run(rules, in, Direction::kForward, p);
    // llama.cpp: reshape(n_head, 2, d/2).swapaxes(1, 2): row h*d + 2i + s <- row h*d + s*d/2 + i.
    for (const auto& [name, first, heads] :
         {std::tuple{"l.0.wq", 0, 14}, std::tuple{"l.0.wk", 100, 2}}) {
      const auto rows = Rows(there.at(name));
      for (int h = 0; h < heads; ++h) {
        for (int i = 0; i < 3; ++i) {
          for (int s = 0; s < 2; ++s)
            CHECK(rows[static_cast<size_t>(h * 6 + 2 * i + s)] == first + h * 6 + s * 3 + i);
        }
      }
    }
    CheckRoundTrip(rules, in, p);
  }

  TEST_CASE("rope deinterleave on selected parts of a fused tensor puts evens first (glm3)") {
    const RuleSet rules = RulesText(std::string(kGqaParams) + R"(
rules:
  - hf: l.{layer}.qkv
    ms: l.{layer}.qkv_rope
    ops:
      - split: {axis: 0, sizes: [heads * head_dim, kv_heads * head_dim, kv_heads * head_dim]}
      - rope_deinterleave: {heads: [heads, kv_heads]}
        tensors: [0, 1]
      - concat: {axis: 0, sizes: [heads * head_dim, kv_heads * head_dim, kv_heads * head_dim]}
)");
    Tensors in;
    in["l.0.qkv"] = RowTensor("l.0.qkv", 0, (4 + 2 + 2) * 4);
    const ParamInputs p = Set({{"heads", "4"}, {"kv_heads", "2"}, {"head_dim", "4"}});
    const auto rows = Rows(Run(rules, in, Direction::kForward, p).at("l.0.qkv_rope"));
    // Per head of 4 rows: new row j = old 2j for j < 2, old 2(j-2)+1 otherwise; v untouched.
    CHECK(std::vector<int>(rows.begin(), rows.begin() + 8) ==
          std::vector<int>{0, 2, 1, 3, 4, 6, 5, 7});
    CHECK(std::vector<int>(rows.begin() + 24, rows.end()) ==
          std::vector<int>{24, 25, 26, 27, 28, 29, 30, 31});
    CheckRoundTrip(rules, in, p);
  }

  TEST_CASE("pad with zeros and the truncate it inverts to round trip a vocabulary") {
    const RuleSet rules = RulesText(R"(
params: {vocab: {type: int, default: 10}, padded: {type: int, default: 16}}
rules:
  - hf: embed
    ms: embed_padded
    ops: [{pad: {axis: 0, from: vocab, to: padded}}]
)");
    std::mt19937 rng(9);
    Tensors in;
    in["embed"] = RandomTensor("embed", DType::kF32, {10, 3}, rng);
    const Tensors there = Run(rules, in, Direction::kForward);
    CHECK(there.at("embed_padded").info.shape == Shape{16, 3});
    CheckRoundTrip(rules, in);
  }

  TEST_CASE("a rename step passes borrowed bytes through without a copy") {
    const RuleSet rules = RulesText("rules: [{hf: a, ms: b}]\n");
    const std::vector<TensorInfo> inventory{test::Info("a", DType::kF32, {2})};
    auto plan = MakePlan(rules, inventory, {});
    REQUIRE(plan.ok());
    REQUIRE(plan->steps[0].is_rename());
    const std::vector<std::byte> bytes(8, std::byte{1});
    std::vector<TensorData> in;
    in.push_back(TensorData::Borrow(bytes));
    auto out = ApplyStep(*plan, plan->steps[0], std::move(in));
    REQUIRE(out.ok());
    CHECK_FALSE((*out)[0].owned());
    CHECK((*out)[0].bytes().data() == bytes.data());
  }

  TEST_CASE("input bytes of the wrong size are an internal error naming the tensor") {
    const RuleSet rules = RulesText("rules: [{hf: a, ms: b, ops: [{transpose: [0, 1]}]}]\n");
    auto plan = MakePlan(rules, {test::Info("a", DType::kF32, {2, 2})}, {});
    REQUIRE(plan.ok());
    const std::vector<std::byte> bytes(4);
    std::vector<TensorData> in;
    in.push_back(TensorData::Borrow(bytes));
    auto out = ApplyStep(*plan, plan->steps[0], std::move(in));
    REQUIRE_FALSE(out.ok());
    CHECK(out.error().code() == ErrorCode::kInternal);
    CHECK(out.error().message().find("a has 4 bytes") != std::string::npos);
  }
}

}  // namespace
}  // namespace cw
