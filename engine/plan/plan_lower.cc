#include "engine/plan/plan_lower.h"

#include <numeric>

#include "engine/base/checked_math.h"
#include "engine/base/limits.h"
#include "engine/tensor/layout_ops.h"

namespace cw {
namespace {

using Kind = PrimitiveOp::Kind;

Shape With(const Shape& s, size_t axis, std::initializer_list<uint64_t> replacement) {
  Shape out(s.begin(), s.begin() + static_cast<long>(axis));
  out.insert(out.end(), replacement.begin(), replacement.end());
  out.insert(out.end(), s.begin() + static_cast<long>(axis) + 1, s.end());
  return out;
}

class Lowerer {
 public:
  Lowerer(std::vector<ChainSlot> slots, DType value_dtype, const NameLookup& lookup,
          const std::function<std::optional<int64_t>(const std::string&)>& over_count,
          const std::string& rule_label)
      : slots_(std::move(slots)),
        dtype_(value_dtype),
        lookup_(lookup),
        over_count_(over_count),
        label_(rule_label) {}

  Status Apply(const OpSpec& op) {
    op_ = &op;
    from_dims_.reset();
    to_dims_.reset();
    if (op.when) {
      CW_ASSIGN_OR_RETURN(bool on, op.when->EvaluateBool(lookup_, "when"));
      if (!on)
        return OkStatus();
    }
    CW_RETURN_IF_ERROR(Dispatch());
    for (const ChainSlot& slot : slots_) {
      for (const ChainValue& v : slot.values) {
        if (!ByteSize(dtype_, v.shape))
          return Fail(Describe(v) + " would hold 2^64 bytes or more of " +
                      std::string(Name(dtype_)));
      }
    }
    return OkStatus();
  }

  LoweredChain Finish() && {
    LoweredChain out;
    out.ops = std::move(ops_);
    out.outputs = std::move(slots_);
    out.lossy = !lossy_reason_.empty();
    out.lossy_reason = lossy_reason_;
    return out;
  }

 private:
  Status Dispatch() {
    switch (op_->kind) {
      case OpKind::kConcat:
      case OpKind::kInterleave:
        return Join();
      case OpKind::kSplit:
      case OpKind::kDeinterleave:
        return Cut();
      case OpKind::kStack:
        return Stack();
      case OpKind::kUnstack:
        return Unstack();
      case OpKind::kDequantize:
        return Dequantize();
      case OpKind::kDequantized:
        lossy_reason_ =
            "the weights are written in bfloat16: FP8 and its block scales are not "
            "restored";
        return OkStatus();
      default:
        return PerTensor();
    }
  }

  // (weight, scale) slot pairs; every weight's scale holds one float32 per block.
  Status Dequantize() {
    CW_ASSIGN_OR_RETURN(const uint64_t rows, Size(op_->block[0], "block rows"));
    CW_ASSIGN_OR_RETURN(const uint64_t cols, Size(op_->block[1], "block columns"));
    if (rows == 0 || cols == 0)
      return Fail("a block of " + std::to_string(rows) + " x " + std::to_string(cols));
    std::vector<ChainSlot> weights;
    uint32_t base = 0;
    for (size_t i = 0; i + 1 < slots_.size(); i += 2) {
      ChainSlot& w = slots_[i];
      const ChainSlot& s = slots_[i + 1];
      const auto scales = static_cast<uint32_t>(s.values.size());
      for (size_t j = 0; j < w.values.size(); ++j) {
        const Shape& ws = w.values[j].shape;
        const Shape& ss = s.values[j].shape;
        if (ws.size() != 2)
          return Fail(Describe(w.values[j]) + " is not a matrix");
        const Shape want{(ws[0] + rows - 1) / rows, (ws[1] + cols - 1) / cols};
        if (ss != want)
          return Fail("the scale " + Describe(s.values[j]) + " of " + Describe(w.values[j]) +
                      " should be " + ShapeToString(want) + " (blocks of " + std::to_string(rows) +
                      " x " + std::to_string(cols) + ")");
        Emit(Kind::kDequantize, base + static_cast<uint32_t>(j), 0, {rows, cols, base + scales});
      }
      base += static_cast<uint32_t>(w.values.size());
      weights.push_back(std::move(w));
    }
    slots_ = std::move(weights);
    lossy_reason_ = "FP8 weights dequantised to bfloat16 (the reverse writes bfloat16, not FP8)";
    return OkStatus();
  }

