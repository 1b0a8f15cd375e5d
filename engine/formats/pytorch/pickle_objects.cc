#include <algorithm>
#include <bit>
#include <charconv>

#include "engine/base/checked_math.h"
#include "engine/base/text.h"
#include "engine/formats/pytorch/pickle_machine.h"

namespace cw::pytorch {
namespace {

std::string Count(const char* what, size_t n) {
  if (n == 0)
    return std::string("empty ") + what;
  return std::string(what) + " of " + std::to_string(n) + (n == 1 ? " item" : " items");
}

// What a deque of `n` values holds in libstdc++: 512-byte blocks, one more than the full ones,
// and a map of block pointers that may be twice as long as needed.
template <typename T>
uint64_t DequeBytes(const std::deque<T>& values) {
  constexpr uint64_t kBlockBytes = sizeof(T) < 512 ? 512 : sizeof(T);
  const uint64_t blocks = values.size() / (kBlockBytes / sizeof(T)) + 1;
  return blocks * kBlockBytes + 2 * (blocks + 8) * sizeof(void*);
}

// A node of an unordered_map<uint64_t, ObjectId> with its allocation header, and a bucket.
constexpr uint64_t kMapNodeBytes = 32;
constexpr uint64_t kMapBucketBytes = sizeof(void*);

bool Grows(Kind kind) { return kind == Kind::kList || kind == Kind::kDict || kind == Kind::kSet; }

// The room a growing container has in the item pool: the next power of two of its count, so
// that appending moves it O(log n) times and the pool holds at most four slots per item.
uint64_t Room(uint64_t count) { return count == 0 ? 0 : std::bit_ceil(count); }

}  // namespace

Object PickleTree::at(ObjectId id) const {
  const Slot& slot = slots_[id];
  Object o;
  o.kind = slot.kind;
  o.global = slot.global;
  o.ordered = slot.ordered;
  o.offset = slot.offset;
  switch (slot.kind) {
    case Kind::kBool:
    case Kind::kInt:
      o.int_value = slot.int_value;
      break;
    case Kind::kFloat:
      o.float_value = slot.float_value;
      break;
    case Kind::kStr:
    case Kind::kBytes:
    case Kind::kGlobal:
      o.text = TextOf(slot);
      break;
    case Kind::kTuple:
    case Kind::kList:
    case Kind::kDict:
    case Kind::kSet:
    case Kind::kPersistentId:
      o.items = ItemsOf(slot);
      break;
    case Kind::kNone:
    case Kind::kBigInt:
    case Kind::kTensor:
      break;
  }
  return o;
}

PickleTensor PickleTree::tensor(ObjectId id) const {
  const TensorSlot& t = tensors_[static_cast<size_t>(slots_[id].int_value)];
  const auto ints = [&](ObjectId tuple) {
    std::vector<uint64_t> values;
    for (const ObjectId item : ItemsOf(slots_[tuple]))
      values.push_back(static_cast<uint64_t>(slots_[item].int_value));
    return values;
  };
  return {t.storage, t.storage_offset, ints(t.shape), ints(t.stride), t.dtype};
}

uint64_t PickleTree::arena_bytes() const {
  return DequeBytes(slots_) + DequeBytes(items_) + text_.capacity() + DequeBytes(tensors_);
}

std::string PickleTree::Describe(ObjectId id) const {
  const Object o = at(id);
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
      return std::string(o.text);
    case Kind::kPersistentId:
      return "persistent id";
    case Kind::kTensor:
      return "tensor";
  }
  return "value";
}

std::vector<ObjectId> PickleMachine::ItemsOf(ObjectId id) const {
  const Items items = tree_.ItemsOf(tree_.slots_[id]);
  return {items.begin(), items.end()};
}

uint64_t PickleMachine::MemoryBytes() const {
  return tree_.arena_bytes() + DequeBytes(memo_) + sparse_memo_.size() * kMapNodeBytes +
         sparse_memo_.bucket_count() * kMapBucketBytes + stack_.capacity() * sizeof(ObjectId) +
         marks_.capacity() * sizeof(size_t);
}

