// Sizes as users write them: "5GB" (10^9), "5GiB" (2^30), "500MB", "1024".
#pragma once

#include <cstdint>
#include <string_view>

#include "cw/error.h"

namespace cw {

Result<uint64_t> ParseByteSize(std::string_view text);

}  // namespace cw
