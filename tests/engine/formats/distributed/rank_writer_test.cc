#include "engine/formats/distributed/rank_writer.h"

#include <doctest/doctest.h>

#include "engine/formats/checkpoint_io.h"
#include "tests/engine/formats/distributed/distributed_fixture.h"

namespace cw::distributed {
namespace {

namespace fs = std::filesystem;
using test::Floats;
using test::Param;

TensorInfo T(std::string name, Shape shape) {
  return {std::move(name), DType::kF32, shape, ByteSize(DType::kF32, shape).value()};
}

// w [4, 6] cut on rows, v [4, 6] on columns, n [6] whole: D = [2, 2] (data x tensor parallel).
const std::vector<Param> kParams = {
    {"w", {2, 2}, {0, -1}}, {"v", {2, 2}, {-1, 0}}, {"n", {2, 2}, {-1}}};
const std::vector<TensorInfo> kTensors = {T("w", {4, 6}), T("v", {4, 6}), T("n", {6})};

// Writes every tensor in pieces of `piece` bytes, through Write().
Status WriteAll(CheckpointWriter& writer, uint64_t piece) {
  const std::vector<std::string> values = {Floats(24, 0), Floats(24, 100), Floats(6, 200)};
  for (size_t t = 0; t < values.size(); ++t) {
    for (uint64_t at = 0; at < values[t].size(); at += piece) {
      const std::string_view part = std::string_view(values[t]).substr(at, piece);
      CW_RETURN_IF_ERROR(writer.Write(t, at, AsBytes(part)));
    }
  }
  return OkStatus();
}

TEST_SUITE("formats.distributed.rank_writer") {
  TEST_CASE("rank lists take single ranks and ranges and lists within the strategy's ranks") {
    CHECK(ParseRankList("3", 8).value() == std::vector<uint64_t>{3});
    CHECK(ParseRankList("0-3", 8).value() == std::vector<uint64_t>{0, 1, 2, 3});
    CHECK(ParseRankList("6,0-1,1", 8).value() == std::vector<uint64_t>{0, 1, 6});
    for (const char* bad : {"", "8", "3-1", "a", "1-", "-1", "1,,2"}) {
      CAPTURE(bad);
      CHECK(ParseRankList(bad, 8).error().code() == ErrorCode::kUsage);
    }
  }

  TEST_CASE("every rank's slices written in any pieces read back as the full tensors") {
    for (const uint64_t piece : {4u, 20u, 1000u}) {
      CAPTURE(piece);
      cw::test::TempDir dir;
      const mindspore::ParallelStrategy strategy = test::Strategy(kParams);
      RankWriterOptions options;
      auto writer = CreateRankFolderWriter(dir / "out", kTensors, strategy, options, nullptr);
      REQUIRE(writer.ok());
      CHECK_FALSE((*writer)->NeededRanges(0).has_value());
      REQUIRE(WriteAll(**writer, piece).ok());
      REQUIRE((*writer)->Commit().ok());
      CHECK(fs::exists(dir / "out" / "rank_3" / "checkpoint_3.ckpt"));
      cw::test::WriteFile(dir / "out" / "strategy.ckpt", test::StrategyBytes(kParams));
      auto reader = OpenCheckpoint(dir / "out", OpenOptions(), nullptr);
      REQUIRE(reader.ok());
      REQUIRE((*reader)->tensors() == kTensors);
      CHECK(AsChars((*reader)->Read(1).value().bytes()) == Floats(24, 100));
      // Rank 1 holds rows 2-3 of w and columns 3-5 of v.
      auto rank1 =
          OpenCheckpoint(dir / "out" / "rank_1" / "checkpoint_1.ckpt", OpenOptions(), nullptr);
      REQUIRE(rank1.ok());
      CHECK((*rank1)->tensors()[0].shape == Shape{2, 6});
      CHECK(AsChars((*rank1)->Read(0).value().bytes()) == Floats(12, 12));
      CHECK((*rank1)->tensors()[1].shape == Shape{4, 3});
    }
  }

  TEST_CASE("a subset of ranks needs only their bytes and lands beside other tasks' ranks") {
    cw::test::TempDir dir;
    const mindspore::ParallelStrategy strategy = test::Strategy(kParams);
    RankWriterOptions options;
    options.ranks = {1};
    fs::create_directories(dir / "out" / "rank_0");  // another task's rank
    auto writer = CreateRankFolderWriter(dir / "out", kTensors, strategy, options, nullptr);
    REQUIRE(writer.ok());
    // w rows 2-3: bytes 48-95. v columns 3-5 of each row: close together, joined into one span.
    CHECK((*writer)->NeededRanges(0).value() == std::vector<ByteRange>{{48, 48}});
    CHECK((*writer)->NeededRanges(1).value() == std::vector<ByteRange>{{12, 84}});
    REQUIRE(WriteAll(**writer, 8).ok());
    REQUIRE((*writer)->Commit().ok());
    CHECK(cw::test::ListFolder(dir / "out") == std::vector<std::string>{"rank_0", "rank_1"});
    // The same rank again is refused, and replaced with replace_existing.
    CHECK(
        CreateRankFolderWriter(dir / "out", kTensors, strategy, options, nullptr).error().code() ==
        ErrorCode::kUsage);
  }

  TEST_CASE("a tensor that does not split evenly and layouts of absent parameters are refused") {
    cw::test::TempDir dir;
    const mindspore::ParallelStrategy strategy = test::Strategy(kParams);
    RankWriterOptions options;
    auto uneven = CreateRankFolderWriter(dir / "a", {T("w", {3, 6}), T("v", {4, 6}), T("n", {6})},
                                         strategy, options, nullptr);
    REQUIRE_FALSE(uneven.ok());
    CHECK(uneven.error().code() == ErrorCode::kPlanInvalid);
    CHECK(uneven.error().where().file == "s.ckpt");
    auto absent = CreateRankFolderWriter(dir / "b", {T("w", {4, 6}), T("n", {6})}, strategy,
                                         options, nullptr);
    REQUIRE_FALSE(absent.ok());
    CHECK(absent.error().message().find("(v)") != std::string::npos);
    options.allow_unused_layouts = true;
    std::vector<std::string> notes;
    CHECK(
        CreateRankFolderWriter(dir / "c", {T("w", {4, 6}), T("n", {6})}, strategy, options, &notes)
            .ok());
    CHECK_FALSE(fs::exists(dir / "a"));
    CHECK_FALSE(fs::exists(dir / "b"));
  }
}

}  // namespace
}  // namespace cw::distributed
