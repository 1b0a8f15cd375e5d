#include "engine/formats/pytorch/torch_tensors.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "engine/base/checked_math.h"
#include "engine/base/limits.h"
#include "engine/base/text.h"

namespace cw::pytorch {
namespace {

// Builds a StateDict from the tree, one dict level at a time.
class Indexer {
 public:
  Indexer(const PickleTree& tree, const PickleSource& source, bool legacy)
      : tree_(tree),
        source_(source),
        legacy_(legacy),
        budget_(CheckedAdd(limits::kStateDictIndexBaseBytes,
                           CheckedMul(limits::kStateDictIndexBytesPerByte, tree.consumed_bytes())
                               .value_or(UINT64_MAX))
                    .value_or(UINT64_MAX)) {}

  Result<StateDict> Run();

 private:
  Status Walk(ObjectId dict, const std::string& prefix);
  Status AddValue(std::string name, ObjectId value);
  Status AddTensor(std::string name, ObjectId tensor);
  Result<size_t> Declare(ObjectId pid, const std::optional<DType>& v3_dtype);
  Result<StorageDecl> ParseId(ObjectId pid, const std::optional<DType>& v3_dtype);
  Status Skip(ObjectId at, std::string name, std::string description);
  Status Charge(ObjectId at, uint64_t bytes);
  std::string DescribeSkipped(ObjectId value);
  Error Fail(ObjectId at, ErrorCode code, std::string message) const {
    return Error(code, std::move(message),
                 ByteLocation(source_.file, source_.file_offset + tree_.at(at).offset));
  }

