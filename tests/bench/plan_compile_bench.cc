// Times plan compilation on a large MoE inventory (docs/benchmarks.md, "Plan compile"): the
// names and shapes of a DeepSeek-V3-sized model written with Mixtral's names (tests/bench/
// model_shapes), planned with rules/mixtral.yaml and its config.json, forward and back, and back
// without config.json (the sizes and counts solved from the shapes).
//
//   plan_compile_bench [--layers 130] [--experts 256] [--reps 5] [--rules rules/mixtral.yaml]
//
// Each repetition loads the rule file, compiles the forward plan on the inventory and the reverse
// plan on the forward outputs (with the values the forward detected), as `convert` and
// `lint --against` do. Only those three calls are timed. Both plans are checked after every
// repetition, so a time is never that of a compile that failed or planned the wrong thing.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "engine/plan/planner.h"
#include "engine/ruleset/params.h"
#include "engine/ruleset/rule_file.h"
#include "tests/bench/model_shapes.h"

namespace {

using Clock = std::chrono::steady_clock;

// Steps mixtral.yaml makes per layer: two norms, q/k/v/o, the router, and the stacked w1, w2, w3.
constexpr size_t kStepsPerLayer = 10;
// Embedding, final norm and head.
constexpr size_t kStepsOutsideLayers = 3;

double MillisecondsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

struct Timings {
  std::vector<double> ms;

