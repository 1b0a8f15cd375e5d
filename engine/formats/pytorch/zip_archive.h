// The zip container of torch.save files (docs/formats/torch.md, 'The zip').
//
// torch.save (miniz) writes one record per entry: a 30-byte local header, the name, an extra field
// padding the payload to a 64-byte boundary, the payload (stored), often a data descriptor. Then
// the central directory (CD), always a ZIP64 end-of-central-directory record (EOCD) and its
// locator, and the classic EOCD:
//
//   [local header | name | extra | payload | descriptor]* CD [ZIP64 EOCD, locator] EOCD
//
// The reader trusts the central directory only, and checks it against what it can compute:
//  - the EOCD is searched backwards over the last 22 + 65535 bytes and its comment must reach the
//    end of the file exactly; without it the file is reported as truncated;
//  - with a ZIP64 locator, the ZIP64 EOCD gives entry count, CD size and offset; each classic field
//    must equal it or hold the 0xFFFF/0xFFFFFFFF sentinel;
//  - the CD ends exactly where the (ZIP64) EOCD starts, and holds exactly the counted entries;
//  - entry sizes and local-header offsets come from the CD, or from its ZIP64 extra (id 0x0001,
//    only the fields whose CD value is 0xFFFFFFFF, in APPNOTE order: uncompressed size,
//    compressed size, local header offset); local ZIP64 extras are ignored;
//  - the payload starts at local_header_offset + 30 + name length + extra length, both lengths read
//    from the local header, whose signature, name and method must match the CD entry;
//  - payloads end before the CD and entries do not overlap (gaps, e.g. descriptors, are fine);
//  - names are unique, ASCII case-insensitively, since torch's miniz finds records that way.
// Counts and sizes meet the caps of engine/base/limits.h before anything is allocated. CRCs are not
// checked (torch does not either). Encrypted entries are refused. Stored entries are read in
// place; deflated ones are inflated (by libzip, the only use of it) on request, up to a cap the
// caller gives: the torch reader allows that for small records such as data.pkl only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cw/error.h"
#include "engine/base/bytes.h"
#include "engine/tensor/tensor.h"

namespace cw::pytorch {

inline constexpr uint16_t kZipStored = 0;
inline constexpr uint16_t kZipDeflated = 8;

struct ZipEntry {
  std::string name;
  uint64_t index = 0;  // position in the central directory
  uint16_t method = kZipStored;
  uint64_t compressed_bytes = 0;
  uint64_t uncompressed_bytes = 0;
  uint64_t local_header_offset = 0;  // file offset of the local header
  uint64_t data_offset = 0;          // file offset of the payload
};

class ZipArchive {
 public:
  // Parses the archive filling `bytes`; `file` names it in errors.
  // REQUIRES: `bytes` outlives the archive and every view it returns.
  static Result<ZipArchive> Open(ByteSpan bytes, std::string file);

  const std::string& file() const { return file_; }
  // Central-directory order.
  const std::vector<ZipEntry>& entries() const { return entries_; }
  // The entry called `name`, compared ASCII case-insensitively as torch does; nullptr if none.
  const ZipEntry* Find(std::string_view name) const;

  // The payload of a stored entry: a view into the input, no copy. Other methods: kUnsupported.
  Result<ByteSpan> StoredBytes(const ZipEntry& entry) const;
  // The content of an entry of at most `max_bytes` (else kLimitExceeded): borrowed when stored,
  // inflated into an owned buffer when deflated. Meant for small records such as data.pkl.
  Result<TensorData> ReadSmall(const ZipEntry& entry, uint64_t max_bytes) const;

 private:
  ZipArchive(ByteSpan bytes, std::string file) : bytes_(bytes), file_(std::move(file)) {}
  Status ReadDirectory();
  Status IndexNames();
  Result<TensorData> Inflate(const ZipEntry& entry) const;

  ByteSpan bytes_;
  std::string file_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> by_folded_name_;  // lower-case name -> entries_ index
};

}  // namespace cw::pytorch