  const PickleTree& tree_;
  const PickleSource& source_;
  bool legacy_;
  StateDict state_;
  std::unordered_map<std::string, size_t> storage_by_key_;
  std::unordered_set<std::string> names_;
  std::vector<ObjectId> path_;  // dicts being walked, to stop on cycles and deep nesting
  uint64_t leaf_count_ = 0;
  // Names repeat a dict's prefix for every value below it, and a shared dict is walked once per
  // path, so the names and records made are charged against the pickle's size.
  uint64_t budget_;
  uint64_t charged_ = 0;
  // Tensors held by each list or tuple described, counted once however often it is shared.
  std::unordered_map<ObjectId, size_t> tensors_in_;
};

Result<StateDict> Indexer::Run() {
  const ObjectId root = tree_.root();
  if (tree_.at(root).kind != Kind::kDict) {
    return Fail(root, ErrorCode::kUnsupported,
                "the top-level object (" + tree_.Describe(root) + ") is not a dict of tensors");
  }
  CW_RETURN_IF_ERROR(Walk(root, ""));
  return std::move(state_);
}

Status Indexer::Walk(ObjectId dict, const std::string& prefix) {
  if (path_.size() >= limits::kMaxNestingDepth) {
    return Fail(
        dict, ErrorCode::kLimitExceeded,
        "dicts nested more than " + std::to_string(limits::kMaxNestingDepth) + " deep (the cap)");
  }
  if (std::find(path_.begin(), path_.end(), dict) != path_.end())
    return Fail(dict, ErrorCode::kCorrupt, "a dict contains itself");
  path_.push_back(dict);
  const Items items = tree_.at(dict).items;
  for (size_t i = 0; i + 1 < items.size(); i += 2) {
    const Object key = tree_.at(items[i]);
    std::string name = key.kind == Kind::kStr   ? std::string(key.text)
                       : key.kind == Kind::kInt ? std::to_string(key.int_value)
                                                : "[" + tree_.Describe(items[i]) + "]";
    if (!prefix.empty())
      name.insert(0, prefix + ".");
    if (name.size() > limits::kMaxNameBytes) {
      return Fail(items[i], ErrorCode::kLimitExceeded,
                  "name " + Quoted(name, 60) + " is longer than the cap of " +
                      std::to_string(limits::kMaxNameBytes) + " bytes");
    }
    if (key.kind != Kind::kStr && key.kind != Kind::kInt) {
      CW_RETURN_IF_ERROR(
          Skip(items[i], std::move(name), "a value under a " + tree_.Describe(items[i]) + " key"));
      continue;
    }
    CW_RETURN_IF_ERROR(AddValue(std::move(name), items[i + 1]));
  }
  path_.pop_back();
  return OkStatus();
}

Status Indexer::AddValue(std::string name, ObjectId value) {
  // Shared sub-dicts are walked once per path, so bound the leaves, not just the tensors.
  if (++leaf_count_ > limits::kMaxTensorCount) {
    return Fail(value, ErrorCode::kLimitExceeded,
                "more than " + std::to_string(limits::kMaxTensorCount) + " values (the cap)");
  }
  const Object o = tree_.at(value);
  if (o.kind == Kind::kDict && !o.items.empty())
    return Walk(value, name);
  if (o.kind == Kind::kTensor)
    return AddTensor(std::move(name), value);
  return Skip(value, std::move(name), DescribeSkipped(value));
}

Status Indexer::Skip(ObjectId at, std::string name, std::string description) {
  CW_RETURN_IF_ERROR(Charge(at, sizeof(SkippedValue) + name.size() + description.size()));
  state_.skipped.push_back({std::move(name), std::move(description)});
  return OkStatus();
}

Status Indexer::Charge(ObjectId at, uint64_t bytes) {
  if (bytes <= budget_ && charged_ <= budget_ - bytes) {
    charged_ += bytes;
    return OkStatus();
  }
  return Fail(at, ErrorCode::kLimitExceeded,
              "the flattened names and skipped values take over " + std::to_string(budget_) +
                  " bytes, the cap of " + std::to_string(limits::kStateDictIndexBytesPerByte) +
                  " per pickle byte (" + std::to_string(tree_.consumed_bytes()) + ") plus " +
                  std::to_string(limits::kStateDictIndexBaseBytes));
}

std::string Indexer::DescribeSkipped(ObjectId value) {
  std::string text = tree_.Describe(value);
  const Object o = tree_.at(value);
  if (o.kind != Kind::kList && o.kind != Kind::kTuple)
    return text;
  const auto [it, inserted] = tensors_in_.emplace(value, 0);
  if (inserted) {
    it->second =
        static_cast<size_t>(std::count_if(o.items.begin(), o.items.end(), [&](ObjectId item) {
          return tree_.at(item).kind == Kind::kTensor;
        }));
  }
  const size_t tensors = it->second;
  if (tensors > 0) {
    text += " (holding " + std::to_string(tensors) + (tensors == 1 ? " tensor" : " tensors") +
            ", not read)";
  }
  return text;
}

Status Indexer::AddTensor(std::string name, ObjectId tensor) {
  const PickleTensor t = tree_.tensor(tensor);
  // The name is kept twice (entry and names_), size and stride once each.
  CW_RETURN_IF_ERROR(Charge(
      tensor, sizeof(TensorEntry) + 2 * name.size() + 2 * t.shape.size() * sizeof(uint64_t)));
  if (!names_.insert(name).second)
    return Fail(tensor, ErrorCode::kCorrupt, "two tensors are named " + Quoted(name));
  CW_ASSIGN_OR_RETURN(const size_t storage, Declare(t.storage, t.dtype));
  TensorEntry entry;
  entry.info.name = std::move(name);
  entry.info.dtype = state_.storages[storage].dtype;
  entry.info.shape = t.shape;
  const auto byte_size = ByteSize(entry.info.dtype, entry.info.shape);
  if (!byte_size) {
    return Fail(tensor, ErrorCode::kCorrupt,
                "tensor " + Quoted(entry.info.name) + " of shape " + ShapeToString(t.shape) +
                    " has more bytes than 64 bits can count");
  }
  entry.info.byte_size = *byte_size;
  entry.storage = storage;
  entry.storage_offset = t.storage_offset;
  entry.stride = t.stride;
  entry.pickle_offset = source_.file_offset + tree_.at(tensor).offset;
  state_.tensors.push_back(std::move(entry));
  return OkStatus();
}

Result<size_t> Indexer::Declare(ObjectId pid, const std::optional<DType>& v3_dtype) {
  CW_ASSIGN_OR_RETURN(StorageDecl decl, ParseId(pid, v3_dtype));
  const auto [it, inserted] = storage_by_key_.emplace(decl.key, state_.storages.size());
  if (inserted) {
    state_.storages.push_back(std::move(decl));
    return it->second;
  }
  // torch.save never writes one storage under two dtypes, and loaders keep the first only.
  const StorageDecl& first = state_.storages[it->second];
  if (first.dtype != decl.dtype || first.unit_bytes != decl.unit_bytes) {
    return Fail(pid, ErrorCode::kCorrupt,
                "storage " + Quoted(decl.key) + " holds both " + std::string(Name(first.dtype)) +
                    " and " + std::string(Name(decl.dtype)) + " tensors");
  }
  if (first.numel != decl.numel) {
    return Fail(pid, ErrorCode::kCorrupt,
                "storage " + Quoted(decl.key) + " is declared with " + std::to_string(first.numel) +
                    " and with " + std::to_string(decl.numel) + " elements");
  }
  return it->second;
}

Result<StorageDecl> Indexer::ParseId(ObjectId pid, const std::optional<DType>& v3_dtype) {
  const ObjectId id = tree_.at(pid).items[0];
  const Object tuple = tree_.at(id);
  const size_t arity = legacy_ ? 6 : 5;
  const auto item = [&](size_t i) { return tree_.at(tuple.items[i]); };
  if (tuple.kind != Kind::kTuple || tuple.items.size() != arity || item(0).kind != Kind::kStr ||
      item(0).text != "storage" || item(1).kind != Kind::kGlobal ||
      item(1).global != GlobalKind::kStorageType || item(2).kind != Kind::kStr ||
      item(4).kind != Kind::kInt || item(4).int_value < 0) {
    return Fail(pid, ErrorCode::kCorrupt,
                "persistent id " + tree_.Describe(id) +
                    " is not ('storage', <storage type>, key, " + "location, numel" +
                    (legacy_ ? ", None)" : ")"));
  }
  if (legacy_ && item(5).kind != Kind::kNone)
    return Fail(pid, ErrorCode::kUnsupported, "storage views of pre-0.4 torch files are not read");
  StorageDecl decl;
  decl.key = std::string(item(2).text);
  decl.numel = static_cast<uint64_t>(item(4).int_value);
  decl.pid_offset = source_.file_offset + tree_.at(pid).offset;
  const std::string type(item(1).text);
  const std::string_view type_name = type;  // "torch.FloatStorage", "torch.storage.UntypedStorage"
  const std::string_view class_name = type_name.substr(type_name.rfind('.') + 1);
  if (class_name == "UntypedStorage") {
    decl.dtype = v3_dtype.value_or(DType::kU8);
  } else {
    const auto dtype = DTypeFromTorchStorage(class_name);
    if (!dtype)
      return Fail(pid, ErrorCode::kUnsupported, "storage type " + type + " is not supported");
    if (v3_dtype && *v3_dtype != *dtype) {
      return Fail(pid, ErrorCode::kUnsupported,
                  "a " + std::string(Name(*v3_dtype)) + " tensor over a " + type + " is not read");
    }
    decl.dtype = *dtype;
    decl.unit_bytes = ElementSize(*dtype);
  }
  const auto declared = CheckedMul(decl.numel, decl.unit_bytes);
  if (!declared)
    return Fail(pid, ErrorCode::kCorrupt, "storage " + Quoted(decl.key) + " is too large");
  decl.declared_bytes = *declared;
  return decl;
}

bool IsContiguous(const Shape& shape, const std::vector<uint64_t>& stride) {
  uint64_t expected = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] != 1 && stride[d] != expected)
      return false;
    expected *= shape[d];  // bounded by the element count, which fits
  }
  return true;
}

