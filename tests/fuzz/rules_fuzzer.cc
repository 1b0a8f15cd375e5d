// Fuzz target: the rule-file loader and linter (ParseRuleText, LintRuleSet) and the planner
// (CompilePlan forward and reverse, CheckRoundTrip), then ApplyStep on every small step.
//
// Input: a rule file, optionally followed by a line "#@ inventory" (a YAML comment, so a seed is
// still a rule file) and lines describing what the planner gets:
//   model.embed_tokens.weight BF16 64,32     a tensor: name, safetensors dtype, dims (none: scalar)
//   set layers=2                             a --set value
//   config {"num_hidden_layers": 2}          config.json text (the last such line wins)
//   cast bf16                                --dtype
// Lines that fit none of these are skipped. Without tensor lines, the inventories are made from
// the rule set's own patterns (placeholders 0 and 1, `${param}` from constant defaults), so that
// a mutated rule file still reaches the planner with names it matches.
//
// Forward plans on the hf inventory, then reverse on its outputs (with the detected values);
// reverse plans directly on the ms inventory (the tensor lines when given). Promises checked:
// load and lint errors lie in a file, at a line of the input when they name it; plan errors are
// located; a plan uses each input (or drops it), writes each name once, its ops turn the input
// shapes into the output shapes, and running a step gives the declared byte sizes.
#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/checked_math.h"
#include "engine/base/limits.h"
#include "engine/plan/plan_text.h"
#include "engine/plan/planner.h"
#include "engine/plan/round_trip.h"
#include "engine/plan/step_ops.h"
#include "engine/ruleset/rule_file.h"
#include "engine/ruleset/rule_lint.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using cw::fuzz::Check;

const std::string kFile = "fuzz.yaml";
const std::string kConfigFile = "config.json";
constexpr std::string_view kSeparator = "\n#@ inventory\n";
// ApplyStep runs on steps that hold at most this much, so that a plan may declare large tensors
// without the fuzzer allocating them.
constexpr uint64_t kMaxAppliedBytes = 64 << 10;

struct Input {
  std::string_view yaml;
  std::vector<cw::TensorInfo> tensors;
  cw::PlanOptions options;
};

// The lines of the yaml part, by 1-based number.
class Lines {
 public:
  explicit Lines(std::string_view text) {
    size_t start = 0;
    while (true) {
      const size_t end = text.find('\n', start);
      lines_.push_back(text.substr(start, end - start));
      if (end == std::string_view::npos)
        break;
      start = end + 1;
    }
  }
  size_t count() const { return lines_.size(); }
  // REQUIRES: 1 <= line <= count()
  std::string_view at(int line) const { return lines_[static_cast<size_t>(line) - 1]; }

 private:
  std::vector<std::string_view> lines_;
};

std::optional<cw::Shape> ParseDims(std::string_view text) {
  cw::Shape shape;
  while (!text.empty()) {
    const size_t comma = std::min(text.find(','), text.size());
    uint64_t dim = 0;
    const std::string_view digits = text.substr(0, comma);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), dim);
    if (ec != std::errc() || end != digits.data() + digits.size())
      return std::nullopt;
    shape.push_back(dim);
    text.remove_prefix(std::min(comma + 1, text.size()));
  }
  return shape;
}

// A tensor as a reader would list it: a name within the cap, a rank within the cap, a byte size
// that does not overflow.
std::optional<cw::TensorInfo> ParseTensor(std::string_view line) {
  const size_t first = line.find(' ');
  if (first == std::string_view::npos || first == 0 || first > cw::limits::kMaxNameBytes)
    return std::nullopt;
  std::string_view rest = line.substr(first + 1);
  const size_t second = std::min(rest.find(' '), rest.size());
  const auto dtype = cw::DTypeFromSafetensors(rest.substr(0, second));
  rest.remove_prefix(std::min(second + 1, rest.size()));
  const auto shape = ParseDims(rest);
  if (!dtype || !shape || shape->size() > cw::limits::kMaxRank)
    return std::nullopt;
  const auto bytes = cw::ByteSize(*dtype, *shape);
  if (!bytes)
    return std::nullopt;
  return cw::TensorInfo{std::string(line.substr(0, first)), *dtype, *shape, *bytes};
}

void ParseTail(std::string_view tail, Input& in) {
  while (!tail.empty()) {
    const size_t end = std::min(tail.find('\n'), tail.size());
    const std::string_view line = tail.substr(0, end);
    tail.remove_prefix(std::min(end + 1, tail.size()));
    if (line.starts_with("set ")) {
      const std::string_view kv = line.substr(4);
      const size_t eq = kv.find('=');
      if (eq != std::string_view::npos)
        in.options.params.set.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    } else if (line.starts_with("config ")) {
      const std::string_view json = line.substr(7);
      auto config = cw::ParseConfigJson(json, kConfigFile);
      if (config.ok())
        in.options.params.config = std::move(config).value();
      else
        cw::fuzz::CheckLocated(config.error(), kConfigFile, json.size());
    } else if (line.starts_with("cast ")) {
      in.options.cast = cw::DTypeFromUserName(line.substr(5));
    } else if (auto tensor = ParseTensor(line)) {
      in.tensors.push_back(std::move(*tensor));
    }
  }
}

