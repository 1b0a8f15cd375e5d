// One entry of an `ops:` list: `- <op>: <value>` plus optional `when:` and `tensors:`.
#include <array>

#include "engine/ruleset/rule_build.h"
#include "engine/ruleset/suggest.h"
#include "engine/ruleset/text_fields.h"

namespace cw {
namespace {

// The ops a rule file may write (kDequantized is only ever derived).
constexpr std::array<OpKind, 14> kAllOps = {
    OpKind::kTranspose,    OpKind::kPermute,        OpKind::kReshape,          OpKind::kConcat,
    OpKind::kSplit,        OpKind::kStack,          OpKind::kUnstack,          OpKind::kInterleave,
    OpKind::kDeinterleave, OpKind::kRopeInterleave, OpKind::kRopeDeinterleave, OpKind::kPad,
    OpKind::kTruncate,     OpKind::kDequantize};

std::vector<std::string> OpNames() {
  std::vector<std::string> names;
  for (OpKind k : kAllOps)
    names.push_back(OpKindName(k));
  return names;
}

void ReadAxis(const Fields& f, OpSpec& op, Diagnostics& diag) {
  if (const TextNode* a = f.Get("axis")) {
    auto v = ReadInt(*a, "axis", diag);
    if (v && (*v < -16 || *v > 15))
      diag.Report("axis " + std::to_string(*v) + " is out of range", a->where);
    else if (v)
      op.axis = static_cast<int>(*v);
  }
}

bool Require(const Fields& f, const char* key, const TextNode& at, const std::string& op,
             const std::string& why, Diagnostics& diag) {
  if (f.Get(key))
    return true;
  diag.Report(op + " needs \"" + key + "\"" + why, at.where);
  return false;
}

void ReadPerm(const TextNode& value, OpSpec& op, Diagnostics& diag) {
  const std::string name = OpKindName(op.kind);
  const TextNode* list = &value;
  std::optional<Fields> f;
  if (value.is_map()) {
    const char* key = op.kind == OpKind::kTranspose ? "axes" : "perm";
    f.emplace(value, name, std::initializer_list<const char*>{key}, diag);
    list = f->Get(op.kind == OpKind::kTranspose ? "axes" : "perm");
    if (!list) {
      diag.Report(name + " needs its axes", value.where);
      return;
    }
  }
  auto perm = ReadIntList(*list, name, diag);
  if (!perm)
    return;
  if (op.kind == OpKind::kTranspose && perm->size() != 2) {
    diag.Report("transpose takes two axes, e.g. [0, 1]", list->where);
    return;
  }
  std::vector<bool> seen(perm->size(), false);
  for (int a : *perm) {
    const bool valid =
        op.kind == OpKind::kTranspose
            ? a >= -16 && a < 16
            : a >= 0 && static_cast<size_t>(a) < seen.size() && !seen[static_cast<size_t>(a)];
    if (!valid) {
      diag.Report(name + " axes must be distinct axes " +
                      (op.kind == OpKind::kPermute ? "0.." + std::to_string(perm->size() - 1) : ""),
                  list->where);
      return;
    }
    if (op.kind == OpKind::kPermute)
      seen[static_cast<size_t>(a)] = true;
  }
  if (op.kind == OpKind::kTranspose && (*perm)[0] == (*perm)[1]) {
    diag.Report("transpose needs two different axes", list->where);
    return;
  }
  op.perm = *perm;
}

void ReadSizesOrEqual(const Fields& f, const TextNode& value, OpSpec& op, const char* sizes_key,
                      Diagnostics& diag) {
  const std::string name = OpKindName(op.kind);
  const TextNode* sizes = f.Get(sizes_key);
  const TextNode* equal = f.Get("equal");
  const TextNode* parts = f.Get("parts");
  if (sizes)
    op.sizes = ReadExprList(*sizes, sizes_key, diag).value_or(std::vector<Expr>{});
  if (equal)
    op.equal = ReadBool(*equal, "equal", diag).value_or(false);
  if (parts) {
    auto p = ReadInt(*parts, "parts", diag);
    if (p && (*p < 1 || *p > 1'000'000))
      diag.Report("parts must be between 1 and 1000000", parts->where);
    else if (p)
      op.parts = static_cast<int>(*p);
  }
  const int given = (sizes ? 1 : 0) + (op.equal ? 1 : 0) + (parts ? 1 : 0);
  const bool joins = op.kind == OpKind::kConcat || op.kind == OpKind::kInterleave;
  if (given == 1)
    return;
  if (given > 1) {
    diag.Report(name + " takes only one of \"" + sizes_key + "\" and \"" +
                    (joins ? "equal" : "parts") + "\"",
                value.where);
  } else if (joins) {
    diag.Report(name + " needs \"" + sizes_key + "\" (or \"equal: true\"): without them its " +
                    "inverse cannot know where to cut",
                value.where);
  } else {
    diag.Report(name + " needs \"" + sizes_key + "\" or \"parts\"", value.where);
  }
}

void ReadReshape(const TextNode& value, OpSpec& op, Diagnostics& diag) {
  const std::string name = OpKindName(op.kind);
  Fields f(value, name, {"from", "to"}, diag);
  if (Require(f, "from", value, name, ": the shape before, so that the reverse can restore it",
              diag))
    op.from_shape = ReadExprList(*f.Get("from"), "from", diag).value_or(std::vector<Expr>{});
  if (Require(f, "to", value, name, "", diag))
    op.to_shape = ReadExprList(*f.Get("to"), "to", diag).value_or(std::vector<Expr>{});
}

void ReadRope(const TextNode& value, OpSpec& op, Diagnostics& diag) {
  const std::string name = OpKindName(op.kind);
  Fields f(value, name, {"heads", "axis"}, diag);
  ReadAxis(f, op, diag);
  if (!Require(f, "heads", value, name, ": the head count of each tensor", diag))
    return;
  const TextNode& h = *f.Get("heads");
  if (h.is_sequence())
    op.heads = ReadExprList(h, "heads", diag).value_or(std::vector<Expr>{});
  else if (auto e = ReadExpr(h, "heads", diag))
    op.heads.push_back(std::move(*e));
}

void ReadResize(const TextNode& value, OpSpec& op, Diagnostics& diag) {
  const std::string name = OpKindName(op.kind);
  Fields f(value, name, {"axis", "from", "to"}, diag);
  ReadAxis(f, op, diag);
  if (Require(f, "from", value, name, ": the axis length before, for the inverse", diag))
    op.from_size = ReadExpr(*f.Get("from"), "from", diag);
  if (Require(f, "to", value, name, "", diag))
    op.to_size = ReadExpr(*f.Get("to"), "to", diag);
}

void ReadOpMap(const TextNode& value, OpSpec& op, Diagnostics& diag) {
  const std::string name = OpKindName(op.kind);
  switch (op.kind) {
    case OpKind::kReshape:
      return ReadReshape(value, op, diag);
    case OpKind::kConcat:
    case OpKind::kSplit: {
      Fields f(value, name, {"axis", "sizes", op.kind == OpKind::kConcat ? "equal" : "parts"},
               diag);
      ReadAxis(f, op, diag);
      if (f.ok())
        ReadSizesOrEqual(f, value, op, "sizes", diag);
      return;
    }
    case OpKind::kStack:
    case OpKind::kUnstack: {
      Fields f(value, name, {"over", "axis"}, diag);
      ReadAxis(f, op, diag);
      if (Require(f, "over", value, name, ": the placeholder whose values are stacked", diag))
        op.over = ReadText(*f.Get("over"), "over", diag).value_or("");
      return;
    }
    case OpKind::kInterleave:
    case OpKind::kDeinterleave: {
      Fields f(value, name,
               {"axis", "groups", "chunks", op.kind == OpKind::kInterleave ? "equal" : "parts"},
               diag);
      ReadAxis(f, op, diag);
      if (Require(f, "groups", value, name, "", diag))
        op.groups = ReadExpr(*f.Get("groups"), "groups", diag);
      if (f.ok())
        ReadSizesOrEqual(f, value, op, "chunks", diag);
      return;
    }
    case OpKind::kRopeInterleave:
    case OpKind::kRopeDeinterleave:
      return ReadRope(value, op, diag);
    case OpKind::kPad:
    case OpKind::kTruncate:
      return ReadResize(value, op, diag);
    case OpKind::kTranspose:
    case OpKind::kPermute:
      ReadPerm(value, op, diag);
      return;
    case OpKind::kDequantize: {
      Fields f(value, name, {"block"}, diag);
      if (!Require(f, "block", value, name, ": the rows and columns of weight one scale covers",
                   diag))
        return;
      auto block = ReadExprList(*f.Get("block"), "block", diag);
      if (block && block->size() != 2)
        diag.Report("block gives rows and columns: two sizes", f.Get("block")->where);
      else if (block)
        op.block = std::move(*block);
      return;
    }
    case OpKind::kDequantized:
      return;
  }
}

}  // namespace

std::optional<OpSpec> BuildOp(const TextNode& item, Diagnostics& diag) {
  if (!item.is_map()) {
    diag.Report(
        "an op must be a map such as {transpose: [0, 1]}, not " + std::string(item.KindName()),
        item.where);
    return std::nullopt;
  }
  const size_t before = diag.errors.size();
  OpSpec op;
  op.where = item.where;
  const TextNode* value = nullptr;
  const std::vector<std::string> names = OpNames();
  for (const auto& [key, v] : item.entries) {
    if (key.scalar == "when") {
      op.when = ReadExpr(v, "when", diag);
    } else if (key.scalar == "tensors") {
      op.tensors = ReadIntList(v, "tensors", diag).value_or(std::vector<int>{});
    } else if (value) {
      diag.Report("one op per list entry: \"" + key.scalar + "\" follows another op", key.where);
    } else {
      bool known = false;
      for (OpKind k : kAllOps) {
        if (key.scalar == OpKindName(k)) {
          op.kind = k;
          known = true;
        }
      }
      if (!known) {
        diag.Report("unknown op \"" + key.scalar + "\"" + DidYouMean(key.scalar, names) +
                        "; ops are: " + JoinNames(names),
                    key.where);
        return std::nullopt;
      }
      value = &v;
      op.where = key.where;
    }
  }
  if (!value) {
    diag.Report("this entry names no op", item.where);
    return std::nullopt;
  }
  if ((op.when || !op.tensors.empty()) && !IsPerTensor(op.kind)) {
    diag.Report(std::string(OpKindName(op.kind)) +
                    " changes the number of tensors, so it cannot take \"when\" or \"tensors\"",
                op.where);
  }
  ReadOpMap(*value, op, diag);
  if (diag.errors.size() != before)
    return std::nullopt;
  return op;
}

}  // namespace cw