// Bytes from the start of the storage to the end of the tensor's last element.
std::optional<uint64_t> ExtentBytes(const TensorEntry& tensor) {
  std::optional<uint64_t> last = tensor.storage_offset;
  for (size_t d = 0; d < tensor.info.shape.size() && last; ++d) {
    const auto step = CheckedMul(tensor.info.shape[d] - 1, tensor.stride[d]);
    last = step ? CheckedAdd(*last, *step) : std::nullopt;
  }
  const auto count = last ? CheckedAdd(*last, 1) : std::nullopt;
  return count ? CheckedMul(*count, ElementSize(tensor.info.dtype)) : std::nullopt;
}

}  // namespace

Result<StateDict> IndexStateDict(const PickleTree& tree, const PickleSource& source, bool legacy) {
  Indexer indexer(tree, source, legacy);
  return indexer.Run();
}

Result<std::vector<TensorLayout>> LayOut(const StateDict& state,
                                         const std::vector<StorageRecord>& records,
                                         const std::string& pickle_file, const std::string& file,
                                         uint64_t file_bytes) {
  // A few bytes of storage may be expanded to any size, and Read() allocates and fills a copy of
  // each expanded tensor: capping them all together bounds both memory and time.
  const uint64_t expanded_cap = std::max(file_bytes, limits::kMinExpandedTensorCapBytes);
  uint64_t expanded_bytes = 0;
  std::vector<TensorLayout> layouts;
  layouts.reserve(state.tensors.size());
  for (const TensorEntry& tensor : state.tensors) {
    const StorageRecord& record = records[tensor.storage];
    TensorLayout layout{record.bytes, record.file_offset, tensor.storage_offset, tensor.stride,
                        true};
    if (tensor.info.byte_size == 0) {  // no element is read, so offset and strides are moot
      layouts.push_back(std::move(layout));
      continue;
    }
    const StorageDecl& decl = state.storages[tensor.storage];
    const auto extent = ExtentBytes(tensor);
    if (!extent || *extent > decl.declared_bytes) {
      return Error(ErrorCode::kCorrupt,
                   "tensor " + Quoted(tensor.info.name) + " reaches past the " +
                       std::to_string(decl.declared_bytes) + " bytes of its storage " +
                       Quoted(decl.key),
                   ByteLocation(pickle_file, tensor.pickle_offset));
    }
    if (*extent > record.bytes.size()) {
      return Error(ErrorCode::kCorrupt,
                   "storage record " + Quoted(record.name) + " has " +
                       std::to_string(record.bytes.size()) + " bytes but tensor " +
                       Quoted(tensor.info.name) + " needs " + std::to_string(*extent),
                   ByteLocation(file, record.file_offset));
    }
    if (tensor.info.byte_size > record.bytes.size()) {
      expanded_bytes = CheckedAdd(expanded_bytes, tensor.info.byte_size).value_or(UINT64_MAX);
      if (expanded_bytes > expanded_cap) {
        return Error(ErrorCode::kLimitExceeded,
                     "expanded tensor " + Quoted(tensor.info.name) + " of " +
                         std::to_string(tensor.info.byte_size) + " bytes over a record of " +
                         std::to_string(record.bytes.size()) +
                         " takes the copies of expanded tensors over the cap of " +
                         std::to_string(expanded_cap) + " bytes (the file's size or " +
                         std::to_string(limits::kMinExpandedTensorCapBytes) + ", the larger)",
                     ByteLocation(pickle_file, tensor.pickle_offset));
      }
    }
    layout.contiguous = IsContiguous(tensor.info.shape, tensor.stride);
    layouts.push_back(std::move(layout));
  }
  return layouts;
}

