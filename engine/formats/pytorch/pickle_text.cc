#include "engine/formats/pytorch/pickle_text.h"

#include <charconv>

namespace cw::pytorch {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

std::optional<uint32_t> ParseHex(std::string_view digits) {
  uint32_t value = 0;
  for (const char c : digits) {
    const int v = HexValue(c);
    if (v < 0)
      return std::nullopt;
    value = value * 16 + static_cast<uint32_t>(v);
  }
  return value;
}

// One UTF-8 sequence starting at text[i]: its code point and length, or nullopt.
std::optional<std::pair<uint32_t, size_t>> NextCodePoint(std::string_view text, size_t i) {
  const auto lead = static_cast<unsigned char>(text[i]);
  if (lead < 0x80)
    return std::pair<uint32_t, size_t>{lead, 1};
  size_t length = 0;
  uint32_t cp = 0;
  uint32_t min = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2, cp = lead & 0x1Fu, min = 0x80;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3, cp = lead & 0x0Fu, min = 0x800;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4, cp = lead & 0x07u, min = 0x10000;
  } else {
    return std::nullopt;
  }
  if (text.size() - i < length)
    return std::nullopt;
  for (size_t k = 1; k < length; ++k) {
    const auto c = static_cast<unsigned char>(text[i + k]);
    if ((c & 0xC0) != 0x80)
      return std::nullopt;
    cp = (cp << 6) | (c & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF)
    return std::nullopt;
  return std::pair<uint32_t, size_t>{cp, length};
}

}  // namespace

ParsedNumber DecodeLong(ByteSpan bytes) {
  const size_t n = bytes.size();
  if (n == 0)
    return {Kind::kInt, 0, 0};
  const bool negative = (static_cast<uint8_t>(bytes[n - 1]) & 0x80) != 0;
  // Bytes past the eighth must only repeat the sign for the value to fit in int64.
  for (size_t i = 8; i < n; ++i) {
    if (static_cast<uint8_t>(bytes[i]) != (negative ? 0xFF : 0x00))
      return {Kind::kBigInt, 0, 0};
  }
  if (n > 8 && ((static_cast<uint8_t>(bytes[7]) & 0x80) != 0) != negative)
    return {Kind::kBigInt, 0, 0};
  uint64_t value = negative ? ~uint64_t{0} : 0;
  for (size_t i = 0; i < n && i < 8; ++i) {
    value &= ~(uint64_t{0xFF} << (8 * i));
    value |= uint64_t{static_cast<uint8_t>(bytes[i])} << (8 * i);
  }
  return {Kind::kInt, static_cast<int64_t>(value), 0};
}

std::optional<ParsedNumber> ParseNumberLine(std::string_view line, bool is_float, bool int_opcode) {
  if (is_float) {
    double value = 0;
    const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), value);
    if (ec != std::errc() || end != line.data() + line.size())
      return std::nullopt;
    return ParsedNumber{Kind::kFloat, 0, value};
  }
  if (int_opcode && (line == "00" || line == "01"))
    return ParsedNumber{Kind::kBool, line == "01" ? 1 : 0, 0};
  if (!line.empty() && line.back() == 'L')
    line.remove_suffix(1);
  if (!line.empty() && line.front() == '+')
    line.remove_prefix(1);
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), value);
  if (ec == std::errc::result_out_of_range && end == line.data() + line.size())
    return ParsedNumber{Kind::kBigInt, 0, 0};
  if (ec != std::errc() || end != line.data() + line.size())
    return std::nullopt;
  return ParsedNumber{Kind::kInt, value, 0};
}

std::optional<std::string> DecodeQuoted(std::string_view line) {
  if (line.size() < 2 || (line.front() != '\'' && line.front() != '"') ||
      line.back() != line.front())
    return std::nullopt;
  const std::string_view body = line.substr(1, line.size() - 2);
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '\\') {
      out += body[i];
      continue;
    }
    if (++i == body.size())
      return std::nullopt;
    const char c = body[i];
    static constexpr std::string_view kFrom = "\\'\"nrtabfv";
    static constexpr std::string_view kTo = "\\'\"\n\r\t\a\b\f\v";
    if (const size_t k = kFrom.find(c); k != std::string_view::npos) {
      out += kTo[k];
    } else if (c == 'x') {
      if (body.size() - i < 3)
        return std::nullopt;
      const auto value = ParseHex(body.substr(i + 1, 2));
      if (!value)
        return std::nullopt;
      out += static_cast<char>(*value);
      i += 2;
    } else if (c >= '0' && c <= '7') {
      uint32_t value = 0;
      size_t digits = 0;
      for (; digits < 3 && i < body.size() && body[i] >= '0' && body[i] <= '7'; ++digits, ++i)
        value = value * 8 + static_cast<uint32_t>(body[i] - '0');
      --i;
      out += static_cast<char>(value & 0xFF);
    } else {  // unknown escapes stay as written, as in Python
      out += '\\';
      out += c;
    }
  }
  return out;
}

std::optional<std::string> DecodeRawUnicodeEscape(std::string_view line) {
  std::string out;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '\\' && i + 1 < line.size() && (line[i + 1] == 'u' || line[i + 1] == 'U')) {
      const size_t digits = line[i + 1] == 'u' ? 4 : 8;
      if (line.size() - i - 2 < digits)
        return std::nullopt;
      const auto cp = ParseHex(line.substr(i + 2, digits));
      if (!cp || *cp > 0x10FFFF)
        return std::nullopt;
      AppendUtf8(out, *cp);
      i += 1 + digits;
    } else {
      AppendUtf8(out, static_cast<unsigned char>(line[i]));
    }
  }
  return out;
}

bool IsSurrogatePassUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const auto next = NextCodePoint(text, i);
    if (!next)
      return false;
    i += next->second;
  }
  return true;
}

std::optional<std::string> Utf8ToLatin1(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const auto next = NextCodePoint(text, i);
    if (!next || next->first > 0xFF)
      return std::nullopt;
    out += static_cast<char>(next->first);
    i += next->second;
  }
  return out;
}

void AppendUtf8(std::string& out, uint32_t code_point) {
  // Surrogates are encoded like any other code point, as Python's "surrogatepass" does.
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    out += static_cast<char>(0xC0 | (code_point >> 6));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else if (code_point < 0x10000) {
    out += static_cast<char>(0xE0 | (code_point >> 12));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code_point >> 18));
    out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  }
}

std::string HexByte(uint8_t byte) {
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string("0x") + kHex[byte >> 4] + kHex[byte & 15];
}

}  // namespace cw::pytorch
