#include "engine/base/output_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <string_view>

#include "engine/base/mapped_file.h"

namespace cw {
namespace fs = std::filesystem;
namespace {

// Temporaries are listed in a fixed table of path buffers, because RemoveAllTemporaries() runs in
// a SIGBUS handler, where neither locks nor allocation are safe. A slot is claimed by a compare and
// swap before its buffer is written or read, so the remover and the owners never share a buffer.
enum SlotState : int { kFree, kClaimed, kListed };
struct TempSlot {
  std::atomic<int> state{kFree};
  std::array<char, PATH_MAX> path{};
};
// An output needs one temporary (two while a folder replaces an old one): room for many at once.
constexpr size_t kMaxTemporaries = 64;
std::array<TempSlot, kMaxTemporaries> temporaries;

bool Claim(TempSlot& slot, int from) {
  return slot.state.compare_exchange_strong(from, kClaimed, std::memory_order_acquire);
}

// False when the table is full or the path too long for the system to create anyway.
bool Register(const fs::path& p) {
  const std::string& s = p.native();
  if (s.size() >= PATH_MAX)
    return false;
  for (TempSlot& slot : temporaries) {
    if (Claim(slot, kFree)) {
      std::memcpy(slot.path.data(), s.c_str(), s.size() + 1);
      slot.state.store(kListed, std::memory_order_release);
      return true;
    }
  }
  return false;
}

void Unregister(const fs::path& p) {
  for (TempSlot& slot : temporaries) {
    if (Claim(slot, kListed)) {
      const bool mine = std::strcmp(slot.path.data(), p.c_str()) == 0;
      slot.state.store(mine ? kFree : kListed, std::memory_order_release);
      if (mine)
        return;
    }
  }
}

Error TooManyTemporaries(const fs::path& target) {
  return Error(ErrorCode::kLimitExceeded,
               "cannot list the temporary output: too many outputs at once, or a path over " +
                   std::to_string(PATH_MAX) + " bytes",
               FileLocation(target.string()));
}

fs::path ParentOf(const fs::path& p) {
  return p.has_parent_path() ? p.parent_path() : fs::path(".");
}

// A file's fsync makes its bytes durable, not its name: the folder entries (a rename, the files of
// a staged folder) are durable once the folders holding them are synced too. `tree`: every folder
// below `folder` as well (a staged folder of rank folders).
Status SyncFolder(const fs::path& folder, bool tree) {
  if (tree) {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(folder, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec))
        CW_RETURN_IF_ERROR(SyncFolder(it->path(), false));
    }
  }
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int e = errno;
    if (fd >= 0)
      ::close(fd);
    return Error(ErrorCode::kIo, std::string("cannot flush folder: ") + std::strerror(e),
                 FileLocation(folder.string()));
  }
  ::close(fd);
  return OkStatus();
}

// Removes a file or a folder tree with system calls only (no allocation, no locks): entries are
// read with getdents64 into a stack buffer. A folder output is flat, so the depth cap only stops a
// loop. A pass that races with a writer adding a file leaves the folder non-empty: pass again.
void RemoveTree(int dir_fd, const char* name, int depth) {
  if (::unlinkat(dir_fd, name, 0) == 0 || errno != EISDIR || depth > 8)
    return;
  for (int pass = 0; pass < 8; ++pass) {
    const int fd = ::openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
      return;
    alignas(struct dirent64) std::array<char, 2048> buffer{};
    for (ssize_t n; (n = ::getdents64(fd, buffer.data(), buffer.size())) > 0;) {
      for (ssize_t at = 0; at < n;) {
        const auto* entry = reinterpret_cast<const struct dirent64*>(buffer.data() + at);
        at += entry->d_reclen;
        const std::string_view child(entry->d_name);
        if (child != "." && child != "..")
          RemoveTree(fd, entry->d_name, depth + 1);
      }
    }
    ::close(fd);
    if (::unlinkat(dir_fd, name, AT_REMOVEDIR) == 0 || errno != ENOTEMPTY)
      return;
  }
}

fs::path TempNameFor(const fs::path& target) {
  static std::atomic<unsigned> counter{0};
  const fs::path dir = ParentOf(target);
  return dir / ("." + target.filename().string() + ".cw-tmp-" + std::to_string(::getpid()) + "-" +
                std::to_string(counter++));
}

