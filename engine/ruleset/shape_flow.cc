#include "engine/ruleset/shape_flow.h"

#include <algorithm>
#include <set>

#include "engine/ruleset/expression_algebra.h"

namespace cw {
namespace {

struct Slot {
  std::optional<DerivedShape> shape;
  std::string over;  // the tensors of every value of this placeholder, each of `shape`
};

std::optional<size_t> Axis(int axis, size_t rank) {
  const int64_t a = axis < 0 ? static_cast<int64_t>(rank) + axis : axis;
  if (a < 0 || a >= static_cast<int64_t>(rank))
    return std::nullopt;
  return static_cast<size_t>(a);
}

std::string SizeText(const std::optional<Expr>& e) { return e ? e->text() : "?"; }

class Flow {
 public:
  Flow(const RuleSet& rules, const Rule& rule, const OpCondition& when)
      : rules_(rules), rule_(rule), when_(when) {}

  ShapeFlow Run(Side from) {
    const Direction d = from == Side::kHf ? Direction::kForward : Direction::kReverse;
    const auto& chain = rule_.chain(d);
    std::set<std::string> overs;
    for (const OpSpec& op : chain) {
      if (op.kind == OpKind::kStack)
        overs.insert(op.over);
    }
    const auto& declared = rule_.shapes(from);
    for (size_t i = 0; i < rule_.side(from).size(); ++i) {
      Slot slot;
      if (i < declared.size())
        slot.shape = DerivedShape(declared[i].begin(), declared[i].end());
      for (const std::string& p : rule_.side(from)[i].placeholders()) {
        if (overs.count(p))
          slot.over = p;
      }
      slots_.push_back(std::move(slot));
    }
    for (const OpSpec& op : chain)
      Apply(op);
    ShapeFlow out;
    const Side to = from == Side::kHf ? Side::kMs : Side::kHf;
    out.shapes.resize(rule_.side(to).size());
    for (size_t i = 0; i < slots_.size(); ++i) {
      const size_t pattern = rule_.WrittenPattern(to, i);
      if (pattern < out.shapes.size())
        out.shapes[pattern] = std::move(slots_[i].shape);
    }
    out.findings = std::move(findings_);
    return out;
  }

 private:
  // Reports when `stated` (a size the op states) is certainly not `received` (a declared size).
  void Check(const OpSpec& op, const std::optional<Expr>& received, const Expr& stated,
             const std::string& what) {
    if (received && SameValue(*received, stated) == false) {
      findings_.emplace_back(ErrorCode::kRuleInvalid,
                             std::string(OpKindName(op.kind)) + ": " + what + " is \"" +
                                 stated.text() + "\", but the declared shapes make it \"" +
                                 received->text() + "\"",
                             op.where);
    }
  }

  void ForgetAll() {
    for (Slot& s : slots_)
      s.shape.reset();
  }

  // The per-tensor ops, on one shape.
  void PerTensor(const OpSpec& op, std::optional<DerivedShape>& shape) {
    if (!shape)
      return;
    DerivedShape& s = *shape;
    auto axis = [&](int a) { return Axis(a, s.size()); };
    switch (op.kind) {
      case OpKind::kTranspose: {
        const auto a = axis(op.perm[0]), b = axis(op.perm[1]);
        if (!a || !b)
          return shape.reset();
        std::swap(s[*a], s[*b]);
        return;
      }
      case OpKind::kPermute: {
        if (op.perm.size() != s.size())
          return shape.reset();
        DerivedShape out;
        for (int p : op.perm) {
          const auto a = axis(p);
          if (!a)
            return shape.reset();
          out.push_back(s[*a]);
        }
        s = std::move(out);
        return;
      }
      case OpKind::kReshape: {
        if (op.from_shape.size() == s.size()) {
          for (size_t i = 0; i < s.size(); ++i)
            Check(op, s[i], op.from_shape[i], "from size " + std::to_string(i));
        } else {
          findings_.emplace_back(ErrorCode::kRuleInvalid,
                                 "reshape: from has " + std::to_string(op.from_shape.size()) +
                                     " sizes, but the declared shape " + ShapeText(s) + " has " +
                                     std::to_string(s.size()),
                                 op.where);
        }
        DerivedShape out;
        for (const Expr& e : op.to_shape) {
          const auto c = e.AsConstant();
          out.push_back(c && *c == Value::Int(-1) ? std::nullopt : std::optional(e));
        }
        s = std::move(out);
        return;
      }
      case OpKind::kPad:
      case OpKind::kTruncate: {
        const auto a = axis(op.axis);
        if (!a)
          return shape.reset();
        Check(op, s[*a], *op.from_size, "from");
        s[*a] = *op.to_size;
        return;
      }
      default:
        return;  // rope ops keep the shape
    }
  }

  // The size along `axis` of every slot, or nullopt when one is unknown.
  std::optional<std::vector<Expr>> SizesAlong(int axis) {
    std::vector<Expr> out;
    for (const Slot& s : slots_) {
      const auto a = s.shape ? Axis(axis, s.shape->size()) : std::nullopt;
      if (!a || !(*s.shape)[*a])
        return std::nullopt;
      out.push_back(*(*s.shape)[*a]);
    }
    return out;
  }

