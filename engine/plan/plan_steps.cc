// Stage 4 of planning: one step per complete group, tied copies and checks, output dtypes.
#include <algorithm>
#include <optional>

#include "engine/base/checked_math.h"
#include "engine/plan/name_index.h"
#include "engine/plan/plan_context.h"
#include "engine/plan/plan_lower.h"
#include "engine/plan/step_ops.h"
#include "engine/plan/step_slices.h"

namespace cw {
namespace {

DType OutputDType(const PlanContext& ctx, const Rule& rule, DType value) {
  if (const auto& o = rule.dtype_for(ctx.target))
    return o->keep || !IsFloat(value) ? value : o->dtype;
  if (ctx.options.cast && IsFloat(value))
    return *ctx.options.cast;
  return value;
}

TensorInfo Output(std::string name, DType dtype, Shape shape) {
  TensorInfo t{std::move(name), dtype, std::move(shape), 0};
  t.byte_size = ByteSize(t.dtype, t.shape).value_or(0);
  return t;
}

// Sets output dtypes and the lossy mark of a step whose values are in `value`. False (with the
// problem recorded) when a cast to a wider dtype makes an output's byte size overflow.
bool FinishOutputs(PlanContext& ctx, const Rule& rule, PlanStep& step) {
  for (TensorInfo& out : step.outputs) {
    out.dtype = OutputDType(ctx, rule, step.value_dtype);
    const auto bytes = ByteSize(out.dtype, out.shape);
    if (!bytes) {
      ctx.Fail(ErrorCode::kPlanInvalid,
               "rule " + rule.Label() + ": " + out.name + " " + ShapeToString(out.shape) +
                   " would hold 2^64 bytes or more of " + std::string(Name(out.dtype)),
               rule.where);
      return false;
    }
    out.byte_size = *bytes;
    if (IsNarrowingCast(step.value_dtype, out.dtype) && !step.lossy) {
      step.lossy = true;
      step.lossy_reason = std::string("cast ") + std::string(Name(step.value_dtype)) + " -> " +
                          std::string(Name(out.dtype)) + " loses precision";
    }
  }
  return true;
}

// The FP8 inputs of a step with a block scale (hf_layout.fp8_scales): their scales are appended
// to the step's inputs and dequantised with them first; the ops doing so. nullopt (with the
// problem recorded) when a scale does not fit its weight.
std::optional<std::vector<PrimitiveOp>> Fp8Inputs(PlanContext& ctx, const Rule& rule,
                                                  PlanStep& step) {
  std::vector<PrimitiveOp> ops;
  const auto& fp8 = ctx.rules.hf_fp8_scales;
  const size_t n = step.inputs.size();
  for (size_t i = 0; i < n; ++i) {
    const auto it = ctx.fp8_scale_of.find(step.inputs[i]);
    if (it == ctx.fp8_scale_of.end())
      continue;
    const TensorInfo& w = ctx.inventory[step.inputs[i]];
    const TensorInfo& scale = ctx.inventory[it->second];
    const Shape want = w.shape.size() == 2
                           ? Shape{(w.shape[0] + fp8->block_rows - 1) / fp8->block_rows,
                                   (w.shape[1] + fp8->block_cols - 1) / fp8->block_cols}
                           : Shape{};
    if (w.shape.size() != 2 || scale.shape != want) {
      ctx.Fail(ErrorCode::kPlanInvalid,
               "rule " + rule.Label() + ": the FP8 weight " + w.name + " " +
                   ShapeToString(w.shape) + " needs a block scale of " + ShapeToString(want) +
                   " (blocks of " + std::to_string(fp8->block_rows) + " x " +
                   std::to_string(fp8->block_cols) + "), but " + scale.name + " is " +
                   ShapeToString(scale.shape),
               rule.where);
      return std::nullopt;
    }
    step.inputs.push_back(it->second);
    ops.push_back(PrimitiveOp{PrimitiveOp::Kind::kDequantize,
                              static_cast<uint32_t>(i),
                              1,
                              0,
                              {fp8->block_rows, fp8->block_cols, n},
                              {}});
  }
  return ops;
}

std::optional<PlanStep> MakeStep(PlanContext& ctx, const Group& g) {
  const ActiveRule& a = ctx.active[g.active];
  const Rule& rule = *a.rule;
  for (const auto& member : g.members) {
    for (const auto& [over_value, input] : member) {
      if (ctx.misshapen.count(input))
        return std::nullopt;
    }
  }
  PlanStep step;
  step.rule = rule.where;
  std::vector<ChainSlot> slots;
  std::vector<size_t> pattern_of;  // per input: its source pattern
  for (size_t k = 0; k < g.members.size(); ++k) {
    ChainSlot slot;
    for (const auto& [over_value, input] : g.members[k]) {
      if (over_value >= 0)
        slot.over = a.over;
      step.inputs.push_back(input);
      pattern_of.push_back(k);
      slot.values.push_back(ChainValue{ctx.inventory[input].shape, ctx.inventory[input].name});
    }
    slots.push_back(std::move(slot));
  }
  const auto& chain = rule.chain(ctx.options.direction);
  const bool dequantize = !chain.empty() && chain[0].kind == OpKind::kDequantize;
  std::optional<std::vector<PrimitiveOp>> fp8 = Fp8Inputs(ctx, rule, step);
  if (!fp8)
    return std::nullopt;
  step.value_dtype =
      dequantize || !fp8->empty() ? DType::kBF16 : ctx.inventory[step.inputs[0]].dtype;
  for (size_t i = 0; i < pattern_of.size(); ++i) {
    const TensorInfo& t = ctx.inventory[step.inputs[i]];
    // A dequantize reads FP8 weights (even patterns) and their float32 scales (odd ones); an
    // FP8 input with a block scale (hf_layout.fp8_scales) is dequantised before the ops.
    const DType want = dequantize ? (pattern_of[i] % 2 == 0 ? DType::kF8E4M3 : DType::kF32)
                       : ctx.fp8_scale_of.count(step.inputs[i]) ? DType::kF8E4M3
                                                                : step.value_dtype;
    if (t.dtype != want) {
      ctx.Fail(
          ErrorCode::kPlanInvalid,
          "rule " + rule.Label() +
              (dequantize ? ": dequantize reads " + std::string(Name(want)) + ", but " + t.name +
                                " is " + std::string(Name(t.dtype))
                          : ": inputs differ in dtype: " + ctx.inventory[step.inputs[0]].name +
                                " is " + std::string(Name(ctx.inventory[step.inputs[0]].dtype)) +
                                ", " + t.name + " is " + std::string(Name(t.dtype))),
          rule.where);
      return std::nullopt;
    }
  }
  const NameLookup lookup = ctx.params.Lookup(&g.key);
  const std::function<std::optional<int64_t>(const std::string&)> count =
      [&ctx](const std::string& p) { return ctx.Count(p); };
  auto lowered = LowerChain(rule.chain(ctx.options.direction), std::move(slots), step.value_dtype,
                            lookup, count, rule.Label());
  if (!lowered.ok()) {
    ctx.Add(std::move(lowered).error());
    return std::nullopt;
  }
  const bool dequantised = !fp8->empty();
  step.ops = std::move(*fp8);
  step.ops.insert(step.ops.end(), lowered->ops.begin(), lowered->ops.end());
  step.lossy = lowered->lossy || dequantised;
  step.lossy_reason = dequantised ? "FP8 weights dequantised to bfloat16 (the reverse writes "
                                    "bfloat16, not FP8)"
                                  : lowered->lossy_reason;
  const auto& targets = rule.side(ctx.target);
  if (!ctx.ResolvePatternParams(targets, rule.where))
    return std::nullopt;
  for (size_t i = 0; i < lowered->outputs.size(); ++i) {
    ChainSlot& slot = lowered->outputs[i];
    Bindings b = g.key;
    for (size_t j = 0; j < slot.values.size(); ++j) {
      if (!slot.over.empty())
        b[slot.over] = Value::Int(static_cast<int64_t>(j));
      const size_t pattern = rule.WrittenPattern(ctx.target, i);
      step.outputs.push_back(Output(targets[pattern].Instantiate(b, ctx.param_text),
                                    step.value_dtype, std::move(slot.values[j].shape)));
      if (!CheckTargetShape(ctx, rule, pattern, b, step.outputs.back()))
        return std::nullopt;
    }
  }
  if (!FinishOutputs(ctx, rule, step))
    return std::nullopt;
  return step;
}

// The ms name that the one-to-one rule converting hf tensor `to` writes, or "" when no such
// rule exists.
std::string ConvertedName(PlanContext& ctx, const std::string& to) {
  const auto types = ctx.rules.PlaceholderTypes();
  for (const Rule& r : ctx.rules.rules) {
    if (r.tied || r.copy_of || r.drop || r.hf.size() != 1 || r.ms.size() != 1 || !r.ops.empty())
      continue;
    if (ctx.MissingPatternParam(r.hf, r.where) || ctx.MissingPatternParam(r.ms, r.where))
      continue;  // not this rule: a rule converting `to` in this plan has its values
    auto m = PatternMatcher::Compile(r.hf[0], types, ctx.param_text);
    Bindings b;
    if (m.ok() && m->Match(to, &b))
      return r.ms[0].Instantiate(b, ctx.param_text);
  }
  return "";
}

// The hf name a tied or copy_of rule's `to` names, with its `${param}` segments filled in; ""
// (with the problem recorded) when a parameter has no value.
std::string TiedTo(PlanContext& ctx, const Rule& rule) {
  const NamePattern& to = rule.tied ? rule.tied->to : rule.copy_of->to;
  const Location& where = rule.tied ? rule.tied->where : rule.copy_of->where;
  if (!ctx.ResolvePatternParams({to}, where))
    return "";
  return to.Instantiate({}, ctx.param_text);
}

// Where a tied or copy_of rule states its `to`, for messages.
const Location& TiedWhere(const Rule& rule) {
  return rule.tied ? rule.tied->where : rule.copy_of->where;
}

class StepBuilder {
 public:
  StepBuilder(PlanContext& ctx, Plan& plan) : ctx_(ctx), plan_(plan) {}