  Error Fail(const std::string& message) const {
    return Error(ErrorCode::kPlanInvalid,
                 "rule " + label_ + ": " + OpKindName(op_->kind) + ": " + message, op_->where);
  }

  static std::string Describe(const ChainValue& v) {
    return std::string(v.label) + " " + ShapeToString(v.shape);
  }

  Result<uint64_t> Size(const Expr& e, const std::string& what) const {
    CW_ASSIGN_OR_RETURN(int64_t v, e.EvaluateInt(lookup_, what));
    if (v < 0)
      return Fail(what + " \"" + e.text() + "\" is " + std::to_string(v) + ", below zero");
    return static_cast<uint64_t>(v);
  }

  Result<size_t> Axis(const Shape& shape, int axis, bool extra = false) const {
    const long rank = static_cast<long>(shape.size()) + (extra ? 1 : 0);
    const long a = axis < 0 ? rank + axis : axis;
    if (a < 0 || a >= rank)
      return Fail("axis " + std::to_string(axis) + " does not exist in shape " +
                  ShapeToString(shape));
    return static_cast<size_t>(a);
  }

  uint32_t Offset(size_t slot) const {
    uint32_t n = 0;
    for (size_t i = 0; i < slot; ++i)
      n += static_cast<uint32_t>(slots_[i].values.size());
    return n;
  }

  void Emit(Kind kind, uint32_t first, int axis, std::vector<uint64_t> dims,
            std::vector<int> perm = {}, uint32_t count = 1) {
    ops_.push_back(PrimitiveOp{kind, first, count, axis, std::move(dims), std::move(perm)});
  }

  void Reshape(uint32_t index, ChainValue& v, Shape to) {
    if (to != v.shape)
      Emit(Kind::kReshape, index, 0, to);
    v.shape = std::move(to);
  }

  Status PerTensor() {
    std::vector<size_t> selected;
    for (size_t i = 0; i < slots_.size(); ++i)
      selected.push_back(i);
    if (!op_->tensors.empty())
      selected.assign(op_->tensors.begin(), op_->tensors.end());
    for (size_t k = 0; k < selected.size(); ++k) {
      const size_t s = selected[k];
      for (size_t j = 0; j < slots_[s].values.size(); ++j)
        CW_RETURN_IF_ERROR(OneTensor(Offset(s) + static_cast<uint32_t>(j), slots_[s].values[j], k));
    }
    return OkStatus();
  }

  Status OneTensor(uint32_t index, ChainValue& v, size_t selected_index) {
    switch (op_->kind) {
      case OpKind::kTranspose:
      case OpKind::kPermute:
        return Permute(index, v);
      case OpKind::kReshape:
        return ReshapeOp(index, v);
      case OpKind::kRopeInterleave:
      case OpKind::kRopeDeinterleave:
        return Rope(index, v, op_->heads[op_->heads.size() == 1 ? 0 : selected_index]);
      default:
        return PadOrTruncate(index, v);
    }
  }

  Status Permute(uint32_t index, ChainValue& v) {
    std::vector<int> perm(v.shape.size());
    std::iota(perm.begin(), perm.end(), 0);
    if (op_->kind == OpKind::kTranspose) {
      CW_ASSIGN_OR_RETURN(size_t a, Axis(v.shape, op_->perm[0]));
      CW_ASSIGN_OR_RETURN(size_t b, Axis(v.shape, op_->perm[1]));
      std::swap(perm[a], perm[b]);
    } else if (op_->perm.size() != v.shape.size()) {
      return Fail("permutation of " + std::to_string(op_->perm.size()) + " axes for " +
                  Describe(v));
    } else {
      perm = op_->perm;
    }
    Emit(Kind::kPermute, index, 0, {}, perm);
    v.shape = PermutedShape(v.shape, perm);
    return OkStatus();
  }

  // A reshape's sizes read parameters and the group's placeholders, never the tensor, so they
  // are evaluated for the first tensor of the op and kept for the others (a stack of 256 experts
  // reshapes each one). `dims` holds the -1 entry, if any, as inferred for the latest tensor.
  struct ReshapeDims {
    Shape dims;
    std::optional<size_t> unknown;  // the -1 entry
    uint64_t known = 1;             // product of the other entries
  };

