#include "engine/formats/common/write_tracker.h"

#include <doctest/doctest.h>

namespace cw {
namespace {

std::vector<TensorInfo> TwoTensors() {
  return {TensorInfo{"a", DType::kU8, {6}, 6}, TensorInfo{"b", DType::kU8, {0}, 0}};
}

TEST_SUITE("formats.common.write_tracker") {
  TEST_CASE("pieces in any order combine to the CRC of the whole tensor") {
    const auto tensors = TwoTensors();
    WriteTracker tracker(tensors);
    REQUIRE(tracker.Record(0, 3, AsBytes("def"), true).ok());
    REQUIRE(tracker.Record(0, 0, AsBytes("abc"), true).ok());
    REQUIRE(tracker.Record(1, 0, AsBytes(""), true).ok());
    auto crcs = tracker.Finish();
    REQUIRE(crcs.ok());
    CHECK((*crcs)[0] == Crc32(AsBytes("abcdef")));
    CHECK((*crcs)[1] == 0u);
  }

  TEST_CASE("an empty piece at the offset of real bytes is not a double write") {
    const auto tensors = TwoTensors();
    WriteTracker tracker(tensors);
    REQUIRE(tracker.Record(0, 0, AsBytes("abcdef"), false).ok());
    REQUIRE(tracker.Record(0, 0, AsBytes(""), false).ok());
    CHECK(tracker.Finish().ok());
  }

  TEST_CASE("a gap, an overlap or a missing tensor is reported naming the tensor") {
    const auto tensors = TwoTensors();
    SUBCASE("gap") {
      WriteTracker tracker(tensors);
      REQUIRE(tracker.Record(0, 0, AsBytes("ab"), false).ok());
      REQUIRE(tracker.Record(0, 3, AsBytes("def"), false).ok());
      auto r = tracker.Finish();
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().message().find("\"a\"") != std::string::npos);
    }
    SUBCASE("overlap") {
      WriteTracker tracker(tensors);
      REQUIRE(tracker.Record(0, 0, AsBytes("abcd"), false).ok());
      REQUIRE(tracker.Record(0, 3, AsBytes("def"), false).ok());
      CHECK_FALSE(tracker.Finish().ok());
    }
    SUBCASE("missing") {
      WriteTracker tracker(tensors);
      CHECK_FALSE(tracker.Finish().ok());
    }
  }

  TEST_CASE("a piece past the end of its tensor is refused at once") {
    const auto tensors = TwoTensors();
    WriteTracker tracker(tensors);
    const Status past_end = tracker.Record(0, 4, AsBytes("abc"), false);
    REQUIRE_FALSE(past_end.ok());
    CHECK(past_end.error().code() == ErrorCode::kInternal);
    const Status no_such_tensor = tracker.Record(2, 0, AsBytes("a"), false);
    REQUIRE_FALSE(no_such_tensor.ok());
    CHECK(no_such_tensor.error().code() == ErrorCode::kInternal);
  }
}

}  // namespace
}  // namespace cw