Status CheckTarget(const fs::path& target, bool replace_existing) {
  std::error_code ec;
  if (target.filename().empty()) {
    return Error(ErrorCode::kUsage, "output path has no file name", FileLocation(target));
  }
  if (fs::exists(fs::symlink_status(target, ec))) {
    if (!replace_existing) {
      return Error(ErrorCode::kUsage, "output already exists (use --force to replace it)",
                   FileLocation(target.string()));
    }
  }
  const fs::path dir = ParentOf(target);
  if (!fs::is_directory(dir, ec)) {
    return Error(ErrorCode::kIo, "output folder does not exist", FileLocation(dir.string()));
  }
  return OkStatus();
}

}  // namespace

Result<OutputFile> OutputFile::Create(const fs::path& target, bool replace_existing) {
  CW_RETURN_IF_ERROR(CheckTarget(target, replace_existing));
  const fs::path temp = TempNameFor(target);
  if (!Register(temp))
    return TooManyTemporaries(target);
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    Unregister(temp);
    return Error(ErrorCode::kIo, std::string("cannot create output: ") + std::strerror(errno),
                 FileLocation(target.string()));
  }
  return OutputFile(target, temp, fd, false);
}

Result<OutputFile> OutputFile::CreateInStaging(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Error(ErrorCode::kIo, std::string("cannot create output: ") + std::strerror(errno),
                 FileLocation(path.string()));
  }
  return OutputFile(path, path, fd, true);
}

OutputFile::OutputFile(OutputFile&& other) noexcept
    : target_(std::move(other.target_)),
      temp_(std::move(other.temp_)),
      fd_(other.fd_),
      staged_(other.staged_),
      committed_(other.committed_),
      not_yet_flushing_(other.not_yet_flushing_.load()) {
  other.fd_ = -1;
  other.committed_ = true;
}

OutputFile::~OutputFile() {
  if (fd_ >= 0)
    ::close(fd_);
  if (!committed_ && !staged_) {
    ::unlink(temp_.c_str());
    Unregister(temp_);
  }
}

Error OutputFile::OsError(const std::string& what) const {
  return Error(ErrorCode::kIo, what + ": " + std::strerror(errno), FileLocation(target_.string()));
}

// Commit() must wait for every byte to reach the disk. Started as the bytes arrive, the disk writes
// them while the conversion goes on and the final fsync has little left to wait for: the cost of
// durability becomes that of `cp && sync`, or less, instead of a write of the whole output at the
// end. SYNC_FILE_RANGE_WRITE only queues the dirty pages (it gives no durability itself), so a
// failure here costs speed only and is ignored; fsync reports write errors.
void OutputFile::StartWriteback(uint64_t written) const {
  constexpr uint64_t kWritebackBytes = uint64_t{32} << 20;
  if (not_yet_flushing_.fetch_add(written, std::memory_order_relaxed) + written < kWritebackBytes)
    return;
  not_yet_flushing_.store(0, std::memory_order_relaxed);
  ::sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE);
}

Status OutputFile::WriteAt(uint64_t offset, ByteSpan bytes) const {
  // pwrite copies into the page cache at the file offset's alignment, and from a source whose
  // address differs from it modulo a cache line the kernel copies several times slower: HF ->
  // .ckpt --dtype fp16 (tensor data at odd offsets in a .ckpt) spent 2.9 s of system time on
  // 2.1 GB, 0.7 s staged (docs/benchmarks.md). Large writes from the program's own buffers are
  // therefore copied, at user-space speed, into a buffer of the offset's alignment first. Bytes
  // of a mapped input are written as they are, so that one shrinking meanwhile is still reported
  // as the input's fault.
  constexpr size_t kLine = 64;
  constexpr size_t kStage = size_t{4} << 20;
  const bool misaligned = ((reinterpret_cast<uintptr_t>(bytes.data()) ^ offset) % kLine) != 0;
  if (bytes.size() < kStage / 4 || !misaligned || MappedInputAt(bytes.data()) != nullptr)
    return WriteAll(offset, bytes);
  thread_local std::unique_ptr<std::byte[]> stage =
      std::make_unique_for_overwrite<std::byte[]>(kStage + 2 * kLine);
  const auto start = reinterpret_cast<uintptr_t>(stage.get());
  std::byte* aligned = stage.get() + (kLine - start % kLine) % kLine + offset % kLine;
  while (!bytes.empty()) {
    const size_t n = std::min(bytes.size(), kStage);
    std::memcpy(aligned, bytes.data(), n);
    CW_RETURN_IF_ERROR(WriteAll(offset, {aligned, n}));
    bytes = bytes.subspan(n);
    offset += n;
  }
  return OkStatus();
}