  // The shape `exprs` give a tensor of `elements` elements; one entry may be -1 (inferred from
  // `elements`, 0 when it cannot be).
  Result<const Shape*> Dims(const std::vector<Expr>& exprs, std::optional<ReshapeDims>& cache,
                            uint64_t elements) {
    if (!cache) {
      ReshapeDims d;
      for (const Expr& e : exprs) {
        CW_ASSIGN_OR_RETURN(int64_t v, e.EvaluateInt(lookup_, "reshape size"));
        if (v == -1 && !d.unknown) {
          d.unknown = d.dims.size();
          d.dims.push_back(0);
          continue;
        }
        if (v < 0)
          return Fail("size \"" + e.text() + "\" is " + std::to_string(v));
        d.dims.push_back(static_cast<uint64_t>(v));
        d.known *= static_cast<uint64_t>(v);
      }
      cache = std::move(d);
    }
    ReshapeDims& d = *cache;
    if (d.unknown)
      d.dims[*d.unknown] = d.known != 0 && elements % d.known == 0 ? elements / d.known : 0;
    return &d.dims;
  }

  Status ReshapeOp(uint32_t index, ChainValue& v) {
    const uint64_t elements = ElementCount(v.shape).value_or(0);
    CW_ASSIGN_OR_RETURN(const Shape* from, Dims(op_->from_shape, from_dims_, elements));
    if (*from != v.shape)
      return Fail("expects shape " + ShapeToString(*from) + " but got " + Describe(v));
    CW_ASSIGN_OR_RETURN(const Shape* to, Dims(op_->to_shape, to_dims_, elements));
    if (ElementCount(*to) != elements)
      return Fail("cannot reshape " + Describe(v) + " to " + ShapeToString(*to));
    if (*to != v.shape)
      Reshape(index, v, *to);
    return OkStatus();
  }

  Status Rope(uint32_t index, ChainValue& v, const Expr& heads_expr) {
    CW_ASSIGN_OR_RETURN(uint64_t heads, Size(heads_expr, "heads"));
    CW_ASSIGN_OR_RETURN(size_t a, Axis(v.shape, op_->axis));
    const uint64_t rows = v.shape[a];
    if (heads == 0 || rows % heads != 0 || (rows / heads) % 2 != 0) {
      return Fail("axis " + std::to_string(a) + " of " + Describe(v) + " is not " +
                  std::to_string(heads) + " heads (\"" + heads_expr.text() + "\") of an even size");
    }
    const uint64_t half = rows / heads / 2;
    const Shape original = v.shape;
    const bool to_pairs = op_->kind == OpKind::kRopeInterleave;
    Reshape(index, v, With(original, a, {heads, to_pairs ? 2 : half, to_pairs ? half : 2}));
    std::vector<int> perm(v.shape.size());
    std::iota(perm.begin(), perm.end(), 0);
    std::swap(perm[a + 1], perm[a + 2]);
    Emit(Kind::kPermute, index, 0, {}, perm);
    v.shape = PermutedShape(v.shape, perm);
    Reshape(index, v, original);
    return OkStatus();
  }

  Status PadOrTruncate(uint32_t index, ChainValue& v) {
    CW_ASSIGN_OR_RETURN(size_t a, Axis(v.shape, op_->axis));
    CW_ASSIGN_OR_RETURN(uint64_t from, Size(*op_->from_size, "from"));
    CW_ASSIGN_OR_RETURN(uint64_t to, Size(*op_->to_size, "to"));
    const bool pad = op_->kind == OpKind::kPad;
    if (v.shape[a] != from)
      return Fail("expects axis " + std::to_string(a) + " of length " + std::to_string(from) +
                  " (\"" + op_->from_size->text() + "\") but got " + Describe(v));
    if (pad ? to < from : to > from)
      return Fail("cannot " + std::string(pad ? "pad" : "truncate") + " " + std::to_string(from) +
                  " to " + std::to_string(to));
    if (to != from) {
      Emit(pad ? Kind::kPad : Kind::kSlice, index, static_cast<int>(a), {to});
      if (!pad && lossy_reason_.empty())
        lossy_reason_ = "truncate drops entries " + std::to_string(to) + ".." +
                        std::to_string(from - 1) + " of axis " + std::to_string(a) + " of " +
                        std::string(v.label);
    }
    v.shape[a] = to;
    return OkStatus();
  }

