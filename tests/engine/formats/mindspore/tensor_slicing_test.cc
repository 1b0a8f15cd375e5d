#include "engine/formats/mindspore/tensor_slicing.h"

#include <vector>

#include <doctest/doctest.h>

#include "engine/base/limits.h"

namespace cw::mindspore {
namespace {

using Axes = std::vector<std::vector<uint32_t>>;
using Groups = std::vector<std::vector<uint64_t>>;

TensorLayout Layout(std::vector<uint64_t> dev_matrix, Axes tensor_map) {
  return TensorLayout{std::move(dev_matrix), std::move(tensor_map)};
}

TensorSlice Slice(const TensorLayout& layout, const Shape& full, uint64_t device) {
  REQUIRE(CheckTensorLayout(layout).ok());
  auto slice = SliceOf(layout, full, device);
  REQUIRE(slice.ok());
  return *slice;
}

TensorLayout Folded(const TensorLayout& layout, int64_t step, int64_t size) {
  REQUIRE(CheckTensorLayout(layout).ok());
  auto folded = FoldOptimizerShard(layout, step, size);
  REQUIRE(folded.ok());
  REQUIRE(CheckTensorLayout(*folded).ok());
  CHECK(DeviceCount(*folded) == DeviceCount(layout));
  return *folded;
}

ErrorCode FoldError(const TensorLayout& layout, int64_t step, int64_t size) {
  REQUIRE(CheckTensorLayout(layout).ok());
  auto folded = FoldOptimizerShard(layout, step, size);
  REQUIRE_FALSE(folded.ok());
  return folded.error().code();
}

// Every element of a small tensor, marked by the devices whose slice holds it: with one device
// per replica group, each element is covered exactly once.
void CheckTiles(const TensorLayout& layout, const Shape& full) {
  CAPTURE(ShapeToString(layout.dev_matrix));
  std::vector<int> covered(ElementCount(full).value(), 0);
  for (const std::vector<uint64_t>& group : ReplicaGroups(layout)) {
    const TensorSlice first = Slice(layout, full, group.front());
    for (const uint64_t d : group)
      CHECK(Slice(layout, full, d) == first);
    // Walk the block in row-major order.
    std::vector<uint64_t> at(full.size(), 0);
    bool more = true;
    while (more) {
      uint64_t flat = 0;
      for (size_t i = 0; i < full.size(); ++i)
        flat = flat * full[i] + first[i].offset + at[i];
      ++covered[flat];
      more = false;
      for (size_t i = full.size(); i-- > 0;) {
        if (++at[i] < first[i].length) {
          more = true;
          break;
        }
        at[i] = 0;
      }
    }
  }
  for (const int c : covered)
    CHECK(c == 1);
}

TEST_SUITE("formats.mindspore.slicing") {
  TEST_CASE("tensor parallel over 2 devices: axis 0 halves by rank, the other axis whole") {
    // dev [2], tensor map [0, -1]: the spec's wq example, [20, 40] per rank of [40, 40].
    const TensorLayout rows = Layout({2}, {{0}, {}});
    CHECK(PiecesPerAxis(rows) == std::vector<uint64_t>{2, 1});
    CHECK(Slice(rows, {40, 40}, 0) == TensorSlice{{0, 20}, {0, 40}});
    CHECK(Slice(rows, {40, 40}, 1) == TensorSlice{{20, 20}, {0, 40}});
    CHECK(FullShape(rows, {20, 40}).value() == Shape{40, 40});
    CHECK(ReplicaGroups(rows) == Groups{{0}, {1}});
    // tensor map [-1, 0]: wo, w2.
    const TensorLayout columns = Layout({2}, {{}, {0}});
    CHECK(Slice(columns, {40, 256}, 1) == TensorSlice{{0, 40}, {128, 128}});
    CHECK(FullShape(columns, {40, 128}).value() == Shape{40, 256});
  }

  TEST_CASE("a replicated tensor is whole on every device and all devices are one group") {
    const TensorLayout layout = Layout({2}, {{}, {}});
    CHECK(Slice(layout, {16000, 40}, 1) == TensorSlice{{0, 16000}, {0, 40}});
    CHECK(FullShape(layout, {16000, 40}).value() == Shape{16000, 40});
    CHECK(ReplicaGroups(layout) == Groups{{0, 1}});
  }

  TEST_CASE("data x tensor parallel: devices differing in the data axis hold replicas") {
    // dev [2, 2] = [dp, mp]: device d = 2 * dp + mp. Cut by the mp axis (0):
    const TensorLayout by_mp = Layout({2, 2}, {{0}, {}});
    CHECK(PieceIndex(by_mp, 0) == std::vector<uint64_t>{0, 0});
    CHECK(PieceIndex(by_mp, 1) == std::vector<uint64_t>{1, 0});
    CHECK(PieceIndex(by_mp, 2) == std::vector<uint64_t>{0, 0});
    CHECK(PieceIndex(by_mp, 3) == std::vector<uint64_t>{1, 0});
    CHECK(ReplicaGroups(by_mp) == Groups{{0, 2}, {1, 3}});
    CHECK(Slice(by_mp, {8, 3}, 3) == TensorSlice{{4, 4}, {0, 3}});
    // Cut by the dp axis (1) instead:
    const TensorLayout by_dp = Layout({2, 2}, {{1}, {}});
    CHECK(ReplicaGroups(by_dp) == Groups{{0, 1}, {2, 3}});
    CHECK(Slice(by_dp, {8, 3}, 1) == TensorSlice{{0, 4}, {0, 3}});
    CHECK(Slice(by_dp, {8, 3}, 2) == TensorSlice{{4, 4}, {0, 3}});
  }

  TEST_CASE("both axes cut: the piece index follows each axis's own device axis") {
    // dev [2, 4], map [1, 0]: rows by the 2-axis, columns by the 4-axis.
    const TensorLayout layout = Layout({2, 4}, {{1}, {0}});
    CHECK(PiecesPerAxis(layout) == std::vector<uint64_t>{2, 4});
    CHECK(Slice(layout, {6, 8}, 6) == TensorSlice{{3, 3}, {4, 2}});  // c = (1, 2)
    // map [0, 1]: rows by the 4-axis, columns by the 2-axis.
    const TensorLayout swapped = Layout({2, 4}, {{0}, {1}});
    CHECK(Slice(swapped, {8, 6}, 6) == TensorSlice{{4, 2}, {3, 3}});
  }

  TEST_CASE("an axis cut by several device axes takes the first listed as the outer one") {
    // dev [2, 4], axis 0 cut by [1, 0]: 8 pieces, device d holds piece c0 * 4 + c1 = d.
    const TensorLayout outer_first = Layout({2, 4}, {{1, 0}, {}});
    CHECK(PiecesPerAxis(outer_first) == std::vector<uint64_t>{8, 1});
    CHECK(Slice(outer_first, {16, 3}, 5) == TensorSlice{{10, 2}, {0, 3}});
    // Axis 0 cut by [0, 1]: piece c1 * 2 + c0.
    const TensorLayout inner_first = Layout({2, 4}, {{0, 1}, {}});
    CHECK(PieceIndex(inner_first, 5) == std::vector<uint64_t>{3, 0});  // c = (1, 1)
    CHECK(PieceIndex(inner_first, 2) == std::vector<uint64_t>{4, 0});  // c = (0, 2)
    CHECK(Slice(inner_first, {16, 3}, 2) == TensorSlice{{8, 2}, {0, 3}});
    // dev [2, 2, 2], map [[2, 0], [1]]: device 6 = c (1, 1, 0) holds piece 1 * 2 + 0 of axis 0.
    const TensorLayout three = Layout({2, 2, 2}, {{2, 0}, {1}});
    CHECK(Slice(three, {8, 6}, 6) == TensorSlice{{4, 2}, {3, 3}});
    CHECK(ReplicaGroups(three).size() == 8);
  }

  TEST_CASE("the slices of one device per replica group tile the tensor exactly") {
    CheckTiles(Layout({2}, {{0}, {}}), {4, 3});
    CheckTiles(Layout({2, 2}, {{0}, {}}), {4, 3});
    CheckTiles(Layout({2, 4}, {{0}, {1}}), {8, 4});
    CheckTiles(Layout({2, 2, 2}, {{2, 0}, {1}}), {8, 6});
    CheckTiles(Layout({4, 2}, {{}, {1}, {0}}), {3, 4, 2});
    CheckTiles(Layout({2, 2}, {{}, {}}), {3, 5});
    CheckTiles(Folded(Layout({4, 2}, {{0}, {}}), 2, 4), {16, 3});
    CheckTiles(Folded(Layout({4, 2}, {{}, {0}}), 2, 2), {8, 4});
  }

  TEST_CASE("optimizer shard: each TP slice is cut again on axis 0 over devices step apart") {
    // dev [4, 2], map [0, -1], step 2, size 4: TP piece k0 = d mod 2, shard o = (d div 2) mod 4.
    const TensorLayout tp = Layout({4, 2}, {{0}, {}});
    const TensorLayout saved = Folded(tp, 2, 4);
    CHECK(saved.dev_matrix == std::vector<uint64_t>{4, 2, 1});
    CHECK(PiecesPerAxis(saved) == std::vector<uint64_t>{8, 1});
    // [16, 3]: a TP piece is 8 rows, a shard 2: rows k0 * 8 + o * 2.
    CHECK(Slice(saved, {16, 3}, 5) == TensorSlice{{12, 2}, {0, 3}});  // k0 1, o 2
    CHECK(Slice(saved, {16, 3}, 6) == TensorSlice{{6, 2}, {0, 3}});   // k0 0, o 3
    CHECK(ReplicaGroups(saved).size() == 8);
    CHECK(FullShape(saved, {2, 3}).value() == Shape{16, 3});
    // size -1: every replica, here 8 / 2 = 4.
    CHECK(Folded(tp, 2, -1) == saved);
  }

  TEST_CASE("optimizer shard smaller than the replicas: the remaining devices hold copies") {
    // dev [4, 2], map [0, -1], step 2, size 2: repeat 2, o = (d div 2) mod 2.
    const TensorLayout saved = Folded(Layout({4, 2}, {{0}, {}}), 2, 2);
    CHECK(saved.dev_matrix == std::vector<uint64_t>{2, 2, 2, 1});
    CHECK(Slice(saved, {8, 3}, 5) == TensorSlice{{4, 2}, {0, 3}});  // k0 1, o 0
    CHECK(Slice(saved, {8, 3}, 3) == TensorSlice{{6, 2}, {0, 3}});  // k0 1, o 1
    CHECK(ReplicaGroups(saved) == Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}});
  }

