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

}  // namespace cw::bench
