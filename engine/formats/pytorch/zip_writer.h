// A STORED zip archive whose layout is fixed before any byte is written, as torch.save files need.
//
// Layout (docs/formats/torch-writer.md, 'The zip container'), for entries given as (name, size):
//
//   per entry  local header (30 bytes, "plain" style: CRC and sizes filled in, flags bit 3 clear)
//              name
//              [ZIP64 extra 0x0001: u64 size, u64 size]  only when size >= thresholds.field32
//              'F' 'B' u16 pad, pad x 'Z'                 payload offset: a multiple of 64
//              payload (method 0, no data descriptor)
//   then       central directory: one 46-byte header + name + [ZIP64 extra with the overflowing
//              fields among size, size, local header offset] per entry
//              [ZIP64 end record (56 bytes) + ZIP64 locator (20 bytes)] when any size, offset or
//              count overflows its classic field
//              end of central directory record (22 bytes), no comment
//
// Because every offset is known up front, payload bytes may be written at their places in any
// order and from any thread; only the CRC-32s wait for Commit(), which patches them into the
// local headers and writes the central directory. Equal inputs give byte-identical archives.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cw/error.h"
#include "engine/base/bytes.h"
#include "engine/base/output_file.h"

namespace cw::pytorch {

// torch mmaps payloads and expects this alignment when no `.storage_alignment` record says
// otherwise.
inline constexpr uint64_t kZipPayloadAlignment = 64;

// Values at or above these go to ZIP64 fields. The defaults are the zip format's; tests lower them
// to exercise the ZIP64 layout with small files.
struct Zip64Thresholds {
  uint64_t field32 = 0xFFFF'FFFF;  // sizes and offsets (0xFFFFFFFF itself means "see ZIP64")
  uint64_t field16 = 0xFFFF;       // entry counts in the end record
};

struct ZipEntrySpec {
  std::string name;  // bytes as stored; flagged UTF-8 when not ASCII
  uint64_t size_bytes = 0;
};

// Where one entry lands. All offsets are file offsets.
struct ZipEntryPlace {
  uint64_t header_offset = 0;  // local header
  uint64_t data_offset = 0;    // payload, a multiple of kZipPayloadAlignment
  bool zip64_sizes = false;    // sizes stored in ZIP64 extras (local and central)
  bool zip64_offset = false;   // header offset stored in the central ZIP64 extra
};

// The pure part: offsets and header bytes, no I/O.
class ZipLayout {
 public:
  // Fails with kLimitExceeded for a name over 65535 bytes or a total size over 2^64.
  static Result<ZipLayout> Compute(std::vector<ZipEntrySpec> entries,
                                   Zip64Thresholds thresholds = {});

  size_t size() const { return entries_.size(); }
  const ZipEntrySpec& entry(size_t i) const { return entries_[i]; }
  const ZipEntryPlace& place(size_t i) const { return places_[i]; }
  uint64_t central_directory_offset() const { return central_offset_; }
  bool has_zip64_end() const { return zip64_end_; }
  uint64_t file_size() const { return file_size_; }

  // Local header of entry `i` with its name and extra fields; the payload follows it directly.
  std::string LocalHeader(size_t i, uint32_t crc) const;
  // Everything from central_directory_offset() to the end of the file.
  // REQUIRES: crcs.size() == size()
  std::string CentralDirectory(std::span<const uint32_t> crcs) const;

 private:
  ZipLayout() = default;
  void AppendCentralHeader(std::string& out, size_t i, uint32_t crc) const;
  void AppendEndRecords(std::string& out) const;

  std::vector<ZipEntrySpec> entries_;
  std::vector<ZipEntryPlace> places_;
  Zip64Thresholds thresholds_;
  uint64_t central_offset_ = 0;
  uint64_t central_bytes_ = 0;
  bool zip64_end_ = false;
  uint64_t file_size_ = 0;
};

// Writes an archive of a given layout into an OutputFile it owns.
class ZipWriter {
 public:
  // Sizes the file and writes every local header (CRC 0 until Commit).
  static Result<ZipWriter> Create(OutputFile out, ZipLayout layout);

  // Writes bytes [entry_offset, entry_offset + bytes.size()) of entry `i`'s payload. Thread-safe.
  // A piece outside the entry is kInternal.
  Status Write(size_t i, uint64_t entry_offset, ByteSpan bytes) const;
  // Patches each entry's CRC-32 into its local header, writes the central directory and commits
  // the OutputFile. kInternal unless crcs.size() == layout().size().
  Status Commit(std::span<const uint32_t> crcs);

  const ZipLayout& layout() const { return layout_; }
  const OutputFile& file() const { return out_; }

 private:
  ZipWriter(OutputFile out, ZipLayout layout) : out_(std::move(out)), layout_(std::move(layout)) {}

  OutputFile out_;
  ZipLayout layout_;
};

}  // namespace cw::pytorch
