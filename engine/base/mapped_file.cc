#include "engine/base/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

namespace cw {

struct MappedFile::OpenInput {
  std::string path;
  struct stat at_open;
};

namespace {

// The table of open inputs. A SIGBUS handler reads it while other threads may open and close
// files, so readers never lock or allocate: each slot is a sequence lock (writers keep `version`
// odd while they change the slot, and a reader skips a slot whose version was odd or moved while
// it read). The faulting mapping's slot cannot be changing: the mapping is in use by the faulting
// read, so it was published before and is withdrawn only after, as is its entry freed.
struct Slot {
  std::atomic<uint64_t> version{0};
  std::atomic<uintptr_t> begin{0};
  std::atomic<uintptr_t> end{0};
  std::atomic<const MappedFile::OpenInput*> entry{nullptr};
};
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<const MappedFile::OpenInput*>::is_always_lock_free);

std::array<Slot, kMaxOpenInputs> slots;
std::atomic<size_t> slots_used{0};  // a high-water mark, so scans stop early
std::mutex table_mutex;             // writers and CheckMappedInputsUnchanged(), never readers

// REQUIRES: table_mutex held.
void SetSlot(Slot& slot, const MappedFile::OpenInput* entry, uintptr_t begin, uintptr_t end) {
  slot.version.fetch_add(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  slot.begin.store(begin, std::memory_order_relaxed);
  slot.end.store(end, std::memory_order_relaxed);
  slot.entry.store(entry, std::memory_order_relaxed);
  slot.version.fetch_add(1, std::memory_order_release);
}

// On success the table holds `entry` until Withdraw() frees it; false when the table is full.
bool Publish(const MappedFile::OpenInput* entry, const std::byte* data, uint64_t size) {
  const std::lock_guard lock(table_mutex);
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].entry.load(std::memory_order_relaxed) != nullptr)
      continue;
    const auto begin = reinterpret_cast<uintptr_t>(data);
    SetSlot(slots[i], entry, begin, begin + size);
    if (i >= slots_used.load(std::memory_order_relaxed))
      slots_used.store(i + 1, std::memory_order_release);
    return true;
  }
  return false;
}

// Must run before the range is unmapped: once unmapped, the address space may be reused.
void Withdraw(const MappedFile::OpenInput* entry) {
  const std::lock_guard lock(table_mutex);
  const size_t used = slots_used.load(std::memory_order_relaxed);
  for (size_t i = 0; i < used; ++i) {
    if (slots[i].entry.load(std::memory_order_relaxed) == entry) {
      SetSlot(slots[i], nullptr, 0, 0);
      break;
    }
  }
  delete entry;
}

bool SameTime(const timespec& a, const timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

// Why `entry`'s file is no longer what was opened, or "" when it is.
std::string HowChanged(const MappedFile::OpenInput& entry) {
  struct stat now {};
  if (::stat(entry.path.c_str(), &now) != 0) {
    return errno == ENOENT ? "it was deleted or moved away"
                           : std::string("it cannot be examined any more: ") + std::strerror(errno);
  }
  const struct stat& then = entry.at_open;
  if (now.st_dev != then.st_dev || now.st_ino != then.st_ino)
    return "it was replaced by another file";
  if (now.st_size != then.st_size) {
    return "its size went from " + std::to_string(then.st_size) + " to " +
           std::to_string(now.st_size) + " bytes";
  }
  if (!SameTime(now.st_mtim, then.st_mtim) || !SameTime(now.st_ctim, then.st_ctim))
    return "it was written to or its attributes changed";
  return "";
}

Error OsError(const std::string& path, const std::string& what) {
  return Error(ErrorCode::kIo, what + ": " + std::strerror(errno), FileLocation(path));
}

}  // namespace

Result<MappedFile> MappedFile::Open(const std::filesystem::path& path) {
  const std::string name = path.string();
  const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return OsError(name, "cannot open");
  auto entry = std::make_unique<OpenInput>();
  entry->path = name;
  if (::fstat(fd, &entry->at_open) != 0) {
    Error e = OsError(name, "cannot stat");
    ::close(fd);
    return e;
  }
  if (!S_ISREG(entry->at_open.st_mode)) {
    ::close(fd);
    return Error(ErrorCode::kIo, "not a regular file", FileLocation(name));
  }
  const auto size = static_cast<uint64_t>(entry->at_open.st_size);
  const std::byte* data = nullptr;
  if (size != 0) {
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      Error e = OsError(name, "cannot map");
      ::close(fd);
      return e;
    }
    // Parsers touch headers spread through the file (a .ckpt record or a zip entry per tensor),
    // and each touch would otherwise read around it as far as the device's readahead (8 MiB
    // here): gigabytes of tensor data read early, out of order. Tensor bytes are read later with
    // pread, in file order (engine/exec).
    ::madvise(p, size, MADV_RANDOM);
    data = static_cast<const std::byte*>(p);
  }
  ::close(fd);
  if (!Publish(entry.get(), data, size)) {
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): munmap takes a non-const pointer.
    if (data != nullptr)
      ::munmap(const_cast<std::byte*>(data), size);
    return Error(ErrorCode::kLimitExceeded,
                 "more than " + std::to_string(kMaxOpenInputs) + " input files open at once",
                 FileLocation(name));
  }
  return MappedFile(name, data, size, entry.release());
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)), data_(other.data_), size_(other.size_), entry_(other.entry_) {
  other.data_ = nullptr;
  other.size_ = 0;
  other.entry_ = nullptr;
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    this->~MappedFile();
    path_ = std::move(other.path_);
    data_ = other.data_;
    size_ = other.size_;
    entry_ = other.entry_;
    other.data_ = nullptr;
    other.size_ = 0;
    other.entry_ = nullptr;
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (entry_ != nullptr)
    Withdraw(entry_);
  entry_ = nullptr;
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): munmap takes a non-const pointer.
  if (data_ != nullptr)
    ::munmap(const_cast<std::byte*>(data_), size_);
  data_ = nullptr;
}

const char* MappedInputAt(const void* address) {
  const auto a = reinterpret_cast<uintptr_t>(address);
  const size_t used = slots_used.load(std::memory_order_acquire);
  for (size_t i = 0; i < used; ++i) {
    const Slot& slot = slots[i];
    const uint64_t version = slot.version.load(std::memory_order_acquire);
    const MappedFile::OpenInput* entry = slot.entry.load(std::memory_order_relaxed);
    const uintptr_t begin = slot.begin.load(std::memory_order_relaxed);
    const uintptr_t end = slot.end.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    const bool stable = version % 2 == 0 && slot.version.load(std::memory_order_relaxed) == version;
    if (stable && entry != nullptr && a >= begin && a < end)
      return entry->path.c_str();
  }
  return nullptr;
}

Status CheckMappedInputsUnchanged() {
  const std::lock_guard lock(table_mutex);
  const size_t used = slots_used.load(std::memory_order_relaxed);
  for (size_t i = 0; i < used; ++i) {
    const MappedFile::OpenInput* entry = slots[i].entry.load(std::memory_order_relaxed);
    if (entry == nullptr)
      continue;
    const std::string how = HowChanged(*entry);
    if (!how.empty()) {
      return Error(ErrorCode::kIo, std::string(kInputChangedMessage) + " (" + how + ")",
                   FileLocation(entry->path));
    }
  }
  return OkStatus();
}

}  // namespace cw
