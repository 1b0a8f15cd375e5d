#include "engine/tensor/dtype_cast.h"

#include <cpuid.h>
#include <immintrin.h>

#include <bit>
#include <cmath>
#include <cstring>

namespace cw {
namespace {

constexpr uint16_t kBF16NaN = 0xFFFF;        // ATen's vectorised float -> bfloat16 NaN
constexpr uint16_t kBF16ScalarNaN = 0x7FC0;  // c10::BFloat16(float) NaN

// F16C through CPUID leaf 1: clang 14's __builtin_cpu_supports does not know "f16c".
bool HasF16C() {
  static const bool has = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __builtin_cpu_supports("avx2") && __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 &&
           (ecx & bit_F16C) != 0;
  }();
  return has;
}

// Element loops. Each loads and stores through memcpy so that unaligned tensor data (old
// safetensors files) is fine; compilers turn these into plain vector loads.
template <typename In, typename Out, typename F>
void Map(ByteSpan in, MutableByteSpan out, F f) {
  const size_t n = in.size() / sizeof(In);
  const std::byte* src = in.data();
  std::byte* dst = out.data();
  for (size_t i = 0; i < n; ++i) {
    In x;
    std::memcpy(&x, src + i * sizeof(In), sizeof x);
    const Out y = f(x);
    std::memcpy(dst + i * sizeof(Out), &y, sizeof y);
  }
}

// Eight floats to bfloat16, each in the low half of its 32-bit lane: round to nearest even, any
// NaN becomes `nan`.
__attribute__((target("avx2"))) __m256i ToBF16Lanes(__m256 f, __m256i nan) {
  const __m256i u = _mm256_castps_si256(f);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i r =
      _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7FFF)), lsb), 16);
  const __m256i ordered = _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_ORD_Q));
  return _mm256_blendv_epi8(nan, r, ordered);
}

// Two sets of eight 32-bit lanes to sixteen 16-bit values in order (packus interleaves per 128
// bits, the permute undoes it).
__attribute__((target("avx2"))) __m256i PackLanes(__m256i low, __m256i high) {
  return _mm256_permute4x64_epi64(_mm256_packus_epi32(low, high), 0xD8);
}

// Eight floats to half: round to nearest even; PyTorch makes every NaN 0x7E00 with its sign,
// where F16C would keep the payload.
__attribute__((target("avx2,f16c"))) __m128i ToF16x8(__m256 f) {
  const __m128i h = _mm256_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256i unordered = _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_UNORD_Q));
  const __m128i mask =
      _mm_packs_epi32(_mm256_castsi256_si128(unordered), _mm256_extracti128_si256(unordered, 1));
  const __m128i nan = _mm_or_si128(_mm_set1_epi16(0x7E00),
                                   _mm_and_si128(h, _mm_set1_epi16(static_cast<int16_t>(0x8000))));
  return _mm_blendv_epi8(h, nan, mask);
}

__attribute__((target("avx2"))) __m256 LoadBF16x8(const std::byte* p) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(b), 16));
}

__attribute__((target("avx2,f16c"))) __m256 LoadF16x8(const std::byte* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

__attribute__((target("avx2"))) void F32ToBF16Avx2(ByteSpan in, MutableByteSpan out) {
  const size_t n = in.size() / 4;
  const __m256i nan = _mm256_set1_epi32(kBF16NaN);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const auto* f = reinterpret_cast<const float*>(in.data()) + i;
    const __m256i packed =
        PackLanes(ToBF16Lanes(_mm256_loadu_ps(f), nan), ToBF16Lanes(_mm256_loadu_ps(f + 8), nan));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.data() + i * 2), packed);
  }
  Map<float, uint16_t>(in.subspan(i * 4), out.subspan(i * 2), F32ToBF16);
}

__attribute__((target("avx2,f16c"))) void F32ToF16Avx2(ByteSpan in, MutableByteSpan out) {
  const size_t n = in.size() / 4;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 f = _mm256_loadu_ps(reinterpret_cast<const float*>(in.data()) + i);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out.data() + i * 2), ToF16x8(f));
  }
  Map<float, uint16_t>(in.subspan(i * 4), out.subspan(i * 2), F32ToF16);
}

__attribute__((target("avx2,f16c"))) void F16ToF32Avx2(ByteSpan in, MutableByteSpan out) {
  const size_t n = in.size() / 2;
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(reinterpret_cast<float*>(out.data()) + i, LoadF16x8(in.data() + i * 2));
  Map<uint16_t, float>(in.subspan(i * 2), out.subspan(i * 4), F16ToF32);
}

uint16_t F16ToBF16(uint16_t h) {
  const float f = F16ToF32(h);
  return std::isnan(f) ? kBF16ScalarNaN : F32ToBF16(f);
}
uint16_t BF16ToF16(uint16_t b) { return F32ToF16(BF16ToF32(b)); }

// bfloat16 -> half through float, as PyTorch converts it.
__attribute__((target("avx2,f16c"))) void BF16ToF16Avx2(ByteSpan in, MutableByteSpan out) {
  const size_t n = in.size() / 2;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out.data() + i * 2),
                     ToF16x8(LoadBF16x8(in.data() + i * 2)));
  }
  Map<uint16_t, uint16_t>(in.subspan(i * 2), out.subspan(i * 2), BF16ToF16);
}

