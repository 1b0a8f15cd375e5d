#include "engine/base/text.h"

namespace cw {
namespace {

// Length of the well-formed UTF-8 sequence starting at text[i] (Unicode table 3-7), 0 if none.
size_t Utf8SequenceLength(std::string_view text, size_t i) {
  const auto lead = static_cast<unsigned char>(text[i]);
  if (lead < 0x80)
    return 1;
  size_t n = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    n = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    n = 3;
    if (lead == 0xE0)
      low = 0xA0;  // overlong
    if (lead == 0xED)
      high = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    n = 4;
    if (lead == 0xF0)
      low = 0x90;  // overlong
    if (lead == 0xF4)
      high = 0x8F;  // past U+10FFFF
  } else {
    return 0;
  }
  if (text.size() - i < n)
    return 0;
  for (size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(text[i + k]);
    if (b < low || b > high)
      return 0;
    low = 0x80;
    high = 0xBF;
  }
  return n;
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const size_t n = Utf8SequenceLength(text, i);
    if (n == 0)
      return false;
    i += n;
  }
  return true;
}

std::string Escaped(std::string_view text, size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    const auto b = static_cast<unsigned char>(c);
    const size_t sequence = b >= 0x80 ? Utf8SequenceLength(text, i) : 0;  // 0: a single byte
    const size_t step = sequence == 0 ? 1 : sequence;
    if (step > max_bytes - i) {  // i <= max_bytes holds here
      out += "…";
      break;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if ((b >= 0x20 && b < 0x7F) || sequence > 0) {
      out.append(text.substr(i, step));
    } else {
      out += "\\x";
      out += kHex[b >> 4];
      out += kHex[b & 0xF];
    }
    i += step;
  }
  return out;
}

std::string Quoted(std::string_view text, size_t max_bytes) {
  return "\"" + Escaped(text, max_bytes) + "\"";
}

}  // namespace cw
