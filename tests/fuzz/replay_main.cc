// Replays corpus files through a fuzz target without libFuzzer, so that any compiler builds it and
// ctest runs the seeds and every past finding on each test run.
//
//   <parser>_replay FOLDER_OR_FILE...
//
// Files are fed in name order, one LLVMFuzzerTestOneInput call each. A folder that does not exist
// counts as empty (a parser may have no regression yet), but no input at all is an error, so a
// mistyped seed folder cannot pass silently. A finding stops the run: the sanitizers abort, a
// failed check traps.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {
namespace fs = std::filesystem;

std::vector<fs::path> InputFiles(int argc, char** argv) {
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    const fs::path arg = argv[i];
    if (fs::is_regular_file(arg)) {
      files.push_back(arg);
      continue;
    }
    if (!fs::is_directory(arg))
      continue;
    std::vector<fs::path> in_folder;
    for (const fs::directory_entry& entry : fs::directory_iterator(arg)) {
      if (entry.is_regular_file())
        in_folder.push_back(entry.path());
    }
    std::sort(in_folder.begin(), in_folder.end());
    files.insert(files.end(), in_folder.begin(), in_folder.end());
  }
  return files;
}

std::vector<uint8_t> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<fs::path> files = InputFiles(argc, argv);
  if (files.empty()) {
    std::fprintf(stderr, "usage: %s FOLDER_OR_FILE...: no input file found\n", argv[0]);
    return 2;
  }
  for (const fs::path& file : files) {
    std::fprintf(stderr, "%s\n", file.c_str());
    const std::vector<uint8_t> bytes = ReadFile(file);
    // A heap block of exactly the file's size, so that AddressSanitizer catches reads past it.
    const auto input = std::make_unique_for_overwrite<uint8_t[]>(bytes.size());
    std::copy(bytes.begin(), bytes.end(), input.get());
    LLVMFuzzerTestOneInput(input.get(), bytes.size());
  }
  std::fprintf(stderr, "%zu inputs replayed\n", files.size());
  return 0;
}