Input Split(std::string_view text) {
  Input in;
  const size_t separator = text.find(kSeparator);
  in.yaml = text.substr(0, separator);
  if (separator != std::string_view::npos)
    ParseTail(text.substr(separator + kSeparator.size()), in);
  return in;
}

// Bindings of `pattern`'s placeholders: integers 0 and 1 (a group of two layers or experts),
// identifiers each of their values, in every combination up to `cap`.
std::vector<cw::Bindings> SampleBindings(const cw::RuleSet& rules, const cw::NamePattern& pattern,
                                         size_t cap) {
  std::vector<cw::Bindings> out(1);
  for (const std::string& name : pattern.placeholders()) {
    const cw::PlaceholderDecl* decl = rules.FindPlaceholder(name);
    std::vector<cw::Value> values = {cw::Value::Int(0), cw::Value::Int(1)};
    if (!decl->type.integer) {
      values.clear();
      for (const std::string& v : decl->type.values)
        values.push_back(cw::Value::String(v));
      if (values.empty())
        values.push_back(cw::Value::String("x"));
    }
    std::vector<cw::Bindings> next;
    for (const cw::Bindings& b : out) {
      for (size_t i = 0; i < values.size() && next.size() < cap; ++i) {
        next.push_back(b);
        next.back()[name] = values[i];
      }
    }
    out = std::move(next);
  }
  return out;
}

// Names `side`'s patterns give, with parameters at their constant defaults (or first allowed
// values), as F32 [12, 12] tensors: 12 rows split into 2, 3, 4 or 6 equal parts.
std::vector<cw::TensorInfo> Derive(const cw::RuleSet& rules, cw::Side side) {
  constexpr size_t kMaxDerived = 1024;
  std::map<std::string, std::string> params;
  for (const cw::ParamDecl& p : rules.params) {
    const auto value = p.default_value ? p.default_value->AsConstant() : std::nullopt;
    params[p.name] = value ? value->ToText() : p.allowed.empty() ? "" : p.allowed[0].ToText();
  }
  std::set<std::string> seen;
  std::vector<cw::TensorInfo> out;
  for (const cw::Rule& rule : rules.rules) {
    for (const cw::NamePattern& pattern : rule.side(side)) {
      for (const cw::Bindings& b : SampleBindings(rules, pattern, kMaxDerived)) {
        std::string name = pattern.Instantiate(b, params);
        if (out.size() < kMaxDerived && seen.insert(name).second)
          out.push_back(cw::TensorInfo{std::move(name), cw::DType::kF32, {12, 12}, 576});
      }
    }
  }
  return out;
}

// A rule-file problem lies in a file; when that is the input, at one of its lines and, if the
// column is known (not 0), at one of that line's columns or just past its end.
void CheckRuleError(const cw::Error& error, const Lines& lines) {
  cw::fuzz::CheckLocated(error, kFile, 0);
  const cw::Location& where = error.where();
  if (where.file != kFile)
    return;
  Check(where.line >= 1 && static_cast<size_t>(where.line) <= lines.count());
  Check(where.column >= 0 && static_cast<size_t>(where.column) <= lines.at(where.line).size() + 1);
}

// A planning problem is located; when at a line of the input, at one that exists. A bad `set`
// value is a command-line problem (kUsage), with no file to name.
void CheckPlanError(const cw::Error& error, const Lines& lines) {
  if (error.code() == cw::ErrorCode::kUsage) {
    Check(!error.ToString().empty());
    return;
  }
  cw::fuzz::CheckLocated(error, kFile, 0);
  const cw::Location& where = error.where();
  if (where.file == kFile && where.line != 0)
    CheckRuleError(error, lines);
}

// Runs `step` on inputs of its inventory's sizes and checks the outputs' sizes.
void CheckApplied(const cw::Plan& plan, const cw::PlanStep& step) {
  uint64_t input_bytes = 0;
  for (const uint64_t i : step.inputs)
    input_bytes = cw::SaturatingAdd(input_bytes, plan.inventory[i].byte_size);
  if (input_bytes > kMaxAppliedBytes || step.working_bytes > kMaxAppliedBytes)
    return;
  std::vector<cw::TensorData> inputs;
  for (const uint64_t i : step.inputs) {
    cw::TensorData data = cw::TensorData::Allocate(plan.inventory[i].byte_size);
    const cw::MutableByteSpan bytes = data.mutable_bytes();
    for (size_t b = 0; b < bytes.size(); ++b)
      bytes[b] = static_cast<std::byte>(static_cast<uint8_t>(b * 7 + i));
    inputs.push_back(std::move(data));
  }
  const auto outputs = cw::ApplyStep(plan, step, std::move(inputs));
  Check(outputs.ok());
  Check(outputs->size() == step.outputs.size());
  for (size_t k = 0; k < outputs->size(); ++k) {
    Check((*outputs)[k].size() == cw::ByteSize(step.value_dtype, step.outputs[k].shape));
    cw::fuzz::Touch((*outputs)[k].bytes());
  }
}

