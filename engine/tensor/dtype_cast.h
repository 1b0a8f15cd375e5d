// Casts between floating dtypes (F64, F32, F16, BF16), bit-identical to PyTorch's `.to(dtype)`.
//
// Rounding is to nearest, ties to even. What PyTorch does (checked against Debian's torch 1.13 in
// tests/engine/tensor/dtype_cast_test.cc) and so what we do:
// - F32 -> BF16: every NaN becomes 0xFFFF (ATen's vectorised kernel); Inf kept.
// - F64 -> BF16 and F64 -> F16: through F32 (double rounding, as c10's types only convert from
//   float); NaN -> 0xFFFF for BF16 (ATen's vectorised body; its scalar code, used for the last
//   elements of a tensor that do not fill a vector, gives 0x7FC0), 0x7E00 with the sign for F16.
// - F32 -> F16: NaN -> 0x7E00 with the sign kept; overflow to Inf; subnormals exact.
// - F16 -> BF16: through F32; NaN -> 0x7FC0 (sign dropped, c10::BFloat16's scalar rule).
// - BF16 -> F16: through F32; NaN -> 0x7E00 with the sign kept.
// - Widening (F16/BF16 -> F32/F64, F32 -> F64) is exact; F16 NaNs are quietened, BF16 -> F32 is a
//   plain shift that keeps signalling NaNs as they are.
// - F64 -> F32: the hardware conversion.
#pragma once

#include "cw/error.h"
#include "engine/base/bytes.h"
#include "engine/tensor/dtype.h"

namespace cw {

// True for the pairs CastElements handles (both floating, F8 excluded; equal dtypes included).
bool CanCast(DType from, DType to);

// Converts in.size() / ElementSize(from) elements into `out`.
// REQUIRES: CanCast(from, to); in.size() is a multiple of ElementSize(from);
//           out.size() == in.size() / ElementSize(from) * ElementSize(to); no overlap.
void CastElements(DType from, DType to, ByteSpan in, MutableByteSpan out);

// The portable scalar conversions the vectorised paths must agree with (exposed for tests).
uint16_t F32ToBF16(float f);
uint16_t F32ToF16(float f);
float F16ToF32(uint16_t h);
float BF16ToF32(uint16_t b);

}  // namespace cw
