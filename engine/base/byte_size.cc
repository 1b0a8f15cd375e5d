#include "engine/base/byte_size.h"

#include <array>
#include <cctype>
#include <string>
#include <utility>

#include "engine/base/checked_math.h"

namespace cw {

Result<uint64_t> ParseByteSize(std::string_view text) {
  const std::string original(text);
  auto bad = [&] {
    return Error(ErrorCode::kUsage, "bad size \"" + original +
                                        "\": expected a number with an optional unit "
                                        "(KB MB GB TB, KiB MiB GiB TiB)");
  };
  uint64_t value = 0;
  size_t i = 0;
  for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
    const auto v = CheckedAdd(value * 10, static_cast<uint64_t>(text[i] - '0'));
    if (!v || value > UINT64_MAX / 10)
      return bad();
    value = *v;
  }
  if (i == 0)
    return bad();
  const std::string_view unit = text.substr(i);
  static constexpr std::array<std::pair<std::string_view, uint64_t>, 10> kUnits = {{
      {"", 1},
      {"B", 1},
      {"KB", 1'000},
      {"MB", 1'000'000},
      {"GB", 1'000'000'000},
      {"TB", 1'000'000'000'000},
      {"KiB", 1ull << 10},
      {"MiB", 1ull << 20},
      {"GiB", 1ull << 30},
      {"TiB", 1ull << 40},
  }};
  for (const auto& [name, scale] : kUnits) {
    if (unit == name) {
      const auto bytes = CheckedMul(value, scale);
      if (!bytes)
        return bad();
      return *bytes;
    }
  }
  return bad();
}

}  // namespace cw
