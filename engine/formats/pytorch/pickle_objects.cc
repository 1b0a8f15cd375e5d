#include <algorithm>
#include <charconv>

#include "engine/base/text.h"
#include "engine/formats/pytorch/pickle_machine.h"

namespace cw::pytorch {
namespace {

std::string Count(const char* what, size_t n) {
  if (n == 0)
    return std::string("empty ") + what;
  return std::string(what) + " of " + std::to_string(n) + (n == 1 ? " item" : " items");
}

}  // namespace

std::string PickleTree::Describe(ObjectId id) const {
  const Object& o = at(id);
  switch (o.kind) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return o.int_value != 0 ? "bool True" : "bool False";
    case Kind::kInt:
      return "int " + std::to_string(o.int_value);
    case Kind::kBigInt:
      return "int (beyond 64 bits)";
    case Kind::kFloat: {
      char text[32];
      const auto end = std::to_chars(text, text + sizeof text, o.float_value).ptr;
      return "float " + std::string(text, end);
    }
    case Kind::kStr:
      return "str " + Quoted(o.text, 40);
    case Kind::kBytes:
      return "bytes of length " + std::to_string(o.text.size());
    case Kind::kTuple:
      return Count("tuple", o.items.size());
    case Kind::kList:
      return Count("list", o.items.size());
    case Kind::kDict:
      return Count("dict", o.items.size() / 2);
    case Kind::kSet:
      return Count("set", o.items.size());
    case Kind::kGlobal:
      return o.text;
    case Kind::kPersistentId:
      return "persistent id";
    case Kind::kTensor:
      return "tensor";
  }
  return "value";
}

Result<ObjectId> PickleMachine::New(Kind kind) {
  if (tree_.objects_.size() >= std::min<uint64_t>(limits_.max_objects, UINT32_MAX)) {
    return Fail(ErrorCode::kLimitExceeded,
                "more than " + std::to_string(limits_.max_objects) + " pickle objects (the cap)");
  }
  Object o;
  o.kind = kind;
  o.offset = op_at_;
  tree_.objects_.push_back(std::move(o));
  return static_cast<ObjectId>(tree_.objects_.size() - 1);
}

Result<ObjectId> PickleMachine::NewText(Kind kind, std::string text) {
  // Strings read from the input are bounded by it; this also bounds copies made by calls.
  if (text.size() > text_budget_) {
    return Fail(ErrorCode::kLimitExceeded,
                "strings and bytes add up to more than the input allows");
  }
  text_budget_ -= text.size();
  CW_ASSIGN_OR_RETURN(const ObjectId id, New(kind));
  obj(id).text = std::move(text);
  return id;
}

Result<ObjectId> PickleMachine::NewContainer(Kind kind, const std::vector<ObjectId>& items) {
  CW_ASSIGN_OR_RETURN(const ObjectId id, New(kind));
  obj(id).depth = 1;
  for (const ObjectId item : items)
    CW_RETURN_IF_ERROR(Adopt(id, item));
  return id;
}

Status PickleMachine::Adopt(ObjectId parent, ObjectId child) {
  if (++item_count_ > limits_.max_objects) {
    return Fail(ErrorCode::kLimitExceeded,
                "more than " + std::to_string(limits_.max_objects) + " container items (the cap)");
  }
  // A lower bound of the real depth (parents are not revisited when a child grows later), so
  // readers of the tree bound their own walks too.
  const uint64_t depth = uint64_t{obj(child).depth} + 1;
  if (depth > limits_.max_nesting_depth) {
    return Fail(ErrorCode::kLimitExceeded, "containers nested more than " +
                                               std::to_string(limits_.max_nesting_depth) +
                                               " deep (the cap)");
  }
  Object& p = obj(parent);
  p.items.push_back(child);
  p.depth = std::max(p.depth, static_cast<uint32_t>(depth));
  return OkStatus();
}

Status PickleMachine::Push(ObjectId id) {
  if (stack_.size() + marks_.size() >= limits_.max_stack_depth) {
    return Fail(
        ErrorCode::kLimitExceeded,
        "pickle stack deeper than " + std::to_string(limits_.max_stack_depth) + " (the cap)");
  }
  stack_.push_back(id);
  return OkStatus();
}

Status PickleMachine::PushNew(Kind kind, int64_t int_value, double float_value) {
  CW_ASSIGN_OR_RETURN(const ObjectId id, New(kind));
  obj(id).int_value = int_value;
  obj(id).float_value = float_value;
  return Push(id);
}

Result<ObjectId> PickleMachine::Top() {
  const size_t fence = marks_.empty() ? 0 : marks_.back();
  if (stack_.size() <= fence)
    return Fail(ErrorCode::kCorrupt, "pickle stack underflow");
  return stack_.back();
}

Result<ObjectId> PickleMachine::Pop() {
  CW_ASSIGN_OR_RETURN(const ObjectId top, Top());
  stack_.pop_back();
  return top;
}

Result<std::vector<ObjectId>> PickleMachine::PopN(size_t n) {
  const size_t fence = marks_.empty() ? 0 : marks_.back();
  if (stack_.size() - fence < n)
    return Fail(ErrorCode::kCorrupt, "pickle stack underflow");
  std::vector<ObjectId> items(stack_.end() - static_cast<ptrdiff_t>(n), stack_.end());
  stack_.resize(stack_.size() - n);
  return items;
}

Result<std::vector<ObjectId>> PickleMachine::PopMark() {
  if (marks_.empty())
    return Fail(ErrorCode::kCorrupt, "no MARK on the pickle stack");
  const size_t at = marks_.back();
  marks_.pop_back();
  std::vector<ObjectId> items(stack_.begin() + static_cast<ptrdiff_t>(at), stack_.end());
  stack_.resize(at);
  return items;
}

Result<std::string_view> PickleMachine::ReadLine() {
  const std::string_view rest = AsChars(in_.span().subspan(in_.position()));
  const size_t end = rest.find('\n');
  if (end == std::string_view::npos)
    return Fail(ErrorCode::kCorrupt, "unterminated text argument (truncated?)");
  CW_RETURN_IF_ERROR(in_.Skip(end + 1));
  return rest.substr(0, end);
}

// Length prefixes: `width` bytes, negative for signed 32-bit fields (BINSTRING, LONG4).
Result<uint64_t> PickleMachine::ReadLength(int width) {
  if (width == 1) {
    CW_ASSIGN_OR_RETURN(const uint8_t n, in_.ReadU8());
    return uint64_t{n};
  }
  if (width == 8)
    return in_.ReadU64();
  CW_ASSIGN_OR_RETURN(const uint32_t n, in_.ReadU32());
  if (width < 0 && static_cast<int32_t>(n) < 0)
    return Fail(ErrorCode::kCorrupt, "negative length " + std::to_string(static_cast<int32_t>(n)));
  return uint64_t{n};
}

Error PickleMachine::Fail(ErrorCode code, std::string message) const {
  return Error(code, std::move(message), ByteLocation(source_.file, source_.file_offset + op_at_));
}

std::string PickleMachine::Where() const {
  return (source_.entry.empty() ? std::string("the pickle") : Quoted(source_.entry)) +
         " at pickle byte " + std::to_string(op_at_);
}

}  // namespace cw::pytorch
