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

// Second pass: each slice's ops on its own inputs, all slices in one pass over the ops. Each
// value of the full list belongs to one slice (before the slicing concat) or to all (after);
// slice k's list holds those of k and those of all, so an op on a value of slice k goes to k
// alone, with its positions counted in k's list.
std::vector<std::vector<PrimitiveOp>> OpsOfSlices(const std::vector<PrimitiveOp>& ops,
                                                  const Assignment& a) {
  std::vector<int> owner = a.slice_of_input;
  auto position = [&](size_t p, int k) {
    uint32_t n = 0;
    for (size_t q = 0; q < p; ++q)
      n += owner[q] == k || owner[q] == kSliced ? 1 : 0;
    return n;
  };
  std::vector<std::vector<PrimitiveOp>> out(a.count);
  for (size_t n = 0; n < ops.size(); ++n) {
    const PrimitiveOp& op = ops[n];
    const size_t at = op.first;
    const bool sliced = owner[at] == kSliced;
    if (!a.slicing_concats.contains(n)) {  // a slicing concat: each slice's operand is its part
      const int first = sliced ? 0 : owner[at];
      const int last = sliced ? static_cast<int>(a.count) - 1 : owner[at];
      for (int k = first; k <= last; ++k) {
        PrimitiveOp mine = op;
        mine.first = position(at, k);
        if (op.kind == Kind::kDequantize)
          mine.dims[2] = position(op.dims[2], k);
        if (op.kind == Kind::kReshape && sliced)
          mine.dims[0] /= a.count;
        out[static_cast<size_t>(k)].push_back(std::move(mine));
      }
    }
    switch (op.kind) {
      case Kind::kDequantize:
        owner.erase(owner.begin() + static_cast<std::ptrdiff_t>(op.dims[2]));
        break;
      case Kind::kSplit:
        owner.insert(owner.begin() + static_cast<std::ptrdiff_t>(at), op.dims.size() - 1,
                     owner[at]);
        break;
      case Kind::kConcat:
        owner.erase(owner.begin() + static_cast<std::ptrdiff_t>(at + 1),
                    owner.begin() + static_cast<std::ptrdiff_t>(at + op.count));
        if (a.slicing_concats.contains(n))
          owner[at] = kSliced;
        break;
      case Kind::kReshape:
      case Kind::kPermute:
      case Kind::kPad:
      case Kind::kSlice:
        break;
    }
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
  std::vector<std::vector<PrimitiveOp>> per_slice = OpsOfSlices(step.ops, *a);
  slices.ops = std::move(per_slice[0]);
  std::vector<Shape> first_shapes;
  for (const uint32_t i : slices.inputs[0])
    first_shapes.push_back(input_shapes[i]);
  for (uint32_t k = 1; k < a->count; ++k) {
    if (slices.inputs[k].size() != slices.inputs[0].size() || per_slice[k] != slices.ops)
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
