// Text helpers shared by the format modules: UTF-8 validation and quoting for error messages.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace cw {

// True when `text` is well-formed UTF-8 (Unicode table 3-7): no overlong forms, no surrogates,
// nothing above U+10FFFF, no truncated sequence.
bool IsValidUtf8(std::string_view text);

// `text` escaped for a message, without quotes: `"` and `\` behind a backslash, printable ASCII
// as is, well-formed UTF-8 sequences kept whole, every other byte as \xNN (lower-case hex). Cut
// after at most `max_bytes` bytes of `text`, never inside a UTF-8 sequence, with "…" appended.
std::string Escaped(std::string_view text, size_t max_bytes = 120);

// Escaped(text, max_bytes) in double quotes.
std::string Quoted(std::string_view text, size_t max_bytes = 120);

}  // namespace cw