  TEST_CASE("optimizer shard of an axis-1 TP slice and of a fully replicated tensor") {
    // dev [4, 2], map [-1, 0], step 2, size 4: axis 0 in 4 shards, axis 1 in 2 TP pieces.
    const TensorLayout columns = Folded(Layout({4, 2}, {{}, {0}}), 2, 4);
    CHECK(PiecesPerAxis(columns) == std::vector<uint64_t>{4, 2});
    CHECK(Slice(columns, {8, 4}, 5) == TensorSlice{{4, 2}, {2, 2}});  // o 2, k1 1
    // dev [2, 2], map [-1, -1], step 1, size 4: device d holds shard d.
    const TensorLayout whole = Folded(Layout({2, 2}, {{}, {}}), 1, 4);
    CHECK(Slice(whole, {8, 2}, 3) == TensorSlice{{6, 2}, {0, 2}});
    // step 1, size 2 over 4 devices: shards d mod 2, two copies each.
    CHECK(ReplicaGroups(Folded(Layout({2, 2}, {{}, {}}), 1, 2)) == Groups{{0, 2}, {1, 3}});
  }

  TEST_CASE("optimizer shard numbers devices over the TP pieces, as MindSpore's transform does") {
    // dev [2, 2, 2], map [0, 1] names device axes in ascending order. The original coordinates
    // would put device 1 on TP piece (1, 0); MindSpore's model of the optimizer shard numbers
    // devices over the pieces [2, 2] instead, giving (0, 1).
    const TensorLayout tp = Layout({2, 2, 2}, {{0}, {1}});
    CHECK(PieceIndex(tp, 1) == std::vector<uint64_t>{1, 0});
    const TensorLayout saved = Folded(tp, 4, 2);
    CHECK(PieceIndex(saved, 1) == std::vector<uint64_t>{0, 1});
    CHECK(Slice(saved, {8, 4}, 1) == TensorSlice{{0, 2}, {2, 2}});
    CHECK(Slice(saved, {8, 4}, 4) == TensorSlice{{2, 2}, {0, 2}});  // shard 1 of piece (0, 0)
  }