  void Add(const Group& g) {
    const ActiveRule& a = ctx_.active[g.active];
    const Rule& rule = *a.rule;
    const bool check_only =
        a.copy_of || (a.tied && (rule.side(ctx_.target).empty() ||
                                 ctx_.options.direction == Direction::kReverse));
    if (!check_only) {
      if (auto step = MakeStep(ctx_, g))
        plan_.steps.push_back(std::move(*step));
      return;
    }
    const uint64_t input = g.first_input;
    const std::string to = TiedTo(ctx_, rule);
    if (to.empty())
      return;
    const std::string reference =
        ctx_.options.direction == Direction::kForward ? to : ConvertedName(ctx_, to);
    const auto found = Find(reference);
    if (!found) {
      ctx_.Fail(ErrorCode::kPlanInvalid,
                "rule " + rule.Label() + ": " + ctx_.inventory[input].name +
                    (rule.copy_of ? " is a copy of \"" : " is tied to \"") +
                    (reference.empty() ? to : reference) +
                    "\", which is not in the input, so it cannot be checked",
                TiedWhere(rule));
      return;
    }
    Verify(rule, input, *found);
  }

  // Forward, tied condition true, tensor absent: a copy of the converted `to` tensor.
  void AddTiedCopies(const std::vector<Group>& groups) {
    if (ctx_.options.direction != Direction::kForward)
      return;
    for (size_t ai = 0; ai < ctx_.active.size(); ++ai) {
      const ActiveRule& a = ctx_.active[ai];
      if (!a.tied || a.rule->ms.empty())
        continue;
      if (std::any_of(groups.begin(), groups.end(), [&](const Group& g) { return g.active == ai; }))
        continue;
      const std::string to = TiedTo(ctx_, *a.rule);
      if (to.empty())
        continue;
      const auto found = Find(to);
      const PlanStep* source = nullptr;
      for (const PlanStep& s : plan_.steps) {
        if (found && s.inputs == std::vector<uint64_t>{*found} && s.outputs.size() == 1)
          source = &s;
      }
      if (!source) {
        ctx_.Fail(ErrorCode::kPlanInvalid,
                  "rule " + a.rule->Label() + ": " + a.rule->hf[0].text() +
                      " is absent and tied to \"" + to +
                      "\", which is not converted on its own by any rule",
                  a.rule->tied->where);
        continue;
      }
      if (!ctx_.ResolvePatternParams(a.rule->ms, a.rule->where))
        continue;
      PlanStep copy = *source;
      copy.rule = a.rule->where;
      copy.outputs[0].name = a.rule->ms[0].Instantiate({}, ctx_.param_text);
      copy.note = "copy of " + to + " (tied; " + a.rule->hf[0].text() + " is absent)";
      plan_.steps.push_back(std::move(copy));
    }
  }

