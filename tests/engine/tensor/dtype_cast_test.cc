#include "engine/tensor/dtype_cast.h"

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "tests/support/test_files.h"

namespace cw {
namespace {

constexpr DType kFloats[] = {DType::kF64, DType::kF32, DType::kF16, DType::kBF16};

// Runs Debian's torch once and keeps its inputs and results for every test case.
const test::TempDir& TorchResults() {
  static const test::TempDir dir;
  static const int status = std::system(
      ("/usr/bin/python3 " + test::SourcePath("tests/engine/tensor/torch_casts.py").string() + " " +
       dir.path().string())
          .c_str());
  REQUIRE_MESSAGE(status == 0, "torch_casts.py failed (is python3-torch installed?)");
  return dir;
}

std::string Cast(DType from, DType to, const std::string& in) {
  std::string out(in.size() / ElementSize(from) * ElementSize(to), '\0');
  CastElements(from, to, AsBytes(in),
               MutableByteSpan(reinterpret_cast<std::byte*>(out.data()), out.size()));
  return out;
}

// Index of the first differing element, or -1.
long FirstDifference(const std::string& a, const std::string& b, size_t element_size) {
  for (size_t i = 0; i < a.size(); i += element_size) {
    if (a.compare(i, element_size, b, i, element_size) != 0)
      return static_cast<long>(i / element_size);
  }
  return -1;
}

TEST_SUITE("tensor.dtype_cast") {
  TEST_CASE("every cast between F64 F32 F16 and BF16 equals torch's .to() bit for bit") {
    const test::TempDir& dir = TorchResults();
    for (DType from : kFloats) {
      const std::string in = test::ReadFile(dir / (std::string(Name(from)) + ".bin"));
      for (DType to : kFloats) {
        if (from == to)
          continue;
        CAPTURE(Name(from));
        CAPTURE(Name(to));
        const std::string expected = test::ReadFile(
            dir / (std::string(Name(from)) + "_to_" + std::string(Name(to)) + ".bin"));
        const std::string got = Cast(from, to, in);
        REQUIRE(got.size() == expected.size());
        CHECK(FirstDifference(got, expected, ElementSize(to)) == -1);
      }
    }
  }

  TEST_CASE("the vectorised and scalar conversions agree on every half and bfloat16 pattern") {
    std::string halves(65536 * 2, '\0');
    for (uint32_t i = 0; i < 65536; ++i)
      StoreLE(reinterpret_cast<std::byte*>(&halves[i * 2]), static_cast<uint16_t>(i));
    const std::string floats = Cast(DType::kF16, DType::kF32, halves);
    for (uint32_t i = 0; i < 65536; ++i) {
      const auto f = LoadLE<float>(reinterpret_cast<const std::byte*>(&floats[i * 4]));
      CAPTURE(i);
      REQUIRE(std::bit_cast<uint32_t>(f) ==
              std::bit_cast<uint32_t>(F16ToF32(static_cast<uint16_t>(i))));
    }
    const std::string back = Cast(DType::kF32, DType::kF16, floats);
    const std::string bf = Cast(DType::kF32, DType::kBF16, floats);
    for (uint32_t i = 0; i < 65536; ++i) {
      const auto f = LoadLE<float>(reinterpret_cast<const std::byte*>(&floats[i * 4]));
      CAPTURE(i);
      REQUIRE(LoadLE<uint16_t>(reinterpret_cast<const std::byte*>(&back[i * 2])) == F32ToF16(f));
      REQUIRE(LoadLE<uint16_t>(reinterpret_cast<const std::byte*>(&bf[i * 2])) == F32ToBF16(f));
    }
    // Between the two 16-bit types, from every pattern, at every alignment of the vector tails.
    for (size_t skip = 0; skip < 17; ++skip) {
      const std::string in = halves.substr(skip * 2);
      const std::string to_bf16 = Cast(DType::kF16, DType::kBF16, in);
      const std::string to_f16 = Cast(DType::kBF16, DType::kF16, in);
      for (uint32_t i = skip; i < 65536; ++i) {
        const auto h = static_cast<uint16_t>(i);
        const float from_half = F16ToF32(h);
        const uint16_t bf16 = std::isnan(from_half) ? 0x7FC0 : F32ToBF16(from_half);
        CAPTURE(i);
        REQUIRE(LoadLE<uint16_t>(reinterpret_cast<const std::byte*>(&to_bf16[(i - skip) * 2])) ==
                bf16);
        REQUIRE(LoadLE<uint16_t>(reinterpret_cast<const std::byte*>(&to_f16[(i - skip) * 2])) ==
                F32ToF16(BF16ToF32(h)));
      }
    }
  }

  TEST_CASE("widening then narrowing returns every finite half and bfloat16 unchanged") {
    for (uint32_t i = 0; i < 65536; ++i) {
      const auto h = static_cast<uint16_t>(i);
      if ((h & 0x7C00) != 0x7C00)
        CHECK(F32ToF16(F16ToF32(h)) == h);
      if ((h & 0x7F80) != 0x7F80)
        CHECK(F32ToBF16(BF16ToF32(h)) == h);
    }
  }

  TEST_CASE("only floating dtypes other than float8 can be cast") {
    CHECK(CanCast(DType::kF32, DType::kBF16));
    CHECK(CanCast(DType::kF64, DType::kF16));
    CHECK_FALSE(CanCast(DType::kI64, DType::kF32));
    CHECK_FALSE(CanCast(DType::kF32, DType::kF8E4M3));
  }
}

}  // namespace
}  // namespace cw
