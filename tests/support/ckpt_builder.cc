#include "tests/support/ckpt_builder.h"

#include <cstring>
#include <stdexcept>

namespace cw::test::ckpt {
namespace {

template <typename T>
std::string LittleEndian(std::initializer_list<T> values) {
  std::string out;
  for (const T v : values) {
    char bytes[sizeof(T)];
    std::memcpy(bytes, &v, sizeof(T));  // the test hosts are little-endian, as the engine asserts
    out.append(bytes, sizeof(T));
  }
  return out;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  throw std::invalid_argument("not a hex digit");
}

}  // namespace

std::string Varint(uint64_t value) {
  std::string out;
  do {
    const auto low = static_cast<uint8_t>(value & 0x7F);
    value >>= 7;
    out.push_back(static_cast<char>(value != 0 ? low | 0x80 : low));
  } while (value != 0);
  return out;
}

std::string Key(uint64_t field, int wire_type) {
  return Varint((field << 3) | static_cast<uint64_t>(wire_type));
}

std::string VarintField(uint64_t field, uint64_t value) { return Key(field, 0) + Varint(value); }

std::string LenField(uint64_t field, std::string_view payload) {
  return Key(field, 2) + Varint(payload.size()) + std::string(payload);
}

std::string TensorProto(const TensorSpec& tensor) {
  std::string out;
  if (tensor.packed_dims) {
    std::string packed;
    for (const int64_t d : tensor.dims)
      packed += Varint(static_cast<uint64_t>(d));
    out += LenField(1, packed);
  } else {
    for (const int64_t d : tensor.dims)
      out += VarintField(1, static_cast<uint64_t>(d));
  }
  return out + LenField(2, tensor.type) + LenField(3, tensor.content);
}

std::string Value(std::string_view tag, std::string_view tensor_proto) {
  return LenField(1, tag) + LenField(2, tensor_proto);
}

std::string Record(std::string_view value) { return LenField(1, value); }

std::string TensorRecord(std::string_view tag, const TensorSpec& tensor) {
  return Record(Value(tag, TensorProto(tensor)));
}

std::string CrcTrailer(uint32_t crc) {
  std::string out = "crc_num";
  out.append(6, '\0');
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((crc >> shift) & 0xFF));
  return out;
}

std::string F32(std::initializer_list<float> values) { return LittleEndian(values); }
std::string I32(std::initializer_list<int32_t> values) { return LittleEndian(values); }

std::string Utf32(std::u32string_view text) {
  std::string out;
  for (const char32_t c : text) {
    for (int shift = 0; shift < 32; shift += 8)
      out.push_back(static_cast<char>((static_cast<uint32_t>(c) >> shift) & 0xFF));
  }
  return out;
}

std::string FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0)
    throw std::invalid_argument("odd number of hex digits");
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2)
    out.push_back(static_cast<char>(HexDigit(hex[i]) * 16 + HexDigit(hex[i + 1])));
  return out;
}

std::string ToHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    const auto b = static_cast<uint8_t>(c);
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

}  // namespace cw::test::ckpt
