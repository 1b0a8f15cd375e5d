#include "engine/formats/pytorch/pickle_writer.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <set>

#include "engine/base/bytes.h"
#include "engine/base/checked_math.h"
#include "engine/base/limits.h"
#include "engine/base/text.h"

namespace cw::pytorch {
namespace {

// Opcodes, all in torch 1.13's weights_only set (docs/formats/torch-writer.md, 'data.pkl').
constexpr char kProto = '\x80';
constexpr char kGlobal = 'c';
constexpr char kEmptyDict = '}';
constexpr char kEmptyTuple = ')';
constexpr char kMark = '(';
constexpr char kTuple = 't';
constexpr char kTuple1 = '\x85';
constexpr char kTuple2 = '\x86';
constexpr char kTuple3 = '\x87';
constexpr char kBinUnicode = 'X';
constexpr char kBinInt1 = 'K';
constexpr char kBinInt2 = 'M';
constexpr char kBinInt = 'J';
constexpr char kLong1 = '\x8a';
constexpr char kNewFalse = '\x89';
constexpr char kBinPersId = 'Q';
constexpr char kReduce = 'R';
constexpr char kSetItems = 'u';
constexpr char kStop = '.';

// pickle's own batch size for dict items (_BATCHSIZE); torch's files follow it.
constexpr size_t kItemsPerBatch = 1000;
constexpr uint64_t kMaxTorchSize = std::numeric_limits<int64_t>::max();

class Emitter {
 public:
  Emitter() : out_{kProto, '\x02'} {}

  void Op(char op) { out_.push_back(op); }

  void Int(uint64_t v) {
    if (v <= 0xFF) {
      Op(kBinInt1);
      out_.push_back(static_cast<char>(v));
    } else if (v <= 0xFFFF) {
      Op(kBinInt2);
      Append(out_, ObjectBytes(static_cast<uint16_t>(v)));
    } else if (v <= 0x7FFF'FFFF) {
      Op(kBinInt);
      Append(out_, ObjectBytes(static_cast<int32_t>(v)));
    } else {
      // Little-endian two's complement, as short as possible: a set top bit would read as a
      // negative number, so it takes one more 0 byte.
      std::string digits;
      for (uint64_t rest = v; rest != 0; rest >>= 8)
        digits.push_back(static_cast<char>(rest & 0xFF));
      if ((static_cast<unsigned char>(digits.back()) & 0x80) != 0)
        digits.push_back('\0');
      Op(kLong1);
      out_.push_back(static_cast<char>(digits.size()));
      out_ += digits;
    }
  }

  // REQUIRES: `s` is valid UTF-8 shorter than 4 GiB.
  void Unicode(std::string_view s) {
    Op(kBinUnicode);
    Append(out_, ObjectBytes(static_cast<uint32_t>(s.size())));
    out_ += s;
  }

  void Global(std::string_view module, std::string_view name) {
    Op(kGlobal);
    (out_ += module) += '\n';
    (out_ += name) += '\n';
  }

  void IntTuple(std::span<const uint64_t> values) {
    static constexpr char kBySize[] = {kEmptyTuple, kTuple1, kTuple2, kTuple3};
    if (values.size() > 3)
      Op(kMark);
    for (uint64_t v : values)
      Int(v);
    Op(values.size() > 3 ? kTuple : kBySize[values.size()]);
  }

  std::string Finish() && {
    Op(kStop);
    return std::move(out_);
  }