  // Concat or interleave of every slot into one tensor.
  Status Join() {
    std::vector<ChainValue*> in;
    for (ChainSlot& s : slots_)
      in.push_back(&s.values[0]);
    CW_ASSIGN_OR_RETURN(size_t a, Axis(in[0]->shape, op_->axis));
    const bool interleave = op_->kind == OpKind::kInterleave;
    uint64_t groups = 1;
    if (interleave) {
      CW_ASSIGN_OR_RETURN(groups, Size(*op_->groups, "groups"));
    }
    std::vector<uint64_t> chunk;
    for (size_t i = 0; i < in.size(); ++i) {
      Shape expect = in[0]->shape;
      if (in[i]->shape.size() == expect.size())
        expect[a] = in[i]->shape[a];
      if (in[i]->shape != expect)
        return Fail(Describe(*in[i]) + " does not fit " + Describe(*in[0]));
      const uint64_t length = in[i]->shape[a];
      if (groups == 0 || length % groups != 0)
        return Fail("axis " + std::to_string(a) + " of " + Describe(*in[i]) +
                    " does not divide into " + std::to_string(groups) + " groups");
      chunk.push_back(length / groups);
      if (op_->equal && chunk[i] != chunk[0])
        return Fail("equal parts declared but " + Describe(*in[0]) + " and " + Describe(*in[i]) +
                    " differ along axis " + std::to_string(a));
      if (!op_->sizes.empty()) {
        CW_ASSIGN_OR_RETURN(uint64_t want, Size(op_->sizes[i], interleave ? "chunk" : "size"));
        if (want != chunk[i])
          return Fail((interleave ? "chunk " : "size ") + std::to_string(i) + " is " +
                      std::to_string(want) + " (\"" + op_->sizes[i].text() + "\") but " +
                      Describe(*in[i]) + " has " + std::to_string(chunk[i]) +
                      (interleave ? " per group" : "") + " along axis " + std::to_string(a));
      }
    }
    const Shape original = in[0]->shape;
    std::optional<uint64_t> per_group = 0;
    for (const uint64_t c : chunk)
      per_group = per_group ? CheckedAdd(*per_group, c) : std::nullopt;
    const auto total = per_group ? CheckedMul(*per_group, groups) : std::nullopt;
    if (!total)
      return Fail("axis " + std::to_string(a) +
                  " of the joined tensor would have 2^64 entries or more");
    if (interleave) {
      for (size_t i = 0; i < in.size(); ++i)
        Reshape(static_cast<uint32_t>(i), *in[i], With(original, a, {groups, chunk[i]}));
    }
    const size_t join_axis = interleave ? a + 1 : a;
    Emit(Kind::kConcat, 0, static_cast<int>(join_axis), {}, {}, static_cast<uint32_t>(in.size()));
    ChainValue joined{With(original, a, {*total}), in[0]->label};
    if (interleave) {
      joined.shape = With(original, a, {groups, *per_group});
      Reshape(0, joined, With(original, a, {*total}));
    }
    slots_.assign(1, ChainSlot{"", {joined}});
    return OkStatus();
  }

  // Split or deinterleave of the one tensor into parts.
  Status Cut() {
    ChainValue v = slots_[0].values[0];
    CW_ASSIGN_OR_RETURN(size_t a, Axis(v.shape, op_->axis));
    const bool deinterleave = op_->kind == OpKind::kDeinterleave;
    uint64_t groups = 1;
    if (deinterleave) {
      CW_ASSIGN_OR_RETURN(groups, Size(*op_->groups, "groups"));
    }
    const uint64_t length = v.shape[a];
    if (groups == 0 || length % groups != 0)
      return Fail("axis " + std::to_string(a) + " of " + Describe(v) + " does not divide into " +
                  std::to_string(groups) + " groups");
    const uint64_t per_group = length / groups;
    std::vector<uint64_t> parts;
    if (op_->parts) {
      const auto p = static_cast<uint64_t>(*op_->parts);
      if (per_group % p != 0)
        return Fail("axis " + std::to_string(a) + " of " + Describe(v) + " does not divide into " +
                    std::to_string(p) + " equal parts" + (deinterleave ? " per group" : ""));
      parts.assign(p, per_group / p);
    } else {
      std::string list;
      std::optional<uint64_t> sum = 0;  // nullopt once it overflows
      for (const Expr& e : op_->sizes) {
        CW_ASSIGN_OR_RETURN(uint64_t s, Size(e, deinterleave ? "chunk" : "size"));
        parts.push_back(s);
        sum = sum ? CheckedAdd(*sum, s) : std::nullopt;
        list += (list.empty() ? "" : " + ") + std::to_string(s);
      }
      if (sum != per_group)
        return Fail("sizes " + list + " = " + (sum ? std::to_string(*sum) : "2^64 or more") +
                    " do not add up to " +
                    (deinterleave ? "the " + std::to_string(per_group) + " rows per group of "
                                  : "axis " + std::to_string(a) + " of ") +
                    Describe(v));
    }
    const Shape original = v.shape;
    if (deinterleave)
      Reshape(0, v, With(original, a, {groups, per_group}));
    Emit(Kind::kSplit, 0, static_cast<int>(deinterleave ? a + 1 : a), parts);
    std::vector<ChainSlot> out;
    for (size_t i = 0; i < parts.size(); ++i) {
      ChainValue piece{With(original, a, {groups * parts[i]}), v.label};
      if (deinterleave) {
        piece.shape = With(original, a, {groups, parts[i]});
        Reshape(static_cast<uint32_t>(i), piece, With(original, a, {groups * parts[i]}));
      }
      out.push_back(ChainSlot{"", {piece}});
    }
    slots_ = std::move(out);
    return OkStatus();
  }

