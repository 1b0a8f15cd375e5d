// Inventories (tensor names, dtypes, shapes) of small llama-family checkpoints with their real
// tensor names, plus the matching config.json, for planner tests that need no tensor bytes.
#pragma once

#include <string>
#include <vector>

#include "engine/ruleset/params.h"
#include "engine/tensor/tensor.h"

namespace cw::test {

struct LlamaShape {
  int layers = 2;
  int hidden = 32;
  int heads = 4;
  int kv_heads = 4;
  int head_dim = 0;  // 0: hidden / heads, and config.json has no head_dim
  int intermediate = 48;
  int vocab = 64;
  bool qkv_bias = false;  // q/k/v biases present (Qwen2)
  bool lm_head = true;    // lm_head.weight present
  bool tied = false;      // config.json tie_word_embeddings
  bool inv_freq = false;  // rotary_emb.inv_freq buffers present
  std::string model_type = "llama";
  DType dtype = DType::kBF16;
};

TensorInfo Info(const std::string& name, DType dtype, Shape shape);

// HF names in the order HF writes them: embedding, layer by layer, final norm, head.
std::vector<TensorInfo> LlamaInventory(const LlamaShape& s);
// The config.json text of such a checkpoint.
std::string LlamaConfigJson(const LlamaShape& s);
// ParamInputs with that config.json parsed (file name "config.json").
ParamInputs LlamaParams(const LlamaShape& s);

// Tensors sorted by name, for comparing inventories regardless of order.
std::vector<TensorInfo> SortedByName(std::vector<TensorInfo> tensors);

}  // namespace cw::test