  TEST_CASE("no optimizer shard when step or size is 0") {
    const TensorLayout tp = Layout({4, 2}, {{0}, {}});
    CHECK(Folded(tp, 0, 4) == tp);
    CHECK(Folded(tp, 2, 0) == tp);
  }

  TEST_CASE("optimizer shards MindSpore's transform cannot place are refused") {
    // Replica axes 0 and 2 of 3: MindSpore's general path.
    CHECK(FoldError(Layout({2, 2, 2}, {{1}, {}}), 2, 2) == ErrorCode::kUnsupported);
    // A single replica axis that is not the leftmost.
    CHECK(FoldError(Layout({1, 2, 2}, {{0}, {}}), 2, 2) == ErrorCode::kUnsupported);
    // An axis cut by two device axes.
    CHECK(FoldError(Layout({2, 2, 2}, {{1, 0}, {}}), 4, 2) == ErrorCode::kUnsupported);
    // A fully replicated tensor with a step: MindSpore's model ignores the step.
    CHECK(FoldError(Layout({2, 2}, {{}, {}}), 2, 2) == ErrorCode::kUnsupported);
    // No replica axis to shard over.
    CHECK(FoldError(Layout({2, 2}, {{1}, {0}}), 1, 2) == ErrorCode::kCorrupt);
    // Step other than the product right of the replica axis (MindSpore checks it).
    CHECK(FoldError(Layout({2, 4}, {{0}, {}}), 3, 2) == ErrorCode::kCorrupt);
    // Shard groups that do not divide the devices.
    CHECK(FoldError(Layout({4, 2}, {{0}, {}}), 2, 3) == ErrorCode::kCorrupt);
    CHECK(FoldError(Layout({4, 2}, {{0}, {}}), -2, 2) == ErrorCode::kCorrupt);
    CHECK(FoldError(Layout({4, 2}, {{0}, {}}), 2, -2) == ErrorCode::kCorrupt);
    CHECK(FoldError(Layout({4}, {}), 1, 4) == ErrorCode::kCorrupt);
  }

