#include "engine/tensor/layout_ops.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>

#include <doctest/doctest.h>

namespace cw {
namespace {

// A tensor whose element i holds i (as a little-endian integer of `element_bytes`, truncated),
// so that moved elements can be traced.
std::vector<std::byte> Iota(const Shape& shape, uint32_t element_bytes) {
  const uint64_t n = *ElementCount(shape);
  std::vector<std::byte> out(n * element_bytes);
  for (uint64_t i = 0; i < n; ++i) {
    for (uint32_t b = 0; b < element_bytes; ++b)
      out[i * element_bytes + b] = static_cast<std::byte>((i >> (8 * (b % 8))) & 0xff);
  }
  return out;
}

std::vector<std::byte> Random(const Shape& shape, uint32_t element_bytes, std::mt19937& rng) {
  std::vector<std::byte> out(*ElementCount(shape) * element_bytes);
  for (std::byte& b : out)
    b = static_cast<std::byte>(rng() & 0xff);
  return out;
}

std::vector<std::byte> Bytes(const TensorData& d) { return {d.bytes().begin(), d.bytes().end()}; }

// Reference permutation: element by element with explicit index arithmetic.
std::vector<std::byte> NaivePermute(const std::vector<std::byte>& in, const Shape& shape,
                                    const std::vector<int>& perm, uint32_t element_bytes) {
  const Shape out_shape = PermutedShape(shape, perm);
  const size_t rank = shape.size();
  std::vector<uint64_t> in_stride(rank, 1);
  for (size_t i = rank; i-- > 1;)
    in_stride[i - 1] = in_stride[i] * shape[i];
  std::vector<std::byte> out(in.size());
  const uint64_t n = *ElementCount(shape);
  std::vector<uint64_t> idx(rank, 0);
  for (uint64_t o = 0; o < n; ++o) {
    uint64_t src = 0;
    for (size_t k = 0; k < rank; ++k)
      src += idx[k] * in_stride[static_cast<size_t>(perm[k])];
    std::memcpy(&out[o * element_bytes], &in[src * element_bytes], element_bytes);
    for (size_t k = rank; k-- > 0;) {
      if (++idx[k] < out_shape[k])
        break;
      idx[k] = 0;
    }
  }
  return out;
}

TEST_SUITE("tensor.layout_ops") {
  TEST_CASE("a 2-D transpose moves element (r c) to (c r) for every element width") {
    for (uint32_t width : {1u, 2u, 4u, 8u, 3u, 12u}) {
      CAPTURE(width);
      const Shape shape{37, 70};  // not multiples of the tile
      const auto in = Iota(shape, width);
      auto out = PermuteAxes({in, shape}, std::vector<int>{1, 0}, width);
      REQUIRE(out.ok());
      CHECK(Bytes(*out) == NaivePermute(in, shape, {1, 0}, width));
    }
  }

  TEST_CASE(
      "2-byte transposes match the reference at sizes around the 8 x 8 kernel and its tiles") {
    std::mt19937 rng(3);
    for (const Shape& shape : {Shape{8, 8}, Shape{7, 9}, Shape{64, 64}, Shape{65, 130},
                               Shape{129, 8}, Shape{3, 200}, Shape{2, 3, 16, 24}}) {
      CAPTURE(shape);
      std::vector<int> perm(shape.size());
      std::iota(perm.begin(), perm.end(), 0);
      std::swap(perm[perm.size() - 1], perm[perm.size() - 2]);
      const auto in = Random(shape, 2, rng);
      auto out = PermuteAxes({in, shape}, perm, 2);
      REQUIRE(out.ok());
      CHECK(Bytes(*out) == NaivePermute(in, shape, perm, 2));
    }
  }

  TEST_CASE("every permutation of a 4-D tensor matches the element-by-element reference") {
    std::mt19937 rng(7);
    const Shape shape{3, 1, 4, 5};
    std::vector<int> perm{0, 1, 2, 3};
    do {
      CAPTURE(perm);
      const auto in = Random(shape, 2, rng);
      auto out = PermuteAxes({in, shape}, perm, 2);
      REQUIRE(out.ok());
      CHECK(Bytes(*out) == NaivePermute(in, shape, perm, 2));
    } while (std::next_permutation(perm.begin(), perm.end()));
  }

  TEST_CASE("a permutation followed by its inverse gives back the bytes on random shapes") {
    std::mt19937 rng(11);
    for (int round = 0; round < 50; ++round) {
      const size_t rank = 1 + rng() % 5;
      Shape shape;
      for (size_t i = 0; i < rank; ++i)
        shape.push_back(1 + rng() % 6);
      std::vector<int> perm(rank);
      std::iota(perm.begin(), perm.end(), 0);
      std::shuffle(perm.begin(), perm.end(), rng);
      std::vector<int> inverse(rank);
      for (size_t i = 0; i < rank; ++i)
        inverse[static_cast<size_t>(perm[i])] = static_cast<int>(i);
      const uint32_t width = 1u << (rng() % 4);
      const auto in = Random(shape, width, rng);
      auto there = PermuteAxes({in, shape}, perm, width);
      REQUIRE(there.ok());
      auto back = PermuteAxes({there->bytes(), PermutedShape(shape, perm)}, inverse, width);
      REQUIRE(back.ok());
      CHECK(Bytes(*back) == in);
    }
  }

  TEST_CASE("split then concat along any axis gives back the bytes") {
    std::mt19937 rng(3);
    for (int round = 0; round < 40; ++round) {
      Shape shape{2 + rng() % 4, 3 + rng() % 5, 1 + rng() % 3};
      const int axis = static_cast<int>(rng() % 3);
      const uint64_t length = shape[static_cast<size_t>(axis)];
      const uint64_t first = rng() % (length + 1);
      const std::vector<uint64_t> sizes{first, 0, length - first};
      const auto in = Random(shape, 2, rng);
      auto parts = SplitAxis({in, shape}, axis, sizes, 2);
      REQUIRE(parts.ok());
      REQUIRE(parts->size() == 3);
      std::vector<TensorView> views;
      for (size_t i = 0; i < 3; ++i) {
        Shape s = shape;
        s[static_cast<size_t>(axis)] = sizes[i];
        views.push_back({(*parts)[i].bytes(), s});
      }
      auto joined = ConcatAxis(views, axis, 2);
      REQUIRE(joined.ok());
      CHECK(Bytes(*joined) == in);
    }
  }

  TEST_CASE("split along axis 1 takes column blocks from every row") {
    const Shape shape{2, 3};
    const auto in = Iota(shape, 1);  // 0 1 2 / 3 4 5
    auto parts = SplitAxis({in, shape}, 1, std::vector<uint64_t>{1, 2}, 1);
    REQUIRE(parts.ok());
    CHECK(Bytes((*parts)[0]) == std::vector<std::byte>{std::byte{0}, std::byte{3}});
    CHECK(Bytes((*parts)[1]) ==
          std::vector<std::byte>{std::byte{1}, std::byte{2}, std::byte{4}, std::byte{5}});
  }

  TEST_CASE("pad appends zero rows and slice removes them again") {
    const Shape shape{3, 2};
    const auto in = Iota(shape, 4);
    auto padded = PadAxis({in, shape}, 0, 5, 4);
    REQUIRE(padded.ok());
    REQUIRE(padded->size() == 5 * 2 * 4);
    CHECK(std::memcmp(padded->bytes().data(), in.data(), in.size()) == 0);
    for (size_t i = in.size(); i < padded->size(); ++i)
      CHECK(padded->bytes()[i] == std::byte{0});
    auto sliced = SliceAxis({padded->bytes(), {5, 2}}, 0, 3, 4);
    REQUIRE(sliced.ok());
    CHECK(Bytes(*sliced) == in);
  }

  TEST_CASE("pad and slice along an inner axis keep every row") {
    const Shape shape{2, 2};
    const auto in = Iota(shape, 1);  // 0 1 / 2 3
    auto padded = PadAxis({in, shape}, 1, 3, 1);
    REQUIRE(padded.ok());
    CHECK(Bytes(*padded) == std::vector<std::byte>{std::byte{0}, std::byte{1}, std::byte{0},
                                                   std::byte{2}, std::byte{3}, std::byte{0}});
  }

  TEST_CASE("sizes that disagree with the buffer or the axis are internal errors") {
    const Shape shape{2, 3};
    const auto in = Iota(shape, 2);
    CHECK(PermuteAxes({in, {2, 4}}, std::vector<int>{1, 0}, 2).error().code() ==
          ErrorCode::kInternal);
    CHECK(PermuteAxes({in, shape}, std::vector<int>{0, 0}, 2).error().code() ==
          ErrorCode::kInternal);
    CHECK(SplitAxis({in, shape}, 1, std::vector<uint64_t>{1, 1}, 2).error().code() ==
          ErrorCode::kInternal);
    CHECK(SplitAxis({in, shape}, 2, std::vector<uint64_t>{3}, 2).error().code() ==
          ErrorCode::kInternal);
    CHECK(PadAxis({in, shape}, 0, 1, 2).error().code() == ErrorCode::kInternal);
    CHECK(SliceAxis({in, shape}, 0, 3, 2).error().code() == ErrorCode::kInternal);
    const std::vector<TensorView> mismatched{{in, shape}, {in, {3, 2}}};
    CHECK(ConcatAxis(mismatched, 0, 2).error().code() == ErrorCode::kInternal);
  }

  TEST_CASE("empty tensors and scalars pass through every kernel") {
    const std::vector<std::byte> none;
    auto t = PermuteAxes({none, {0, 4}}, std::vector<int>{1, 0}, 4);
    REQUIRE(t.ok());
    CHECK(t->size() == 0);
    const std::vector<std::byte> scalar{std::byte{1}, std::byte{2}};
    auto s = PermuteAxes({scalar, {}}, std::vector<int>{}, 2);
    REQUIRE(s.ok());
    CHECK(Bytes(*s) == scalar);
  }
}

}  // namespace
}  // namespace cw
