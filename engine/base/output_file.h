// Atomic outputs: nothing appears under the output name until the output is complete.
//
// OutputFile writes a temporary file beside its target ("<dir>/.<name>.cw-tmp-<pid>-<n>") and
// Commit() fsyncs and renames it into place, then syncs the folder so that the name is durable
// too. Writeback starts while the bytes arrive, so the final fsync has little left to wait for.
// OutputDir does the same for a whole folder. An object destroyed without Commit() removes its
// temporary, and so does RemoveAllTemporaries() (called on SIGINT/SIGTERM by the interrupt
// handler), so no half-written output is ever left behind.
#pragma once

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include "cw/error.h"
#include "engine/base/bytes.h"
#include "engine/base/input_file.h"

namespace cw {

class OutputFile {
 public:
  // A staged file for `target`. Refuses an existing target unless `replace_existing`.
  static Result<OutputFile> Create(const std::filesystem::path& target, bool replace_existing);
  // A plain file inside an OutputDir's staging folder (the folder provides the atomicity).
  static Result<OutputFile> CreateInStaging(const std::filesystem::path& path);

  OutputFile(OutputFile&& other) noexcept;
  OutputFile& operator=(OutputFile&&) = delete;
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  ~OutputFile();

  // Thread-safe positional write (pwrite); a short write or ENOSPC is an error naming the target.
  // Bytes from a mapped input that shrank meanwhile give kIo naming that input instead.
  Status WriteAt(uint64_t offset, ByteSpan bytes) const;
  // Copies `n` bytes of `source` from `source_offset` to `offset` (copy_file_range when the file
  // systems allow it). Thread-safe.
  Status CopyFrom(uint64_t offset, const InputFile& source, uint64_t source_offset,
                  uint64_t n) const;
  // Sets the final size up front so that positional writes may arrive in any order.
  Status Resize(uint64_t size) const;
  // fsync, then rename into place and sync the folder (atomic mode), or close (staging mode).
  Status Commit();

  const std::filesystem::path& target() const { return target_; }

 private:
  OutputFile(std::filesystem::path target, std::filesystem::path temp, int fd, bool staged)
      : target_(std::move(target)), temp_(std::move(temp)), fd_(fd), staged_(staged) {}
  Error OsError(const std::string& what) const;
  void StartWriteback(uint64_t written) const;
  Status WriteAll(uint64_t offset, ByteSpan bytes) const;

  std::filesystem::path target_;
  std::filesystem::path temp_;  // equals target_ in staging mode
  int fd_ = -1;
  bool staged_ = false;
  bool committed_ = false;
  mutable std::atomic<uint64_t> not_yet_flushing_{0};  // bytes written since writeback was started
};

class OutputDir {
 public:
  static Result<OutputDir> Create(const std::filesystem::path& target, bool replace_existing);

  OutputDir(OutputDir&& other) noexcept;
  OutputDir& operator=(OutputDir&&) = delete;
  OutputDir(const OutputDir&) = delete;
  OutputDir& operator=(const OutputDir&) = delete;
  ~OutputDir();

  // Where files are written until Commit().
  const std::filesystem::path& staging() const { return staging_; }
  const std::filesystem::path& target() const { return target_; }
  Status Commit();

 private:
  OutputDir(std::filesystem::path target, std::filesystem::path staging, bool replace)
      : target_(std::move(target)), staging_(std::move(staging)), replace_(replace) {}

  std::filesystem::path target_;
  std::filesystem::path staging_;
  bool replace_ = false;
  bool committed_ = false;
};

// Entries (files or folders) of a folder that several processes may write into at once, each
// appearing under its own name on Commit(): the rank folders one task of a job array writes
// beside those of the other tasks. They are staged together in one temporary folder inside
// `folder` (created with its parents when missing), so any number of entries costs one
// temporary. Commit() renames each into place (an existing entry is refused, or with
// replace_existing swapped in and the old one removed), then removes the staging folder. Without
// Commit(), or on a signal, the staging folder goes and `folder` keeps only what it held.
class OutputEntries {
 public:
  static Result<OutputEntries> Create(const std::filesystem::path& folder,
                                      std::vector<std::string> names, bool replace_existing);

  OutputEntries(OutputEntries&& other) noexcept;
  OutputEntries& operator=(OutputEntries&&) = delete;
  OutputEntries(const OutputEntries&) = delete;
  OutputEntries& operator=(const OutputEntries&) = delete;
  ~OutputEntries();

  // Where entry `name` is written until Commit(): staging() / name.
  const std::filesystem::path& staging() const { return staging_; }
  Status Commit();

 private:
  OutputEntries(std::filesystem::path folder, std::filesystem::path staging,
                std::vector<std::string> names, bool replace)
      : folder_(std::move(folder)),
        staging_(std::move(staging)),
        names_(std::move(names)),
        replace_(replace) {}

  std::filesystem::path folder_;
  std::filesystem::path staging_;
  std::vector<std::string> names_;
  bool replace_ = false;
  bool committed_ = false;
};

// Removes every temporary file and folder still registered. Safe to call from any thread and
// async-signal-safe (system calls only), for the SIGINT/SIGTERM thread and the SIGBUS handler.
// At most 64 temporaries are listed at once; Create() beyond that fails with kLimitExceeded.
void RemoveAllTemporaries();

}  // namespace cw
