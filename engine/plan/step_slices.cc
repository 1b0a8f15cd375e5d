#include "engine/plan/step_slices.h"

#include <algorithm>
#include <set>

#include "engine/plan/step_ops.h"
#include "engine/tensor/layout_ops.h"

namespace cw {
namespace {

using Kind = PrimitiveOp::Kind;

constexpr int kSliced = -1;  // a value made of every slice's part
constexpr int kFree = -2;    // an input not yet in a slice

// A value of the list while the step's ops are followed: its full shape, and either the inputs it
// comes from (before the concat that makes slices of them) or the mark of a sliced value.
struct Value {
  Shape shape;
  std::vector<uint32_t> from;
  bool sliced = false;
};

struct Assignment {
  uint32_t count = 0;
  std::vector<int> slice_of_input;
  std::set<size_t> slicing_concats;  // indices into the step's ops
};

bool SameShapes(const std::vector<Value>& values, size_t first, size_t count) {
  for (size_t i = 1; i < count; ++i) {
    if (values[first + i].shape != values[first].shape)
      return false;
  }
  return true;
}

// First pass: the slice count, each input's slice and the concats that make slices.
std::optional<Assignment> Assign(const std::vector<PrimitiveOp>& ops,
                                 const std::vector<Shape>& shapes) {
  std::vector<Value> values;
  for (uint32_t i = 0; i < shapes.size(); ++i)
    values.push_back(Value{shapes[i], {i}, false});
  Assignment a;
  a.slice_of_input.assign(shapes.size(), kFree);
  for (size_t n = 0; n < ops.size(); ++n) {
    const PrimitiveOp& op = ops[n];
    if (op.first >= values.size())
      return std::nullopt;
    Value& v = values[op.first];
    const bool inner_axis = op.axis >= 1 && static_cast<size_t>(op.axis) < v.shape.size();
    switch (op.kind) {
      case Kind::kDequantize: {
        if (op.dims.size() != 3 || op.dims[2] >= values.size() || op.dims[2] == op.first)
          return std::nullopt;
        const Value& scale = values[op.dims[2]];
        if (v.sliced || scale.sliced)
          return std::nullopt;
        v.from.insert(v.from.end(), scale.from.begin(), scale.from.end());
        values.erase(values.begin() + static_cast<std::ptrdiff_t>(op.dims[2]));
        break;
      }
      case Kind::kReshape:
        if (v.sliced && (op.dims.empty() || op.dims[0] % a.count != 0))
          return std::nullopt;
        v.shape = op.dims;
        break;
      case Kind::kPermute:
        if (op.perm.size() != v.shape.size() || (v.sliced && op.perm[0] != 0))
          return std::nullopt;
        v.shape = PermutedShape(v.shape, op.perm);
        break;
      case Kind::kPad:
      case Kind::kSlice:
        if ((v.sliced && !inner_axis) || op.dims.size() != 1 ||
            static_cast<size_t>(op.axis) >= v.shape.size())
          return std::nullopt;
        v.shape[static_cast<size_t>(op.axis)] = op.dims[0];
        break;
      case Kind::kSplit: {
        if ((v.sliced && !inner_axis) || static_cast<size_t>(op.axis) >= v.shape.size())
          return std::nullopt;
        std::vector<Value> parts;
        for (const uint64_t d : op.dims) {
          parts.push_back(v);
          parts.back().shape[static_cast<size_t>(op.axis)] = d;
        }
        // Parts of one free value stay together: they come from the same inputs.
        values.erase(values.begin() + op.first);
        values.insert(values.begin() + op.first, parts.begin(), parts.end());
        break;
      }
      case Kind::kConcat: {
        if (op.count == 0 || op.count > values.size() - op.first ||
            static_cast<size_t>(op.axis) >= v.shape.size())
          return std::nullopt;
        bool all_sliced = true, all_free = true;
        for (uint32_t i = 0; i < op.count; ++i) {
          all_sliced = all_sliced && values[op.first + i].sliced;
          all_free = all_free && !values[op.first + i].sliced;
        }
        Value joined = v;
        joined.shape[static_cast<size_t>(op.axis)] = 0;
        for (uint32_t i = 0; i < op.count; ++i)
          joined.shape[static_cast<size_t>(op.axis)] +=
              values[op.first + i].shape[static_cast<size_t>(op.axis)];
        if (all_free && op.axis == 0 && op.count >= 2 && (a.count == 0 || a.count == op.count) &&
            SameShapes(values, op.first, op.count)) {
          a.count = op.count;
          a.slicing_concats.insert(n);
          for (uint32_t k = 0; k < op.count; ++k) {
            for (const uint32_t input : values[op.first + k].from)
              a.slice_of_input[input] = static_cast<int>(k);
          }
          joined.from.clear();
          joined.sliced = true;
        } else if (all_free) {
          for (uint32_t i = 1; i < op.count; ++i) {
            const std::vector<uint32_t>& more = values[op.first + i].from;
            joined.from.insert(joined.from.end(), more.begin(), more.end());
          }
        } else if (!all_sliced || !inner_axis) {
          return std::nullopt;
        }
        values.erase(values.begin() + op.first, values.begin() + op.first + op.count);
        values.insert(values.begin() + op.first, std::move(joined));
        break;
      }
    }
  }
  if (a.count < 2)
    return std::nullopt;
  for (const Value& v : values) {
    if (!v.sliced)
      return std::nullopt;
  }
  for (const int s : a.slice_of_input) {
    if (s == kFree)
      return std::nullopt;
  }
  return a;
}

// Second pass: the ops of slice k on its own inputs. Each value of the full list belongs to one
// slice (before the slicing concat) or to all (after); slice k's list holds those of k and all.
std::vector<PrimitiveOp> OpsOfSlice(const std::vector<PrimitiveOp>& ops, const Assignment& a,
                                    int k) {
  std::vector<int> owner = a.slice_of_input;
  auto present = [&](size_t p) { return owner[p] == k || owner[p] == kSliced; };
  auto position = [&](size_t p) {
    uint32_t n = 0;
    for (size_t q = 0; q < p; ++q)
      n += present(q) ? 1 : 0;
    return n;
  };
  std::vector<PrimitiveOp> out;
  for (size_t n = 0; n < ops.size(); ++n) {
    PrimitiveOp op = ops[n];
    const size_t at = op.first;
    const bool mine = present(at);
    const bool sliced = owner[at] == kSliced;
    op.first = position(at);
    switch (op.kind) {
      case Kind::kDequantize: {
        const size_t scale = ops[n].dims[2];
        op.dims[2] = position(scale);
        owner.erase(owner.begin() + static_cast<std::ptrdiff_t>(scale));
        break;
      }
      case Kind::kReshape:
        if (sliced)
          op.dims[0] /= a.count;
        break;
      case Kind::kSplit:
        owner.insert(owner.begin() + static_cast<std::ptrdiff_t>(at), op.dims.size() - 1,
                     owner[at]);
        break;
      case Kind::kConcat:
        if (a.slicing_concats.contains(n)) {
          owner.erase(owner.begin() + static_cast<std::ptrdiff_t>(at),
                      owner.begin() + static_cast<std::ptrdiff_t>(at + op.count));
          owner.insert(owner.begin() + static_cast<std::ptrdiff_t>(at), kSliced);
          continue;  // slice k's operand is its part already
        }
        owner.erase(owner.begin() + static_cast<std::ptrdiff_t>(at + 1),
                    owner.begin() + static_cast<std::ptrdiff_t>(at + op.count));
        break;
      case Kind::kPermute:
      case Kind::kPad:
      case Kind::kSlice:
        break;
    }
    if (mine)
      out.push_back(std::move(op));
  }
  return out;
}

}  // namespace

std::optional<StepSlices> SliceStep(const PlanStep& step, const std::vector<Shape>& input_shapes) {
  if (step.kind != PlanStep::Kind::kConvert || step.ops.empty())
    return std::nullopt;
  const std::optional<Assignment> a = Assign(step.ops, input_shapes);
  if (!a)
    return std::nullopt;
  StepSlices slices;
  slices.count = a->count;
  slices.inputs.resize(a->count);
  for (uint32_t i = 0; i < a->slice_of_input.size(); ++i)
    slices.inputs[static_cast<size_t>(a->slice_of_input[i])].push_back(i);
  slices.ops = OpsOfSlice(step.ops, *a, 0);
  std::vector<Shape> first_shapes;
  for (const uint32_t i : slices.inputs[0])
    first_shapes.push_back(input_shapes[i]);
  for (uint32_t k = 1; k < a->count; ++k) {
    if (slices.inputs[k].size() != slices.inputs[0].size() ||
        OpsOfSlice(step.ops, *a, static_cast<int>(k)) != slices.ops)
      return std::nullopt;
    for (size_t j = 0; j < slices.inputs[k].size(); ++j) {
      if (input_shapes[slices.inputs[k][j]] != first_shapes[j])
        return std::nullopt;
    }
  }
  Result<std::vector<Shape>> shapes = ApplyToShapes(slices.ops, first_shapes);
  if (!shapes.ok() || shapes->size() != step.outputs.size())
    return std::nullopt;
  // Part k of each output must be rows [k * rows, (k + 1) * rows) of the planned output.
  for (size_t o = 0; o < shapes->size(); ++o) {
    const Shape& part = (*shapes)[o];
    const Shape& full = step.outputs[o].shape;
    if (part.empty() || part.size() != full.size() || part[0] * a->count != full[0] ||
        !std::equal(part.begin() + 1, part.end(), full.begin() + 1))
      return std::nullopt;
  }
  slices.output_shapes = std::move(*shapes);
  return slices;
}

PlanStep SliceOf(const PlanStep& step, uint32_t k) {
  const StepSlices& slices = *step.slices;
  PlanStep part;
  for (const uint32_t p : slices.inputs[k])
    part.inputs.push_back(step.inputs[p]);
  part.ops = slices.ops;
  part.value_dtype = step.value_dtype;
  for (size_t o = 0; o < step.outputs.size(); ++o) {
    TensorInfo out = step.outputs[o];
    out.shape = slices.output_shapes[o];
    out.byte_size = out.byte_size / slices.count;
    part.outputs.push_back(std::move(out));
  }
  part.rule = step.rule;
  part.lossy = step.lossy;
  part.lossy_reason = step.lossy_reason;
  return part;
}

}  // namespace cw
