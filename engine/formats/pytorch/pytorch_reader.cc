#include "engine/formats/pytorch/pytorch_reader.h"

#include <algorithm>
#include <charconv>
#include <new>
#include <optional>
#include <unordered_map>

#include "engine/base/byte_reader.h"
#include "engine/base/checked_math.h"
#include "engine/base/limits.h"
#include "engine/base/text.h"
#include "engine/formats/pytorch/pickle_reader.h"
#include "engine/formats/pytorch/torch_tensors.h"
#include "engine/formats/pytorch/zip_archive.h"

namespace cw::pytorch {
namespace {

constexpr std::string_view kZipMagic = "PK\x03\x04";
constexpr std::string_view kPreviewMagic = "PYTORCH1";
// torch's MAGIC_NUMBER 0x1950a86a20f9469cfc6c as LONG1 in a protocol-2 pickle
// (docs/formats/torch.md, 'Containers').
constexpr std::string_view kLegacyMagic =
    "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";
constexpr int64_t kLegacyProtocol = 1001;
constexpr uint64_t kMinVersion = 1;   // torch's kMinSupportedFileFormatVersion
constexpr uint64_t kMaxVersion = 10;  // torch's kMaxSupportedFileFormatVersion

enum class Container { kZip, kLegacy };

// What either container yields: the tensors and the bytes of each storage.
struct Indexed {
  StateDict state;
  std::vector<StorageRecord> records;  // parallel to state.storages
  std::string pickle_file;             // byte space of the pickle offsets
};

Result<Container> Detect(ByteSpan bytes, const std::string& file) {
  const std::string_view head = AsChars(bytes.first(std::min<size_t>(bytes.size(), 512)));
  if (head.starts_with(kZipMagic))
    return Container::kZip;
  if (head.starts_with(kLegacyMagic))
    return Container::kLegacy;
  const Location start = ByteLocation(file, 0);
  if (head.starts_with(kPreviewMagic)) {
    return Error(ErrorCode::kUnsupported, "the PYTORCH1 format of torch previews is not read",
                 start);
  }
  if (head.size() >= 262 && head.substr(257, 5) == "ustar")
    return Error(ErrorCode::kUnsupported, "the tar format of torch < 0.4 is not read", start);
  std::string hint;
  if (head.empty())
    hint = ": the file is empty";
  else if (head.size() > 8 && head[8] == '{')
    hint = " (it looks like safetensors)";
  return Error(ErrorCode::kCorrupt,
               "not a torch file: no zip header and no legacy torch magic number" + hint, start);
}

class TorchReader final : public CheckpointReader {
 public:
  TorchReader(std::string file, std::optional<MappedFile> mapping, StateDict state,
              std::vector<TensorLayout> layouts)
      : mapping_(std::move(mapping)),
        file_(std::move(file)),
        layouts_(std::move(layouts)),
        skipped_(std::move(state.skipped)) {
    infos_.reserve(state.tensors.size());
    for (TensorEntry& tensor : state.tensors)
      infos_.push_back(std::move(tensor.info));
  }

  FileFormat format() const override { return FileFormat::kTorch; }
  const std::vector<TensorInfo>& tensors() const override { return infos_; }
  Result<TensorData> Read(size_t index) const override;
  const std::string& FileOf(size_t) const override { return file_; }
  const std::vector<SkippedValue>& skipped() const override { return skipped_; }
  const std::map<std::string, std::string>& metadata() const override { return metadata_; }
  std::vector<FileExtent> Extents(size_t index) const override;