// Checked before every allocation the input asks for, against the bytes read so far: memory
// follows the pickle's size whatever its opcodes, and a copy (set(), _codecs.encode) cannot
// multiply it.
Status PickleMachine::Charge(uint64_t bytes) const {
  const auto budget =
      CheckedAdd(limits_.arena_base_bytes,
                 CheckedMul(limits_.arena_bytes_per_byte, in_.position()).value_or(UINT64_MAX))
          .value_or(UINT64_MAX);
  const uint64_t held = MemoryBytes();
  if (held <= budget && bytes <= budget - held)
    return OkStatus();
  return Fail(ErrorCode::kLimitExceeded,
              "the pickle's values would take over " + std::to_string(budget) +
                  " bytes of memory, the cap of " + std::to_string(limits_.arena_bytes_per_byte) +
                  " per pickle byte read (" + std::to_string(in_.position()) + ") plus " +
                  std::to_string(limits_.arena_base_bytes));
}

Result<ObjectId> PickleMachine::New(Kind kind) {
  CW_RETURN_IF_ERROR(Charge(sizeof(Slot)));
  Slot slot;
  slot.kind = kind;
  slot.offset = static_cast<uint32_t>(op_at_);  // Run() stops before 2**32
  tree_.slots_.push_back(slot);
  return static_cast<ObjectId>(tree_.slots_.size() - 1);
}

Result<ObjectId> PickleMachine::Constant(Kind kind, bool value) {
  const size_t which = kind == Kind::kNone ? 0 : kind == Kind::kBool ? 1 + value : 3;
  if (constants_[which] == kNoObject) {
    CW_ASSIGN_OR_RETURN(const ObjectId id, New(kind));
    slot(id).int_value = value;
    slot(id).depth = kind == Kind::kTuple ? 1 : 0;
    constants_[which] = id;
  }
  return constants_[which];
}

Result<ObjectId> PickleMachine::NewText(Kind kind, std::string_view text) {
  const uint64_t size = tree_.text_.size();
  if (text.size() > UINT32_MAX - size) {
    return Fail(ErrorCode::kLimitExceeded, "the pickle's strings add up to more than " +
                                               std::to_string(UINT32_MAX) + " bytes");
  }
  const uint64_t capacity = tree_.text_.capacity();
  const uint64_t needed = size + text.size();
  // The buffer grows by doubling, under our control, so what it holds is what was charged.
  const uint64_t grown = needed <= capacity ? capacity : std::max(needed, 2 * capacity);
  CW_RETURN_IF_ERROR(Charge(grown - capacity + sizeof(Slot)));
  tree_.text_.reserve(grown);
  tree_.text_.append(text);
  CW_ASSIGN_OR_RETURN(const ObjectId id, New(kind));
  slot(id).span = {static_cast<uint32_t>(size), static_cast<uint32_t>(text.size())};
  return id;
}

Result<ObjectId> PickleMachine::NewContainer(Kind kind, std::span<const ObjectId> items) {
  if (kind == Kind::kTuple && items.empty())
    return Constant(Kind::kTuple);
  CW_ASSIGN_OR_RETURN(const ObjectId id, New(kind));
  slot(id).depth = 1;
  CW_RETURN_IF_ERROR(AddItems(id, items));
  return id;
}

