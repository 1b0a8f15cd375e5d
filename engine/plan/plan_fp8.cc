// FP8 inputs with block scales (hf_layout.fp8_scales): each F8_E4M3 weight is paired with the
// float32 tensor named like it plus the suffix, which its step reads and dequantises with it.
#include "engine/plan/name_index.h"
#include "engine/plan/plan_context.h"

namespace cw {

void PairFp8Scales(PlanContext& ctx) {
  const auto& fp8 = ctx.rules.hf_fp8_scales;
  if (!fp8 || ctx.options.direction != Direction::kForward)
    return;
  NameIndex index(ctx.inventory.size());
  for (uint64_t i = 0; i < ctx.inventory.size(); ++i)
    (void)index.Insert(ctx.inventory[i].name, i);
  std::vector<std::string> unscaled;
  for (uint64_t i = 0; i < ctx.inventory.size(); ++i) {
    const TensorInfo& t = ctx.inventory[i];
    if (t.dtype != DType::kF8E4M3)
      continue;
    const auto scale = index.Find(t.name + fp8->suffix);
    if (!scale || ctx.inventory[*scale].dtype != DType::kF32) {
      unscaled.push_back(t.name);
      continue;
    }
    ctx.fp8_scale_of[i] = *scale;
    ctx.fp8_scales.insert(*scale);
  }
  if (!unscaled.empty()) {
    std::string list;
    for (size_t i = 0; i < unscaled.size() && i < 10; ++i)
      list += "\n    " + unscaled[i];
    if (unscaled.size() > 10)
      list += "\n    ... and " + std::to_string(unscaled.size() - 10) + " more";
    ctx.Fail(ErrorCode::kPlanInvalid,
             std::to_string(unscaled.size()) +
                 " FP8 (F8_E4M3) tensor(s) have no float32 block "
                 "scale named like them plus \"" +
                 fp8->suffix + "\":" + list,
             FileLocation(ctx.rules.file));
  }
}

}  // namespace cw
