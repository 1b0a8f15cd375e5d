#include "engine/base/text.h"

#include <string>

#include <doctest/doctest.h>

namespace cw {
namespace {

using namespace std::string_literals;

TEST_SUITE("base.text") {
  TEST_CASE("accepts every form of well-formed UTF-8 at the edges of its ranges") {
    CHECK(IsValidUtf8(""));
    CHECK(IsValidUtf8("\x00"s));
    CHECK(IsValidUtf8("layers.0.w \x7f"));
    CHECK(IsValidUtf8("\xc2\x80"));                                  // U+0080
    CHECK(IsValidUtf8("\xdf\xbf"));                                  // U+07FF
    CHECK(IsValidUtf8("\xe0\xa0\x80"));                              // U+0800
    CHECK(IsValidUtf8("\xe1\x80\x80"));                              // U+1000
    CHECK(IsValidUtf8("\xec\xbf\xbf"));                              // U+CFFF
    CHECK(IsValidUtf8("\xed\x80\x80"));                              // U+D000
    CHECK(IsValidUtf8("\xed\x9f\xbf"));                              // U+D7FF
    CHECK(IsValidUtf8("\xee\x80\x80"));                              // U+E000
    CHECK(IsValidUtf8("\xef\xbf\xbf"));                              // U+FFFF
    CHECK(IsValidUtf8("\xf0\x90\x80\x80"));                          // U+10000
    CHECK(IsValidUtf8("\xf1\x80\x80\x80"));                          // U+40000
    CHECK(IsValidUtf8("\xf3\xbf\xbf\xbf"));                          // U+FFFFF
    CHECK(IsValidUtf8("\xf4\x80\x80\x80"));                          // U+100000
    CHECK(IsValidUtf8("\xf4\x8f\xbf\xbf"));                          // U+10FFFF
    CHECK(IsValidUtf8("a \xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80"));  // é 中 😀
  }

  TEST_CASE("refuses overlong forms") {
    CHECK_FALSE(IsValidUtf8("\xc0\x80"));          // NUL in two bytes
    CHECK_FALSE(IsValidUtf8("\xc1\xbf"));          // U+007F in two bytes
    CHECK_FALSE(IsValidUtf8("\xe0\x80\xaf"));      // '/' in three bytes
    CHECK_FALSE(IsValidUtf8("\xe0\x9f\xbf"));      // U+07FF in three bytes
    CHECK_FALSE(IsValidUtf8("\xf0\x80\x80\xaf"));  // '/' in four bytes
    CHECK_FALSE(IsValidUtf8("\xf0\x8f\xbf\xbf"));  // U+FFFF in four bytes
  }

  TEST_CASE("refuses surrogates") {
    CHECK_FALSE(IsValidUtf8("\xed\xa0\x80"));              // U+D800
    CHECK_FALSE(IsValidUtf8("\xed\xbf\xbf"));              // U+DFFF
    CHECK_FALSE(IsValidUtf8("\xed\xa0\xbd\xed\xb8\x80"));  // a surrogate pair, CESU-8 style
  }

  TEST_CASE("refuses code points above U+10FFFF") {
    CHECK_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // U+110000
    CHECK_FALSE(IsValidUtf8("\xf5\x80\x80\x80"));
    CHECK_FALSE(IsValidUtf8("\xf7\xbf\xbf\xbf"));
    CHECK_FALSE(IsValidUtf8("\xf8\x88\x80\x80\x80"));  // old five-byte form
    CHECK_FALSE(IsValidUtf8("\xff"));
    CHECK_FALSE(IsValidUtf8("\xfe"));
  }

  TEST_CASE("refuses truncated sequences and stray continuation bytes") {
    CHECK_FALSE(IsValidUtf8("\xc3"));
    CHECK_FALSE(IsValidUtf8("\xe4\xb8"));
    CHECK_FALSE(IsValidUtf8("\xf0\x9f\x98"));
    CHECK_FALSE(IsValidUtf8("\xe4\xb8z"));  // cut short by an ASCII byte
    CHECK_FALSE(IsValidUtf8("ok \xf0\x9f"));
    CHECK_FALSE(IsValidUtf8("\x80"));
    CHECK_FALSE(IsValidUtf8("\xbf"));
    CHECK_FALSE(IsValidUtf8("\xc3\xa9\xa9"));  // one continuation byte too many
  }

  TEST_CASE("quotes text and escapes quotes and backslashes") {
    CHECK(Quoted("") == "\"\"");
    CHECK(Quoted("a/b.weight") == "\"a/b.weight\"");
    CHECK(Quoted("a\"b\\c") == "\"a\\\"b\\\\c\"");
    CHECK(Escaped("a\"b\\c") == "a\\\"b\\\\c");
  }

  TEST_CASE("quotes control bytes and invalid bytes as lower-case \\xNN") {
    CHECK(Quoted("\n\x01\x7f\x00"s) == "\"\\x0a\\x01\\x7f\\x00\"");
    CHECK(Quoted("\xff"
                 "a") == "\"\\xffa\"");
    CHECK(Quoted("\xc0\xaf") == "\"\\xc0\\xaf\"");           // overlong
    CHECK(Quoted("\xed\xa0\x80") == "\"\\xed\\xa0\\x80\"");  // surrogate
    CHECK(Quoted("x\xe4\xb8") == "\"x\\xe4\\xb8\"");         // truncated
    CHECK(Quoted("\xe4\xb8\xe4\xb8\xad") == "\"\\xe4\\xb8\xe4\xb8\xad\"");
  }

  TEST_CASE("keeps well-formed UTF-8 whole even next to invalid bytes") {
    CHECK(Quoted("\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80") ==
          "\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\"");
    CHECK(Quoted("\x01\xc3\xa9\xff") == "\"\\x01\xc3\xa9\\xff\"");
  }

  TEST_CASE("cuts long text after max_bytes bytes with an ellipsis inside the quotes") {
    CHECK(Quoted(std::string(120, 'x')) == "\"" + std::string(120, 'x') + "\"");
    CHECK(Quoted(std::string(300, 'x')) == "\"" + std::string(120, 'x') + "…\"");
    CHECK(Quoted("abcdef", 3) == "\"abc…\"");
    CHECK(Quoted("abc", 3) == "\"abc\"");
    CHECK(Quoted("abc", 0) == "\"…\"");
    CHECK(Escaped(std::string(10, 'y'), 4) == "yyyy…");
    CHECK(Quoted("\x01\x02\x03", 2) == "\"\\x01\\x02…\"");  // counted in input bytes
  }

  TEST_CASE("the cut never splits a character") {
    const std::string euro = "\xe2\x82\xac";  // three bytes
    CHECK(Quoted(euro + euro, 3) == "\"" + euro + "…\"");
    CHECK(Quoted(euro + euro, 4) == "\"" + euro + "…\"");
    CHECK(Quoted(euro + euro, 5) == "\"" + euro + "…\"");
    CHECK(Quoted(euro + euro, 6) == "\"" + euro + euro + "\"");
    CHECK(Quoted(euro, 2) == "\"…\"");
    CHECK(Quoted("ab\xf0\x9f\x98\x80", 5) == "\"ab…\"");
    for (size_t max = 0; max <= 40; ++max) {
      std::string text;
      for (int k = 0; k < 10; ++k)
        text += "a\xc3\xa9\xf0\x9f\x98\x80";
      const std::string escaped = Escaped(text, max);
      const size_t kept =
          escaped.size() -
          (escaped.size() >= 3 && escaped.compare(escaped.size() - 3, 3, "…") == 0 ? 3 : 0);
      CAPTURE(max);
      CHECK(kept <= max);
      CHECK(IsValidUtf8(escaped));
      CHECK(text.compare(0, kept, escaped, 0, kept) == 0);
    }
  }
}

}  // namespace
}  // namespace cw
