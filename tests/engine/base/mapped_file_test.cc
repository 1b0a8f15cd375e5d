#include "engine/base/mapped_file.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include <doctest/doctest.h>

#include "tests/support/test_files.h"

namespace cw {
namespace {
namespace fs = std::filesystem;

// An input last written an hour ago, so that any later write moves its modification time even on
// a file system whose clock ticks coarsely.
fs::path OldInput(const test::TempDir& dir, const std::string& name, size_t size) {
  const fs::path path = dir / name;
  test::WriteFile(path, std::string(size, 'x'));
  fs::last_write_time(path, fs::file_time_type::clock::now() - std::chrono::hours(1));
  return path;
}

void Overwrite(const fs::path& path, std::streamoff offset, const std::string& bytes) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(offset);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f.good());
}

void CheckReportsChange(const fs::path& path, const std::string& how) {
  const Status status = CheckMappedInputsUnchanged();
  REQUIRE_FALSE(status.ok());
  CHECK(status.error().code() == ErrorCode::kIo);
  CHECK(status.error().where().file == path.string());
  CHECK(status.error().message() == std::string(kInputChangedMessage) + " (" + how + ")");
}

TEST_SUITE("base.mapped_file") {
  TEST_CASE("an open input is found by every address of its bytes, and not once it is closed") {
    test::TempDir dir;
    const fs::path path = OldInput(dir, "in.bin", 10000);
    const std::byte* data = nullptr;
    {
      auto opened = MappedFile::Open(path);
      REQUIRE(opened.ok());
      const MappedFile moved = std::move(opened).value();
      data = moved.bytes().data();
      REQUIRE(MappedInputAt(data) != nullptr);
      CHECK(std::string(MappedInputAt(data)) == path.string());
      REQUIRE(MappedInputAt(data + 9999) != nullptr);
      CHECK(std::string(MappedInputAt(data + 9999)) == path.string());
      CHECK(MappedInputAt(data + 10000) == nullptr);
    }
    CHECK(MappedInputAt(data) == nullptr);
  }

  TEST_CASE("inputs left alone pass the check, empty ones included") {
    test::TempDir dir;
    auto a = MappedFile::Open(OldInput(dir, "a.bin", 100));
    auto empty = MappedFile::Open(OldInput(dir, "empty.bin", 0));
    REQUIRE(a.ok());
    REQUIRE(empty.ok());
    CHECK(CheckMappedInputsUnchanged().ok());
  }

  TEST_CASE("an input rewritten in place at the same size fails the check, naming it") {
    test::TempDir dir;
    const fs::path path = OldInput(dir, "in.bin", 100);
    auto file = MappedFile::Open(path);
    REQUIRE(file.ok());
    Overwrite(path, 50, "y");
    CheckReportsChange(path, "it was written to or its attributes changed");
  }

  TEST_CASE("an input that shrank fails the check with both sizes") {
    test::TempDir dir;
    const fs::path path = OldInput(dir, "in.bin", 100);
    auto file = MappedFile::Open(path);
    REQUIRE(file.ok());
    fs::resize_file(path, 60);
    CheckReportsChange(path, "its size went from 100 to 60 bytes");
  }

  TEST_CASE("a deleted input fails the check") {
    test::TempDir dir;
    const fs::path path = OldInput(dir, "in.bin", 100);
    auto file = MappedFile::Open(path);
    REQUIRE(file.ok());
    fs::remove(path);
    CheckReportsChange(path, "it was deleted or moved away");
  }

  TEST_CASE("an input replaced by renaming another file over it fails the check") {
    test::TempDir dir;
    const fs::path path = OldInput(dir, "in.bin", 100);
    auto file = MappedFile::Open(path);
    REQUIRE(file.ok());
    fs::rename(OldInput(dir, "other.bin", 100), path);
    CheckReportsChange(path, "it was replaced by another file");
  }

  TEST_CASE("a closed input is no longer checked") {
    test::TempDir dir;
    const fs::path path = OldInput(dir, "in.bin", 100);
    { REQUIRE(MappedFile::Open(path).ok()); }
    fs::remove(path);
    CHECK(CheckMappedInputsUnchanged().ok());
  }
}

}  // namespace
}  // namespace cw
