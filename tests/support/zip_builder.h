// Zip archives built in memory, in the layouts torch and other writers produce, with the offsets
// of their parts so tests can damage them precisely.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace cw::test::pt {

struct ZipOptions {
  // miniz/torch style: data descriptors (zero CRC and sizes in local headers), every payload
  // 64-byte aligned by an "FB" local extra field, a ZIP64 end record and locator.
  bool torch_style = true;
  // Central directory sizes, offsets and the end record's fields as 0xFFFF... sentinels, the real
  // values in ZIP64 extras and the ZIP64 end record (what files over 4 GiB need).
  bool zip64_everywhere = false;
};

struct BuiltZip {
  std::string bytes;
  std::vector<uint64_t> header_offsets;   // local header of each entry
  std::vector<uint64_t> data_offsets;     // payload of each entry
  std::vector<uint64_t> central_offsets;  // central directory entry of each entry
  uint64_t directory_offset = 0;
  uint64_t zip64_end_offset = 0;  // 0 when there is none
  uint64_t end_offset = 0;        // classic end record
};

class ZipBuilder {
 public:
  // Deflated entries are compressed with zlib (raw deflate, method 8).
  ZipBuilder& Add(std::string name, std::string data, bool deflate = false);
  BuiltZip Build(const ZipOptions& options = {}) const;

 private:
  struct Entry {
    std::string name;
    std::string data;
    bool deflate;
  };
  std::vector<Entry> entries_;
};

// What torch.save writes: <prefix>/data.pkl, <prefix>/data/<key> per storage, <prefix>/version.
BuiltZip TorchZip(const std::string& pickle,
                  const std::vector<std::pair<std::string, std::string>>& storages,
                  const std::string& prefix = "archive", const std::string& version = "3\n");

// `bytes` with its little-endian `width`-byte field at `offset` replaced by `value`.
void Patch(std::string& bytes, uint64_t offset, uint64_t value, int width);

}  // namespace cw::test::pt
