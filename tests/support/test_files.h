// File helpers for tests: temporary folders, whole-file reads and writes, the bundled test data.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace cw::test {

// A fresh folder under the system temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

std::string ReadFile(const std::filesystem::path& path);
void WriteFile(const std::filesystem::path& path, const std::string& bytes);
// Files in the folders a test may read.
std::filesystem::path ExternalPath(
    const std::string& relative);  // <repo>/tests/data/external/<relative>
std::filesystem::path SourcePath(const std::string& relative);  // <repo>/<relative>
// Names of the files in a folder, sorted; temporaries included.
std::vector<std::string> ListFolder(const std::filesystem::path& dir);

// What a shell command printed (stdout and stderr together) and its exit code (-1 when it did
// not exit normally).
struct Ran {
  int exit_code = -1;
  std::string output;
};
Ran RunCommand(const std::string& command);

}  // namespace cw::test
