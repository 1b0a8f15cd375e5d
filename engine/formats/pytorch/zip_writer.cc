#include "engine/formats/pytorch/zip_writer.h"

#include <algorithm>

#include "engine/base/checked_math.h"

namespace cw::pytorch {
namespace {

constexpr uint32_t kLocalHeaderSignature = 0x0403'4b50;
constexpr uint32_t kCentralHeaderSignature = 0x0201'4b50;
constexpr uint32_t kZip64EndSignature = 0x0606'4b50;
constexpr uint32_t kZip64LocatorSignature = 0x0706'4b50;
constexpr uint32_t kEndSignature = 0x0605'4b50;

constexpr uint64_t kLocalHeaderBytes = 30;
constexpr uint64_t kCentralHeaderBytes = 46;
constexpr uint64_t kZip64EndBytes = 56;
constexpr uint64_t kZip64LocatorBytes = 20;
constexpr uint64_t kEndBytes = 22;
// Extra field header: u16 id + u16 length.
constexpr uint64_t kExtraHeaderBytes = 4;
// The local ZIP64 extra always holds both sizes (APPNOTE 4.5.3).
constexpr uint64_t kLocalZip64ExtraBytes = kExtraHeaderBytes + 16;

constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint16_t kPaddingExtraId = 0x4246;  // 'F' 'B', as torch writes it
constexpr char kPaddingByte = 'Z';
constexpr uint16_t kVersionClassic = 20;  // 2.0: STORED entries
constexpr uint16_t kVersionZip64 = 45;    // 4.5: ZIP64 extensions
constexpr uint16_t kFlagUtf8Name = 0x0800;
// 1980-01-01, the earliest DOS date: a valid, fixed timestamp keeps the output deterministic.
constexpr uint16_t kDosDate = (1 << 5) | 1;
constexpr uint32_t kEscape32 = 0xFFFF'FFFF;
constexpr uint16_t kEscape16 = 0xFFFF;

void Put16(std::string& out, uint16_t v) { Append(out, ObjectBytes(v)); }
void Put32(std::string& out, uint32_t v) { Append(out, ObjectBytes(v)); }
void Put64(std::string& out, uint64_t v) { Append(out, ObjectBytes(v)); }

bool IsAscii(const std::string& s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

uint16_t VersionNeeded(const ZipEntryPlace& p) {
  return p.zip64_sizes || p.zip64_offset ? kVersionZip64 : kVersionClassic;
}

uint16_t Flags(const ZipEntrySpec& e) { return IsAscii(e.name) ? 0 : kFlagUtf8Name; }

// Bytes of the central ZIP64 extra: only the fields whose classic slot overflows, per APPNOTE.
uint64_t CentralZip64ExtraBytes(const ZipEntryPlace& p) {
  const uint64_t fields = (p.zip64_sizes ? 16 : 0) + (p.zip64_offset ? 8 : 0);
  return fields == 0 ? 0 : kExtraHeaderBytes + fields;
}

Status AddTo(uint64_t& total, uint64_t n) {
  const auto sum = CheckedAdd(total, n);
  if (!sum)
    return Error(ErrorCode::kLimitExceeded, "zip archive would be larger than 2^64 bytes");
  total = *sum;
  return OkStatus();
}

// Where the entry whose local header starts at `cursor` puts its payload.
Result<ZipEntryPlace> PlaceEntry(const ZipEntrySpec& e, uint64_t cursor,
                                 const Zip64Thresholds& thresholds) {
  if (e.name.size() > kEscape16) {
    return Error(ErrorCode::kLimitExceeded, "zip entry name of " + std::to_string(e.name.size()) +
                                                " bytes is over the format's 65535");
  }
  ZipEntryPlace p;
  p.header_offset = cursor;
  p.zip64_sizes = e.size_bytes >= thresholds.field32;
  // Entries past the threshold keep a plain local header: only the central directory needs
  // their offset. miniz (torch's zip library) adds a local ZIP64 extra there, but torch and zip
  // tools accept the APPNOTE-standard form without it (docs/formats/torch-writer.md, 'The zip
  // container').
  p.zip64_offset = cursor >= thresholds.field32;
  // The padding is computed after every other local byte, ZIP64 extra included
  // (docs/formats/torch-writer.md, 'The zip container').
  uint64_t start = cursor;
  CW_RETURN_IF_ERROR(AddTo(start, kLocalHeaderBytes + e.name.size() + kExtraHeaderBytes +
                                      (p.zip64_sizes ? kLocalZip64ExtraBytes : 0)));
  p.data_offset = start;
  CW_RETURN_IF_ERROR(AddTo(
      p.data_offset, (kZipPayloadAlignment - start % kZipPayloadAlignment) % kZipPayloadAlignment));
  return p;
}

}  // namespace

Result<ZipLayout> ZipLayout::Compute(std::vector<ZipEntrySpec> entries,
                                     Zip64Thresholds thresholds) {
  ZipLayout layout;
  layout.thresholds_ = thresholds;
  uint64_t cursor = 0;
  bool any_zip64 = false;
  for (const ZipEntrySpec& e : entries) {
    CW_ASSIGN_OR_RETURN(const ZipEntryPlace p, PlaceEntry(e, cursor, thresholds));
    cursor = p.data_offset;
    CW_RETURN_IF_ERROR(AddTo(cursor, e.size_bytes));
    any_zip64 = any_zip64 || p.zip64_sizes || p.zip64_offset;
    layout.central_bytes_ += kCentralHeaderBytes + e.name.size() + CentralZip64ExtraBytes(p);
    layout.places_.push_back(p);
  }
  layout.entries_ = std::move(entries);
  layout.central_offset_ = cursor;
  layout.zip64_end_ = any_zip64 || layout.entries_.size() >= thresholds.field16 ||
                      layout.central_offset_ >= thresholds.field32 ||
                      layout.central_bytes_ >= thresholds.field32;
  layout.file_size_ = cursor;
  CW_RETURN_IF_ERROR(AddTo(layout.file_size_, layout.central_bytes_));
  CW_RETURN_IF_ERROR(
      AddTo(layout.file_size_,
            (layout.zip64_end_ ? kZip64EndBytes + kZip64LocatorBytes : 0) + kEndBytes));
  return layout;
}

std::string ZipLayout::LocalHeader(size_t i, uint32_t crc) const {
  const ZipEntrySpec& e = entries_[i];
  const ZipEntryPlace& p = places_[i];
  const uint64_t extra_bytes = p.data_offset - p.header_offset - kLocalHeaderBytes - e.name.size();
  const uint32_t size32 = p.zip64_sizes ? kEscape32 : static_cast<uint32_t>(e.size_bytes);
  std::string out;
  Put32(out, kLocalHeaderSignature);
  Put16(out, VersionNeeded(p));
  Put16(out, Flags(e));
  Put16(out, 0);  // method: STORED
  Put16(out, 0);  // time: 00:00:00
  Put16(out, kDosDate);
  Put32(out, crc);
  Put32(out, size32);  // compressed
  Put32(out, size32);  // uncompressed
  Put16(out, static_cast<uint16_t>(e.name.size()));
  Put16(out, static_cast<uint16_t>(extra_bytes));
  out += e.name;
  uint64_t pad = extra_bytes - kExtraHeaderBytes;
  if (p.zip64_sizes) {
    Put16(out, kZip64ExtraId);
    Put16(out, 16);
    Put64(out, e.size_bytes);  // uncompressed
    Put64(out, e.size_bytes);  // compressed
    pad -= kLocalZip64ExtraBytes;
  }
  Put16(out, kPaddingExtraId);
  Put16(out, static_cast<uint16_t>(pad));
  out.append(pad, kPaddingByte);
  return out;
}

void ZipLayout::AppendCentralHeader(std::string& out, size_t i, uint32_t crc) const {
  const ZipEntrySpec& e = entries_[i];
  const ZipEntryPlace& p = places_[i];
  const uint32_t size32 = p.zip64_sizes ? kEscape32 : static_cast<uint32_t>(e.size_bytes);
  const uint32_t offset32 = p.zip64_offset ? kEscape32 : static_cast<uint32_t>(p.header_offset);
  const uint64_t extra_bytes = CentralZip64ExtraBytes(p);
  Put32(out, kCentralHeaderSignature);
  Put16(out, VersionNeeded(p));  // made by: MS-DOS host (no Unix attributes), like torch
  Put16(out, VersionNeeded(p));
  Put16(out, Flags(e));
  Put16(out, 0);  // method: STORED
  Put16(out, 0);  // time
  Put16(out, kDosDate);
  Put32(out, crc);
  Put32(out, size32);  // compressed
  Put32(out, size32);  // uncompressed
  Put16(out, static_cast<uint16_t>(e.name.size()));
  Put16(out, static_cast<uint16_t>(extra_bytes));
  Put16(out, 0);  // comment length
  Put16(out, 0);  // disk number start
  Put16(out, 0);  // internal attributes
  Put32(out, 0);  // external attributes
  Put32(out, offset32);
  out += e.name;
  if (extra_bytes == 0)
    return;
  Put16(out, kZip64ExtraId);
  Put16(out, static_cast<uint16_t>(extra_bytes - kExtraHeaderBytes));
  if (p.zip64_sizes) {
    Put64(out, e.size_bytes);  // uncompressed
    Put64(out, e.size_bytes);  // compressed
  }
  if (p.zip64_offset)
    Put64(out, p.header_offset);
}

void ZipLayout::AppendEndRecords(std::string& out) const {
  const uint64_t count = entries_.size();
  if (zip64_end_) {
    Put32(out, kZip64EndSignature);
    Put64(out, kZip64EndBytes - 12);  // size of the rest of the record
    Put16(out, kVersionZip64);        // made by
    Put16(out, kVersionZip64);        // needed
    Put32(out, 0);                    // this disk
    Put32(out, 0);                    // disk of the central directory
    Put64(out, count);                // entries on this disk
    Put64(out, count);                // entries in total
    Put64(out, central_bytes_);
    Put64(out, central_offset_);
    Put32(out, kZip64LocatorSignature);
    Put32(out, 0);  // disk of the ZIP64 end record
    Put64(out, central_offset_ + central_bytes_);
    Put32(out, 1);  // total disks
  }
  const uint16_t count16 = count >= thresholds_.field16 ? kEscape16 : static_cast<uint16_t>(count);
  const auto field32 = [&](uint64_t v) {
    return v >= thresholds_.field32 ? kEscape32 : static_cast<uint32_t>(v);
  };
  Put32(out, kEndSignature);
  Put16(out, 0);  // this disk
  Put16(out, 0);  // disk of the central directory
  Put16(out, count16);
  Put16(out, count16);
  Put32(out, field32(central_bytes_));
  Put32(out, field32(central_offset_));
  Put16(out, 0);  // comment length
}

std::string ZipLayout::CentralDirectory(std::span<const uint32_t> crcs) const {
  std::string out;
  out.reserve(file_size_ - central_offset_);
  for (size_t i = 0; i < entries_.size(); ++i)
    AppendCentralHeader(out, i, crcs[i]);
  AppendEndRecords(out);
  return out;
}

Result<ZipWriter> ZipWriter::Create(OutputFile out, ZipLayout layout) {
  CW_RETURN_IF_ERROR(out.Resize(layout.file_size()));
  for (size_t i = 0; i < layout.size(); ++i) {
    CW_RETURN_IF_ERROR(
        out.WriteAt(layout.place(i).header_offset, AsBytes(layout.LocalHeader(i, 0))));
  }
  return ZipWriter(std::move(out), std::move(layout));
}

Status ZipWriter::Write(size_t i, uint64_t entry_offset, ByteSpan bytes) const {
  if (i >= layout_.size()) {
    return Error(ErrorCode::kInternal, "write to zip entry #" + std::to_string(i) + " of " +
                                           std::to_string(layout_.size()));
  }
  const ZipEntrySpec& e = layout_.entry(i);
  if (!FitsIn(entry_offset, bytes.size(), e.size_bytes)) {
    return Error(ErrorCode::kInternal, "write of " + std::to_string(bytes.size()) + " bytes at " +
                                           std::to_string(entry_offset) +
                                           " is outside zip entry \"" + e.name + "\" (" +
                                           std::to_string(e.size_bytes) + " bytes)");
  }
  return out_.WriteAt(layout_.place(i).data_offset + entry_offset, bytes);
}

Status ZipWriter::Commit(std::span<const uint32_t> crcs) {
  if (crcs.size() != layout_.size()) {
    return Error(ErrorCode::kInternal, std::to_string(crcs.size()) + " CRCs for " +
                                           std::to_string(layout_.size()) + " zip entries");
  }
  // The CRC sits 14 bytes into the local header: signature, version, flags, method, time, date.
  constexpr uint64_t kCrcOffsetInLocalHeader = 14;
  for (size_t i = 0; i < crcs.size(); ++i) {
    CW_RETURN_IF_ERROR(out_.WriteAt(layout_.place(i).header_offset + kCrcOffsetInLocalHeader,
                                    ObjectBytes(crcs[i])));
  }
  CW_RETURN_IF_ERROR(
      out_.WriteAt(layout_.central_directory_offset(), AsBytes(layout_.CentralDirectory(crcs))));
  return out_.Commit();
}

}  // namespace cw::pytorch
