#include "engine/formats/pytorch/pickle_reader.h"

#include <array>
#include <bit>
#include <initializer_list>

#include "engine/base/text.h"
#include "engine/formats/pytorch/pickle_machine.h"
#include "engine/formats/pytorch/pickle_text.h"

namespace cw::pytorch {
namespace {

// Opcodes (CPython Lib/pickle.py), named as there.
namespace op {
constexpr uint8_t kMark = '(', kStop = '.', kPop = '0', kPopMark = '1', kDup = '2';
constexpr uint8_t kFloat = 'F', kInt = 'I', kBinInt = 'J', kBinInt1 = 'K', kLong = 'L';
constexpr uint8_t kBinInt2 = 'M', kNone = 'N', kPersId = 'P', kBinPersId = 'Q', kReduce = 'R';
constexpr uint8_t kString = 'S', kBinString = 'T', kShortBinString = 'U', kUnicode = 'V';
constexpr uint8_t kBinUnicode = 'X', kAppend = 'a', kBuild = 'b', kGlobal = 'c', kDict = 'd';
constexpr uint8_t kEmptyDict = '}', kAppends = 'e', kGet = 'g', kBinGet = 'h', kInst = 'i';
constexpr uint8_t kLongBinGet = 'j', kList = 'l', kEmptyList = ']', kObj = 'o', kPut = 'p';
constexpr uint8_t kBinPut = 'q', kLongBinPut = 'r', kSetItem = 's', kTuple = 't';
constexpr uint8_t kEmptyTuple = ')', kSetItems = 'u', kBinFloat = 'G';
constexpr uint8_t kProto = 0x80, kNewObj = 0x81, kExt1 = 0x82, kExt2 = 0x83, kExt4 = 0x84;
constexpr uint8_t kTuple1 = 0x85, kTuple2 = 0x86, kTuple3 = 0x87, kNewTrue = 0x88;
constexpr uint8_t kNewFalse = 0x89, kLong1 = 0x8a, kLong4 = 0x8b;
constexpr uint8_t kBinBytes = 'B', kShortBinBytes = 'C';
constexpr uint8_t kShortBinUnicode = 0x8c, kBinUnicode8 = 0x8d, kBinBytes8 = 0x8e;
constexpr uint8_t kEmptySet = 0x8f, kAddItems = 0x90, kFrozenSet = 0x91, kNewObjEx = 0x92;
constexpr uint8_t kStackGlobal = 0x93, kMemoize = 0x94, kFrame = 0x95;
constexpr uint8_t kByteArray8 = 0x96, kNextBuffer = 0x97, kReadOnlyBuffer = 0x98;
}  // namespace op

constexpr uint8_t kHighestProtocol = 5;

// Opcodes grouped by what they do; each group has one handler.
enum class Group : uint8_t {
  kUnknown,
  kControl,
  kNumber,
  kText,
  kBinary,
  kContainer,
  kFill,
  kStack,
  kMemo,
  kGlobal,
  kCall,
  kBuild,
  kPersistentId,
  kInstantiate,
  kExtension,
  kBuffer,
};

constexpr std::array<Group, 256> MakeGroups() {
  std::array<Group, 256> groups{};
  auto set = [&](Group group, std::initializer_list<uint8_t> codes) {
    for (const uint8_t code : codes)
      groups[code] = group;
  };
  set(Group::kControl, {op::kProto, op::kFrame, op::kStop});
  set(Group::kNumber,
      {op::kNone, op::kNewTrue, op::kNewFalse, op::kBinInt1, op::kBinInt2, op::kBinInt, op::kLong1,
       op::kLong4, op::kInt, op::kLong, op::kFloat, op::kBinFloat});
  set(Group::kText, {op::kBinUnicode, op::kShortBinUnicode, op::kBinUnicode8, op::kBinString,
                     op::kShortBinString, op::kString, op::kUnicode});
  set(Group::kBinary, {op::kBinBytes, op::kShortBinBytes, op::kBinBytes8, op::kByteArray8});
  set(Group::kContainer,
      {op::kMark, op::kEmptyTuple, op::kEmptyList, op::kEmptyDict, op::kEmptySet, op::kTuple,
       op::kTuple1, op::kTuple2, op::kTuple3, op::kList, op::kDict, op::kFrozenSet});
  set(Group::kFill, {op::kAppend, op::kAppends, op::kSetItem, op::kSetItems, op::kAddItems});
  set(Group::kStack, {op::kPop, op::kPopMark, op::kDup});
  set(Group::kMemo, {op::kPut, op::kBinPut, op::kLongBinPut, op::kMemoize, op::kGet, op::kBinGet,
                     op::kLongBinGet});
  set(Group::kGlobal, {op::kGlobal, op::kStackGlobal});
  set(Group::kCall, {op::kReduce, op::kNewObj, op::kNewObjEx});
  set(Group::kBuild, {op::kBuild});
  set(Group::kPersistentId, {op::kPersId, op::kBinPersId});
  set(Group::kInstantiate, {op::kInst, op::kObj});
  set(Group::kExtension, {op::kExt1, op::kExt2, op::kExt4});
  set(Group::kBuffer, {op::kNextBuffer, op::kReadOnlyBuffer});
  return groups;
}

constexpr std::array<Group, 256> kGroups = MakeGroups();

}  // namespace

Result<PickleTree> ReadPickle(const PickleSource& source, const PickleLimits& limits) {
  PickleMachine machine(source, limits);
  return machine.Run();
}

Result<PickleTree> PickleMachine::Run() {
  // Offsets are kept in 32 bits.
  const uint64_t max_bytes = std::min<uint64_t>(limits_.max_pickle_bytes, UINT32_MAX);
  while (!stopped_) {
    op_at_ = in_.position();
    Status status = OkStatus();
    if (op_at_ >= max_bytes) {
      status = Fail(ErrorCode::kLimitExceeded,
                    "the pickle goes on past the cap of " + std::to_string(max_bytes) + " bytes");
    } else {
      auto code = in_.ReadU8();
      status = code.ok() ? Step(*code) : code.status();
    }
    if (!status.ok())
      return std::move(status).error().With("reading " + Where());
  }
  tree_.consumed_bytes_ = in_.position();
  return std::move(tree_);
}

Status PickleMachine::Step(uint8_t code) {
  switch (kGroups[code]) {
    case Group::kControl:
      return Control(code);
    case Group::kNumber:
      return Number(code);
    case Group::kText:
      return Text(code);
    case Group::kBinary:
      return Binary(code);
    case Group::kContainer:
      return Container(code);
    case Group::kFill:
      return Fill(code);
    case Group::kStack:
      return StackOp(code);
    case Group::kMemo:
      return Memo(code);
    case Group::kGlobal:
      return Global(code);
    case Group::kCall:
      return Call(code);
    case Group::kBuild:
      return Build();
    case Group::kPersistentId:
      return PersistentId(code);
    case Group::kInstantiate:
      return Fail(ErrorCode::kUnsupported, "opcode INST/OBJ (instantiate a class) is not allowed");
    case Group::kExtension:
      return Fail(ErrorCode::kUnsupported,
                  "opcode EXT1/EXT2/EXT4 (import through the copyreg registry) is not allowed");
    case Group::kBuffer:
      return Fail(ErrorCode::kUnsupported, "out-of-band pickle buffers are not supported");
    case Group::kUnknown:
      break;
  }
  return Fail(ErrorCode::kCorrupt, "unknown pickle opcode " + HexByte(code));
}

Status PickleMachine::Control(uint8_t code) {
  if (code == op::kProto) {
    CW_ASSIGN_OR_RETURN(const uint8_t protocol, in_.ReadU8());
    if (protocol > kHighestProtocol) {
      return Fail(ErrorCode::kUnsupported,
                  "pickle protocol " + std::to_string(protocol) + " is newer than 5");
    }
    return OkStatus();
  }
  if (code == op::kFrame) {  // framing only groups opcodes; the length must fit the input
    CW_ASSIGN_OR_RETURN(const uint64_t length, in_.ReadU64());
    if (length > in_.remaining()) {
      return Fail(ErrorCode::kCorrupt,
                  "frame of " + std::to_string(length) + " bytes is truncated");
    }
    return OkStatus();
  }
  CW_ASSIGN_OR_RETURN(tree_.root_, Pop());
  stopped_ = true;
  return OkStatus();
}

Status PickleMachine::Number(uint8_t code) {
  switch (code) {
    case op::kNone:
    case op::kNewTrue:
    case op::kNewFalse: {
      CW_ASSIGN_OR_RETURN(const ObjectId id, code == op::kNone
                                                 ? Constant(Kind::kNone)
                                                 : Constant(Kind::kBool, code == op::kNewTrue));
      return Push(id);
    }
    case op::kBinInt1: {
      CW_ASSIGN_OR_RETURN(const uint8_t v, in_.ReadU8());
      return PushNew(Kind::kInt, v);
    }
    case op::kBinInt2: {
      CW_ASSIGN_OR_RETURN(const uint16_t v, in_.ReadU16());
      return PushNew(Kind::kInt, v);
    }
    case op::kBinInt: {
      CW_ASSIGN_OR_RETURN(const uint32_t v, in_.ReadU32());
      return PushNew(Kind::kInt, static_cast<int32_t>(v));
    }
    case op::kBinFloat: {  // the one big-endian field in a pickle
      CW_ASSIGN_OR_RETURN(const uint64_t bits, in_.ReadU64());
      return PushNew(Kind::kFloat, 0, std::bit_cast<double>(__builtin_bswap64(bits)));
    }
    default:
      break;
  }
  CW_ASSIGN_OR_RETURN(const ParsedNumber number, [&]() -> Result<ParsedNumber> {
    if (code == op::kLong1 || code == op::kLong4) {
      CW_ASSIGN_OR_RETURN(const uint64_t n, ReadLength(code == op::kLong1 ? 1 : -4));
      CW_ASSIGN_OR_RETURN(const ByteSpan bytes, in_.ReadBytes(n));
      return DecodeLong(bytes);
    }
    CW_ASSIGN_OR_RETURN(const std::string_view line, ReadLine());
    auto parsed = ParseNumberLine(line, code == op::kFloat, code == op::kInt);
    if (!parsed)
      return Fail(ErrorCode::kCorrupt, "bad number " + Quoted(line, 40));
    return *parsed;
  }());
  return PushNew(number.kind, number.int_value, number.float_value);
}

Status PickleMachine::Text(uint8_t code) {
  ObjectId id = 0;
  if (code == op::kString || code == op::kUnicode) {
    CW_ASSIGN_OR_RETURN(const std::string_view line, ReadLine());
    auto decoded = code == op::kString ? DecodeQuoted(line) : DecodeRawUnicodeEscape(line);
    if (!decoded)
      return Fail(ErrorCode::kCorrupt, "bad string literal " + Quoted(line, 40));
    CW_ASSIGN_OR_RETURN(id, NewText(Kind::kStr, *decoded));
  } else {
    const int width = code == op::kShortBinUnicode || code == op::kShortBinString ? 1
                      : code == op::kBinUnicode8                                  ? 8
                      : code == op::kBinString                                    ? -4
                                                                                  : 4;
    CW_ASSIGN_OR_RETURN(const uint64_t n, ReadLength(width));
    CW_ASSIGN_OR_RETURN(const ByteSpan bytes, in_.ReadBytes(n));
    const std::string_view text = AsChars(bytes);
    // Python decodes these as UTF-8 (surrogates passed through); Python 2 strings are kept as is.
    const bool unicode = code != op::kBinString && code != op::kShortBinString;
    if (unicode && !IsSurrogatePassUtf8(text))
      return Fail(ErrorCode::kCorrupt, "string " + Quoted(text, 40) + " is not valid UTF-8");
    CW_ASSIGN_OR_RETURN(id, NewText(Kind::kStr, text));
  }
  return Push(id);
}

Status PickleMachine::Binary(uint8_t code) {
  const int width = code == op::kShortBinBytes ? 1 : code == op::kBinBytes ? 4 : 8;
  CW_ASSIGN_OR_RETURN(const uint64_t n, ReadLength(width));
  CW_ASSIGN_OR_RETURN(const ByteSpan bytes, in_.ReadBytes(n));
  CW_ASSIGN_OR_RETURN(const ObjectId id, NewText(Kind::kBytes, AsChars(bytes)));
  return Push(id);
}

Status PickleMachine::Container(uint8_t code) {
  switch (code) {
    case op::kMark:
      if (stack_.size() + marks_.size() >= limits_.max_stack_depth) {
        return Fail(
            ErrorCode::kLimitExceeded,
            "pickle stack deeper than " + std::to_string(limits_.max_stack_depth) + " (the cap)");
      }
      marks_.push_back(stack_.size());
      return OkStatus();
    case op::kEmptyTuple:
    case op::kEmptyList:
    case op::kEmptyDict:
    case op::kEmptySet: {
      const Kind kind = code == op::kEmptyTuple  ? Kind::kTuple
                        : code == op::kEmptyList ? Kind::kList
                        : code == op::kEmptyDict ? Kind::kDict
                                                 : Kind::kSet;
      CW_ASSIGN_OR_RETURN(const ObjectId id, NewContainer(kind, {}));
      return Push(id);
    }
    default:
      break;
  }
  std::span<const ObjectId> items;
  if (code == op::kTuple1 || code == op::kTuple2 || code == op::kTuple3) {
    CW_ASSIGN_OR_RETURN(items, TopN(code - op::kTuple1 + 1u));
  } else {
    CW_ASSIGN_OR_RETURN(items, AboveMark());
  }
  const Kind kind = code == op::kList        ? Kind::kList
                    : code == op::kDict      ? Kind::kDict
                    : code == op::kFrozenSet ? Kind::kSet
                                             : Kind::kTuple;
  if (kind == Kind::kDict && items.size() % 2 != 0)
    return Fail(ErrorCode::kCorrupt, "DICT with an odd number of items");
  CW_ASSIGN_OR_RETURN(const ObjectId id, NewContainer(kind, items));
  Drop(items.size());
  return Push(id);
}

Status PickleMachine::Fill(uint8_t code) {
  std::span<const ObjectId> items;
  if (code == op::kAppend) {
    CW_ASSIGN_OR_RETURN(items, TopN(1));
  } else if (code == op::kSetItem) {
    CW_ASSIGN_OR_RETURN(items, TopN(2));
  } else {
    CW_ASSIGN_OR_RETURN(items, AboveMark());
  }
  CW_ASSIGN_OR_RETURN(const ObjectId target, Below(items));
  const Kind want = code == op::kAppend || code == op::kAppends ? Kind::kList
                    : code == op::kAddItems                     ? Kind::kSet
                                                                : Kind::kDict;
  if (slot(target).kind != want)
    return Fail(ErrorCode::kUnsupported, "cannot add items to " + tree_.Describe(target));
  if (want == Kind::kDict && items.size() % 2 != 0)
    return Fail(ErrorCode::kCorrupt, "SETITEMS with an odd number of items");
  CW_RETURN_IF_ERROR(AddItems(target, items));
  Drop(items.size());
  return OkStatus();
}

Status PickleMachine::StackOp(uint8_t code) {
  if (code == op::kPopMark) {
    CW_ASSIGN_OR_RETURN(const std::span<const ObjectId> items, AboveMark());
    Drop(items.size());
    return OkStatus();
  }
  if (code == op::kDup) {
    CW_ASSIGN_OR_RETURN(const ObjectId top, Top());
    return Push(top);
  }
  // POP drops the top value, or the last mark when nothing is above it (as CPython does).
  const size_t fence = marks_.empty() ? 0 : marks_.back();
  if (stack_.size() <= fence && !marks_.empty()) {
    marks_.pop_back();
    return OkStatus();
  }
  return Pop().status();
}

Status PickleMachine::Memo(uint8_t code) {
  uint64_t index = memo_count_;  // MEMOIZE
  if (code == op::kPut || code == op::kGet) {
    CW_ASSIGN_OR_RETURN(const std::string_view line, ReadLine());
    auto parsed = ParseNumberLine(line, false, false);
    if (!parsed || parsed->kind != Kind::kInt || parsed->int_value < 0)
      return Fail(ErrorCode::kCorrupt, "bad memo index " + Quoted(line, 40));
    index = static_cast<uint64_t>(parsed->int_value);
  } else if (code == op::kBinPut || code == op::kBinGet) {
    CW_ASSIGN_OR_RETURN(index, in_.ReadU8());
  } else if (code == op::kLongBinPut || code == op::kLongBinGet) {
    CW_ASSIGN_OR_RETURN(index, in_.ReadU32());
  }
  if (code == op::kGet || code == op::kBinGet || code == op::kLongBinGet) {
    CW_ASSIGN_OR_RETURN(const ObjectId id, MemoGet(index));
    return Push(id);
  }
  CW_ASSIGN_OR_RETURN(const ObjectId top, Top());
  return MemoPut(index, top);  // the id, not a copy: later changes to the object show through
}

Status PickleMachine::Global(uint8_t code) {
  ObjectId id = 0;
  if (code == op::kGlobal) {
    CW_ASSIGN_OR_RETURN(const std::string_view module, ReadLine());
    CW_ASSIGN_OR_RETURN(const std::string_view name, ReadLine());
    CW_ASSIGN_OR_RETURN(id, ResolveGlobal(module, name));
  } else {
    CW_ASSIGN_OR_RETURN(const ObjectId name, Pop());
    CW_ASSIGN_OR_RETURN(const ObjectId module, Pop());
    if (slot(module).kind != Kind::kStr || slot(name).kind != Kind::kStr)
      return Fail(ErrorCode::kCorrupt, "STACK_GLOBAL needs two strings");
    CW_ASSIGN_OR_RETURN(id, ResolveGlobal(text(module), text(name)));
  }
  return Push(id);
}

Status PickleMachine::Call(uint8_t code) {
  if (code == op::kNewObjEx) {
    CW_ASSIGN_OR_RETURN(const ObjectId kwargs, Pop());
    if (slot(kwargs).kind != Kind::kDict || slot(kwargs).span.count != 0)
      return Fail(ErrorCode::kUnsupported, "NEWOBJ_EX with keyword arguments is not supported");
  }
  CW_ASSIGN_OR_RETURN(const ObjectId args, Pop());
  CW_ASSIGN_OR_RETURN(const ObjectId callable, Pop());
  if (slot(callable).kind != Kind::kGlobal)
    return Fail(ErrorCode::kUnsupported, "cannot call " + tree_.Describe(callable));
  if (slot(args).kind != Kind::kTuple) {
    return Fail(ErrorCode::kCorrupt,
                "call arguments are " + tree_.Describe(args) + ", not a tuple");
  }
  // NEWOBJ is cls.__new__(cls, *args); torch uses it for Parameter only.
  if (code != op::kReduce && slot(callable).global != GlobalKind::kParameter) {
    return Fail(ErrorCode::kUnsupported, "NEWOBJ of " + Quoted(text(callable)) + " is not allowed");
  }
  CW_ASSIGN_OR_RETURN(const ObjectId result, Invoke(callable, ItemsOf(args)));
  return Push(result);
}

// BUILD sets Python attributes: torch uses it for a state dict's `_metadata` and tensor
// attributes, neither of which matters for the weights.
Status PickleMachine::Build() {
  CW_RETURN_IF_ERROR(Pop().status());  // the state, ignored
  CW_ASSIGN_OR_RETURN(const ObjectId target, Top());
  const Slot& t = slot(target);
  if ((t.kind == Kind::kDict && t.ordered) || t.kind == Kind::kTensor)
    return OkStatus();
  return Fail(ErrorCode::kUnsupported, "BUILD on " + tree_.Describe(target) + " is not allowed");
}

Status PickleMachine::PersistentId(uint8_t code) {
  ObjectId id = 0;
  if (code == op::kPersId) {
    CW_ASSIGN_OR_RETURN(const std::string_view line, ReadLine());
    CW_ASSIGN_OR_RETURN(id, NewText(Kind::kStr, line));
  } else {
    CW_ASSIGN_OR_RETURN(id, Pop());
  }
  CW_ASSIGN_OR_RETURN(const ObjectId ref, NewContainer(Kind::kPersistentId, {&id, 1}));
  return Push(ref);
}

}  // namespace cw::pytorch
