// Read-only memory mapping of one input file: the only owner of input bytes.
//
// Regular files only. An empty file gives an empty span without mmap. Move-only; unmapped in the
// destructor. Views handed out by bytes() are valid while the MappedFile lives.
//
// Inputs may change while they are read (another process truncates or rewrites them), and a
// mapping cannot prevent it. Every open MappedFile is therefore recorded in a process-wide table
// with its address range and its identity at open (device, inode, size, modification and
// status-change times), so that:
//   - a SIGBUS (a read past the end of a truncated file) can name the file: MappedInputAt();
//   - a writer can check, before it commits, that no input changed: CheckMappedInputsUnchanged().
#pragma once

#include <filesystem>
#include <string>

#include "cw/error.h"
#include "engine/base/bytes.h"

namespace cw {

class MappedFile {
 public:
  // Fails with kLimitExceeded when kMaxOpenInputs files are already open.
  static Result<MappedFile> Open(const std::filesystem::path& path);

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  ByteSpan bytes() const { return {data_, size_}; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

  struct OpenInput;  // the table entry: path, range and identity at open

 private:
  MappedFile(std::string path, const std::byte* data, uint64_t size, const OpenInput* entry)
      : path_(std::move(path)), data_(data), size_(size), entry_(entry) {}

  std::string path_;
  const std::byte* data_ = nullptr;
  uint64_t size_ = 0;
  const OpenInput* entry_ = nullptr;  // owned by the table; null once moved from
};

// How many input files may be open at once (a sharded model opens every shard).
inline constexpr size_t kMaxOpenInputs = 4096;

// The path of the open input whose mapping holds `address`, or nullptr. Async-signal-safe
// (lock-free reads of a fixed table, no allocation), for the SIGBUS handler; the returned string
// lives as long as that MappedFile.
const char* MappedInputAt(const void* address);

// kIo naming the first open input that is no longer what was opened: deleted, replaced by another
// file, or its size, modification time or status-change time differ (it was written to, truncated
// or touched). Called after the last input byte is read and before an output is committed, since
// a rewrite of the same size cannot be seen otherwise.
Status CheckMappedInputsUnchanged();

// The message of every "input changed" error, so that each way of finding one reads the same.
inline constexpr char kInputChangedMessage[] = "input changed while being read";

}  // namespace cw