 private:
  std::optional<MappedFile> mapping_;  // empty for readers over bytes in memory
  std::string file_;
  std::vector<TensorInfo> infos_;
  std::vector<TensorLayout> layouts_;  // parallel to infos_
  std::vector<SkippedValue> skipped_;
  std::map<std::string, std::string> metadata_;
};

Result<TensorData> TorchReader::Read(size_t index) const {
  const TensorInfo& info = infos_[index];
  const TensorLayout& layout = layouts_[index];
  if (info.byte_size == 0)
    return TensorData::Borrow({});
  if (layout.contiguous) {
    return TensorData::Borrow(
        layout.storage.subspan(layout.storage_offset * ElementSize(info.dtype), info.byte_size));
  }
  // An expanded tensor (stride 0) can be far larger than its storage, so the copy may not fit.
  try {
    TensorData copy = TensorData::Allocate(info.byte_size);
    CopyStrided(info, layout, copy.mutable_bytes());
    return copy;
  } catch (const std::bad_alloc&) {
    return Error(ErrorCode::kLimitExceeded,
                 "no memory for a contiguous copy of tensor " + Quoted(info.name) + " (" +
                     std::to_string(info.byte_size) + " bytes)",
                 FileLocation(file_));
  }
}

std::vector<FileExtent> TorchReader::Extents(size_t index) const {
  const TensorLayout& layout = layouts_[index];
  if (!mapping_ || !layout.contiguous)
    return {};
  return {{layout.file_offset + layout.storage_offset * ElementSize(infos_[index].dtype),
           infos_[index].byte_size}};
}

Result<std::string> ArchivePrefix(const ZipArchive& archive) {
  if (archive.entries().empty()) {
    return Error(ErrorCode::kCorrupt, "the zip archive is empty: not a torch file",
                 ByteLocation(archive.file(), 0));
  }
  const ZipEntry& first = archive.entries().front();
  const size_t slash = first.name.find('/');
  if (slash == std::string::npos) {
    return Error(
        ErrorCode::kCorrupt,
        "zip entry " + Quoted(first.name) + " is not in a folder: not a torch.save archive",
        ByteLocation(archive.file(), first.local_header_offset));
  }
  std::string prefix = first.name.substr(0, slash + 1);
  for (const ZipEntry& entry : archive.entries()) {
    if (!entry.name.starts_with(prefix)) {
      return Error(
          ErrorCode::kCorrupt,
          "zip entry " + Quoted(entry.name) + " is outside the archive folder " + Quoted(prefix),
          ByteLocation(archive.file(), entry.local_header_offset));
    }
  }
  return prefix;
}

// torch reads .data/version if present, else version: an unsigned number, "\n" optional.
Status CheckVersion(const ZipArchive& archive, const std::string& prefix) {
  const ZipEntry* entry = archive.Find(prefix + ".data/version");
  if (entry == nullptr)
    entry = archive.Find(prefix + "version");
  if (entry == nullptr) {
    return Error(ErrorCode::kCorrupt,
                 "no " + Quoted(prefix + "version") + " record: not a torch.save archive",
                 FileLocation(archive.file()));
  }
  CW_ASSIGN_OR_RETURN(const TensorData record, archive.ReadSmall(*entry, 32));
  std::string_view text = AsChars(record.bytes());
  if (text.ends_with('\n'))
    text.remove_suffix(1);
  uint64_t version = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), version);
  const Location where = ByteLocation(archive.file(), entry->data_offset);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size())
    return Error(ErrorCode::kCorrupt, "the version record holds " + Quoted(text, 32), where);
  if (version < kMinVersion || version > kMaxVersion) {
    return Error(ErrorCode::kUnsupported,
                 "torch file format version " + std::to_string(version) +
                     " is not supported (versions 1 to 10 are)",
                 where);
  }
  return OkStatus();
}

// torch 2.x records the byte order of the storages; files without the record are little-endian.
Status CheckByteOrder(const ZipArchive& archive, const std::string& prefix) {
  const ZipEntry* entry = archive.Find(prefix + "byteorder");
  if (entry == nullptr)
    return OkStatus();
  CW_ASSIGN_OR_RETURN(const TensorData record, archive.ReadSmall(*entry, 16));
  const std::string_view text = AsChars(record.bytes());
  const Location where = ByteLocation(archive.file(), entry->data_offset);
  if (text == "little")
    return OkStatus();
  if (text == "big")
    return Error(ErrorCode::kUnsupported, "big-endian tensor data is not supported", where);
  return Error(ErrorCode::kCorrupt, "the byteorder record holds " + Quoted(text, 32), where);
}

