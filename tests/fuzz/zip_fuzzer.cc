// Fuzz target: the zip container of torch.save files (ZipArchive::Open), then the content of
// every entry.
//
// On success every entry must be found again by its name, and each payload read as the torch
// reader does: stored entries as views, small ones (data.pkl) through ReadSmall, which inflates
// deflated entries.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/formats/pytorch/zip_archive.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

const std::string kFile = "fuzz.zip";
constexpr uint64_t kMaxSmallBytes = 1 << 20;  // bounds the inflated copy, as for data.pkl

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using cw::fuzz::Check;
  const auto archive = cw::pytorch::ZipArchive::Open(cw::fuzz::InputBytes(data, size), kFile);
  if (!archive.ok()) {
    cw::fuzz::CheckLocated(archive.error(), kFile, size);
    return 0;
  }
  for (const cw::pytorch::ZipEntry& entry : archive->entries()) {
    Check(archive->Find(entry.name) != nullptr);
    Check(entry.data_offset <= size);
    if (entry.method == cw::pytorch::kZipStored) {
      const auto stored = archive->StoredBytes(entry);
      Check(stored.ok());
      Check(stored->size() == entry.compressed_bytes);
      cw::fuzz::Touch(*stored);
    }
    const auto small = archive->ReadSmall(entry, kMaxSmallBytes);
    if (!small.ok()) {
      cw::fuzz::CheckLocated(small.error(), kFile, size);
      continue;
    }
    Check(small->size() <= kMaxSmallBytes);
    cw::fuzz::Touch(small->bytes());
  }
  return 0;
}