  // Reverse: each copy_of rule that applies writes its hf tensor again, as a copy of the step
  // writing `to` (the forward checked the two equal, so the copy gives the input back).
  void AddRestoredCopies() {
    if (ctx_.options.direction != Direction::kReverse)
      return;
    for (const Rule& rule : ctx_.rules.rules) {
      if (!rule.copy_of || !Applies(rule))
        continue;
      const std::string to = TiedTo(ctx_, rule);
      if (to.empty() || !ctx_.ResolvePatternParams(rule.hf, rule.where))
        continue;
      const PlanStep* source = nullptr;
      for (const PlanStep& s : plan_.steps) {
        if (s.kind == PlanStep::Kind::kConvert && s.outputs.size() == 1 && s.outputs[0].name == to)
          source = &s;
      }
      if (!source) {
        ctx_.Fail(ErrorCode::kPlanInvalid,
                  "rule " + rule.Label() + ": " + rule.hf[0].Instantiate({}, ctx_.param_text) +
                      " is a copy of \"" + to + "\", which no step of this plan writes alone",
                  rule.copy_of->where);
        continue;
      }
      PlanStep copy = *source;
      copy.rule = rule.where;
      copy.outputs[0].name = rule.hf[0].Instantiate({}, ctx_.param_text);
      copy.note = "copy of " + to + " (copy_of)";
      if (CheckTargetShape(ctx_, rule, 0, {}, copy.outputs[0]))
        plan_.steps.push_back(std::move(copy));
    }
  }

