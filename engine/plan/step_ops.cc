#include "engine/plan/step_ops.h"

#include <algorithm>
#include <cstring>

#include "engine/base/checked_math.h"
#include "engine/tensor/fp8.h"
#include "engine/tensor/layout_ops.h"

namespace cw {
namespace {

using Kind = PrimitiveOp::Kind;

Error Bug(const std::string& message) {
  return Error(ErrorCode::kInternal, "plan step: " + message);
}

// The block scale a kDequantize op reads: its index, checked against the list and the weight.
Result<size_t> ScaleIndex(const PrimitiveOp& op, const std::vector<Shape>& shapes) {
  if (op.dims.size() != 3 || op.dims[0] == 0 || op.dims[1] == 0 || op.dims[2] >= shapes.size() ||
      op.dims[2] == op.first)
    return Bug("dequantize without a valid block or scale");
  const Shape& w = shapes[op.first];
  const Shape& s = shapes[op.dims[2]];
  if (w.size() != 2 ||
      s != Shape{(w[0] + op.dims[0] - 1) / op.dims[0], (w[1] + op.dims[1] - 1) / op.dims[1]})
    return Bug("dequantize of " + ShapeToString(w) + " with a scale of " + ShapeToString(s));
  return static_cast<size_t>(op.dims[2]);
}

// Applies one op to a list of shapes.
Status StepShapes(const PrimitiveOp& op, std::vector<Shape>& shapes) {
  if (op.first >= shapes.size() ||
      (op.kind == Kind::kConcat && op.count > shapes.size() - op.first))
    return Bug(std::string(PrimitiveKindName(op.kind)) + " refers past the value list");
  if (op.kind == Kind::kDequantize) {
    CW_ASSIGN_OR_RETURN(const size_t scale, ScaleIndex(op, shapes));
    shapes.erase(shapes.begin() + static_cast<std::ptrdiff_t>(scale));
    return OkStatus();
  }
  Shape& s = shapes[op.first];
  const auto axis = static_cast<size_t>(op.axis);
  const bool axis_ok = op.axis >= 0 && axis < s.size();
  switch (op.kind) {
    case Kind::kReshape:
      if (ElementCount(op.dims) != ElementCount(s))
        return Bug("reshape of " + ShapeToString(s) + " to " + ShapeToString(op.dims));
      s = op.dims;
      return OkStatus();
    case Kind::kPermute:
      if (op.perm.size() != s.size())
        return Bug("permutation does not fit " + ShapeToString(s));
      s = PermutedShape(s, op.perm);
      return OkStatus();
    case Kind::kPad:
    case Kind::kSlice:
      if (!axis_ok || op.dims.size() != 1)
        return Bug("bad pad/slice of " + ShapeToString(s));
      s[axis] = op.dims[0];
      return OkStatus();
    case Kind::kSplit: {
      if (!axis_ok)
        return Bug("split axis outside " + ShapeToString(s));
      std::vector<Shape> parts;
      for (uint64_t d : op.dims) {
        parts.push_back(s);
        parts.back()[axis] = d;
      }
      shapes.erase(shapes.begin() + op.first);
      shapes.insert(shapes.begin() + op.first, std::make_move_iterator(parts.begin()),
                    std::make_move_iterator(parts.end()));
      return OkStatus();
    }
    case Kind::kDequantize:
      break;  // handled above
    case Kind::kConcat: {
      if (!axis_ok || op.count == 0)
        return Bug("concat axis outside " + ShapeToString(s));
      Shape joined = s;
      joined[axis] = 0;
      for (uint32_t i = 0; i < op.count; ++i)
        joined[axis] += shapes[op.first + i][axis];
      shapes.erase(shapes.begin() + op.first, shapes.begin() + op.first + op.count);
      shapes.insert(shapes.begin() + op.first, joined);
      return OkStatus();
    }
  }
  return Bug("unknown op");
}

struct Live {
  Shape shape;
  TensorData data;
};

Status Dequantize(const PrimitiveOp& op, std::vector<Live>& values) {
  std::vector<Shape> shapes;
  for (const Live& v : values)
    shapes.push_back(v.shape);
  CW_ASSIGN_OR_RETURN(const size_t scale, ScaleIndex(op, shapes));
  Live& w = values[op.first];
  TensorData out = TensorData::Allocate(2 * w.data.size());
  DequantizeE4M3ToBF16(w.data.bytes(), values[scale].data.bytes(), w.shape[0], w.shape[1],
                       op.dims[0], op.dims[1], out.mutable_bytes());
  w.data = std::move(out);
  values.erase(values.begin() + static_cast<std::ptrdiff_t>(scale));
  return OkStatus();
}

// Runs one op on the live values.
Status StepData(const PrimitiveOp& op, std::vector<Live>& values, uint32_t element_bytes) {
  if (op.first >= values.size() ||
      (op.kind == Kind::kConcat && op.count > values.size() - op.first))
    return Bug(std::string(PrimitiveKindName(op.kind)) + " refers past the value list");
  if (op.kind == Kind::kDequantize)
    return Dequantize(op, values);
  Live& v = values[op.first];
  const TensorView view{v.data.bytes(), v.shape};
  switch (op.kind) {
    case Kind::kReshape:
      if (ElementCount(op.dims) != ElementCount(v.shape))
        return Bug("reshape of " + ShapeToString(v.shape) + " to " + ShapeToString(op.dims));
      v.shape = op.dims;
      return OkStatus();
    case Kind::kPermute: {
      CW_ASSIGN_OR_RETURN(v.data, PermuteAxes(view, op.perm, element_bytes));
      v.shape = PermutedShape(v.shape, op.perm);
      return OkStatus();
    }
    case Kind::kPad:
    case Kind::kSlice: {
      const uint64_t n = op.dims.empty() ? 0 : op.dims[0];
      auto r = op.kind == Kind::kPad ? PadAxis(view, op.axis, n, element_bytes)
                                     : SliceAxis(view, op.axis, n, element_bytes);
      CW_ASSIGN_OR_RETURN(v.data, std::move(r));
      v.shape[static_cast<size_t>(op.axis)] = n;
      return OkStatus();
    }
    case Kind::kSplit: {
      CW_ASSIGN_OR_RETURN(std::vector<TensorData> parts,
                          SplitAxis(view, op.axis, op.dims, element_bytes));
      std::vector<Live> pieces;
      for (size_t i = 0; i < parts.size(); ++i) {
        Shape s = v.shape;
        s[static_cast<size_t>(op.axis)] = op.dims[i];
        pieces.push_back(Live{s, std::move(parts[i])});
      }
      values.erase(values.begin() + op.first);
      values.insert(values.begin() + op.first, std::make_move_iterator(pieces.begin()),
                    std::make_move_iterator(pieces.end()));
      return OkStatus();
    }
    case Kind::kDequantize:
      break;  // handled above
    case Kind::kConcat: {
      if (op.count == 1)
        return OkStatus();  // a stack cut to one slice (step_slices.h): nothing to join
      std::vector<TensorView> views;
      for (uint32_t i = 0; i < op.count; ++i)
        views.push_back({values[op.first + i].data.bytes(), values[op.first + i].shape});
      CW_ASSIGN_OR_RETURN(TensorData joined, ConcatAxis(views, op.axis, element_bytes));
      Shape shape = v.shape;
      shape[static_cast<size_t>(op.axis)] = 0;
      for (const TensorView& t : views)
        shape[static_cast<size_t>(op.axis)] += t.shape[static_cast<size_t>(op.axis)];
      values.erase(values.begin() + op.first, values.begin() + op.first + op.count);
      values.insert(values.begin() + op.first, Live{shape, std::move(joined)});
      return OkStatus();
    }
  }
  return Bug("unknown op");
}

}  // namespace

const char* PrimitiveKindName(PrimitiveOp::Kind kind) {
  switch (kind) {
    case Kind::kReshape:
      return "reshape";
    case Kind::kPermute:
      return "permute";
    case Kind::kSplit:
      return "split";
    case Kind::kConcat:
      return "concat";
    case Kind::kPad:
      return "pad";
    case Kind::kSlice:
      return "slice";
    case Kind::kDequantize:
      return "dequantize";
  }
  return "?";
}

Result<std::vector<Shape>> ApplyToShapes(const std::vector<PrimitiveOp>& ops,
                                         std::vector<Shape> shapes) {
  for (const PrimitiveOp& op : ops)
    CW_RETURN_IF_ERROR(StepShapes(op, shapes));
  return shapes;
}

uint64_t WorkingBytes(const std::vector<PrimitiveOp>& ops, const std::vector<Shape>& input_shapes,
                      DType value_dtype, const std::vector<TensorInfo>& outputs) {
  auto bytes = [&](const Shape& s) { return ByteSize(value_dtype, s).value_or(UINT64_MAX); };
  std::vector<Shape> shapes = input_shapes;
  std::vector<bool> owned(shapes.size(), false);
  uint64_t live = 0, peak = 0;
  for (const PrimitiveOp& op : ops) {
    if (op.kind == Kind::kReshape) {
      (void)StepShapes(op, shapes);
      continue;
    }
    if (op.kind == Kind::kDequantize) {
      // A new bf16 weight next to its borrowed FP8 input and scale.
      if (op.dims.size() != 3 || op.dims[2] >= owned.size() || !StepShapes(op, shapes).ok())
        return peak;
      live = SaturatingAdd(live, bytes(shapes[op.first]));
      peak = std::max(peak, live);
      owned.erase(owned.begin() + static_cast<std::ptrdiff_t>(op.dims[2]));
      owned[op.first] = true;
      continue;
    }
    const uint32_t n = op.kind == Kind::kConcat ? op.count : 1;
    uint64_t consumed_owned = 0;
    for (uint32_t i = 0; i < n && op.first + i < shapes.size(); ++i) {
      if (owned[op.first + i])
        consumed_owned = SaturatingAdd(consumed_owned, bytes(shapes[op.first + i]));
    }
    const size_t before = shapes.size();
    if (!StepShapes(op, shapes).ok())
      return peak;
    const size_t produced = shapes.size() + n - before;
    uint64_t made = 0;
    for (size_t i = 0; i < produced; ++i)
      made = SaturatingAdd(made, bytes(shapes[op.first + i]));
    const uint64_t held = SaturatingAdd(live, made);
    peak = std::max(peak, held);
    live = held - std::min(consumed_owned, held);  // owned inputs are part of `live`
    owned.erase(owned.begin() + op.first, owned.begin() + op.first + n);
    owned.insert(owned.begin() + op.first, produced, true);
  }
  for (const TensorInfo& out : outputs) {
    if (out.dtype != value_dtype)
      live = SaturatingAdd(live, out.byte_size);  // the cast result, next to its source value
  }
  return std::max(peak, live);
}

Result<std::vector<TensorData>> ApplyStep(const Plan& plan, const PlanStep& step,
                                          std::vector<TensorData> inputs) {
  if (step.kind != PlanStep::Kind::kConvert || inputs.size() != step.inputs.size())
    return Bug("step of rule " + step.rule.file + " called with the wrong inputs");
  std::vector<Live> values;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const TensorInfo& info = plan.inventory.at(step.inputs[i]);
    if (inputs[i].size() != info.byte_size)
      return Bug(info.name + " has " + std::to_string(inputs[i].size()) + " bytes, planned " +
                 std::to_string(info.byte_size));
    values.push_back(Live{info.shape, std::move(inputs[i])});
  }
  for (const PrimitiveOp& op : step.ops) {
    Status s = StepData(op, values, ElementSize(step.value_dtype));
    if (!s.ok())
      return std::move(s).error().With("running the step of rule " + step.rule.file + ":" +
                                       std::to_string(step.rule.line));
  }
  if (values.size() != step.outputs.size())
    return Bug("step of rule " + step.rule.file + " made " + std::to_string(values.size()) +
               " values for " + std::to_string(step.outputs.size()) + " outputs");
  std::vector<TensorData> out;
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i].shape != step.outputs[i].shape)
      return Bug(step.outputs[i].name + " came out " + ShapeToString(values[i].shape) +
                 ", planned " + ShapeToString(step.outputs[i].shape));
    out.push_back(std::move(values[i].data));
  }
  return out;
}

bool SameBytes(const TensorData& a, const TensorData& b) {
  return a.size() == b.size() &&
         (a.size() == 0 || std::memcmp(a.bytes().data(), b.bytes().data(), a.size()) == 0);
}

}  // namespace cw
