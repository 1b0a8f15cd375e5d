// Byte views and little-endian loads/stores. The only place that reinterprets memory.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

namespace cw {

static_assert(std::endian::native == std::endian::little,
              "ConvertWeight reads and writes little-endian data in place");

using ByteSpan = std::span<const std::byte>;
using MutableByteSpan = std::span<std::byte>;

template <typename T>
requires std::is_trivially_copyable_v<T> T LoadLE(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <typename T>
requires std::is_trivially_copyable_v<T>
void StoreLE(std::byte* p, T v) { std::memcpy(p, &v, sizeof v); }

inline std::string_view AsChars(ByteSpan s) {
  return {reinterpret_cast<const char*>(s.data()), s.size()};  // NOLINT
}

inline ByteSpan AsBytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};  // NOLINT
}

template <typename T>
ByteSpan ObjectBytes(const T& v) {
  return {reinterpret_cast<const std::byte*>(&v), sizeof v};  // NOLINT
}

// Appends bytes to a growing buffer (used to build small headers and records in memory).
inline void Append(std::string& out, ByteSpan bytes) { out.append(AsChars(bytes)); }

}  // namespace cw
