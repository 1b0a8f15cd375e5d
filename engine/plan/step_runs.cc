#include "engine/plan/step_runs.h"

#include <algorithm>

#include "engine/tensor/layout_ops.h"

namespace cw {
namespace {

using Kind = PrimitiveOp::Kind;

// A value of the step, as the runs that hold its bytes.
struct RunValue {
  Shape shape;
  std::vector<ByteRun> runs;  // the value's bytes, in C order
};

// A value's shape seen around one axis: `outer` blocks of `row` bytes, each holding the axis's
// entries of `inner` bytes.
struct AxisBlocks {
  uint64_t outer = 1;
  uint64_t inner = 0;
  uint64_t row = 0;
};

AxisBlocks BlocksAround(const Shape& shape, size_t axis, uint64_t element_bytes) {
  AxisBlocks b;
  b.inner = element_bytes;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (d < axis)
      b.outer *= shape[d];
    else if (d > axis)
      b.inner *= shape[d];
  }
  b.row = shape[axis] * b.inner;
  return b;
}

void Append(std::vector<ByteRun>& out, ByteRun run) {
  if (run.size == 0)
    return;
  if (!out.empty()) {
    ByteRun& last = out.back();
    const bool zeros = run.input == ByteRun::kZeros && last.input == ByteRun::kZeros;
    if (zeros || (last.input == run.input && run.input != ByteRun::kZeros &&
                  last.offset + last.size == run.offset)) {
      last.size += run.size;
      return;
    }
  }
  out.push_back(run);
}

// Appends the runs holding bytes [begin, begin + n) of a value.
void AppendRange(const std::vector<ByteRun>& runs, uint64_t begin, uint64_t n,
                 std::vector<ByteRun>& out) {
  uint64_t at = 0;
  for (const ByteRun& r : runs) {
    if (n == 0)
      return;
    if (begin < at + r.size) {
      const uint64_t skip = begin - at;
      const uint64_t take = std::min(n, r.size - skip);
      Append(out, {r.input, r.input == ByteRun::kZeros ? 0 : r.offset + skip, take});
      begin += take;
      n -= take;
    }
    at += r.size;
  }
}

// A permutation that only moves axes of size 1 keeps the bytes in place.
bool KeepsByteOrder(const Shape& shape, const std::vector<int>& perm) {
  int last = -1;
  for (const int axis : perm) {
    if (shape[static_cast<size_t>(axis)] == 1)
      continue;
    if (axis < last)
      return false;
    last = axis;
  }
  return true;
}

// Applies one op to the values; false when its result is not a few runs per value.
bool StepRunsOp(const PrimitiveOp& op, std::vector<RunValue>& values, uint64_t element_bytes) {
  if (op.first >= values.size() ||
      (op.kind == Kind::kConcat && op.count > values.size() - op.first))
    return false;
  if (op.kind == Kind::kDequantize)
    return false;  // computes new bytes: never a copy
  RunValue& v = values[op.first];
  const auto axis = static_cast<size_t>(op.axis);
  const bool axis_ok = op.axis >= 0 && axis < v.shape.size();
  if (op.kind != Kind::kReshape && op.kind != Kind::kPermute && !axis_ok)
    return false;
  const AxisBlocks b = axis_ok ? BlocksAround(v.shape, axis, element_bytes) : AxisBlocks{};
  if (b.outer > kMaxRunsPerOutput)  // each block would be a run of its own
    return false;
  switch (op.kind) {
    case Kind::kDequantize:
      return false;
    case Kind::kReshape:
      if (ElementCount(op.dims) != ElementCount(v.shape))
        return false;
      v.shape = op.dims;
      return true;
    case Kind::kPermute:
      if (op.perm.size() != v.shape.size() || !KeepsByteOrder(v.shape, op.perm))
        return false;
      v.shape = PermutedShape(v.shape, op.perm);
      return true;
    case Kind::kPad:
    case Kind::kSlice: {
      if (op.dims.size() != 1)
        return false;
      const uint64_t n = op.dims[0];
      const uint64_t kept = std::min(n, v.shape[axis]) * b.inner;
      std::vector<ByteRun> runs;
      for (uint64_t r = 0; r < b.outer; ++r) {
        AppendRange(v.runs, r * b.row, kept, runs);
        Append(runs, {ByteRun::kZeros, 0, n * b.inner - kept});
      }
      v.runs = std::move(runs);
      v.shape[axis] = n;
      return true;
    }
    case Kind::kSplit: {
      std::vector<RunValue> pieces;
      uint64_t start = 0;
      for (const uint64_t d : op.dims) {
        RunValue piece{v.shape, {}};
        piece.shape[axis] = d;
        for (uint64_t r = 0; r < b.outer; ++r)
          AppendRange(v.runs, r * b.row + start * b.inner, d * b.inner, piece.runs);
        pieces.push_back(std::move(piece));
        start += d;
      }
      if (start != v.shape[axis])
        return false;
      values.erase(values.begin() + op.first);
      values.insert(values.begin() + op.first, std::make_move_iterator(pieces.begin()),
                    std::make_move_iterator(pieces.end()));
      return true;
    }
    case Kind::kConcat: {
      RunValue joined{v.shape, {}};
      joined.shape[axis] = 0;
      for (uint32_t i = 0; i < op.count; ++i)
        joined.shape[axis] += values[op.first + i].shape[axis];
      for (uint64_t r = 0; r < b.outer; ++r) {
        for (uint32_t i = 0; i < op.count; ++i) {
          const RunValue& part = values[op.first + i];
          const uint64_t row = part.shape[axis] * b.inner;
          AppendRange(part.runs, r * row, row, joined.runs);
        }
      }
      values.erase(values.begin() + op.first, values.begin() + op.first + op.count);
      values.insert(values.begin() + op.first, std::move(joined));
      return true;
    }
  }
  return false;
}

}  // namespace

std::optional<std::vector<std::vector<ByteRun>>> StepRuns(const Plan& plan, const PlanStep& step) {
  if (step.kind != PlanStep::Kind::kConvert)
    return std::nullopt;
  const uint64_t element_bytes = ElementSize(step.value_dtype);
  std::vector<RunValue> values;
  for (size_t i = 0; i < step.inputs.size(); ++i) {
    const TensorInfo& info = plan.inventory.at(step.inputs[i]);
    RunValue v{info.shape, {}};
    Append(v.runs, {static_cast<uint32_t>(i), 0, info.byte_size});
    values.push_back(std::move(v));
  }
  for (const PrimitiveOp& op : step.ops) {
    if (!StepRunsOp(op, values, element_bytes))
      return std::nullopt;
    for (const RunValue& v : values) {
      if (v.runs.size() > kMaxRunsPerOutput)
        return std::nullopt;
    }
  }
  if (values.size() != step.outputs.size())
    return std::nullopt;
  std::vector<std::vector<ByteRun>> runs;
  for (size_t o = 0; o < values.size(); ++o) {
    if (values[o].shape != step.outputs[o].shape)
      return std::nullopt;
    runs.push_back(std::move(values[o].runs));
  }
  return runs;
}

}  // namespace cw