Result<Indexed> ReadZip(ByteSpan bytes, const std::string& file) {
  CW_ASSIGN_OR_RETURN(const ZipArchive archive, ZipArchive::Open(bytes, file));
  CW_ASSIGN_OR_RETURN(const std::string prefix, ArchivePrefix(archive));
  if (const ZipEntry* script = archive.Find(prefix + "constants.pkl")) {
    return Error(ErrorCode::kUnsupported,
                 "a TorchScript archive (it has constants.pkl), not torch.save output; save the "
                 "model's state_dict() with torch.save instead",
                 ByteLocation(file, script->local_header_offset));
  }
  CW_RETURN_IF_ERROR(CheckVersion(archive, prefix));
  CW_RETURN_IF_ERROR(CheckByteOrder(archive, prefix));
  const ZipEntry* pickle_entry = archive.Find(prefix + "data.pkl");
  if (pickle_entry == nullptr) {
    return Error(ErrorCode::kCorrupt, "no " + Quoted(prefix + "data.pkl") + " record",
                 FileLocation(file));
  }
  // Inflating is the one way a small file could ask for a large pickle, hence the file's size.
  const uint64_t pickle_cap =
      pickle_entry->method == kZipStored
          ? limits::kMaxPickleBytes
          : std::min(limits::kMaxPickleBytes,
                     std::max<uint64_t>(bytes.size(), limits::kMinInflatedPickleCapBytes));
  CW_ASSIGN_OR_RETURN(const TensorData pickle, archive.ReadSmall(*pickle_entry, pickle_cap));
  PickleSource source{pickle.bytes(), file, pickle_entry->data_offset, pickle_entry->name};
  if (pickle_entry->method != kZipStored) {  // offsets then count in the inflated bytes
    source.file = file + " (inflated " + pickle_entry->name + ")";
    source.file_offset = 0;
  }
  CW_ASSIGN_OR_RETURN(const PickleTree tree, ReadPickle(source));
  Indexed indexed{{}, {}, source.file};
  CW_ASSIGN_OR_RETURN(indexed.state, IndexStateDict(tree, source, /*legacy=*/false));
  for (const StorageDecl& decl : indexed.state.storages) {
    const std::string name = prefix + "data/" + decl.key;
    const ZipEntry* entry = archive.Find(name);
    if (entry == nullptr) {
      return Error(ErrorCode::kCorrupt,
                   "no record " + Quoted(name) + " for storage " + Quoted(decl.key),
                   ByteLocation(source.file, decl.pid_offset));
    }
    CW_ASSIGN_OR_RETURN(const ByteSpan data, archive.StoredBytes(*entry));
    indexed.records.push_back({data, entry->name, entry->data_offset});
  }
  return indexed;
}

// The legacy header pickles (the 2nd and 3rd): protocol 1001 and a little-endian system.
Status CheckLegacyHeader(const std::vector<PickleTree>& trees,
                         const std::vector<PickleSource>& sources) {
  const PickleTree& protocol = trees[1];
  const Object version = protocol.at(protocol.root());
  if (version.kind != Kind::kInt || version.int_value != kLegacyProtocol) {
    return Error(ErrorCode::kUnsupported,
                 "legacy torch protocol " + protocol.Describe(protocol.root()) + " is not read",
                 ByteLocation(sources[1].file, sources[1].file_offset + version.offset));
  }
  const PickleTree& sys_info = trees[2];
  const PickleSource& sys_source = sources[2];
  const Object info = sys_info.at(sys_info.root());
  for (size_t i = 0; info.kind == Kind::kDict && i + 1 < info.items.size(); i += 2) {
    const Object key = sys_info.at(info.items[i]);
    const Object value = sys_info.at(info.items[i + 1]);
    if (key.kind == Kind::kStr && key.text == "little_endian" &&
        (value.kind != Kind::kBool || value.int_value == 0)) {
      return Error(ErrorCode::kUnsupported, "big-endian legacy torch files are not read",
                   ByteLocation(sys_source.file, sys_source.file_offset + value.offset));
    }
  }
  return OkStatus();
}