  // concat and interleave: every slot joined along the axis into one.
  void Join(const OpSpec& op) {
    const Location& at = op.where;
    std::optional<DerivedShape> joined;
    if (slots_.front().shape) {
      joined = slots_.front().shape;
      const auto a = Axis(op.axis, joined->size());
      const auto sizes = SizesAlong(op.axis);
      std::vector<Expr> parts;
      for (size_t i = 0; i < op.sizes.size() && i < slots_.size(); ++i) {
        const Expr part =
            op.kind == OpKind::kInterleave ? ProductOf(*op.groups, op.sizes[i], at) : op.sizes[i];
        if (sizes)
          Check(op, (*sizes)[i], part, "the size of part " + std::to_string(i));
        parts.push_back(part);
      }
      if (!a)
        joined.reset();
      else if (sizes)
        (*joined)[*a] = SumOf(*sizes, at);
      else if (!parts.empty() && parts.size() == slots_.size())
        (*joined)[*a] = SumOf(parts, at);
      else
        (*joined)[*a].reset();
    }
    slots_.assign(1, Slot{joined, ""});
  }

  // split and deinterleave: the one slot cut along the axis.
  void Cut(const OpSpec& op) {
    const Location& at = op.where;
    const std::optional<DerivedShape> whole = slots_.front().shape;
    const size_t parts = op.parts ? static_cast<size_t>(*op.parts) : op.sizes.size();
    std::vector<Slot> out(parts);
    const auto a = whole ? Axis(op.axis, whole->size()) : std::nullopt;
    if (whole && a) {
      std::vector<Expr> sizes;
      for (const Expr& size : op.sizes)
        sizes.push_back(op.kind == OpKind::kDeinterleave ? ProductOf(*op.groups, size, at) : size);
      if (!sizes.empty())
        Check(op, (*whole)[*a], SumOf(sizes, at), "the sum of the parts");
      for (size_t i = 0; i < parts; ++i) {
        out[i].shape = whole;
        if (!sizes.empty())
          (*out[i].shape)[*a] = sizes[i];
        else if ((*whole)[*a])
          (*out[i].shape)[*a] = QuotientOf(*(*whole)[*a], IntConstant(*op.parts, at), at);
      }
    }
    slots_ = std::move(out);
  }

  void Apply(const OpSpec& op) {
    if (op.when) {
      const auto on = when_(*op.when);
      if (!on)
        return ForgetAll();
      if (!*on)
        return;
    }
    if (IsPerTensor(op.kind)) {
      for (size_t i = 0; i < slots_.size(); ++i) {
        const bool selected =
            op.tensors.empty() || std::find(op.tensors.begin(), op.tensors.end(),
                                            static_cast<int>(i)) != op.tensors.end();
        if (selected)
          PerTensor(op, slots_[i].shape);
      }
      return;
    }
    const PlaceholderDecl* over = op.over.empty() ? nullptr : rules_.FindPlaceholder(op.over);
    const std::optional<Expr> count = over ? over->count : std::nullopt;
    switch (op.kind) {
      case OpKind::kConcat:
      case OpKind::kInterleave:
        return Join(op);
      case OpKind::kSplit:
      case OpKind::kDeinterleave:
        return Cut(op);
      case OpKind::kStack:
        for (Slot& s : slots_) {
          if (s.over != op.over)
            continue;
          s.over.clear();
          const auto a = s.shape ? Axis(op.axis, s.shape->size() + 1) : std::nullopt;
          if (!a)
            s.shape.reset();
          else
            s.shape->insert(s.shape->begin() + static_cast<std::ptrdiff_t>(*a), count);
        }
        return;
      case OpKind::kDequantize: {
        // Each weight keeps its shape; its scale is consumed.
        std::vector<Slot> weights;
        for (size_t i = 0; i < slots_.size(); i += 2)
          weights.push_back(std::move(slots_[i]));
        slots_ = std::move(weights);
        return;
      }
      case OpKind::kUnstack:
        for (Slot& s : slots_) {
          s.over = op.over;
          const auto a = s.shape ? Axis(op.axis, s.shape->size()) : std::nullopt;
          if (!a) {
            s.shape.reset();
            continue;
          }
          if (count)
            Check(op, (*s.shape)[*a], *count, "the count of {" + op.over + "}");
          s.shape->erase(s.shape->begin() + static_cast<std::ptrdiff_t>(*a));
        }
        return;
      default:
        return;
    }
  }

  const RuleSet& rules_;
  const Rule& rule_;
  const OpCondition& when_;
  std::vector<Slot> slots_;
  std::vector<Error> findings_;
};

}  // namespace

ShapeFlow FlowShapes(const RuleSet& rules, const Rule& rule, Side from, const OpCondition& when) {
  if (rule.shapes(from).empty()) {
    ShapeFlow none;
    none.shapes.resize(rule.side(from == Side::kHf ? Side::kMs : Side::kHf).size());
    return none;
  }
  return Flow(rules, rule, when).Run(from);
}

std::string ShapeText(const DerivedShape& shape) {
  std::string s;
  for (const auto& e : shape)
    s += (s.empty() ? "" : ", ") + SizeText(e);
  return "[" + s + "]";
}

std::string ShapeText(const ShapeDecl& shape) {
  return ShapeText(DerivedShape(shape.begin(), shape.end()));
}

}  // namespace cw
