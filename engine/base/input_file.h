// An input file opened for positional reads. The executor streams tensor bytes through it in file
// order (pread), or hands ranges of it to the kernel to copy (copy_file_range), instead of
// touching them through a mapping: reads then come in one sequential stream, take no resident
// memory, and an input that shrinks meanwhile gives an error instead of SIGBUS.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "cw/error.h"
#include "engine/base/bytes.h"

namespace cw {

class InputFile {
 public:
  static Result<InputFile> Open(const std::string& path);

  InputFile(InputFile&& other) noexcept;
  InputFile& operator=(InputFile&&) = delete;
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile();

  // Fills `out` from `offset`. Thread-safe. An input that ends early (it was truncated after it
  // was opened) is kIo at that offset.
  Status ReadAt(uint64_t offset, MutableByteSpan out) const;
  // Reads [offset, offset + size) through a buffer of at most 4 MiB and calls
  // put(bytes, offset of the bytes within the range) for each piece, in order.
  Status ReadInPieces(uint64_t offset, uint64_t size,
                      const std::function<Status(ByteSpan, uint64_t)>& put) const;

  const std::string& path() const { return path_; }
  int fd() const { return fd_; }

  // kIo at `offset`: the file ended there although its listing said more bytes follow.
  Error EndedEarly(uint64_t offset) const;

 private:
  InputFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  std::string path_;
  int fd_ = -1;
};

// Makes room for `n` more open descriptors (a distributed checkpoint keeps every rank file open,
// read and written): raises the soft RLIMIT_NOFILE towards the hard one when needed. kLimitExceeded
// naming `ulimit -n` when even the hard limit is too low; `what` says what needs them.
Status ReserveOpenFiles(uint64_t n, const std::string& what);

// Copies `n` bytes from `source` at `source_offset` to the file open as `target_fd` at
// `target_offset`, inside the kernel where the file systems allow it (copy_file_range), else
// through a buffer. `target_name` names the output in errors.
Status CopyFileRange(const InputFile& source, uint64_t source_offset, int target_fd,
                     uint64_t target_offset, uint64_t n, const std::string& target_name);

}  // namespace cw