void CheckStep(const cw::Plan& plan, const cw::PlanStep& step) {
  Check(!step.inputs.empty());
  std::vector<cw::Shape> shapes;
  for (const uint64_t i : step.inputs) {
    Check(i < plan.inventory.size());
    Check(plan.inventory[i].dtype == step.value_dtype);
    shapes.push_back(plan.inventory[i].shape);
  }
  Check(step.working_bytes <= plan.peak_bytes);
  if (step.kind == cw::PlanStep::Kind::kVerifyEqual) {
    Check(step.inputs.size() == 2 && step.outputs.empty() && step.ops.empty());
    Check(shapes[0] == shapes[1]);
    return;
  }
  const auto out_shapes = cw::ApplyToShapes(step.ops, shapes);
  Check(out_shapes.ok());
  Check(out_shapes->size() == step.outputs.size());
  for (size_t k = 0; k < step.outputs.size(); ++k) {
    const cw::TensorInfo& out = step.outputs[k];
    Check(out.shape == (*out_shapes)[k]);
    Check(cw::ByteSize(out.dtype, out.shape) == out.byte_size);
    Check(out.dtype == step.value_dtype ||
          (cw::IsFloat(out.dtype) && cw::IsFloat(step.value_dtype)));
  }
  CheckApplied(plan, step);
}

void CheckPlan(const cw::Plan& plan, const std::vector<cw::TensorInfo>& inventory,
               cw::Direction direction) {
  Check(plan.direction == direction);
  Check(plan.inventory == inventory);
  std::vector<bool> used(inventory.size(), false);
  std::set<std::string> written;
  for (const cw::PlanStep& step : plan.steps) {
    CheckStep(plan, step);
    for (const uint64_t i : step.inputs)
      used[i] = true;
    for (const cw::TensorInfo& out : step.outputs)
      Check(written.insert(out.name).second);
  }
  for (const cw::DroppedInput& d : plan.dropped) {
    Check(d.input < inventory.size());
    used[d.input] = true;
  }
  Check(std::all_of(used.begin(), used.end(), [](bool u) { return u; }));
  Check(!cw::PlanToText(plan).empty());
  const std::string json = cw::PlanToJson(plan);
  Check(std::all_of(json.begin(), json.end(), [](char c) { return c >= 0 && c <= 0x7e; }));
}

// The plan, checked, or nullopt after checking its errors.
std::optional<cw::Plan> Compile(const cw::RuleSet& rules, const std::vector<cw::TensorInfo>& in,
                                cw::PlanOptions options, cw::Direction direction,
                                const Lines& lines) {
  options.direction = direction;
  cw::PlanOutcome outcome = cw::CompilePlan(rules, in, options);
  Check(outcome.plan.has_value() == outcome.errors.empty());
  for (const cw::Error& e : outcome.errors)
    CheckPlanError(e, lines);
  if (outcome.plan)
    CheckPlan(*outcome.plan, in, direction);
  return std::move(outcome.plan);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = cw::AsChars(cw::fuzz::InputBytes(data, size));
  const Input in = Split(text);
  const Lines lines(in.yaml);
  const cw::RuleLoad load = cw::ParseRuleText(in.yaml, kFile, CW_FUZZ_RULES_DIR);
  Check(load.rules.has_value() == load.errors.empty());
  for (const cw::Error& e : load.errors)
    CheckRuleError(e, lines);
  if (!load.rules)
    return 0;
  const cw::RuleSet& rules = *load.rules;
  for (const cw::Error& e : cw::LintRuleSet(rules))
    CheckRuleError(e, lines);

  const bool given = !in.tensors.empty();
  const std::vector<cw::TensorInfo> hf = given ? in.tensors : Derive(rules, cw::Side::kHf);
  const std::vector<cw::TensorInfo> ms = given ? in.tensors : Derive(rules, cw::Side::kMs);
  if (const auto forward = Compile(rules, hf, in.options, cw::Direction::kForward, lines)) {
    cw::PlanOptions options = in.options;
    options.params.detected = forward->detected;
    Compile(rules, forward->Outputs(), options, cw::Direction::kReverse, lines);
    for (const cw::Error& e : cw::CheckRoundTrip(rules, hf, in.options.params))
      CheckPlanError(e, lines);
  }
  Compile(rules, ms, in.options, cw::Direction::kReverse, lines);
  return 0;
}
