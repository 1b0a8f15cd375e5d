#include "engine/base/input_file.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "engine/base/mapped_file.h"

namespace cw {

Result<InputFile> InputFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Error(ErrorCode::kIo, std::string("cannot open: ") + std::strerror(errno),
                 FileLocation(path));
  }
  return InputFile(path, fd);
}

InputFile::InputFile(InputFile&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}

InputFile::~InputFile() {
  if (fd_ >= 0)
    ::close(fd_);
}

Error InputFile::EndedEarly(uint64_t offset) const {
  return Error(ErrorCode::kIo,
               std::string(kInputChangedMessage) + " (truncated?): it ends before this byte",
               ByteLocation(path_, offset));
}

Status InputFile::ReadAt(uint64_t offset, MutableByteSpan out) const {
  while (!out.empty()) {
    const ssize_t n = ::pread(fd_, out.data(), out.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      return Error(ErrorCode::kIo, std::string("cannot read: ") + std::strerror(errno),
                   ByteLocation(path_, offset));
    }
    if (n == 0)
      return EndedEarly(offset);
    out = out.subspan(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return OkStatus();
}

Status InputFile::ReadInPieces(uint64_t offset, uint64_t size,
                               const std::function<Status(ByteSpan, uint64_t)>& put) const {
  constexpr uint64_t kBufferBytes = 4u << 20;
  const uint64_t buffer_size = std::min(size, kBufferBytes);
  auto buffer = std::make_unique_for_overwrite<std::byte[]>(buffer_size);
  for (uint64_t done = 0; done < size;) {
    const MutableByteSpan piece(buffer.get(), std::min(buffer_size, size - done));
    CW_RETURN_IF_ERROR(ReadAt(offset + done, piece));
    CW_RETURN_IF_ERROR(put(piece, done));
    done += piece.size();
  }
  return OkStatus();
}

namespace {

Error WriteError(const std::string& target_name, int error) {
  return Error(ErrorCode::kIo, std::string("cannot write output: ") + std::strerror(error),
               FileLocation(target_name));
}

Status CopyThroughBuffer(const InputFile& source, uint64_t source_offset, int target_fd,
                         uint64_t target_offset, uint64_t n, const std::string& target_name) {
  return source.ReadInPieces(source_offset, n, [&](ByteSpan piece, uint64_t at) -> Status {
    for (uint64_t put = 0; put < piece.size();) {
      const ssize_t w = ::pwrite(target_fd, piece.data() + put, piece.size() - put,
                                 static_cast<off_t>(target_offset + at + put));
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        return WriteError(target_name, w < 0 ? errno : ENOSPC);
      put += static_cast<uint64_t>(w);
    }
    return OkStatus();
  });
}

// Errors that mean "this pair of files cannot be copied in the kernel", not "the copy failed".
bool KernelCopyUnsupported(int error) {
  return error == EXDEV || error == EINVAL || error == ENOSYS || error == EOPNOTSUPP ||
         error == EBADF;
}

}  // namespace

Status CopyFileRange(const InputFile& source, uint64_t source_offset, int target_fd,
                     uint64_t target_offset, uint64_t n, const std::string& target_name) {
  uint64_t done = 0;
  while (done < n) {
    auto in = static_cast<off_t>(source_offset + done);
    auto out = static_cast<off_t>(target_offset + done);
    const ssize_t c = ::copy_file_range(source.fd(), &in, target_fd, &out, n - done, 0);
    if (c < 0 && errno == EINTR)
      continue;
    if (c < 0 && KernelCopyUnsupported(errno))
      break;
    if (c < 0)
      return WriteError(target_name, errno);
    if (c == 0)
      return source.EndedEarly(source_offset + done);
    done += static_cast<uint64_t>(c);
  }
  return CopyThroughBuffer(source, source_offset + done, target_fd, target_offset + done, n - done,
                           target_name);
}

Status ReserveOpenFiles(uint64_t n, const std::string& what) {
  // Descriptors already open, roughly: the count under /proc/self/fd is exact but costly; the
  // stdio three plus a margin for the program's own files is enough for a soft check.
  constexpr uint64_t kMargin = 64;
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0)
    return OkStatus();  // nothing to adjust; opening will say if it fails
  const uint64_t needed = n + kMargin;
  if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= needed)
    return OkStatus();
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < needed) {
    return Error(ErrorCode::kLimitExceeded, what + " needs " + std::to_string(needed) +
                                                " open files, over this process's limit of " +
                                                std::to_string(limit.rlim_max) +
                                                " (raise it with ulimit -n)");
  }
  limit.rlim_cur = static_cast<rlim_t>(needed);
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return Error(ErrorCode::kIo,
                 what + " needs " + std::to_string(needed) +
                     " open files: cannot raise the limit: " + std::strerror(errno));
  }
  return OkStatus();
}

}  // namespace cw