// After the main pickle: the list of storage keys, then each storage as an int64 count and data.
Status ReadLegacyStorages(const PickleTree& keys, ByteReader& in, Indexed& indexed) {
  const Object list = keys.at(keys.root());
  if (list.kind != Kind::kList) {
    return in.Fail(ErrorCode::kCorrupt,
                   "the legacy storage key list is " + keys.Describe(keys.root()));
  }
  std::unordered_map<std::string, size_t> by_key;
  for (size_t i = 0; i < indexed.state.storages.size(); ++i)
    by_key.emplace(indexed.state.storages[i].key, i);
  indexed.records.resize(indexed.state.storages.size());
  std::vector<bool> seen(indexed.state.storages.size(), false);
  for (const ObjectId item : list.items) {
    const Object key = keys.at(item);
    const auto it = key.kind == Kind::kStr ? by_key.find(std::string(key.text)) : by_key.end();
    if (it == by_key.end() || seen[it->second]) {
      return in.Fail(ErrorCode::kCorrupt, "storage " + keys.Describe(item) +
                                              " is listed but no tensor uses it, or listed twice");
    }
    seen[it->second] = true;
    const StorageDecl& decl = indexed.state.storages[it->second];
    const uint64_t count_at = in.offset();
    CW_ASSIGN_OR_RETURN(const uint64_t count, in.ReadU64());
    if (count != decl.numel) {
      return in.FailAt(count_at, ErrorCode::kCorrupt,
                       "storage " + Quoted(decl.key) + " holds " + std::to_string(count) +
                           " elements, its tensors say " + std::to_string(decl.numel));
    }
    const uint64_t data_at = in.offset();
    CW_ASSIGN_OR_RETURN(const ByteSpan data, in.ReadBytes(decl.declared_bytes));
    indexed.records[it->second] = {data, decl.key, data_at};
  }
  for (size_t i = 0; i < seen.size(); ++i) {
    if (!seen[i]) {
      return Error(ErrorCode::kCorrupt,
                   "storage " + Quoted(indexed.state.storages[i].key) + " is not in the file",
                   ByteLocation(in.file(), indexed.state.storages[i].pid_offset));
    }
  }
  return OkStatus();
}

Result<Indexed> ReadLegacy(ByteSpan bytes, const std::string& file) {
  // Five pickles back to back, each starting where the previous one's STOP ended.
  std::vector<PickleSource> sources;
  std::vector<PickleTree> trees;
  uint64_t offset = 0;
  for (const char* what :
       {"magic number", "protocol version", "system info", "main pickle", "storage key list"}) {
    sources.push_back({bytes.subspan(offset), file, offset, std::string("the legacy ") + what});
    CW_ASSIGN_OR_RETURN(PickleTree tree, ReadPickle(sources.back()));
    offset += tree.consumed_bytes();
    trees.push_back(std::move(tree));
  }
  CW_RETURN_IF_ERROR(CheckLegacyHeader(trees, sources));
  Indexed indexed{{}, {}, file};
  CW_ASSIGN_OR_RETURN(indexed.state, IndexStateDict(trees[3], sources[3], /*legacy=*/true));
  ByteReader in(bytes.subspan(offset), file, offset);
  CW_RETURN_IF_ERROR(ReadLegacyStorages(trees[4], in, indexed));
  return indexed;
}

Result<std::unique_ptr<CheckpointReader>> Open(ByteSpan bytes, std::string file,
                                               std::optional<MappedFile> mapping) {
  CW_ASSIGN_OR_RETURN(const Container container, Detect(bytes, file));
  CW_ASSIGN_OR_RETURN(Indexed indexed, container == Container::kZip ? ReadZip(bytes, file)
                                                                    : ReadLegacy(bytes, file));
  CW_ASSIGN_OR_RETURN(
      std::vector<TensorLayout> layouts,
      LayOut(indexed.state, indexed.records, indexed.pickle_file, file, bytes.size()));
  return std::unique_ptr<CheckpointReader>(std::make_unique<TorchReader>(
      std::move(file), std::move(mapping), std::move(indexed.state), std::move(layouts)));
}

}  // namespace

Result<std::unique_ptr<CheckpointReader>> OpenReader(MappedFile file) {
  const ByteSpan bytes = file.bytes();  // the mapping does not move when `file` does
  std::string name = file.path();
  return Open(bytes, std::move(name), std::move(file));
}

Result<std::unique_ptr<CheckpointReader>> OpenReaderFromBytes(ByteSpan bytes, std::string name) {
  return Open(bytes, std::move(name), std::nullopt);
}

}  // namespace cw::pytorch