  Status Stack() {
    for (size_t s = 0; s < slots_.size(); ++s) {
      ChainSlot& slot = slots_[s];
      if (slot.over != op_->over)
        continue;
      if (slot.values.empty())
        return Fail("no tensors to stack over {" + op_->over + "}");
      const Shape base = slot.values[0].shape;
      CW_ASSIGN_OR_RETURN(size_t a, Axis(base, op_->axis, true));
      const uint32_t first = Offset(s);
      Shape with_axis = base;
      with_axis.insert(with_axis.begin() + static_cast<long>(a), 1);
      // The values are replaced by the stacked one below: only the reshape ops are needed.
      for (size_t j = 0; j < slot.values.size(); ++j) {
        if (slot.values[j].shape != base)
          return Fail(Describe(slot.values[j]) + " differs from " + Describe(slot.values[0]));
        Emit(Kind::kReshape, first + static_cast<uint32_t>(j), 0, with_axis);
      }
      Emit(Kind::kConcat, first, static_cast<int>(a), {}, {},
           static_cast<uint32_t>(slot.values.size()));
      Shape stacked = base;
      stacked.insert(stacked.begin() + static_cast<long>(a), slot.values.size());
      slot.values.assign(1, ChainValue{stacked, slot.values[0].label});
      slot.over.clear();
    }
    return OkStatus();
  }

  Status Unstack() {
    for (size_t s = 0; s < slots_.size(); ++s) {
      ChainSlot& slot = slots_[s];
      const ChainValue v = slot.values[0];
      CW_ASSIGN_OR_RETURN(size_t a, Axis(v.shape, op_->axis));
      const uint64_t n = v.shape[a];
      const auto declared = over_count_(op_->over);
      if (declared && static_cast<uint64_t>(*declared) != n)
        return Fail("axis " + std::to_string(a) + " of " + Describe(v) + " holds " +
                    std::to_string(n) + " values of {" + op_->over + "} but its count is " +
                    std::to_string(*declared));
      if (n == 0 || n > limits::kMaxTensorCount)
        return Fail(Describe(v) + " cannot be unstacked into " + std::to_string(n) + " tensors");
      const uint32_t first = Offset(s);
      Emit(Kind::kSplit, first, static_cast<int>(a), std::vector<uint64_t>(n, 1));
      Shape without = v.shape;
      without.erase(without.begin() + static_cast<long>(a));
      slot.values.clear();
      slot.values.reserve(n);
      // Each piece comes out of the split with a 1 at `a`, then loses that axis.
      for (uint64_t j = 0; j < n; ++j) {
        Emit(Kind::kReshape, first + static_cast<uint32_t>(j), 0, without);
        slot.values.push_back(ChainValue{without, v.label});
      }
      slot.over = op_->over;
    }
    return OkStatus();
  }

  std::vector<ChainSlot> slots_;
  DType dtype_;
  const NameLookup& lookup_;
  const std::function<std::optional<int64_t>(const std::string&)>& over_count_;
  const std::string& label_;
  const OpSpec* op_ = nullptr;
  std::optional<ReshapeDims> from_dims_, to_dims_;  // of op_, once evaluated
  std::vector<PrimitiveOp> ops_;
  std::string lossy_reason_;
};

}  // namespace

Result<LoweredChain> LowerChain(
    const std::vector<OpSpec>& chain, std::vector<ChainSlot> inputs, DType value_dtype,
    const NameLookup& lookup,
    const std::function<std::optional<int64_t>(const std::string&)>& over_count,
    const std::string& rule_label) {
  Lowerer lowerer(std::move(inputs), value_dtype, lookup, over_count, rule_label);
  for (const OpSpec& op : chain)
    CW_RETURN_IF_ERROR(lowerer.Apply(op));
  return std::move(lowerer).Finish();
}

}  // namespace cw
