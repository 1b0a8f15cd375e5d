#include "engine/formats/distributed/rank_folders.h"

#include <doctest/doctest.h>

#include "tests/support/test_files.h"

namespace cw::distributed {
namespace {

namespace fs = std::filesystem;

void Touch(const fs::path& p) {
  fs::create_directories(p.parent_path());
  cw::test::WriteFile(p, "x");
}

TEST_SUITE("formats.distributed.rank_folders") {
  TEST_CASE("rank folders are found and ordered by number rather than name") {
    cw::test::TempDir dir;
    for (const int r : {0, 1, 2, 10})
      Touch(dir / ("rank_" + std::to_string(r)) / "a.ckpt");
    Touch(dir / "rank_x" / "a.ckpt");  // not a rank folder
    CHECK(IsDistributedFolder(dir.path()));
    auto files = FindRankFiles(dir.path());
    REQUIRE(files.ok());
    REQUIRE(files->ranks.size() == 4);
    CHECK(files->ranks[3].rank == 10);
    CHECK_FALSE(files->safetensors);
    CHECK(files->notes.empty());
  }

  TEST_CASE("of several .ckpt files the last in name order is taken and said") {
    cw::test::TempDir dir;
    Touch(dir / "rank_0" / "net-9_100.ckpt");
    Touch(dir / "rank_0" / "net-10_100.ckpt");
    auto files = FindRankFiles(dir.path());
    REQUIRE(files.ok());
    CHECK(fs::path(files->ranks[0].path).filename() == "net-9_100.ckpt");
    CHECK(files->ranks[0].candidates == 2);
    REQUIRE(files->notes.size() == 1);
    CHECK(files->notes[0].find("last in name order") != std::string::npos);
  }

  TEST_CASE("of several safetensors files the one with the highest last two numbers is taken") {
    cw::test::TempDir dir;
    Touch(dir / "rank_0" / "net-9_100.safetensors");
    Touch(dir / "rank_0" / "net-10_100.safetensors");
    auto files = FindRankFiles(dir.path());
    REQUIRE(files.ok());
    CHECK(files->safetensors);
    CHECK(fs::path(files->ranks[0].path).filename() == "net-10_100.safetensors");
  }

  TEST_CASE(
      "a rank folder without checkpoint or with mixed formats and a rank given twice are refused") {
    cw::test::TempDir empty;
    fs::create_directories(empty / "rank_0");
    CHECK(FindRankFiles(empty.path()).error().code() == ErrorCode::kCorrupt);
    cw::test::TempDir mixed;
    Touch(mixed / "rank_0" / "a.ckpt");
    Touch(mixed / "rank_1" / "a.safetensors");
    CHECK(FindRankFiles(mixed.path()).error().code() == ErrorCode::kUnsupported);
    cw::test::TempDir twice;
    Touch(twice / "rank_1" / "a.ckpt");
    Touch(twice / "rank_01" / "a.ckpt");
    auto files = FindRankFiles(twice.path());
    REQUIRE_FALSE(files.ok());
    CHECK(files.error().message().find("rank 1 has two folders") != std::string::npos);
  }

  TEST_CASE("the strategy is the strategy folder or else the one strategy file beside the ranks") {
    cw::test::TempDir dir;
    Touch(dir / "rank_0" / "a.ckpt");
    CHECK(FindStrategy(dir.path()).error().code() == ErrorCode::kUsage);
    Touch(dir / "merged_ckpt_strategy.ckpt");
    CHECK(FindStrategy(dir.path()).value() == dir / "merged_ckpt_strategy.ckpt");
    Touch(dir / "other_strategy.ckpt");
    auto two = FindStrategy(dir.path());
    REQUIRE_FALSE(two.ok());
    CHECK(two.error().message().find("choose one with --strategy") != std::string::npos);
    fs::create_directories(dir / "strategy");
    CHECK(FindStrategy(dir.path()).value() == dir / "strategy");
  }
}

}  // namespace
}  // namespace cw::distributed
