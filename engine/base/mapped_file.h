// Read-only memory mapping of one input file: the only owner of input bytes.
//
// Regular files only. An empty file gives an empty span without mmap. Move-only; unmapped in the
// destructor. Views handed out by bytes() are valid while the MappedFile lives. Inputs are assumed
// not to change during a run.
#pragma once

#include <filesystem>
#include <string>

#include "cw/error.h"
#include "engine/base/bytes.h"

namespace cw {

class MappedFile {
 public:
  static Result<MappedFile> Open(const std::filesystem::path& path);

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  ByteSpan bytes() const { return {data_, size_}; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Tells the kernel that [offset, offset + n) will be read soon / is no longer needed, so that
  // streaming a model larger than memory keeps the page cache footprint small.
  void WillNeed(uint64_t offset, uint64_t n) const;
  void DontNeed(uint64_t offset, uint64_t n) const;

 private:
  MappedFile(std::string path, const std::byte* data, uint64_t size)
      : path_(std::move(path)), data_(data), size_(size) {}

  std::string path_;
  const std::byte* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace cw
