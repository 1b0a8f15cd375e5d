// From the layout items of one strategy file to checked parameter layouts (parallel_strategy.h):
// stage prefixes, the two tensor map forms, and what is refused.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cw/error.h"
#include "engine/formats/mindspore/parallel_strategy.h"
#include "engine/formats/mindspore/strategy_wire.h"

namespace cw::mindspore {

struct StagePrefixed {
  uint32_t stage = 0;
  std::string_view name;  // a view into the name it was split from
};

// "<stage>-<name>" as merge_pipeline_strategys() writes names: decimal digits, '-', a non-empty
// name, split at the first '-' (so names holding '-' keep it; MindSpore's own reader splits at
// every '-' and fails on them). nullopt for any other name, or a stage over 2^32 - 1.
std::optional<StagePrefixed> SplitStagePrefix(std::string_view name);

// Checks one layout item of `file` and derives its saved layout; `name` is the parameter's name
// without prefix, for messages. Errors are located at the item's ParallelLayouts.
Result<ParameterLayout> ReadParameterLayout(const LayoutItem& item, std::string_view name,
                                            const std::string& file);

}  // namespace cw::mindspore
