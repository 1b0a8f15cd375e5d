// FP8 weights with block scales (DeepSeek-V3's checkpoint format): decoding float8_e4m3fn and
// dequantising a weight with its `<name>_scale_inv` tensor to bfloat16.
//
// float8_e4m3fn: 1 sign bit, 4 exponent bits (bias 7), 3 mantissa bits; exponent 0 is
// subnormal (m / 8 * 2^-6); S.1111.111 is NaN; there are no infinities (largest finite 448).
//
// Dequantisation computes W[i][j] = bf16(float(Wq[i][j]) * S[i / rows][j / cols]) with one
// float32 multiply and one rounding to bfloat16, as PyTorch does with `(w.float() * s).to(bf16)`
// (the rounding and NaN rule of CastElements F32 -> BF16). The scale holds one float32 per
// block of rows x cols weights; edge blocks cover what remains of the weight.
#pragma once

#include <cstdint>

#include "engine/base/bytes.h"

namespace cw {

float E4M3ToF32(uint8_t code);

// REQUIRES: weight.size() == rows_total * cols_total (one byte per element);
//           scale.size() == 4 * ceil(rows_total / block_rows) * ceil(cols_total / block_cols);
//           out.size() == 2 * rows_total * cols_total; block sizes > 0.
void DequantizeE4M3ToBF16(ByteSpan weight, ByteSpan scale, uint64_t rows_total, uint64_t cols_total,
                          uint64_t block_rows, uint64_t block_cols, MutableByteSpan out);

}  // namespace cw