 private:
  // Whether a copy_of rule's tensor was in the hf input, as far as the parameters tell: its
  // `when` holds and it is not optional. An optional one is not written (a note says so): the
  // ms side does not show whether the copy existed.
  bool Applies(const Rule& rule) {
    const NameLookup lookup = ctx_.params.Lookup();
    for (const auto* e : {&rule.when, &rule.optional}) {
      if (!*e)
        continue;
      auto v = (*e)->EvaluateBool(lookup, e == &rule.when ? "when" : "optional");
      if (!v.ok()) {
        ctx_.Add(std::move(v).error().With("deciding whether copy_of rule " + rule.Label() +
                                           " writes its copy"));
        return false;
      }
      if (e == &rule.when && !*v)
        return false;
      if (e == &rule.optional && *v) {
        ctx_.notes.push_back("copy_of rule " + rule.Label() +
                             " is optional: whether the hf input had its copy is unknown, so it "
                             "is not written (give the parameters its optional reads)");
        return false;
      }
    }
    return true;
  }

  // The index of the input named `name`. The index of names is built on first use: only tied
  // rules need it, and most inventories have none.
  std::optional<uint64_t> Find(const std::string& name) {
    if (!by_name_) {
      by_name_.emplace(ctx_.inventory.size());
      for (uint64_t i = 0; i < ctx_.inventory.size(); ++i)
        by_name_->Insert(ctx_.inventory[i].name, i);
    }
    return by_name_->Find(name);
  }

