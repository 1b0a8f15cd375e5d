#include "engine/base/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace cw {
namespace {

Error OsError(const std::string& path, const std::string& what) {
  return Error(ErrorCode::kIo, what + ": " + std::strerror(errno), FileLocation(path));
}

// Rounds a range out to whole pages, as madvise requires.
void Advise(const std::byte* base, uint64_t size, uint64_t offset, uint64_t n, int advice) {
  if (base == nullptr || offset >= size)
    return;
  n = std::min(n, size - offset);
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uint64_t start = offset / page * page;
  const uint64_t end = offset + n;
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): madvise takes a non-const pointer.
  madvise(const_cast<std::byte*>(base) + start, end - start, advice);
}

}  // namespace

Result<MappedFile> MappedFile::Open(const std::filesystem::path& path) {
  const std::string name = path.string();
  const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return OsError(name, "cannot open");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Error e = OsError(name, "cannot stat");
    ::close(fd);
    return e;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error(ErrorCode::kIo, "not a regular file", FileLocation(name));
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    return MappedFile(name, nullptr, 0);
  }
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED)
    return OsError(name, "cannot map");
  return MappedFile(name, static_cast<const std::byte*>(p), size);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)), data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    this->~MappedFile();
    path_ = std::move(other.path_);
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

MappedFile::~MappedFile() {
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): munmap takes a non-const pointer.
  if (data_ != nullptr)
    ::munmap(const_cast<std::byte*>(data_), size_);
  data_ = nullptr;
}

void MappedFile::WillNeed(uint64_t offset, uint64_t n) const {
  Advise(data_, size_, offset, n, MADV_WILLNEED);
}

void MappedFile::DontNeed(uint64_t offset, uint64_t n) const {
  Advise(data_, size_, offset, n, MADV_DONTNEED);
}

}  // namespace cw
