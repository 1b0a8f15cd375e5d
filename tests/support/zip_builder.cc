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

uint16_t Flags(const ZipOptions& options) { return options.torch_style ? 0x0808 : 0x0800; }

// What the central directory repeats about an entry written in the local part.
struct Written {
  uint64_t header_at;
  uint32_t crc;
  uint64_t compressed;
  uint64_t size;
};

Written WriteLocal(std::string& out, const std::string& name, const std::string& data, bool deflate,
                   const ZipOptions& options) {
  const std::string payload = deflate ? Deflate(data) : data;
  const Written w{out.size(), Crc(data), payload.size(), data.size()};
  std::string extra;
  if (options.torch_style) {  // "FB" + padding so that the payload starts 64-byte aligned
    const uint64_t start = w.header_at + 30 + name.size() + 4;
    const uint64_t pad = (64 - start % 64) % 64;
    extra = "FB";
    Put(extra, pad, 2);
    extra += std::string(pad, 'Z');
  }
  const bool descriptor = options.torch_style;  // zero CRC and sizes here, real ones after
  Put(out, 0x04034b50, 4);
  Put(out, 20, 2);
  Put(out, Flags(options), 2);
  Put(out, deflate ? 8 : 0, 2);
  Put(out, 0, 4);  // time, date
  Put(out, descriptor ? 0 : w.crc, 4);
  Put(out, descriptor ? 0 : w.compressed, 4);
  Put(out, descriptor ? 0 : w.size, 4);
  Put(out, name.size(), 2);
  Put(out, extra.size(), 2);
  out += name;
  out += extra;
  out += payload;
  if (descriptor) {
    Put(out, 0x08074b50, 4);
    Put(out, w.crc, 4);
    Put(out, w.compressed, 4);
    Put(out, w.size, 4);
  }
  return w;
}

void WriteCentral(std::string& directory, const std::string& name, bool deflate, const Written& w,
                  const ZipOptions& options) {
  const bool big = options.zip64_everywhere;
  std::string zip64;
  if (big) {
    Put(zip64, 0x0001, 2);
    Put(zip64, 24, 2);
    Put(zip64, w.size, 8);
    Put(zip64, w.compressed, 8);
    Put(zip64, w.header_at, 8);
  }
  Put(directory, 0x02014b50, 4);
  Put(directory, 0x031e, 2);
  Put(directory, big ? 45 : 20, 2);
  Put(directory, Flags(options), 2);
  Put(directory, deflate ? 8 : 0, 2);
  Put(directory, 0, 4);
  Put(directory, w.crc, 4);
  Put(directory, big ? kSentinel32 : w.compressed, 4);
  Put(directory, big ? kSentinel32 : w.size, 4);
  Put(directory, name.size(), 2);
  Put(directory, zip64.size(), 2);
  Put(directory, 0, 2);  // comment
  Put(directory, 0, 2);  // disk
  Put(directory, 0, 2);  // internal attributes
  Put(directory, 0, 4);  // external attributes
  Put(directory, big ? kSentinel32 : w.header_at, 4);
  directory += name;
  directory += zip64;
}

void WriteEnd(BuiltZip& zip, uint64_t count, uint64_t directory_bytes, const ZipOptions& options) {
  std::string& out = zip.bytes;
  const bool big = options.zip64_everywhere;
  if (options.torch_style || big) {
    zip.zip64_end_offset = out.size();
    Put(out, 0x06064b50, 4);
    Put(out, 44, 8);
    Put(out, 0x031e, 2);
    Put(out, 45, 2);
    Put(out, 0, 4);
    Put(out, 0, 4);
    Put(out, count, 8);
    Put(out, count, 8);
    Put(out, directory_bytes, 8);
    Put(out, zip.directory_offset, 8);
    Put(out, 0x07064b50, 4);
    Put(out, 0, 4);
    Put(out, zip.zip64_end_offset, 8);
    Put(out, 1, 4);
  }
  zip.end_offset = out.size();
  Put(out, 0x06054b50, 4);
  Put(out, 0, 4);  // disks
  Put(out, big ? 0xFFFF : count, 2);
  Put(out, big ? 0xFFFF : count, 2);
  Put(out, big ? kSentinel32 : directory_bytes, 4);
  Put(out, big ? kSentinel32 : zip.directory_offset, 4);
  Put(out, 0, 2);
}

}  // namespace

ZipBuilder& ZipBuilder::Add(std::string name, std::string data, bool deflate) {
  entries_.push_back({std::move(name), std::move(data), deflate});
  return *this;
}

BuiltZip ZipBuilder::Build(const ZipOptions& options) const {
  BuiltZip zip;
  std::string directory;
  for (const Entry& e : entries_) {
    const Written w = WriteLocal(zip.bytes, e.name, e.data, e.deflate, options);
    zip.header_offsets.push_back(w.header_at);
    zip.data_offsets.push_back(zip.bytes.size() - w.compressed - (options.torch_style ? 16 : 0));
    zip.central_offsets.push_back(directory.size());  // relative until the directory is placed
    WriteCentral(directory, e.name, e.deflate, w, options);
  }
  zip.directory_offset = zip.bytes.size();
  for (uint64_t& offset : zip.central_offsets)
    offset += zip.directory_offset;
  zip.bytes += directory;
  WriteEnd(zip, entries_.size(), directory.size(), options);
  return zip;
}

BuiltZip TorchZip(const std::string& pickle,
                  const std::vector<std::pair<std::string, std::string>>& storages,
                  const std::string& prefix, const std::string& version) {
  ZipBuilder builder;
  builder.Add(prefix + "/data.pkl", pickle);
  for (const auto& [key, data] : storages) {
    std::string name = prefix;
    name += "/data/";
    name += key;
    builder.Add(std::move(name), data);
  }
  builder.Add(prefix + "/version", version);
  return builder.Build();
}

void Patch(std::string& bytes, uint64_t offset, uint64_t value, int width) {
  for (int i = 0; i < width; ++i)
    bytes.at(offset + static_cast<uint64_t>(i)) = static_cast<char>((value >> (8 * i)) & 0xFF);
}

}  // namespace cw::test::pt