 private:
  std::string out_;
};

// What the pickle says about one tensor, checked against what torch 1.13 can represent.
struct TensorPlan {
  std::string_view storage_class;
  uint64_t numel = 1;
  Shape strides;
};

Result<TensorPlan> PlanTensor(const TensorInfo& t, size_t index) {
  const auto fail = [&](ErrorCode code, const std::string& why) {
    return Error(code, "tensor \"" + (IsValidUtf8(t.name) ? t.name : "#" + std::to_string(index)) +
                           "\" " + why);
  };
  if (t.name.size() > limits::kMaxNameBytes) {
    return fail(ErrorCode::kLimitExceeded, "has a name of " + std::to_string(t.name.size()) +
                                               " bytes, over the cap of " +
                                               std::to_string(limits::kMaxNameBytes));
  }
  if (!IsValidUtf8(t.name))
    return fail(ErrorCode::kUnsupported, "has a name that is not valid UTF-8");
  TensorPlan plan;
  plan.storage_class = Info(t.dtype).torch_storage;
  if (plan.storage_class.empty()) {
    return fail(ErrorCode::kUnsupported,
                "has dtype " + std::string(Name(t.dtype)) +
                    ", which has no legacy torch storage class: torch 1.13 cannot load it from a "
                    ".bin file (use safetensors)");
  }
  // torch gives a size-0 dim the stride of a size-1 dim: (4, 0) has strides (1, 1).
  plan.strides.assign(t.shape.size(), 1);
  uint64_t extent = 1;
  for (size_t k = t.shape.size(); k-- > 0;) {
    plan.strides[k] = extent;
    const auto next = CheckedMul(extent, std::max<uint64_t>(t.shape[k], 1));
    const auto numel = CheckedMul(plan.numel, t.shape[k]);
    if (!next || !numel || *next > kMaxTorchSize || t.shape[k] > kMaxTorchSize) {
      return fail(ErrorCode::kUnsupported,
                  "has shape " + ShapeToString(t.shape) + ", too large for torch's int64 sizes");
    }
    extent = *next;
    plan.numel = *numel;
  }
  return plan;
}

void EmitTensor(Emitter& e, const TensorPlan& plan, const TensorInfo& t, const std::string& key) {
  e.Unicode(t.name);
  e.Global("torch._utils", "_rebuild_tensor_v2");
  e.Op(kMark);
  e.Op(kMark);  // persistent id ('storage', type, key, location, numel)
  e.Unicode("storage");
  e.Global("torch", plan.storage_class);
  e.Unicode(key);
  e.Unicode("cpu");
  e.Int(plan.numel);
  e.Op(kTuple);
  e.Op(kBinPersId);
  e.Int(0);  // storage offset
  e.IntTuple(t.shape);
  e.IntTuple(plan.strides);
  e.Op(kNewFalse);  // requires_grad
  e.Global("collections", "OrderedDict");
  e.Op(kEmptyTuple);
  e.Op(kReduce);  // backward_hooks = OrderedDict()
  e.Op(kTuple);
  e.Op(kReduce);
}

}  // namespace

std::string StorageKey(size_t index) { return std::to_string(index); }

Result<std::string> StateDictPickle(std::span<const TensorInfo> tensors,
                                    std::string_view root_key) {
  std::vector<TensorPlan> plans;
  plans.reserve(tensors.size());
  std::set<std::string_view> names;
  for (size_t i = 0; i < tensors.size(); ++i) {
    CW_ASSIGN_OR_RETURN(TensorPlan plan, PlanTensor(tensors[i], i));
    if (!names.insert(tensors[i].name).second)
      return Error(ErrorCode::kUsage, "tensor \"" + tensors[i].name + "\" is listed twice");
    plans.push_back(std::move(plan));
  }
  if (root_key.size() > limits::kMaxNameBytes || !IsValidUtf8(root_key))
    return Error(ErrorCode::kUnsupported, "the torch root key is not valid UTF-8 of at most " +
                                              std::to_string(limits::kMaxNameBytes) + " bytes");

  Emitter e;
  if (!root_key.empty()) {
    e.Op(kEmptyDict);
    e.Op(kMark);
    e.Unicode(root_key);
  }
  e.Op(kEmptyDict);
  for (size_t begin = 0; begin < tensors.size(); begin += kItemsPerBatch) {
    e.Op(kMark);
    for (size_t i = begin; i < std::min(tensors.size(), begin + kItemsPerBatch); ++i)
      EmitTensor(e, plans[i], tensors[i], StorageKey(i));
    e.Op(kSetItems);
  }
  if (!root_key.empty())
    e.Op(kSetItems);
  return std::move(e).Finish();
}

}  // namespace cw::pytorch
