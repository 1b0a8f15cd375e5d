#include "engine/tensor/fp8.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <span>
#include <vector>

#include "engine/tensor/dtype_cast.h"

namespace cw {
namespace {

std::array<float, 256> E4M3Table() {
  std::array<float, 256> t{};
  for (int code = 0; code < 256; ++code) {
    const int exponent = (code >> 3) & 0xF;
    const int mantissa = code & 0x7;
    float v = 0;
    if ((code & 0x7F) == 0x7F)
      v = std::numeric_limits<float>::quiet_NaN();
    else if (exponent == 0)
      v = std::ldexp(static_cast<float>(mantissa), -9);  // m / 8 * 2^-6
    else
      v = std::ldexp(static_cast<float>(8 + mantissa), exponent - 10);  // (1 + m/8) * 2^(e-7)
    t[static_cast<size_t>(code)] = (code & 0x80) ? -v : v;
  }
  return t;
}

const std::array<float, 256>& Table() {
  static const std::array<float, 256> table = E4M3Table();
  return table;
}

}  // namespace

float E4M3ToF32(uint8_t code) { return Table()[code]; }

void DequantizeE4M3ToBF16(ByteSpan weight, ByteSpan scale, uint64_t rows_total, uint64_t cols_total,
                          uint64_t block_rows, uint64_t block_cols, MutableByteSpan out) {
  const std::array<float, 256>& table = Table();
  const uint64_t scale_cols = (cols_total + block_cols - 1) / block_cols;
  std::vector<float> products(cols_total);
  for (uint64_t i = 0; i < rows_total; ++i) {
    const std::byte* row = weight.data() + i * cols_total;
    const std::byte* scale_row = scale.data() + 4 * (i / block_rows) * scale_cols;
    for (uint64_t j0 = 0; j0 < cols_total; j0 += block_cols) {
      float s = 0;
      std::memcpy(&s, scale_row + 4 * (j0 / block_cols), sizeof s);
      const uint64_t j1 = std::min(cols_total, j0 + block_cols);
      for (uint64_t j = j0; j < j1; ++j)
        products[j] = table[std::to_integer<uint8_t>(row[j])] * s;
    }
    // The rounding of a float32 tensor to bfloat16, NaN rule included.
    CastElements(DType::kF32, DType::kBF16, std::as_bytes(std::span(products)),
                 out.subspan(2 * i * cols_total, 2 * cols_total));
  }
}

}  // namespace cw