  double Best() const { return *std::min_element(ms.begin(), ms.end()); }
  double Median() const {
    std::vector<double> sorted = ms;
    std::sort(sorted.begin(), sorted.end());
    const size_t n = sorted.size();
    return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  }
};

bool ByName(const cw::TensorInfo& a, const cw::TensorInfo& b) { return a.name < b.name; }

// The expected number of steps, one output per step, every input read by exactly one step, and
// the experts of each layer's w1, w2 and w3 stacked into one [experts, ...] tensor.
std::string CheckForward(const cw::Plan& plan, size_t inputs, int layers, int experts) {
  const size_t steps = kStepsPerLayer * static_cast<size_t>(layers) + kStepsOutsideLayers;
  if (plan.steps.size() != steps)
    return "forward plan has " + std::to_string(plan.steps.size()) + " steps, expected " +
           std::to_string(steps);
  if (!plan.dropped.empty())
    return "forward plan drops " + std::to_string(plan.dropped.size()) + " inputs";
  std::vector<int> uses(inputs, 0);
  int stacks = 0;
  for (const cw::PlanStep& s : plan.steps) {
    if (s.outputs.size() != 1)
      return "forward step writes " + std::to_string(s.outputs.size()) + " tensors, expected 1";
    for (uint64_t i : s.inputs)
      ++uses[i];
    if (s.inputs.size() == 1)
      continue;
    cw::Shape stacked = plan.inventory[s.inputs[0]].shape;
    stacked.insert(stacked.begin(), static_cast<uint64_t>(experts));
    if (s.inputs.size() != static_cast<size_t>(experts) || s.outputs[0].shape != stacked)
      return "forward step writing " + s.outputs[0].name + " " +
             cw::ShapeToString(s.outputs[0].shape) + " does not stack " + std::to_string(experts) +
             " experts";
    ++stacks;
  }
  if (std::any_of(uses.begin(), uses.end(), [](int n) { return n != 1; }))
    return "forward plan does not read every input exactly once";
  if (stacks != 3 * layers)
    return "forward plan stacks " + std::to_string(stacks) + " expert tensors, expected " +
           std::to_string(3 * layers);
  return "";
}

// The reverse outputs are the original inventory: same names, dtypes and shapes.
std::string CheckReverse(const cw::Plan& plan, std::vector<cw::TensorInfo> original) {
  std::vector<cw::TensorInfo> back = plan.Outputs();
  std::sort(back.begin(), back.end(), ByName);
  std::sort(original.begin(), original.end(), ByName);
  if (back.size() != original.size())
    return "reverse plan writes " + std::to_string(back.size()) + " tensors, expected " +
           std::to_string(original.size());
  const auto diff = std::mismatch(back.begin(), back.end(), original.begin());
  if (diff.first != back.end())
    return "reverse plan writes " + diff.first->name + " " + cw::ShapeToString(diff.first->shape) +
           " where the input had " + diff.second->name + " " +
           cw::ShapeToString(diff.second->shape);
  return "";
}

int Fail(const std::string& what) {
  std::cerr << "plan_compile_bench: " << what << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Times rule loading and plan compilation on a large MoE inventory"};
  int layers = 130, experts = 256, reps = 5;
  std::string rules_file = std::string(CW_BENCH_RULES_DIR) + "/mixtral.yaml";
  app.add_option("--layers", layers, "Transformer layers")->check(CLI::Range(1, 100000));
  app.add_option("--experts", experts, "Experts per layer")->check(CLI::Range(2, 100000));
  app.add_option("--reps", reps, "Repetitions; best and median are reported")
      ->check(CLI::Range(1, 10000));
  app.add_option("--rules", rules_file, "Rule file (Mixtral names)");
  CLI11_PARSE(app, argc, argv);

  cw::bench::ModelShape shape = *cw::bench::FindShape("deepseek-v3-like");
  shape.experts = static_cast<uint64_t>(experts);
  const std::vector<cw::TensorInfo> inventory = cw::bench::Tensors(shape, layers, cw::DType::kBF16);
  auto config =
      cw::ParseConfigJson(cw::bench::ConfigJson(shape, layers, cw::DType::kBF16), "config.json");
  if (!config.ok())
    return Fail(config.error().ToString());

  Timings load, forward, reverse, solved;
  size_t ms_tensors = 0;
  for (int r = 0; r < reps; ++r) {
    Clock::time_point start = Clock::now();
    auto rules = cw::LoadRuleFile(rules_file);
    load.ms.push_back(MillisecondsSince(start));
    if (!rules.ok())
      return Fail(rules.error().ToString());

    cw::PlanOptions options;
    options.params.config = *config;
    start = Clock::now();
    auto fwd = cw::MakePlan(*rules, inventory, options);
    forward.ms.push_back(MillisecondsSince(start));
    if (!fwd.ok())
      return Fail("forward: " + fwd.error().ToString());
    if (std::string bad = CheckForward(*fwd, inventory.size(), layers, experts); !bad.empty())
      return Fail(bad);

    const std::vector<cw::TensorInfo> outputs = fwd->Outputs();
    ms_tensors = outputs.size();
    options.direction = cw::Direction::kReverse;
    options.params.detected = fwd->detected;
    start = Clock::now();
    auto rev = cw::MakePlan(*rules, outputs, options);
    reverse.ms.push_back(MillisecondsSince(start));
    if (!rev.ok())
      return Fail("reverse: " + rev.error().ToString());
    if (std::string bad = CheckReverse(*rev, inventory); !bad.empty())
      return Fail(bad);

    // The MindSpore files alone: every size and the expert count read off the shapes.
    options.params.config = {};
    start = Clock::now();
    auto alone = cw::MakePlan(*rules, outputs, options);
    solved.ms.push_back(MillisecondsSince(start));
    if (!alone.ok())
      return Fail("reverse without config.json: " + alone.error().ToString());
    if (std::string bad = CheckReverse(*alone, inventory); !bad.empty())
      return Fail(bad);
  }

  std::printf("%s: %d layers x %d experts: %zu hf tensors, %zu ms tensors; %d repetitions\n",
              rules_file.c_str(), layers, experts, inventory.size(), ms_tensors, reps);
  std::printf("%-18s %10s %10s\n", "stage", "best ms", "median ms");
  const std::pair<const char*, const Timings*> rows[] = {{"rule load", &load},
                                                         {"forward MakePlan", &forward},
                                                         {"reverse MakePlan", &reverse},
                                                         {"reverse, no config", &solved}};
  for (const auto& [name, t] : rows)
    std::printf("%-18s %10.1f %10.1f\n", name, t->Best(), t->Median());
  return 0;
}
