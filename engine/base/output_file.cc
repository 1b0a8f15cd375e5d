#include "engine/base/output_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>

namespace cw {
namespace fs = std::filesystem;
namespace {

std::mutex& RegistryMutex() {
  static std::mutex m;
  return m;
}
std::set<std::string>& Registry() {
  static std::set<std::string> r;
  return r;
}
void Register(const fs::path& p) {
  std::lock_guard lock(RegistryMutex());
  Registry().insert(p.string());
}
void Unregister(const fs::path& p) {
  std::lock_guard lock(RegistryMutex());
  Registry().erase(p.string());
}

fs::path TempNameFor(const fs::path& target) {
  static std::atomic<unsigned> counter{0};
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
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
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  if (!fs::is_directory(dir, ec)) {
    return Error(ErrorCode::kIo, "output folder does not exist", FileLocation(dir.string()));
  }
  return OkStatus();
}

}  // namespace

Result<OutputFile> OutputFile::Create(const fs::path& target, bool replace_existing) {
  CW_RETURN_IF_ERROR(CheckTarget(target, replace_existing));
  const fs::path temp = TempNameFor(target);
  Register(temp);
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
      committed_(other.committed_) {
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

Status OutputFile::WriteAt(uint64_t offset, ByteSpan bytes) const {
  while (!bytes.empty()) {
    const ssize_t n = ::pwrite(fd_, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return OsError("cannot write at byte " + std::to_string(offset));
    }
    if (n == 0) {
      errno = ENOSPC;
      return OsError("cannot write at byte " + std::to_string(offset));
    }
    bytes = bytes.subspan(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
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
  Register(staging);
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
  std::error_code ec;
  fs::path old;
  if (fs::is_directory(target_, ec) && fs::is_empty(target_, ec))
    fs::remove(target_, ec);
  if (fs::exists(fs::symlink_status(target_, ec))) {
    if (!replace_) {
      return Error(ErrorCode::kUsage, "output appeared while converting",
                   FileLocation(target_.string()));
    }
    old = TempNameFor(target_);
    Register(old);
    fs::rename(target_, old, ec);
    if (ec) {
      Unregister(old);
      return Error(ErrorCode::kIo, "cannot move the old output aside: " + ec.message(),
                   FileLocation(target_.string()));
    }
  }
  fs::rename(staging_, target_, ec);
  if (ec) {
    return Error(ErrorCode::kIo, "cannot rename output folder: " + ec.message(),
                 FileLocation(target_.string()));
  }
  Unregister(staging_);
  committed_ = true;
  if (!old.empty()) {
    fs::remove_all(old, ec);
    Unregister(old);
  }
  return OkStatus();
}

void RemoveAllTemporaries() {
  std::lock_guard lock(RegistryMutex());
  for (const std::string& p : Registry()) {
    std::error_code ec;
    fs::remove_all(p, ec);
  }
  Registry().clear();
}

}  // namespace cw
