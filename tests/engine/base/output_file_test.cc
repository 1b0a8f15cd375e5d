#include "engine/base/output_file.h"

#include <doctest/doctest.h>

#include "engine/base/mapped_file.h"
#include "tests/support/test_files.h"

namespace cw {
namespace {

TEST_SUITE("base.output_file") {
  TEST_CASE("a committed file appears under its name with the bytes written at their offsets") {
    test::TempDir dir;
    auto out = OutputFile::Create(dir / "a.bin", false);
    REQUIRE(out.ok());
    REQUIRE(out->Resize(6).ok());
    REQUIRE(out->WriteAt(3, AsBytes("def")).ok());
    REQUIRE(out->WriteAt(0, AsBytes("abc")).ok());
    CHECK(test::ListFolder(dir.path()).size() == 1);
    CHECK_FALSE(std::filesystem::exists(dir / "a.bin"));
    REQUIRE(out->Commit().ok());
    CHECK(test::ReadFile(dir / "a.bin") == "abcdef");
    CHECK(test::ListFolder(dir.path()) == std::vector<std::string>{"a.bin"});
  }

  TEST_CASE("output entries appear one by one beside existing ones or not at all") {
    test::TempDir dir;
    std::filesystem::create_directories(dir / "out" / "rank_0");
    {
      auto abandoned = OutputEntries::Create(dir / "out", {"rank_1"}, false);
      REQUIRE(abandoned.ok());
      std::filesystem::create_directories(abandoned->staging() / "rank_1");
      CHECK(test::ListFolder(dir / "out").size() == 2);  // rank_0 and the staging folder
    }
    CHECK(test::ListFolder(dir / "out") == std::vector<std::string>{"rank_0"});
    auto entries = OutputEntries::Create(dir / "out", {"rank_1", "rank_2"}, false);
    REQUIRE(entries.ok());
    for (const char* name : {"rank_1", "rank_2"}) {
      std::filesystem::create_directories(entries->staging() / name);
      test::WriteFile(entries->staging() / name / "c.ckpt", name);
    }
    REQUIRE(entries->Commit().ok());
    CHECK(test::ListFolder(dir / "out") == std::vector<std::string>{"rank_0", "rank_1", "rank_2"});
    CHECK(test::ReadFile(dir / "out" / "rank_2" / "c.ckpt") == "rank_2");
    CHECK(OutputEntries::Create(dir / "out", {"rank_1"}, false).error().code() ==
          ErrorCode::kUsage);
    auto replaced = OutputEntries::Create(dir / "out", {"rank_1"}, true);
    REQUIRE(replaced.ok());
    std::filesystem::create_directories(replaced->staging() / "rank_1");
    test::WriteFile(replaced->staging() / "rank_1" / "d.ckpt", "new");
    REQUIRE(replaced->Commit().ok());
    CHECK(test::ListFolder(dir / "out" / "rank_1") == std::vector<std::string>{"d.ckpt"});
    CHECK(test::ListFolder(dir / "out").size() == 3);
  }

  TEST_CASE("an abandoned file leaves nothing behind") {
    test::TempDir dir;
    {
      auto out = OutputFile::Create(dir / "a.bin", false);
      REQUIRE(out.ok());
      REQUIRE(out->WriteAt(0, AsBytes("abc")).ok());
    }
    CHECK(test::ListFolder(dir.path()).empty());
  }

  TEST_CASE("an existing output is refused unless replacing is asked for") {
    test::TempDir dir;
    test::WriteFile(dir / "a.bin", "old");
    auto refused = OutputFile::Create(dir / "a.bin", false);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code() == ErrorCode::kUsage);
    auto out = OutputFile::Create(dir / "a.bin", true);
    REQUIRE(out.ok());
    REQUIRE(out->WriteAt(0, AsBytes("new")).ok());
    CHECK(test::ReadFile(dir / "a.bin") == "old");
    REQUIRE(out->Commit().ok());
    CHECK(test::ReadFile(dir / "a.bin") == "new");
  }

  TEST_CASE("a missing output folder is an io error naming it") {
    test::TempDir dir;
    auto out = OutputFile::Create(dir / "no" / "a.bin", false);
    REQUIRE_FALSE(out.ok());
    CHECK(out.error().code() == ErrorCode::kIo);
    CHECK(out.error().where().file == (dir / "no").string());
  }

  TEST_CASE("a staged folder appears whole on commit and not at all otherwise") {
    test::TempDir dir;
    {
      auto out = OutputDir::Create(dir / "model", false);
      REQUIRE(out.ok());
      test::WriteFile(out->staging() / "x", "1");
    }
    CHECK(test::ListFolder(dir.path()).empty());
    auto out = OutputDir::Create(dir / "model/", false);
    REQUIRE(out.ok());
    test::WriteFile(out->staging() / "x", "1");
    REQUIRE(out->Commit().ok());
    CHECK(test::ListFolder(dir / "model") == std::vector<std::string>{"x"});
    CHECK(test::ListFolder(dir.path()) == std::vector<std::string>{"model"});
  }

  TEST_CASE("a replaced folder is swapped whole for the new one, leaving no temporary") {
    test::TempDir dir;
    std::filesystem::create_directory(dir / "model");
    test::WriteFile(dir / "model" / "old", "0");
    auto out = OutputDir::Create(dir / "model", true);
    REQUIRE(out.ok());
    test::WriteFile(out->staging() / "new", "1");
    CHECK(test::ListFolder(dir / "model") == std::vector<std::string>{"old"});
    REQUIRE(out->Commit().ok());
    CHECK(test::ListFolder(dir / "model") == std::vector<std::string>{"new"});
    CHECK(test::ListFolder(dir.path()) == std::vector<std::string>{"model"});
  }

  TEST_CASE("RemoveAllTemporaries removes files still being written") {
    test::TempDir dir;
    auto out = OutputFile::Create(dir / "a.bin", false);
    REQUIRE(out.ok());
    CHECK(test::ListFolder(dir.path()).size() == 1);
    RemoveAllTemporaries();
    CHECK(test::ListFolder(dir.path()).empty());
  }

  TEST_CASE("RemoveAllTemporaries removes a staged folder with what was written into it") {
    test::TempDir dir;
    auto out = OutputDir::Create(dir / "model", false);
    REQUIRE(out.ok());
    test::WriteFile(out->staging() / "a.safetensors", "1");
    std::filesystem::create_directory(out->staging() / "sub");
    test::WriteFile(out->staging() / "sub" / "b", "2");
    RemoveAllTemporaries();
    CHECK(test::ListFolder(dir.path()).empty());
  }

  TEST_CASE("writing bytes of a mapped input that shrank is an io error naming the input") {
    test::TempDir dir;
    test::WriteFile(dir / "in.bin", std::string(64 * 1024, 'x'));
    auto input = MappedFile::Open(dir / "in.bin");
    REQUIRE(input.ok());
    std::filesystem::resize_file(dir / "in.bin", 0);
    auto out = OutputFile::Create(dir / "out.bin", false);
    REQUIRE(out.ok());
    const Status status = out->WriteAt(0, input->bytes());
    REQUIRE_FALSE(status.ok());
    CHECK(status.error().code() == ErrorCode::kIo);
    CHECK(status.error().where().file == (dir / "in.bin").string());
    CHECK(status.error().message() == std::string(kInputChangedMessage) + " (truncated?)");
  }
}

}  // namespace
}  // namespace cw