// half -> bfloat16 through float; PyTorch's scalar path gives NaN as 0x7FC0 here.
__attribute__((target("avx2,f16c"))) void F16ToBF16Avx2(ByteSpan in, MutableByteSpan out) {
  const size_t n = in.size() / 2;
  const __m256i nan = _mm256_set1_epi32(kBF16ScalarNaN);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const std::byte* p = in.data() + i * 2;
    const __m256i packed =
        PackLanes(ToBF16Lanes(LoadF16x8(p), nan), ToBF16Lanes(LoadF16x8(p + 16), nan));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.data() + i * 2), packed);
  }
  Map<uint16_t, uint16_t>(in.subspan(i * 2), out.subspan(i * 2), F16ToBF16);
}

uint16_t F64ToBF16(double d) { return F32ToBF16(static_cast<float>(d)); }
uint16_t F64ToF16(double d) { return F32ToF16(static_cast<float>(d)); }

}  // namespace

uint16_t F32ToBF16(float f) {
  if (std::isnan(f))
    return kBF16NaN;
  const uint32_t u = std::bit_cast<uint32_t>(f);
  return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

uint16_t F32ToF16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const auto sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7FFFFFFFu;
  if (abs > 0x7F800000u)
    return sign | 0x7E00u;  // NaN
  // From 65520 (halfway between 65504, the largest half, and 65536) up, rounding gives Inf.
  if (abs >= 0x477FF000u)
    return sign | 0x7C00u;
  if (abs < 0x38800000u) {  // below 2^-14: a half subnormal, or zero
    const uint32_t exponent = abs >> 23;
    if (exponent < 102)
      return sign;  // below 2^-25: rounds to zero
    const uint32_t mantissa = (abs & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126 - exponent;  // to units of 2^-24
    uint32_t result = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (result & 1u)))
      ++result;
    return static_cast<uint16_t>(sign | result);
  }
  const uint32_t rebiased = abs - (112u << 23);  // exponent bias 127 -> 15
  return static_cast<uint16_t>(sign | ((rebiased + 0xFFFu + ((rebiased >> 13) & 1u)) >> 13));
}

float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0x1F) {
    // Inf, or NaN quietened with its payload kept (what x86's conversion does).
    return std::bit_cast<float>(sign | 0x7F800000u | (mantissa != 0 ? 0x400000u : 0u) |
                                (mantissa << 13));
  }
  if (exponent == 0) {
    if (mantissa == 0)
      return std::bit_cast<float>(sign);
    uint32_t e = 113;  // normalise the subnormal: 2^-14 has biased float exponent 113
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --e;
    }
    return std::bit_cast<float>(sign | (e << 23) | ((mantissa & 0x3FFu) << 13));
  }
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

float BF16ToF32(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

bool CanCast(DType from, DType to) {
  auto ok = [](DType d) {
    return d == DType::kF64 || d == DType::kF32 || d == DType::kF16 || d == DType::kBF16;
  };
  return ok(from) && ok(to);
}

void CastElements(DType from, DType to, ByteSpan in, MutableByteSpan out) {
  using D = DType;
  if (from == to) {
    std::memcpy(out.data(), in.data(), in.size());
    return;
  }
  const bool simd = HasF16C();
  if (from == D::kF32 && to == D::kBF16) {
    simd ? F32ToBF16Avx2(in, out) : Map<float, uint16_t>(in, out, F32ToBF16);
  } else if (from == D::kF32 && to == D::kF16) {
    simd ? F32ToF16Avx2(in, out) : Map<float, uint16_t>(in, out, F32ToF16);
  } else if (from == D::kF16 && to == D::kF32) {
    simd ? F16ToF32Avx2(in, out) : Map<uint16_t, float>(in, out, F16ToF32);
  } else if (from == D::kBF16 && to == D::kF32) {
    Map<uint16_t, float>(in, out, BF16ToF32);
  } else if (from == D::kF32 && to == D::kF64) {
    Map<float, double>(in, out, [](float f) { return static_cast<double>(f); });
  } else if (from == D::kF64 && to == D::kF32) {
    Map<double, float>(in, out, [](double d) { return static_cast<float>(d); });
  } else if (from == D::kF64 && to == D::kBF16) {
    Map<double, uint16_t>(in, out, F64ToBF16);
  } else if (from == D::kF64 && to == D::kF16) {
    Map<double, uint16_t>(in, out, F64ToF16);
  } else if (from == D::kF16 && to == D::kF64) {
    Map<uint16_t, double>(in, out, [](uint16_t h) { return static_cast<double>(F16ToF32(h)); });
  } else if (from == D::kBF16 && to == D::kF64) {
    Map<uint16_t, double>(in, out, [](uint16_t b) { return static_cast<double>(BF16ToF32(b)); });
  } else if (from == D::kF16 && to == D::kBF16) {
    simd ? F16ToBF16Avx2(in, out) : Map<uint16_t, uint16_t>(in, out, F16ToBF16);
  } else if (from == D::kBF16 && to == D::kF16) {
    simd ? BF16ToF16Avx2(in, out) : Map<uint16_t, uint16_t>(in, out, BF16ToF16);
  }
}

}  // namespace cw