Status OutputFile::WriteAll(uint64_t offset, ByteSpan bytes) const {
  const uint64_t size = bytes.size();
  while (!bytes.empty()) {
    const ssize_t n = ::pwrite(fd_, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      // The kernel reports a read past the end of a mapped input that shrank as EFAULT, where a
      // read in user space gets SIGBUS: the input is at fault, not the output.
      const char* input = errno == EFAULT ? MappedInputAt(bytes.data()) : nullptr;
      if (input != nullptr) {
        return Error(ErrorCode::kIo, std::string(kInputChangedMessage) + " (truncated?)",
                     FileLocation(input));
      }
      return OsError("cannot write at byte " + std::to_string(offset));
    }
    if (n == 0) {
      errno = ENOSPC;
      return OsError("cannot write at byte " + std::to_string(offset));
    }
    bytes = bytes.subspan(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  StartWriteback(size);
  return OkStatus();
}

Status OutputFile::CopyFrom(uint64_t offset, const InputFile& source, uint64_t source_offset,
                            uint64_t n) const {
  CW_RETURN_IF_ERROR(CopyFileRange(source, source_offset, fd_, offset, n, target_.string()));
  StartWriteback(n);
  return OkStatus();
}

Status OutputFile::Resize(uint64_t size) const {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
    return OsError("cannot set output size");
  return OkStatus();
}

Status OutputFile::Commit() {
  if (::fsync(fd_) != 0)
    return OsError("cannot flush output");
  if (::close(fd_) != 0) {
    fd_ = -1;
    return OsError("cannot close output");
  }
  fd_ = -1;
  if (!staged_) {
    if (::rename(temp_.c_str(), target_.c_str()) != 0)
      return OsError("cannot rename output");
    Unregister(temp_);
    CW_RETURN_IF_ERROR(SyncFolder(ParentOf(target_), false));
  }
  committed_ = true;
  return OkStatus();
}

Result<OutputDir> OutputDir::Create(const fs::path& target_in, bool replace_existing) {
  // "out/" names the folder "out".
  const fs::path target = target_in.filename().empty() ? target_in.parent_path() : target_in;
  std::error_code ec;
  // An empty folder made by the user to receive the output is not something to protect.
  const bool empty_folder = fs::is_directory(target, ec) && fs::is_empty(target, ec);
  CW_RETURN_IF_ERROR(CheckTarget(target, replace_existing || empty_folder));
  const fs::path staging = TempNameFor(target);
  if (!Register(staging))
    return TooManyTemporaries(target);
  if (::mkdir(staging.c_str(), 0755) != 0) {
    Unregister(staging);
    return Error(ErrorCode::kIo,
                 std::string("cannot create output folder: ") + std::strerror(errno),
                 FileLocation(target.string()));
  }
  return OutputDir(target, staging, replace_existing);
}

OutputDir::OutputDir(OutputDir&& other) noexcept
    : target_(std::move(other.target_)),
      staging_(std::move(other.staging_)),
      replace_(other.replace_),
      committed_(other.committed_) {
  other.committed_ = true;
}

OutputDir::~OutputDir() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(staging_, ec);
    Unregister(staging_);
  }
}

Status OutputDir::Commit() {
  CW_RETURN_IF_ERROR(SyncFolder(staging_, true));
  std::error_code ec;
  if (fs::is_directory(target_, ec) && fs::is_empty(target_, ec))
    fs::remove(target_, ec);
  if (fs::exists(fs::symlink_status(target_, ec))) {
    if (!replace_) {
      return Error(ErrorCode::kUsage, "output appeared while converting",
                   FileLocation(target_.string()));
    }
    // Swapped in one step, so that a signal at any moment leaves the old output or the new one
    // under the name, never neither; the old one then sits under the staging name, which is
    // removed like any temporary.
    if (::renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, target_.c_str(), RENAME_EXCHANGE) != 0) {
      return Error(ErrorCode::kIo,
                   std::string("cannot swap in the new output folder: ") + std::strerror(errno),
                   FileLocation(target_.string()));
    }
    committed_ = true;
    fs::remove_all(staging_, ec);
    Unregister(staging_);
    return SyncFolder(ParentOf(target_), false);
  }
  fs::rename(staging_, target_, ec);
  if (ec) {
    return Error(ErrorCode::kIo, "cannot rename output folder: " + ec.message(),
                 FileLocation(target_.string()));
  }
  Unregister(staging_);
  committed_ = true;
  CW_RETURN_IF_ERROR(SyncFolder(ParentOf(target_), false));
  return OkStatus();
}

