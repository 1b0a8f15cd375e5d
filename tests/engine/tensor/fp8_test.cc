#include "engine/tensor/fp8.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include <doctest/doctest.h>

#include "engine/tensor/dtype_cast.h"

namespace cw {
namespace {

// float8_e4m3fn written as float32 bits: the exponent re-biased from 7 to 127, the 3 mantissa
// bits moved to the top of float32's 23 (normal codes); subnormals are m * 2^-9 exactly.
float Reference(uint8_t code) {
  const uint32_t sign = (code & 0x80u) << 24;
  const uint32_t exponent = (code >> 3) & 0xFu;
  const uint32_t mantissa = code & 0x7u;
  if ((code & 0x7Fu) == 0x7Fu)
    return std::bit_cast<float>(sign | 0x7FC00000u);
  if (exponent == 0) {
    const float v = static_cast<float>(mantissa) / 512.0f;
    return sign ? -v : v;
  }
  return std::bit_cast<float>(sign | ((exponent + 120u) << 23) | (mantissa << 20));
}

std::vector<std::byte> Floats(const std::vector<float>& v) {
  std::vector<std::byte> out(4 * v.size());
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

uint16_t At(const std::vector<std::byte>& bf16, size_t i) {
  uint16_t v = 0;
  std::memcpy(&v, bf16.data() + 2 * i, 2);
  return v;
}

TEST_SUITE("tensor.fp8") {
  TEST_CASE("every e4m3fn code decodes to its value, NaN for S.1111.111 only") {
    for (int code = 0; code < 256; ++code) {
      CAPTURE(code);
      const float got = E4M3ToF32(static_cast<uint8_t>(code));
      const float want = Reference(static_cast<uint8_t>(code));
      if ((code & 0x7F) == 0x7F) {
        CHECK(std::isnan(got));
      } else {
        CHECK(std::bit_cast<uint32_t>(got) == std::bit_cast<uint32_t>(want));
      }
    }
    CHECK(E4M3ToF32(0x7E) == 448.0f);
    CHECK(E4M3ToF32(0x01) == std::ldexp(1.0f, -9));
    CHECK(E4M3ToF32(0x08) == std::ldexp(1.0f, -6));
    CHECK(std::signbit(E4M3ToF32(0x80)));
  }

  TEST_CASE("a weight with edge blocks uses each block's scale and rounds once to bf16") {
    // 5 x 7 weight, blocks of 2 x 3: scales 3 x 3, the last row and column blocks partial.
    const uint64_t rows = 5, cols = 7, br = 2, bc = 3;
    std::vector<std::byte> weight(rows * cols);
    for (size_t i = 0; i < weight.size(); ++i)
      weight[i] = static_cast<std::byte>((i * 37 + 11) % 256);
    std::vector<float> scales(9);
    for (size_t i = 0; i < scales.size(); ++i)
      scales[i] = 0.1f * static_cast<float>(i + 1) - 0.35f;
    scales[4] = std::nanf("");
    const std::vector<std::byte> scale = Floats(scales);
    std::vector<std::byte> out(2 * rows * cols);
    DequantizeE4M3ToBF16(weight, scale, rows, cols, br, bc, out);
    for (uint64_t i = 0; i < rows; ++i) {
      for (uint64_t j = 0; j < cols; ++j) {
        CAPTURE(i);
        CAPTURE(j);
        const float product = Reference(std::to_integer<uint8_t>(weight[i * cols + j])) *
                              scales[(i / br) * 3 + j / bc];
        CHECK(At(out, i * cols + j) == F32ToBF16(product));
      }
    }
  }
}

}  // namespace
}  // namespace cw
