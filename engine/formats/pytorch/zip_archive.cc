#include "engine/formats/pytorch/zip_archive.h"

#include <zip.h>

#include <algorithm>
#include <memory>

#include "engine/base/byte_reader.h"
#include "engine/base/checked_math.h"
#include "engine/base/limits.h"
#include "engine/base/text.h"

namespace cw::pytorch {
namespace {

constexpr uint32_t kLocalSignature = 0x04034b50;
constexpr uint32_t kCentralSignature = 0x02014b50;
constexpr uint32_t kEndSignature = 0x06054b50;
constexpr uint32_t kZip64EndSignature = 0x06064b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint64_t kEndBytes = 22;
constexpr uint64_t kMaxCommentBytes = 0xFFFF;
constexpr uint64_t kLocatorBytes = 20;
constexpr uint64_t kZip64EndFixedBytes = 56;
constexpr uint64_t kCentralFixedBytes = 46;
constexpr uint64_t kLocalFixedBytes = 30;
constexpr uint16_t kSentinel16 = 0xFFFF;
constexpr uint32_t kSentinel32 = 0xFFFFFFFF;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint16_t kEncryptedFlag = 0x0001;

// Where the central directory is, as the end records say.
struct Directory {
  uint64_t entry_count = 0;
  uint64_t size = 0;
  uint64_t offset = 0;
  uint64_t end = 0;  // file offset of the record that must follow the directory
};

template <typename T>
T At(ByteSpan fixed, size_t offset) {  // REQUIRES: offset + sizeof(T) <= fixed.size()
  return LoadLE<T>(fixed.data() + offset);
}

Result<uint64_t> FindEnd(ByteSpan bytes, const std::string& file) {
  if (bytes.size() >= kEndBytes) {
    const uint64_t last = bytes.size() - kEndBytes;
    const uint64_t first = last > kMaxCommentBytes ? last - kMaxCommentBytes : 0;
    // The comment must reach the end of the file exactly, which rules out signatures that merely
    // appear inside a comment or inside data.
    for (uint64_t pos = last + 1; pos-- > first;) {
      if (LoadLE<uint32_t>(bytes.data() + pos) == kEndSignature &&
          LoadLE<uint16_t>(bytes.data() + pos + 20) == last - pos)
        return pos;
    }
  }
  return Error(ErrorCode::kCorrupt,
               "no zip end of central directory record: the file is truncated (an interrupted "
               "download or copy?) or is not a zip archive",
               ByteLocation(file, bytes.size()));
}

Result<Directory> ReadZip64End(ByteSpan bytes, const std::string& file, uint64_t locator_at) {
  ByteReader locator(bytes.subspan(locator_at, kLocatorBytes), file, locator_at);
  CW_RETURN_IF_ERROR(locator.Skip(4));
  CW_ASSIGN_OR_RETURN(const uint32_t disk, locator.ReadU32());
  CW_ASSIGN_OR_RETURN(const uint64_t end_at, locator.ReadU64());
  CW_ASSIGN_OR_RETURN(const uint32_t disk_count, locator.ReadU32());
  if (disk != 0 || disk_count > 1)
    return locator.FailAt(locator_at, ErrorCode::kUnsupported, "split zip archives are not read");
  if (!FitsIn(end_at, kZip64EndFixedBytes, locator_at)) {
    return locator.FailAt(locator_at + 8, ErrorCode::kCorrupt,
                          "the ZIP64 end record offset " + std::to_string(end_at) +
                              " does not leave room for the record before its locator");
  }
  ByteReader in(bytes.subspan(end_at, locator_at - end_at), file, end_at);
  CW_ASSIGN_OR_RETURN(const ByteSpan fixed, in.ReadBytes(kZip64EndFixedBytes));
  if (At<uint32_t>(fixed, 0) != kZip64EndSignature)
    return in.FailAt(end_at, ErrorCode::kCorrupt, "no ZIP64 end record where its locator points");
  // The record (size counted after its first 12 bytes) must end at the locator: no gap.
  if (At<uint64_t>(fixed, 4) != locator_at - end_at - 12) {
    return in.FailAt(end_at + 4, ErrorCode::kCorrupt,
                     "the ZIP64 end record size " + std::to_string(At<uint64_t>(fixed, 4)) +
                         " does not reach its locator");
  }
  if (At<uint32_t>(fixed, 16) != 0 || At<uint32_t>(fixed, 20) != 0 ||
      At<uint64_t>(fixed, 24) != At<uint64_t>(fixed, 32))
    return in.FailAt(end_at, ErrorCode::kUnsupported, "split zip archives are not read");
  return Directory{At<uint64_t>(fixed, 32), At<uint64_t>(fixed, 40), At<uint64_t>(fixed, 48),
                   end_at};
}

// A classic end-record field must repeat the ZIP64 value or hold the "see ZIP64" sentinel.
Status Agree(uint64_t classic, uint64_t sentinel, uint64_t zip64, const char* what,
             const Location& where) {
  if (classic == sentinel || classic == zip64)
    return OkStatus();
  return Error(ErrorCode::kCorrupt,
               std::string("the end record's ") + what + " " + std::to_string(classic) +
                   " differs from the ZIP64 end record's " + std::to_string(zip64),
               where);
}

Result<Directory> LocateDirectory(ByteSpan bytes, const std::string& file) {
  CW_ASSIGN_OR_RETURN(const uint64_t end_at, FindEnd(bytes, file));
  const ByteSpan fixed = bytes.subspan(end_at, kEndBytes);
  const auto disk = At<uint16_t>(fixed, 4);
  const auto directory_disk = At<uint16_t>(fixed, 6);
  const auto disk_entries = At<uint16_t>(fixed, 8);
  const Directory classic{At<uint16_t>(fixed, 10), At<uint32_t>(fixed, 12), At<uint32_t>(fixed, 16),
                          end_at};
  const bool has_locator =
      end_at >= kLocatorBytes &&
      LoadLE<uint32_t>(bytes.data() + end_at - kLocatorBytes) == kZip64LocatorSignature;
  if (!has_locator) {
    if (disk != 0 || directory_disk != 0 || disk_entries != classic.entry_count) {
      return Error(ErrorCode::kUnsupported, "split zip archives are not read",
                   ByteLocation(file, end_at));
    }
    return classic;
  }
  CW_ASSIGN_OR_RETURN(const Directory zip64, ReadZip64End(bytes, file, end_at - kLocatorBytes));
  const Location where = ByteLocation(file, end_at);
  CW_RETURN_IF_ERROR(
      Agree(classic.entry_count, kSentinel16, zip64.entry_count, "entry count", where));
  CW_RETURN_IF_ERROR(Agree(classic.size, kSentinel32, zip64.size, "directory size", where));
  CW_RETURN_IF_ERROR(Agree(classic.offset, kSentinel32, zip64.offset, "directory offset", where));
  return zip64;
}

// Fills the fields whose central-directory value is the 0xFFFFFFFF sentinel from the ZIP64 extra
// field, which holds exactly those fields, in this order.
Status ApplyZip64Extra(ByteReader extra, ZipEntry& entry, bool uncompressed, bool compressed,
                       bool offset) {
  if (!uncompressed && !compressed && !offset)
    return OkStatus();
  const uint64_t extra_at = extra.offset();
  while (!extra.empty()) {
    CW_ASSIGN_OR_RETURN(const uint16_t id, extra.ReadU16());
    CW_ASSIGN_OR_RETURN(const uint16_t size, extra.ReadU16());
    CW_ASSIGN_OR_RETURN(ByteReader field, extra.Sub(size));
    if (id != kZip64ExtraId)
      continue;
    if (uncompressed) {
      CW_ASSIGN_OR_RETURN(entry.uncompressed_bytes, field.ReadU64());
    }
    if (compressed) {
      CW_ASSIGN_OR_RETURN(entry.compressed_bytes, field.ReadU64());
    }
    if (offset) {
      CW_ASSIGN_OR_RETURN(entry.local_header_offset, field.ReadU64());
    }
    return OkStatus();
  }
  return extra.FailAt(
      extra_at, ErrorCode::kCorrupt,
      "entry " + Quoted(entry.name) + " has 0xFFFFFFFF sizes or offset but no ZIP64 extra field");
}

Result<ZipEntry> ReadCentralEntry(ByteReader& cd) {
  const uint64_t entry_at = cd.offset();
  CW_ASSIGN_OR_RETURN(const ByteSpan fixed, cd.ReadBytes(kCentralFixedBytes));
  if (At<uint32_t>(fixed, 0) != kCentralSignature)
    return cd.FailAt(entry_at, ErrorCode::kCorrupt, "bad central directory entry signature");
  const auto name_bytes = At<uint16_t>(fixed, 28);
  if (name_bytes > limits::kMaxNameBytes) {
    return cd.FailAt(entry_at + 28, ErrorCode::kLimitExceeded,
                     "entry name of " + std::to_string(name_bytes) + " bytes is over the cap of " +
                         std::to_string(limits::kMaxNameBytes));
  }
  ZipEntry entry;
  CW_ASSIGN_OR_RETURN(const ByteSpan name, cd.ReadBytes(name_bytes));
  entry.name = AsChars(name);
  if ((At<uint16_t>(fixed, 8) & kEncryptedFlag) != 0) {
    return cd.FailAt(entry_at + 8, ErrorCode::kUnsupported,
                     "entry " + Quoted(entry.name) + " is encrypted");
  }
  entry.method = At<uint16_t>(fixed, 10);
  entry.compressed_bytes = At<uint32_t>(fixed, 20);
  entry.uncompressed_bytes = At<uint32_t>(fixed, 24);
  entry.local_header_offset = At<uint32_t>(fixed, 42);
  CW_ASSIGN_OR_RETURN(ByteReader extra, cd.Sub(At<uint16_t>(fixed, 30)));
  CW_RETURN_IF_ERROR(cd.Skip(At<uint16_t>(fixed, 32)));  // comment
  CW_RETURN_IF_ERROR(ApplyZip64Extra(extra, entry, entry.uncompressed_bytes == kSentinel32,
                                     entry.compressed_bytes == kSentinel32,
                                     entry.local_header_offset == kSentinel32));
  return entry;
}

// Finds the payload through the local header, the way torch's getRecordOffset does, and checks
// that header against the central directory.
Status ResolvePayload(ByteSpan bytes, const std::string& file, uint64_t entry_at,
                      uint64_t directory_at, ZipEntry& entry) {
  const uint64_t header_at = entry.local_header_offset;
  if (!FitsIn(header_at, kLocalFixedBytes, directory_at)) {
    return Error(ErrorCode::kCorrupt,
                 "entry " + Quoted(entry.name) + " has its local header at " +
                     std::to_string(header_at) + ", past the central directory",
                 ByteLocation(file, entry_at));
  }
  ByteReader in(bytes.subspan(header_at, directory_at - header_at), file, header_at);
  CW_ASSIGN_OR_RETURN(const ByteSpan fixed, in.ReadBytes(kLocalFixedBytes));
  if (At<uint32_t>(fixed, 0) != kLocalSignature) {
    return in.FailAt(header_at, ErrorCode::kCorrupt,
                     "no local header for entry " + Quoted(entry.name));
  }
  if (At<uint16_t>(fixed, 8) != entry.method) {
    return in.FailAt(header_at + 8, ErrorCode::kCorrupt,
                     "the local header of entry " + Quoted(entry.name) +
                         " has another compression method than its central directory entry");
  }
  CW_ASSIGN_OR_RETURN(const ByteSpan name, in.ReadBytes(At<uint16_t>(fixed, 26)));
  if (AsChars(name) != entry.name) {
    return in.FailAt(header_at + kLocalFixedBytes, ErrorCode::kCorrupt,
                     "the local header names " + Quoted(AsChars(name)) +
                         ", its central directory entry " + Quoted(entry.name));
  }
  CW_RETURN_IF_ERROR(in.Skip(At<uint16_t>(fixed, 28)));
  entry.data_offset = in.offset();
  if (entry.compressed_bytes > in.remaining()) {
    return in.Fail(ErrorCode::kCorrupt, "the " + std::to_string(entry.compressed_bytes) +
                                            " bytes of entry " + Quoted(entry.name) +
                                            " run into the central directory");
  }
  if (entry.method == kZipStored && entry.compressed_bytes != entry.uncompressed_bytes) {
    return Error(ErrorCode::kCorrupt,
                 "stored entry " + Quoted(entry.name) + " has different sizes compressed (" +
                     std::to_string(entry.compressed_bytes) + ") and uncompressed (" +
                     std::to_string(entry.uncompressed_bytes) + ")",
                 ByteLocation(file, entry_at));
  }
  return OkStatus();
}

// Overlapping entries would let two records share bytes (a known zip-bomb and confusion trick).
Status CheckNoOverlap(const std::vector<ZipEntry>& entries, const std::string& file) {
  std::vector<const ZipEntry*> order;
  order.reserve(entries.size());
  for (const ZipEntry& e : entries)
    order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const ZipEntry* a, const ZipEntry* b) {
    return a->local_header_offset < b->local_header_offset;
  });
  for (size_t i = 1; i < order.size(); ++i) {
    const ZipEntry& prev = *order[i - 1];
    // data_offset + compressed_bytes cannot wrap: ResolvePayload bounded it by the directory.
    if (prev.data_offset + prev.compressed_bytes > order[i]->local_header_offset) {
      return Error(ErrorCode::kCorrupt,
                   "entries " + Quoted(prev.name) + " and " + Quoted(order[i]->name) + " overlap",
                   ByteLocation(file, order[i]->local_header_offset));
    }
  }
  return OkStatus();
}

