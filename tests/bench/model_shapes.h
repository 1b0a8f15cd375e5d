// Real tensor names and shapes of a few model configurations, at any number of layers.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "engine/tensor/tensor.h"

namespace cw::bench {

struct ModelShape {
  std::string name;
  std::string model_type;  // config.json "model_type"
  std::string architecture;
  uint64_t vocab, hidden, intermediate, heads, kv_heads, experts;  // experts == 0: dense
  bool qkv_bias;
  bool tied;
};

std::optional<ModelShape> FindShape(const std::string& name);
// HF names in the order HF writes them: embedding, layers, final norm, head.
std::vector<TensorInfo> Tensors(const ModelShape& shape, int layers, DType dtype);
std::string ConfigJson(const ModelShape& shape, int layers, DType dtype);

// DeepSeek-V3 at its real sizes (MLA attention, `experts` routed experts of width 2048, one shared
// expert), `layers` layers of which the first is dense when there are two or more, no MTP layer.
// With `fp8`, the linear weights of the layers are float8_e4m3fn, each with its float32
// <name>_scale_inv of 128 x 128 blocks, as in the official release; the rest is bfloat16 (the
// router bias float32).
std::vector<TensorInfo> DeepSeekV3Tensors(int layers, uint64_t experts, bool fp8);
std::string DeepSeekV3ConfigJson(int layers, uint64_t experts, bool fp8);

}  // namespace cw::bench