  void Verify(const Rule& rule, uint64_t input, uint64_t reference) {
    const TensorInfo& t = ctx_.inventory[input];
    const TensorInfo& r = ctx_.inventory[reference];
    if (t.dtype != r.dtype || t.shape != r.shape) {
      ctx_.Fail(ErrorCode::kPlanInvalid,
                "rule " + rule.Label() + ": " + t.name + " " + ShapeToString(t.shape) + " " +
                    std::string(Name(t.dtype)) +
                    (rule.copy_of ? " is declared a copy of " : " is tied to ") + r.name + " " +
                    ShapeToString(r.shape) + " " + std::string(Name(r.dtype)) +
                    " but cannot equal it",
                TiedWhere(rule));
      return;
    }
    PlanStep step;
    step.kind = PlanStep::Kind::kVerifyEqual;
    step.inputs = {input, reference};
    step.value_dtype = t.dtype;
    step.rule = rule.where;
    if (rule.copy_of) {
      step.note = "omitted: a copy of " + r.name + ", must be equal to it";
      plan_.steps.push_back(std::move(step));
      plan_.dropped.push_back(
          {input, rule.where,
           "a copy of " + r.name + "; checked equal, written again by the reverse", true, true});
      return;
    }
    step.note = "omitted: tied to " + r.name + ", must be equal to it";
    plan_.steps.push_back(std::move(step));
    plan_.dropped.push_back({input, rule.where, "tied to " + r.name + "; checked equal", true});
  }

  PlanContext& ctx_;
  Plan& plan_;
  std::optional<NameIndex> by_name_;  // views into ctx_.inventory
};

uint64_t FirstInput(const PlanStep& s) {
  return s.inputs.empty() ? 0 : *std::min_element(s.inputs.begin(), s.inputs.end());
}

void CheckUniqueOutputs(PlanContext& ctx, const Plan& plan) {
  size_t outputs = 0;
  for (const PlanStep& s : plan.steps)
    outputs += s.outputs.size();
  NameIndex written(outputs);  // output name -> index of the step writing it
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const PlanStep& s = plan.steps[i];
    for (const TensorInfo& out : s.outputs) {
      if (const auto first = written.Insert(out.name, i)) {
        const Location& where = plan.steps[*first].rule;
        ctx.Fail(ErrorCode::kPlanInvalid,
                 "two steps write \"" + out.name + "\": the rule at " + where.file + ":" +
                     std::to_string(where.line) + " and this one",
                 s.rule);
      }
    }
  }
}

}  // namespace

void BuildSteps(PlanContext& ctx, const std::vector<Group>& groups, Plan& plan) {
  StepBuilder builder(ctx, plan);
  for (const Group& g : groups)
    builder.Add(g);
  builder.AddTiedCopies(groups);
  builder.AddRestoredCopies();
  // Sort indices, then move each step once: steps are large to move around.
  std::vector<size_t> order(plan.steps.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return FirstInput(plan.steps[a]) < FirstInput(plan.steps[b]);
  });
  std::vector<PlanStep> sorted;
  sorted.reserve(order.size());
  for (size_t i : order)
    sorted.push_back(std::move(plan.steps[i]));
  plan.steps = std::move(sorted);
  CheckUniqueOutputs(ctx, plan);
  for (PlanStep& s : plan.steps) {
    std::vector<Shape> shapes;
    for (uint64_t i : s.inputs) {
      shapes.push_back(ctx.inventory[i].shape);
      plan.input_bytes = SaturatingAdd(plan.input_bytes, ctx.inventory[i].byte_size);
    }
    s.slices = SliceStep(s, shapes);
    // What the step holds at once: all its inputs, or one slice's.
    std::optional<PlanStep> slice;
    if (s.slices)
      slice = SliceOf(s, 0);
    const PlanStep& part = slice ? *slice : s;
    std::vector<Shape> part_shapes;
    uint64_t in_bytes = 0;
    for (uint64_t i : part.inputs) {
      part_shapes.push_back(ctx.inventory[i].shape);
      in_bytes = SaturatingAdd(in_bytes, ctx.inventory[i].byte_size);
    }
    s.working_bytes = WorkingBytes(part.ops, part_shapes, s.value_dtype, part.outputs);
    for (const TensorInfo& out : s.outputs)
      plan.output_bytes = SaturatingAdd(plan.output_bytes, out.byte_size);
    plan.peak_bytes = std::max(plan.peak_bytes, s.working_bytes);
    plan.peak_bytes_with_inputs =
        std::max(plan.peak_bytes_with_inputs, SaturatingAdd(s.working_bytes, in_bytes));
    plan.lossy = plan.lossy || s.lossy;
  }
}

}  // namespace cw