std::string FoldCase(std::string_view name) {
  std::string folded(name);
  for (char& c : folded) {
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  }
  return folded;
}

struct ArchiveCloser {
  void operator()(zip_t* archive) const { zip_discard(archive); }
};
struct FileCloser {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};

}  // namespace

Result<ZipArchive> ZipArchive::Open(ByteSpan bytes, std::string file) {
  ZipArchive archive(bytes, std::move(file));
  CW_RETURN_IF_ERROR(archive.ReadDirectory());
  return archive;
}

Status ZipArchive::ReadDirectory() {
  CW_ASSIGN_OR_RETURN(const Directory dir, LocateDirectory(bytes_, file_));
  const Location where = ByteLocation(file_, dir.end);
  if (dir.entry_count > limits::kMaxZipEntries) {
    return Error(ErrorCode::kLimitExceeded,
                 std::to_string(dir.entry_count) + " zip entries are over the cap of " +
                     std::to_string(limits::kMaxZipEntries),
                 where);
  }
  if (dir.size > limits::kMaxZipCentralDirectoryBytes) {
    return Error(ErrorCode::kLimitExceeded,
                 "a central directory of " + std::to_string(dir.size) +
                     " bytes is over the cap of " +
                     std::to_string(limits::kMaxZipCentralDirectoryBytes),
                 where);
  }
  if (dir.offset > dir.end || dir.end - dir.offset != dir.size) {
    return Error(ErrorCode::kCorrupt,
                 "the central directory (" + std::to_string(dir.size) + " bytes at " +
                     std::to_string(dir.offset) + ") does not end where the end record starts",
                 where);
  }
  if (dir.entry_count > dir.size / kCentralFixedBytes) {
    return Error(ErrorCode::kCorrupt,
                 std::to_string(dir.entry_count) +
                     " entries cannot fit in a central directory of " + std::to_string(dir.size) +
                     " bytes",
                 where);
  }
  entries_.reserve(dir.entry_count);
  ByteReader cd(bytes_.subspan(dir.offset, dir.size), file_, dir.offset);
  for (uint64_t i = 0; i < dir.entry_count; ++i) {
    const uint64_t entry_at = cd.offset();
    CW_ASSIGN_OR_RETURN(ZipEntry entry, ReadCentralEntry(cd));
    entry.index = i;
    CW_RETURN_IF_ERROR(ResolvePayload(bytes_, file_, entry_at, dir.offset, entry));
    entries_.push_back(std::move(entry));
  }
  if (!cd.empty()) {
    return cd.Fail(ErrorCode::kCorrupt, std::to_string(cd.remaining()) +
                                            " bytes follow the last central directory entry");
  }
  CW_RETURN_IF_ERROR(CheckNoOverlap(entries_, file_));
  return IndexNames();
}

