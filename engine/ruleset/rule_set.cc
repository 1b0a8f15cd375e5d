#include "engine/ruleset/rule_set.h"

#include <utility>

namespace cw {

const char* SideName(Side side) { return side == Side::kHf ? "hf" : "ms"; }

const char* DirectionName(Direction direction) {
  return direction == Direction::kForward ? "forward" : "reverse";
}

const char* OpKindName(OpKind kind) {
  switch (kind) {
    case OpKind::kTranspose:
      return "transpose";
    case OpKind::kPermute:
      return "permute";
    case OpKind::kReshape:
      return "reshape";
    case OpKind::kConcat:
      return "concat";
    case OpKind::kSplit:
      return "split";
    case OpKind::kStack:
      return "stack";
    case OpKind::kUnstack:
      return "unstack";
    case OpKind::kInterleave:
      return "interleave";
    case OpKind::kDeinterleave:
      return "deinterleave";
    case OpKind::kRopeInterleave:
      return "rope_interleave";
    case OpKind::kRopeDeinterleave:
      return "rope_deinterleave";
    case OpKind::kPad:
      return "pad";
    case OpKind::kTruncate:
      return "truncate";
    case OpKind::kDequantize:
      return "dequantize";
    case OpKind::kDequantized:
      return "dequantized";
  }
  return "?";
}

bool IsPerTensor(OpKind kind) {
  switch (kind) {
    case OpKind::kTranspose:
    case OpKind::kPermute:
    case OpKind::kReshape:
    case OpKind::kRopeInterleave:
    case OpKind::kRopeDeinterleave:
    case OpKind::kPad:
    case OpKind::kTruncate:
      return true;
    default:
      return false;
  }
}

OpSpec InverseOp(const OpSpec& op, int inputs) {
  OpSpec inv = op;
  switch (op.kind) {
    case OpKind::kTranspose:
      break;
    case OpKind::kPermute:
      for (size_t i = 0; i < op.perm.size(); ++i)
        inv.perm[static_cast<size_t>(op.perm[i])] = static_cast<int>(i);
      break;
    case OpKind::kReshape:
      std::swap(inv.from_shape, inv.to_shape);
      break;
    case OpKind::kConcat:
    case OpKind::kInterleave:
      inv.kind = op.kind == OpKind::kConcat ? OpKind::kSplit : OpKind::kDeinterleave;
      inv.equal = false;
      if (op.equal)
        inv.parts = inputs;
      break;
    case OpKind::kSplit:
    case OpKind::kDeinterleave:
      inv.kind = op.kind == OpKind::kSplit ? OpKind::kConcat : OpKind::kInterleave;
      inv.parts.reset();
      inv.equal = op.sizes.empty();
      break;
    case OpKind::kStack:
      inv.kind = OpKind::kUnstack;
      break;
    case OpKind::kUnstack:
      inv.kind = OpKind::kStack;
      break;
    case OpKind::kRopeInterleave:
      inv.kind = OpKind::kRopeDeinterleave;
      break;
    case OpKind::kRopeDeinterleave:
      inv.kind = OpKind::kRopeInterleave;
      break;
    case OpKind::kPad:
    case OpKind::kTruncate:
      inv.kind = op.kind == OpKind::kPad ? OpKind::kTruncate : OpKind::kPad;
      std::swap(inv.from_size, inv.to_size);
      break;
    case OpKind::kDequantize:
      inv.kind = OpKind::kDequantized;
      break;
    case OpKind::kDequantized:
      inv.kind = OpKind::kDequantize;
      break;
  }
  return inv;
}

std::string Rule::Label() const {
  std::string s = where.file;
  if (where.line > 0)
    s += ":" + std::to_string(where.line) + ":" + std::to_string(where.column);
  return s;
}

std::string Rule::LabelIn(const std::string& file) const {
  if (file != where.file || where.line == 0)
    return Label();
  return std::to_string(where.line) + ":" + std::to_string(where.column);
}

std::string ParamDecl::TypeName() const {
  if (type == ValueType::kList)
    return std::string("list of ") + ValueTypeName(item_type);
  return ValueTypeName(type);
}

const ParamDecl* RuleSet::FindParam(const std::string& param_name) const {
  for (const ParamDecl& p : params) {
    if (p.name == param_name)
      return &p;
  }
  return nullptr;
}

const ParamDecl* RuleSet::FindParamByFlag(const std::string& flag) const {
  for (const ParamDecl& p : params) {
    if (!p.flag.empty() && p.flag == flag)
      return &p;
  }
  return nullptr;
}

const PlaceholderDecl* RuleSet::FindPlaceholder(const std::string& placeholder) const {
  for (const PlaceholderDecl& p : placeholders) {
    if (p.name == placeholder)
      return &p;
  }
  return nullptr;
}

const ConditionDecl* RuleSet::FindCondition(const std::string& condition) const {
  for (const ConditionDecl& c : conditions) {
    if (c.name == condition)
      return &c;
  }
  return nullptr;
}

std::map<std::string, PlaceholderType> RuleSet::PlaceholderTypes() const {
  std::map<std::string, PlaceholderType> out;
  for (const PlaceholderDecl& p : placeholders)
    out[p.name] = p.type;
  return out;
}

}  // namespace cw