  TEST_CASE("layouts naming missing or repeated device axes are corrupt") {
    CHECK(CheckTensorLayout(Layout({2}, {{1}, {}})).error().code() == ErrorCode::kCorrupt);
    CHECK(CheckTensorLayout(Layout({2, 2}, {{0}, {0}})).error().code() == ErrorCode::kCorrupt);
    CHECK(CheckTensorLayout(Layout({2, 2}, {{1, 1}})).error().code() == ErrorCode::kCorrupt);
    CHECK(CheckTensorLayout(Layout({2, 0}, {{0}})).error().code() == ErrorCode::kCorrupt);
    CHECK(CheckTensorLayout(Layout({}, {{}, {}})).ok());  // one device
  }

  TEST_CASE("device counts and ranks over the caps are limits") {
    const uint64_t half = 1ull << 32;
    CHECK(CheckTensorLayout(Layout({half, half}, {})).error().code() == ErrorCode::kLimitExceeded);
    CHECK(CheckTensorLayout(Layout({limits::kMaxDevicesPerStage + 1}, {})).error().code() ==
          ErrorCode::kLimitExceeded);
    CHECK(CheckTensorLayout(Layout({limits::kMaxDevicesPerStage}, {{0}})).ok());
    CHECK(CheckTensorLayout(Layout(std::vector<uint64_t>(limits::kMaxRank + 1, 1), {}))
              .error()
              .code() == ErrorCode::kLimitExceeded);
    CHECK(CheckTensorLayout(Layout({1}, Axes(limits::kMaxRank + 1))).error().code() ==
          ErrorCode::kLimitExceeded);
  }

  TEST_CASE("shapes of another rank, an overflowing full shape and uneven axes are refused") {
    const TensorLayout layout = Layout({2}, {{0}, {}});
    CHECK(FullShape(layout, {20}).error().code() == ErrorCode::kCorrupt);
    CHECK(FullShape(layout, {~0ull, 1}).error().code() == ErrorCode::kCorrupt);
    CHECK(SliceOf(layout, {40}, 0).error().code() == ErrorCode::kCorrupt);
    CHECK(SliceOf(layout, {41, 40}, 0).error().code() == ErrorCode::kUnsupported);
  }
}

}  // namespace
}  // namespace cw::mindspore