Status ZipArchive::IndexNames() {
  by_folded_name_.reserve(entries_.size());
  for (size_t i = 0; i < entries_.size(); ++i) {
    const auto [it, inserted] = by_folded_name_.emplace(FoldCase(entries_[i].name), i);
    if (!inserted) {
      return Error(ErrorCode::kCorrupt,
                   "entries " + Quoted(entries_[it->second].name) + " and " +
                       Quoted(entries_[i].name) + " have the same name (ignoring case)",
                   ByteLocation(file_, entries_[i].local_header_offset));
    }
  }
  return OkStatus();
}

const ZipEntry* ZipArchive::Find(std::string_view name) const {
  const auto it = by_folded_name_.find(FoldCase(name));
  return it == by_folded_name_.end() ? nullptr : &entries_[it->second];
}

Result<ByteSpan> ZipArchive::StoredBytes(const ZipEntry& entry) const {
  if (entry.method != kZipStored) {
    return Error(ErrorCode::kUnsupported,
                 "entry " + Quoted(entry.name) + " is compressed (method " +
                     std::to_string(entry.method) + "); only stored entries can be mapped",
                 ByteLocation(file_, entry.local_header_offset));
  }
  return bytes_.subspan(entry.data_offset, entry.compressed_bytes);
}

Result<TensorData> ZipArchive::ReadSmall(const ZipEntry& entry, uint64_t max_bytes) const {
  if (entry.uncompressed_bytes > max_bytes) {
    return Error(ErrorCode::kLimitExceeded,
                 "entry " + Quoted(entry.name) + " of " + std::to_string(entry.uncompressed_bytes) +
                     " bytes is over the cap of " + std::to_string(max_bytes),
                 ByteLocation(file_, entry.local_header_offset));
  }
  if (entry.method == kZipDeflated)
    return Inflate(entry);
  CW_ASSIGN_OR_RETURN(const ByteSpan stored, StoredBytes(entry));
  return TensorData::Borrow(stored);
}

