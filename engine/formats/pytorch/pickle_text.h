// Decoders for the scalar encodings of a pickle: protocol-0 text lines, LONG bytes, UTF-8 and
// Latin-1 text. Pure functions over their arguments; used by the pickle machine.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engine/base/bytes.h"
#include "engine/formats/pytorch/pickle_reader.h"

namespace cw::pytorch {

struct ParsedNumber {
  Kind kind = Kind::kInt;  // kInt, kBigInt, kBool or kFloat
  int64_t int_value = 0;
  double float_value = 0;
};

// LONG1/LONG4 payload: little-endian two's complement; kBigInt when it does not fit int64.
ParsedNumber DecodeLong(ByteSpan bytes);

// A protocol-0 number line: FLOAT when `is_float`, else INT/LONG (decimal, optional sign and
// trailing 'L'); with `int_opcode`, "00" and "01" are False and True. nullopt when malformed.
std::optional<ParsedNumber> ParseNumberLine(std::string_view line, bool is_float, bool int_opcode);

// STRING's argument: a Python literal in quotes with backslash escapes.
std::optional<std::string> DecodeQuoted(std::string_view line);

// UNICODE's argument (raw-unicode-escape): \uXXXX and \UXXXXXXXX escapes, other bytes Latin-1.
// Returns UTF-8.
std::optional<std::string> DecodeRawUnicodeEscape(std::string_view line);

// UTF-8 as Python's "surrogatepass" decoder accepts it (no overlongs, code points <= U+10FFFF),
// which is how pickle decodes BINUNICODE. Unlike cw::IsValidUtf8, surrogates are accepted.
bool IsSurrogatePassUtf8(std::string_view text);

// The Latin-1 bytes of UTF-8 text whose code points are all below 256 (what
// _codecs.encode(text, "latin1") returns); nullopt otherwise.
std::optional<std::string> Utf8ToLatin1(std::string_view text);

void AppendUtf8(std::string& out, uint32_t code_point);

// "0x2a"
std::string HexByte(uint8_t byte);

}  // namespace cw::pytorch
