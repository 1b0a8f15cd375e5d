// Overflow-checked arithmetic for sizes and offsets read from files.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

namespace cw {

inline std::optional<uint64_t> CheckedAdd(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r))
    return std::nullopt;
  return r;
}

inline std::optional<uint64_t> CheckedMul(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r))
    return std::nullopt;
  return r;
}

// a + b, or UINT64_MAX when that overflows: for totals that are reported, not used as sizes.
inline uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  return CheckedAdd(a, b).value_or(UINT64_MAX);
}

// Product of all values, nullopt on overflow; 1 for an empty list.
inline std::optional<uint64_t> CheckedProduct(std::span<const uint64_t> values) {
  uint64_t r = 1;
  for (uint64_t v : values) {
    if (__builtin_mul_overflow(r, v, &r))
      return std::nullopt;
  }
  return r;
}

// True when [offset, offset + n) lies inside [0, size), compared by subtraction.
inline bool FitsIn(uint64_t offset, uint64_t n, uint64_t size) {
  return offset <= size && n <= size - offset;
}

}  // namespace cw