Status PickleMachine::AddItems(ObjectId parent, std::span<const ObjectId> children) {
  // A lower bound of the real depth (parents are not revisited when a child grows later), so
  // readers of the tree bound their own walks too.
  const uint64_t max_depth = std::min<uint64_t>(limits_.max_nesting_depth, UINT8_MAX);
  uint64_t depth = slot(parent).depth;
  for (const ObjectId child : children) {
    const uint64_t child_depth = uint64_t{slot(child).depth} + 1;
    if (child_depth > max_depth) {
      return Fail(ErrorCode::kLimitExceeded,
                  "containers nested more than " + std::to_string(max_depth) + " deep (the cap)");
    }
    depth = std::max(depth, child_depth);
  }
  Slot& p = slot(parent);  // deques keep references to their values as they grow
  const uint64_t count = uint64_t{p.span.count} + children.size();
  const uint64_t room = Grows(p.kind) ? Room(p.span.count) : p.span.count;
  if (count > room) {
    const uint64_t grown = Grows(p.kind) ? Room(count) : count;
    // Room that ends the pool is extended in place; any other moves to the end, leaving a hole.
    const bool last = room > 0 && p.span.start + room == tree_.items_.size();
    const uint64_t start = last ? p.span.start : tree_.items_.size();
    if (grown > UINT32_MAX - start) {
      return Fail(ErrorCode::kLimitExceeded, "the pickle's containers hold more than " +
                                                 std::to_string(UINT32_MAX) + " items");
    }
    CW_RETURN_IF_ERROR(Charge((start + grown - tree_.items_.size()) * sizeof(ObjectId)));
    tree_.items_.resize(start + grown, kNoObject);
    if (!last) {
      const auto old = tree_.items_.begin() + p.span.start;
      std::copy(old, old + p.span.count, tree_.items_.begin() + static_cast<ptrdiff_t>(start));
      p.span.start = static_cast<uint32_t>(start);
    }
  }
  std::copy(children.begin(), children.end(), tree_.items_.begin() + p.span.start + p.span.count);
  p.span.count = static_cast<uint32_t>(count);
  p.depth = static_cast<uint8_t>(depth);
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
  if (kind == Kind::kFloat)
    slot(id).float_value = float_value;
  else
    slot(id).int_value = int_value;
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

Result<std::span<const ObjectId>> PickleMachine::TopN(size_t n) {
  const size_t fence = marks_.empty() ? 0 : marks_.back();
  if (stack_.size() - fence < n)
    return Fail(ErrorCode::kCorrupt, "pickle stack underflow");
  return std::span<const ObjectId>(stack_).last(n);
}

Result<std::span<const ObjectId>> PickleMachine::AboveMark() {
  if (marks_.empty())
    return Fail(ErrorCode::kCorrupt, "no MARK on the pickle stack");
  const size_t at = marks_.back();
  marks_.pop_back();
  return std::span<const ObjectId>(stack_).subspan(at);
}

Result<ObjectId> PickleMachine::Below(std::span<const ObjectId> top) {
  const size_t fence = marks_.empty() ? 0 : marks_.back();
  if (stack_.size() - top.size() <= fence)
    return Fail(ErrorCode::kCorrupt, "pickle stack underflow");
  return stack_[stack_.size() - top.size() - 1];
}

Status PickleMachine::MemoPut(uint64_t index, ObjectId id) {
  const bool dense = index < memo_.size() || index <= op_at_;
  const bool in_dense = index < memo_.size() && memo_[index] != kNoObject;
  const bool fresh = !in_dense && !sparse_memo_.contains(index);
  if (fresh && memo_count_ >= limits_.max_memo_entries) {
    return Fail(ErrorCode::kLimitExceeded, "more than " + std::to_string(limits_.max_memo_entries) +
                                               " memo entries (the cap)");
  }
  if (dense) {
    if (index >= memo_.size()) {
      CW_RETURN_IF_ERROR(Charge((index + 1 - memo_.size()) * sizeof(ObjectId)));
      memo_.resize(index + 1, kNoObject);
    }
    memo_[index] = id;
    if (!in_dense && !fresh)
      sparse_memo_.erase(index);
  } else {
    if (fresh)
      CW_RETURN_IF_ERROR(Charge(kMapNodeBytes + 2 * kMapBucketBytes));
    sparse_memo_[index] = id;
  }
  memo_count_ += fresh ? 1 : 0;
  return OkStatus();
}

Result<ObjectId> PickleMachine::MemoGet(uint64_t index) const {
  if (index < memo_.size() && memo_[index] != kNoObject)
    return memo_[index];
  if (const auto it = sparse_memo_.find(index); it != sparse_memo_.end())
    return it->second;
  return Fail(ErrorCode::kCorrupt, "memo entry " + std::to_string(index) + " is not set");
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
