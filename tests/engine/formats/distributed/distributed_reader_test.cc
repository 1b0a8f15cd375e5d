#include "engine/formats/distributed/distributed_reader.h"

#include <cstring>

#include <doctest/doctest.h>

#include "engine/formats/checkpoint_io.h"
#include "tests/engine/formats/distributed/distributed_fixture.h"

namespace cw::distributed {
namespace {

namespace fs = std::filesystem;
using test::Floats;
using test::Param;
using test::WriteRank;

// A 2 x 2 (data x tensor parallel) set of w [4, 6] cut on rows, v [4, 6] cut on columns, and a
// scalar; rank r's slices hold the full tensor's values.
struct Set {
  cw::test::TempDir dir;
  std::string w_full = Floats(24, 0);
  std::string v_full = Floats(24, 100);

  Set() {
    for (uint64_t r = 0; r < 4; ++r) {
      const uint64_t mp = r % 2;
      std::string v_slice;
      for (int row = 0; row < 4; ++row)
        v_slice += v_full.substr((static_cast<size_t>(row) * 6 + mp * 3) * 4, 12);
      WriteRank(dir.path(), r,
                {{"w", {2, 6}, w_full.substr(mp * 48, 48)},
                 {"v", {4, 3}, v_slice},
                 {"global_step", {1}, Floats(1, 7)}});
    }
    cw::test::WriteFile(dir / "strategy.ckpt",
                        test::StrategyBytes({{"w", {2, 2}, {0, -1}}, {"v", {2, 2}, {-1, 0}}}));
  }

  std::unique_ptr<CheckpointReader> Open(bool compare = true) {
    OpenOptions options;
    options.distributed.compare_replicas = compare;
    std::vector<std::string> notes;
    auto reader = OpenCheckpoint(dir.path(), options, &notes);
    if (!reader.ok())
      FAIL(reader.error().ToString());
    return std::move(reader).value();
  }
};

std::string Bytes(const TensorData& d) { return std::string(AsChars(d.bytes())); }

TEST_SUITE("formats.distributed.reader") {
  TEST_CASE("lists full tensors from the headers and reads them assembled") {
    Set set;
    auto reader = set.Open();
    REQUIRE(reader->tensors().size() == 3);
    CHECK(reader->format() == FileFormat::kMindSpore);
    CHECK(reader->tensors()[0].shape == Shape{4, 6});
    CHECK(reader->tensors()[1].shape == Shape{4, 6});
    CHECK(Bytes(reader->Read(0).value()) == set.w_full);
    CHECK(Bytes(reader->Read(1).value()) == set.v_full);
    CHECK(Bytes(reader->Read(2).value()) == Floats(1, 7));
  }

  TEST_CASE("a tensor cut on the leading axis is one extent per block in the rank files") {
    Set set;
    auto reader = set.Open();
    const std::vector<FileExtent> extents = reader->Extents(0);
    REQUIRE(extents.size() == 2);
    REQUIRE(extents[0].file != nullptr);
    CHECK(fs::path(*extents[0].file).parent_path().filename() == "rank_0");
    CHECK(fs::path(*extents[1].file).parent_path().filename() == "rank_1");
    CHECK(extents[0].size == 48);
    const std::string rank1 = cw::test::ReadFile(*extents[1].file);
    CHECK(rank1.substr(extents[1].offset, 48) == set.w_full.substr(48));
    // Cut on columns: many small pieces, so only Read() gives it.
    CHECK(reader->Extents(1).empty());
  }

  TEST_CASE("any range of a tensor cut on columns reads as the same bytes of the full tensor") {
    Set set;
    auto reader = set.Open();
    for (uint64_t size = 1; size <= 96; size += 5) {
      for (uint64_t at = 0; at + size <= 96; at += 3) {
        std::string out(size, '\0');
        REQUIRE(
            reader->ReadRange(1, at, {reinterpret_cast<std::byte*>(out.data()), out.size()}).ok());
        CHECK(out == set.v_full.substr(at, size));
      }
    }
  }

  TEST_CASE("a replica that differs fails Verify and Read naming the tensor and both ranks") {
    Set set;
    // Rank 3 (replica of rank 1) holds other bytes for v.
    std::string v_other = Floats(12, 999);
    WriteRank(set.dir.path(), 3,
              {{"w", {2, 6}, set.w_full.substr(48, 48)},
               {"v", {4, 3}, v_other},
               {"global_step", {1}, Floats(1, 7)}});
    auto reader = set.Open();
    CHECK(reader->Verify(0).ok());
    const Status v = reader->Verify(1);
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().code() == ErrorCode::kCorrupt);
    CAPTURE(v.error().message());
    CHECK(v.error().message().find("\"v\" differs between rank_1 and rank_3 from byte ") !=
          std::string::npos);
    CHECK(fs::path(v.error().where().file).parent_path().filename() == "rank_3");
    CHECK(v.error().where().offset.has_value());
    CHECK_FALSE(reader->Read(1).ok());
    // Without the comparison rank 1's copy is taken.
    auto unchecked = set.Open(false);
    CHECK(unchecked->Verify(1).ok());
    CHECK(Bytes(unchecked->Read(1).value()) == set.v_full);
  }

  TEST_CASE("values without a layout are compared even when replicas are not") {
    Set set;
    WriteRank(set.dir.path(), 2,
              {{"w", {2, 6}, set.w_full.substr(0, 48)},
               {"v", {4, 3}, std::string(48, '\0')},
               {"global_step", {1}, Floats(1, 8)}});
    auto reader = set.Open(false);
    const Status s = reader->Verify(2);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message().find("\"global_step\" differs between rank_0 and rank_2") !=
          std::string::npos);
  }

  TEST_CASE("a strategy given for a plain checkpoint is a usage error") {
    cw::test::TempDir dir;
    cw::test::WriteFile(dir / "a.ckpt", test::Ckpt({{"w", {2}, Floats(2, 0)}}));
    OpenOptions options;
    options.distributed.strategy = (dir / "a.ckpt").string();
    auto reader = OpenCheckpoint(dir / "a.ckpt", options, nullptr);
    REQUIRE_FALSE(reader.ok());
    CHECK(reader.error().code() == ErrorCode::kUsage);
  }
}

}  // namespace
}  // namespace cw::distributed
