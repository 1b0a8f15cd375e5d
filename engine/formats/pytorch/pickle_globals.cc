// The allow-list of GLOBALs and the calls the pickle machine models instead of running them.
#include <algorithm>
#include <array>

#include "engine/base/limits.h"
#include "engine/base/text.h"
#include "engine/formats/pytorch/pickle_machine.h"
#include "engine/formats/pytorch/pickle_text.h"

namespace cw::pytorch {
namespace {

struct NamedGlobal {
  std::string_view name;
  GlobalKind kind;
};

constexpr std::array<NamedGlobal, 20> kGlobals = {{
    {"collections.OrderedDict", GlobalKind::kOrderedDict},
    {"torch._utils._rebuild_tensor", GlobalKind::kRebuildTensor},
    {"torch._utils._rebuild_tensor_v2", GlobalKind::kRebuildTensorV2},
    {"torch._utils._rebuild_tensor_v3", GlobalKind::kRebuildTensorV3},
    {"torch._utils._rebuild_parameter", GlobalKind::kRebuildParameter},
    {"torch._utils._rebuild_parameter_with_state", GlobalKind::kRebuildParameterWithState},
    {"torch._tensor._rebuild_from_type_v2", GlobalKind::kRebuildFromTypeV2},
    {"torch.nn.parameter.Parameter", GlobalKind::kParameter},
    {"torch.Tensor", GlobalKind::kTensorType},
    {"torch.storage.UntypedStorage", GlobalKind::kStorageType},
    {"torch.UntypedStorage", GlobalKind::kStorageType},
    {"torch.Size", GlobalKind::kSize},
    {"torch.device", GlobalKind::kDevice},
    {"_codecs.encode", GlobalKind::kCodecsEncode},
    {"builtins.set", GlobalKind::kSet},
    {"builtins.frozenset", GlobalKind::kFrozenSet},
    {"builtins.bytearray", GlobalKind::kByteArray},
    // Protocols 0-2 spell the builtins module the Python 2 way.
    {"__builtin__.set", GlobalKind::kSet},
    {"__builtin__.frozenset", GlobalKind::kFrozenSet},
    {"__builtin__.bytearray", GlobalKind::kByteArray},
}};

// torch's legacy storage classes (torch/storage.py), in module torch or torch.cuda.
constexpr std::array<std::string_view, 17> kStorageClasses = {
    "DoubleStorage",  "FloatStorage",  "HalfStorage",         "BFloat16Storage",
    "LongStorage",    "IntStorage",    "ShortStorage",        "CharStorage",
    "ByteStorage",    "BoolStorage",   "ComplexFloatStorage", "ComplexDoubleStorage",
    "QInt8Storage",   "QUInt8Storage", "QInt32Storage",       "QUInt4x2Storage",
    "QUInt2x4Storage"};

// torch dtypes as pickled (their canonical names); values only.
constexpr std::array<std::string_view, 32> kDTypes = {"float32",         "float64",
                                                      "float16",         "bfloat16",
                                                      "int64",           "int32",
                                                      "int16",           "int8",
                                                      "uint8",           "bool",
                                                      "complex32",       "complex64",
                                                      "complex128",      "uint16",
                                                      "uint32",          "uint64",
                                                      "float8_e4m3fn",   "float8_e5m2",
                                                      "float8_e4m3fnuz", "float8_e5m2fnuz",
                                                      "float8_e8m0fnu",  "float4_e2m1fn_x2",
                                                      "quint8",          "qint8",
                                                      "qint32",          "quint4x2",
                                                      "quint2x4",        "bits1x8",
                                                      "bits2x4",         "bits4x2",
                                                      "bits8",           "bits16"};

template <typename Array>
bool Contains(const Array& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::optional<GlobalKind> Lookup(std::string_view module, std::string_view name,
                                 std::string_view full) {
  for (const NamedGlobal& g : kGlobals) {
    if (g.name == full)
      return g.kind;
  }
  if ((module == "torch" || module == "torch.cuda") && Contains(kStorageClasses, name))
    return GlobalKind::kStorageType;
  if (module == "torch" && Contains(kDTypes, name))
    return GlobalKind::kDType;
  return std::nullopt;
}

bool IsTensorFunction(GlobalKind kind) {
  return kind == GlobalKind::kRebuildTensor || kind == GlobalKind::kRebuildTensorV2 ||
         kind == GlobalKind::kRebuildTensorV3 || kind == GlobalKind::kRebuildParameter ||
         kind == GlobalKind::kRebuildParameterWithState || kind == GlobalKind::kParameter;
}

}  // namespace

Result<ObjectId> PickleMachine::ResolveGlobal(std::string_view module, std::string_view name) {
  std::string full = std::string(module) + "." + std::string(name);
  const auto kind = Lookup(module, name, full);
  if (!kind) {
    return Fail(ErrorCode::kUnsupported,
                "GLOBAL " + Quoted(full) +
                    " is not allowed: only torch tensors, storages, dtypes and plain containers "
                    "are read, and nothing is imported or run");
  }
  if (const auto it = globals_.find(full); it != globals_.end())
    return it->second;
  CW_ASSIGN_OR_RETURN(const ObjectId id, NewText(Kind::kGlobal, full));
  slot(id).global = *kind;
  globals_.emplace(std::move(full), id);
  return id;
}

Result<ObjectId> PickleMachine::Invoke(ObjectId callable, const std::vector<ObjectId>& args) {
  switch (slot(callable).global) {
    case GlobalKind::kOrderedDict: {
      CW_RETURN_IF_ERROR(ArgCount(callable, args.size(), 0, 0));
      CW_ASSIGN_OR_RETURN(const ObjectId id, NewContainer(Kind::kDict, {}));
      slot(id).ordered = true;
      return id;
    }
    case GlobalKind::kRebuildTensor:
    case GlobalKind::kRebuildTensorV2:
    case GlobalKind::kRebuildTensorV3:
      return RebuildTensor(callable, args);
    // A Parameter is its tensor here; requires_grad, hooks and Python state do not matter.
    case GlobalKind::kRebuildParameter:
      return TensorArgument(callable, args, 2, 3);
    case GlobalKind::kRebuildParameterWithState:
      return TensorArgument(callable, args, 4, 4);
    case GlobalKind::kParameter:
      return TensorArgument(callable, args, 1, 2);
    case GlobalKind::kRebuildFromTypeV2:
      return FromType(callable, args);
    case GlobalKind::kSize:
      return MakeSize(callable, args);
    case GlobalKind::kDevice:
      return MakeDevice(callable, args);
    case GlobalKind::kCodecsEncode:
    case GlobalKind::kByteArray:
      return MakeBytes(callable, args);
    case GlobalKind::kSet:
    case GlobalKind::kFrozenSet:
      return MakeSet(callable, args);
    case GlobalKind::kTensorType:
    case GlobalKind::kStorageType:
    case GlobalKind::kDType:
      break;
  }
  return Fail(ErrorCode::kUnsupported, Quoted(text(callable)) + " cannot be called");
}

Result<ObjectId> PickleMachine::RebuildTensor(ObjectId callable,
                                              const std::vector<ObjectId>& args) {
  const GlobalKind kind = slot(callable).global;
  // _rebuild_tensor(storage, offset, size, stride); v2 adds requires_grad, hooks[, metadata];
  // v3 adds dtype after the hooks.
  const size_t min = kind == GlobalKind::kRebuildTensor     ? 4
                     : kind == GlobalKind::kRebuildTensorV2 ? 6
                                                            : 7;
  const size_t max = kind == GlobalKind::kRebuildTensor ? 4 : min + 1;
  CW_RETURN_IF_ERROR(ArgCount(callable, args.size(), min, max));
  PickleTree::TensorSlot tensor;
  if (slot(args[0]).kind != Kind::kPersistentId) {
    return Fail(ErrorCode::kCorrupt,
                "the storage of a tensor is " + tree_.Describe(args[0]) + ", not a persistent id");
  }
  tensor.storage = args[0];
  CW_ASSIGN_OR_RETURN(tensor.storage_offset, NonNegative(args[1], "storage offset"));
  CW_ASSIGN_OR_RETURN(tensor.shape, Dims(args[2], "size"));
  CW_ASSIGN_OR_RETURN(tensor.stride, Dims(args[3], "stride"));
  const uint32_t rank = slot(tensor.shape).span.count;
  if (rank != slot(tensor.stride).span.count) {
    return Fail(ErrorCode::kCorrupt, "a tensor has " + std::to_string(rank) + " sizes but " +
                                         std::to_string(slot(tensor.stride).span.count) +
                                         " strides");
  }
  if (kind == GlobalKind::kRebuildTensorV3) {
    const Slot& dtype = slot(args[6]);
    if (dtype.kind != Kind::kGlobal || dtype.global != GlobalKind::kDType)
      return Fail(ErrorCode::kCorrupt, "the dtype of a tensor is " + tree_.Describe(args[6]));
    const std::string_view name = text(args[6]);
    tensor.dtype = DTypeFromTorch(name.substr(6));  // after "torch."
    if (!tensor.dtype)
      return Fail(ErrorCode::kUnsupported, "dtype " + std::string(name) + " is not supported");
  }
  // The optional last argument holds conjugate/negative bits; values would need changing.
  if (args.size() == max && kind != GlobalKind::kRebuildTensor) {
    const Slot& metadata = slot(args.back());
    if (metadata.kind != Kind::kDict || metadata.span.count != 0) {
      return Fail(ErrorCode::kUnsupported,
                  "tensor metadata (" + tree_.Describe(args.back()) + ") is not supported");
    }
  }
  CW_RETURN_IF_ERROR(Charge(sizeof(tensor) + sizeof(Slot)));
  CW_ASSIGN_OR_RETURN(const ObjectId id, New(Kind::kTensor));
  slot(id).int_value = static_cast<int64_t>(tree_.tensors_.size());
  tree_.tensors_.push_back(tensor);
  return id;
}

// _rebuild_from_type_v2(func, type, args, state) is func(*args) turned into `type`; only plain
// tensors and Parameters are read, and Python attributes in `state` are dropped.
Result<ObjectId> PickleMachine::FromType(ObjectId callable, const std::vector<ObjectId>& args) {
  CW_RETURN_IF_ERROR(ArgCount(callable, args.size(), 4, 4));
  const Slot& func = slot(args[0]);
  const Slot& type = slot(args[1]);
  if (func.kind != Kind::kGlobal || !IsTensorFunction(func.global)) {
    return Fail(ErrorCode::kUnsupported,
                "_rebuild_from_type_v2 of " + tree_.Describe(args[0]) + " is not allowed");
  }
  if (type.kind != Kind::kGlobal ||
      (type.global != GlobalKind::kTensorType && type.global != GlobalKind::kParameter)) {
    return Fail(ErrorCode::kUnsupported,
                "tensor subclass " + tree_.Describe(args[1]) + " is not supported");
  }
  if (slot(args[2]).kind != Kind::kTuple)
    return Fail(ErrorCode::kCorrupt, "_rebuild_from_type_v2 arguments are not a tuple");
  return Invoke(args[0], ItemsOf(args[2]));
}

Result<ObjectId> PickleMachine::MakeBytes(ObjectId callable, const std::vector<ObjectId>& args) {
  const bool encode = slot(callable).global == GlobalKind::kCodecsEncode;
  CW_RETURN_IF_ERROR(ArgCount(callable, args.size(), encode ? 2 : 0, 2));
  if (args.empty())
    return NewText(Kind::kBytes, "");
  if (args.size() == 1 && slot(args[0]).kind == Kind::kBytes)
    return NewText(Kind::kBytes, std::string(text(args[0])));  // a copy: the buffer may move
  // Python 3 pickles bytes for protocol 2 as encode(<str of code points < 256>, "latin1").
  const bool latin1 = args.size() == 2 && slot(args[1]).kind == Kind::kStr &&
                      (text(args[1]) == "latin1" || text(args[1]) == "latin-1");
  if (slot(args[0]).kind != Kind::kStr || !latin1) {
    return Fail(ErrorCode::kUnsupported,
                Quoted(text(callable)) + " is only read with a string and \"latin1\"");
  }
  const auto bytes = Utf8ToLatin1(text(args[0]));
  if (!bytes)
    return Fail(ErrorCode::kCorrupt, "a latin1 string has characters above U+00FF");
  return NewText(Kind::kBytes, *bytes);
}

Result<ObjectId> PickleMachine::MakeSet(ObjectId callable, const std::vector<ObjectId>& args) {
  CW_RETURN_IF_ERROR(ArgCount(callable, args.size(), 0, 1));
  if (args.empty())
    return NewContainer(Kind::kSet, {});
  const Kind kind = slot(args[0]).kind;
  if (kind != Kind::kList && kind != Kind::kTuple && kind != Kind::kSet)
    return Fail(ErrorCode::kUnsupported, "a set made from " + tree_.Describe(args[0]));
  return NewContainer(Kind::kSet, ItemsOf(args[0]));
}

Result<ObjectId> PickleMachine::MakeSize(ObjectId callable, const std::vector<ObjectId>& args) {
  CW_RETURN_IF_ERROR(ArgCount(callable, args.size(), 0, 1));
  if (args.empty())
    return NewContainer(Kind::kTuple, {});
  const Kind kind = slot(args[0]).kind;
  if (kind != Kind::kList && kind != Kind::kTuple)
    return Fail(ErrorCode::kCorrupt, "torch.Size of " + tree_.Describe(args[0]));
  return NewContainer(Kind::kTuple, ItemsOf(args[0]));
}

// torch.device("cuda", 0) becomes the string "cuda:0": devices are only ever reported.
Result<ObjectId> PickleMachine::MakeDevice(ObjectId callable, const std::vector<ObjectId>& args) {
  CW_RETURN_IF_ERROR(ArgCount(callable, args.size(), 1, 2));
  if (slot(args[0]).kind != Kind::kStr)
    return Fail(ErrorCode::kCorrupt, "torch.device of " + tree_.Describe(args[0]));
  std::string name(text(args[0]));
  if (args.size() == 2 && slot(args[1]).kind == Kind::kInt)
    name += ":" + std::to_string(slot(args[1]).int_value);
  return NewText(Kind::kStr, name);
}

Result<ObjectId> PickleMachine::TensorArgument(ObjectId callable, const std::vector<ObjectId>& args,
                                               size_t min_args, size_t max_args) {
  CW_RETURN_IF_ERROR(ArgCount(callable, args.size(), min_args, max_args));
  if (slot(args[0]).kind != Kind::kTensor) {
    return Fail(ErrorCode::kCorrupt,
                Quoted(text(callable)) + " of " + tree_.Describe(args[0]) + ", not a tensor");
  }
  return args[0];
}

// A tensor's size or stride as a tuple of non-negative ints: the tuple itself, or a copy of a
// list, which a later APPEND could change.
Result<ObjectId> PickleMachine::Dims(ObjectId id, const char* what) {
  const Kind kind = slot(id).kind;
  if (kind != Kind::kTuple && kind != Kind::kList) {
    return Fail(ErrorCode::kCorrupt,
                std::string("the ") + what + " of a tensor is " + tree_.Describe(id));
  }
  const Items items = tree_.ItemsOf(slot(id));
  if (items.size() > limits::kMaxRank) {
    return Fail(ErrorCode::kLimitExceeded, "a tensor of rank " + std::to_string(items.size()) +
                                               " is over the cap of " +
                                               std::to_string(limits::kMaxRank));
  }
  for (const ObjectId item : items)
    CW_RETURN_IF_ERROR(NonNegative(item, what).status());
  if (kind == Kind::kTuple)
    return id;
  return NewContainer(Kind::kTuple, ItemsOf(id));
}

Result<uint64_t> PickleMachine::NonNegative(ObjectId id, const char* what) {
  const Slot& o = slot(id);
  if (o.kind != Kind::kInt || o.int_value < 0) {
    return Fail(ErrorCode::kCorrupt, std::string("a tensor ") + what + " is " + tree_.Describe(id) +
                                         ", not a non-negative int");
  }
  return static_cast<uint64_t>(o.int_value);
}

Status PickleMachine::ArgCount(ObjectId callable, size_t got, size_t min, size_t max) {
  if (got >= min && got <= max)
    return OkStatus();
  const std::string range =
      min == max ? std::to_string(min) : std::to_string(min) + " to " + std::to_string(max);
  return Fail(ErrorCode::kCorrupt, Quoted(text(callable)) + " takes " + range + " arguments, not " +
                                       std::to_string(got));
}

}  // namespace cw::pytorch