Result<OutputEntries> OutputEntries::Create(const fs::path& folder, std::vector<std::string> names,
                                            bool replace_existing) {
  std::error_code ec;
  fs::create_directories(folder, ec);  // another task may have made it meanwhile: fine
  if (!fs::is_directory(folder, ec)) {
    return Error(ErrorCode::kIo,
                 "cannot create the output folder" + (ec ? ": " + ec.message() : std::string()),
                 FileLocation(folder.string()));
  }
  for (const std::string& name : names) {
    if (!replace_existing && fs::exists(fs::symlink_status(folder / name, ec))) {
      return Error(ErrorCode::kUsage, "output already exists (use --force to replace it)",
                   FileLocation((folder / name).string()));
    }
  }
  const fs::path staging = TempNameFor(folder / (names.empty() ? "entries" : names.front()));
  if (!Register(staging))
    return TooManyTemporaries(folder);
  if (::mkdir(staging.c_str(), 0755) != 0) {
    Unregister(staging);
    return Error(ErrorCode::kIo,
                 std::string("cannot create output folder: ") + std::strerror(errno),
                 FileLocation(folder.string()));
  }
  return OutputEntries(folder, staging, std::move(names), replace_existing);
}

OutputEntries::OutputEntries(OutputEntries&& other) noexcept
    : folder_(std::move(other.folder_)),
      staging_(std::move(other.staging_)),
      names_(std::move(other.names_)),
      replace_(other.replace_),
      committed_(other.committed_) {
  other.committed_ = true;
}

OutputEntries::~OutputEntries() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(staging_, ec);
    Unregister(staging_);
  }
}

Status OutputEntries::Commit() {
  CW_RETURN_IF_ERROR(SyncFolder(staging_, true));
  std::error_code ec;
  for (const std::string& name : names_) {
    const fs::path from = staging_ / name;
    const fs::path to = folder_ / name;
    if (fs::exists(fs::symlink_status(to, ec))) {
      if (!replace_) {
        return Error(ErrorCode::kUsage, "output appeared while converting",
                     FileLocation(to.string()));
      }
      // Swapped in one step, as OutputDir does; the old entry is then under the staging name.
      if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_EXCHANGE) != 0) {
        return Error(ErrorCode::kIo,
                     std::string("cannot swap in the new output: ") + std::strerror(errno),
                     FileLocation(to.string()));
      }
      continue;
    }
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return Error(ErrorCode::kIo, std::string("cannot rename output: ") + std::strerror(errno),
                   FileLocation(to.string()));
    }
  }
  committed_ = true;
  fs::remove_all(staging_, ec);  // the old entries that were replaced
  Unregister(staging_);
  return SyncFolder(folder_, false);
}

void RemoveAllTemporaries() {
  // A second caller (SIGBUS in a worker while the interrupt thread cleans up) waits for the first,
  // since both exit the process as soon as this returns.
  static std::atomic_flag busy;
  const timespec pause{0, 1000000};
  if (busy.test_and_set(std::memory_order_acquire)) {
    while (busy.test(std::memory_order_acquire))
      ::nanosleep(&pause, nullptr);
    return;
  }
  for (TempSlot& slot : temporaries) {
    for (;;) {
      if (Claim(slot, kListed)) {
        RemoveTree(AT_FDCWD, slot.path.data(), 0);
        slot.state.store(kFree, std::memory_order_release);
        break;
      }
      if (slot.state.load(std::memory_order_acquire) == kFree)
        break;
      ::nanosleep(&pause, nullptr);  // an owner holds it for a string copy or compare
    }
  }
  busy.clear(std::memory_order_release);
}

}  // namespace cw
