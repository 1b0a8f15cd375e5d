#include "tests/support/zip_builder.h"

#include <zlib.h>

#include <stdexcept>

namespace cw::test::pt {
namespace {

constexpr uint32_t kSentinel32 = 0xFFFFFFFF;

void Put(std::string& out, uint64_t value, int width) {
  for (int i = 0; i < width; ++i)
    out += static_cast<char>((value >> (8 * i)) & 0xFF);
}

std::string Deflate(const std::string& data) {
  z_stream s{};
  if (deflateInit2(&s, Z_BEST_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2 failed");
  std::string out(deflateBound(&s, data.size()), '\0');
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));  // NOLINT: zlib's API
  s.avail_in = static_cast<uInt>(data.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());  // NOLINT: zlib's API
  s.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&s, Z_FINISH);
  deflateEnd(&s);
  if (rc != Z_STREAM_END)
    throw std::runtime_error("deflate failed");
  out.resize(s.total_out);
  return out;
}

uint32_t Crc(const std::string& data) {
  return static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

}  // namespace

ZipBuilder& ZipBuilder::Add(std::string name, std::string data, bool deflate) {
  entries_.push_back({std::move(name), std::move(data), deflate});
  return *this;
}

BuiltZip ZipBuilder::Build(const ZipOptions& options) const {
  BuiltZip zip;
  std::string& out = zip.bytes;
  std::string directory;
  const uint16_t flags = options.torch_style ? 0x0808 : 0x0800;
  for (const Entry& e : entries_) {
    const std::string payload = e.deflate ? Deflate(e.data) : e.data;
    const uint32_t crc = Crc(e.data);
    const uint64_t header_at = out.size();
    std::string extra;
    if (options.torch_style) {  // "FB" + padding so that the payload starts 64-byte aligned
      const uint64_t start = header_at + 30 + e.name.size() + 4;
      const uint64_t pad = (64 - start % 64) % 64;
      extra = "FB";
      Put(extra, pad, 2);
      extra += std::string(pad, 'Z');
    }
    Put(out, 0x04034b50, 4);
    Put(out, 20, 2);
    Put(out, flags, 2);
    Put(out, e.deflate ? 8 : 0, 2);
    Put(out, 0, 4);  // time, date
    Put(out, options.torch_style ? 0 : crc, 4);
    Put(out, options.torch_style ? 0 : payload.size(), 4);
    Put(out, options.torch_style ? 0 : e.data.size(), 4);
    Put(out, e.name.size(), 2);
    Put(out, extra.size(), 2);
    out += e.name + extra;
    zip.header_offsets.push_back(header_at);
    zip.data_offsets.push_back(out.size());
    out += payload;
    if (options.torch_style) {
      Put(out, 0x08074b50, 4);
      Put(out, crc, 4);
      Put(out, payload.size(), 4);
      Put(out, e.data.size(), 4);
    }
    const bool big = options.zip64_everywhere;
    std::string zip64;
    if (big) {
      Put(zip64, 0x0001, 2);
      Put(zip64, 24, 2);
      Put(zip64, e.data.size(), 8);
      Put(zip64, payload.size(), 8);
      Put(zip64, header_at, 8);
    }
    zip.central_offsets.push_back(directory.size());  // relative until the directory is placed
    Put(directory, 0x02014b50, 4);
    Put(directory, 0x031e, 2);
    Put(directory, big ? 45 : 20, 2);
    Put(directory, flags, 2);
    Put(directory, e.deflate ? 8 : 0, 2);
    Put(directory, 0, 4);
    Put(directory, crc, 4);
    Put(directory, big ? kSentinel32 : payload.size(), 4);
    Put(directory, big ? kSentinel32 : e.data.size(), 4);
    Put(directory, e.name.size(), 2);
    Put(directory, zip64.size(), 2);
    Put(directory, 0, 2);  // comment
    Put(directory, 0, 2);  // disk
    Put(directory, 0, 2);  // internal attributes
    Put(directory, 0, 4);  // external attributes
    Put(directory, big ? kSentinel32 : header_at, 4);
    directory += e.name + zip64;
  }
  zip.directory_offset = out.size();
  for (uint64_t& offset : zip.central_offsets)
    offset += zip.directory_offset;
  out += directory;
  const uint64_t count = entries_.size();
  const bool zip64_end = options.torch_style || options.zip64_everywhere;
  if (zip64_end) {
    zip.zip64_end_offset = out.size();
    Put(out, 0x06064b50, 4);
    Put(out, 44, 8);
    Put(out, 0x031e, 2);
    Put(out, 45, 2);
    Put(out, 0, 4);
    Put(out, 0, 4);
    Put(out, count, 8);
    Put(out, count, 8);
    Put(out, directory.size(), 8);
    Put(out, zip.directory_offset, 8);
    Put(out, 0x07064b50, 4);
    Put(out, 0, 4);
    Put(out, zip.zip64_end_offset, 8);
    Put(out, 1, 4);
  }
  const bool big = options.zip64_everywhere;
  zip.end_offset = out.size();
  Put(out, 0x06054b50, 4);
  Put(out, 0, 4);  // disks
  Put(out, big ? 0xFFFF : count, 2);
  Put(out, big ? 0xFFFF : count, 2);
  Put(out, big ? kSentinel32 : directory.size(), 4);
  Put(out, big ? kSentinel32 : zip.directory_offset, 4);
  Put(out, 0, 2);
  return zip;
}

BuiltZip TorchZip(const std::string& pickle,
                  const std::vector<std::pair<std::string, std::string>>& storages,
                  const std::string& prefix, const std::string& version) {
  ZipBuilder builder;
  builder.Add(prefix + "/data.pkl", pickle);
  for (const auto& [key, data] : storages)
    builder.Add(prefix + "/data/" + key, data);
  builder.Add(prefix + "/version", version);
  return builder.Build();
}

void Patch(std::string& bytes, uint64_t offset, uint64_t value, int width) {
  for (int i = 0; i < width; ++i)
    bytes.at(offset + static_cast<uint64_t>(i)) = static_cast<char>((value >> (8 * i)) & 0xFF);
}

}  // namespace cw::test::pt