// libzip re-reads the directory on its own; it is only asked to inflate one entry, whose size the
// caller has capped, and must agree with our name for that index.
Result<TensorData> ZipArchive::Inflate(const ZipEntry& entry) const {
  const Location where = ByteLocation(file_, entry.local_header_offset);
  auto fail = [&](const std::string& why) {
    return Error(ErrorCode::kCorrupt, "cannot inflate entry " + Quoted(entry.name) + ": " + why,
                 where);
  };
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* source = zip_source_buffer_create(bytes_.data(), bytes_.size(), 0, &error);
  if (source == nullptr) {
    const std::string why = zip_error_strerror(&error);
    zip_error_fini(&error);
    return fail(why);
  }
  std::unique_ptr<zip_t, ArchiveCloser> archive(zip_open_from_source(source, ZIP_RDONLY, &error));
  if (archive == nullptr) {
    zip_source_free(source);
    const std::string why = zip_error_strerror(&error);
    zip_error_fini(&error);
    return fail(why);
  }
  zip_error_fini(&error);
  const char* name = zip_get_name(archive.get(), entry.index, ZIP_FL_ENC_RAW);
  if (name == nullptr || entry.name != name)
    return fail("libzip lists another entry at this index");
  std::unique_ptr<zip_file_t, FileCloser> in(zip_fopen_index(archive.get(), entry.index, 0));
  if (in == nullptr)
    return fail(zip_strerror(archive.get()));
  TensorData out = TensorData::Allocate(entry.uncompressed_bytes);
  uint64_t filled = 0;
  while (filled < out.size()) {
    const zip_int64_t n =
        zip_fread(in.get(), out.mutable_bytes().data() + filled, out.size() - filled);
    if (n <= 0)
      return fail(n < 0 ? zip_file_strerror(in.get()) : "the data ends early");
    filled += static_cast<uint64_t>(n);
  }
  std::byte extra{};
  if (zip_fread(in.get(), &extra, 1) != 0)
    return fail("the data is longer than the central directory says");
  return out;
}

}  // namespace cw::pytorch