void CopyStrided(const TensorInfo& info, const TensorLayout& layout, MutableByteSpan out) {
  const uint64_t element = ElementSize(info.dtype);
  const Shape& shape = info.shape;
  if (shape.empty()) {  // a 0-dim tensor: one element
    std::memcpy(out.data(), layout.storage.data() + layout.storage_offset * element, element);
    return;
  }
  // Rows along the last dimension, the other dimensions advanced like an odometer.
  const size_t rank = shape.size();
  const uint64_t row = shape[rank - 1];
  const uint64_t row_stride = layout.stride[rank - 1];
  std::vector<uint64_t> index(rank, 0);
  uint64_t start = layout.storage_offset;  // element offset of the current row
  std::byte* dst = out.data();
  while (true) {
    const std::byte* src = layout.storage.data() + start * element;
    if (row_stride == 1) {
      std::memcpy(dst, src, row * element);
      dst += row * element;
    } else {
      for (uint64_t j = 0; j < row; ++j, dst += element)
        std::memcpy(dst, src + j * row_stride * element, element);
    }
    size_t d = rank - 1;
    while (true) {
      if (d == 0)
        return;
      --d;
      if (++index[d] < shape[d]) {
        start += layout.stride[d];
        break;
      }
      start -= layout.stride[d] * (shape[d] - 1);
      index[d] = 0;
    }
  }
}

}  // namespace cw::pytorch
