#include "tests/support/inventory_builder.h"

#include <algorithm>
#include <stdexcept>

namespace cw::test {

TensorInfo Info(const std::string& name, DType dtype, Shape shape) {
  TensorInfo t{name, dtype, std::move(shape), 0};
  t.byte_size = *ByteSize(dtype, t.shape);
  return t;
}

std::vector<TensorInfo> LlamaInventory(const LlamaShape& s) {
  const auto u = [](int v) { return static_cast<uint64_t>(v); };
  const uint64_t head_dim = u(s.head_dim ? s.head_dim : s.hidden / s.heads);
  const uint64_t q_rows = u(s.heads) * head_dim, kv_rows = u(s.kv_heads) * head_dim;
  std::vector<TensorInfo> out;
  auto add = [&](const std::string& name, Shape shape, DType dtype) {
    out.push_back(Info(name, dtype, std::move(shape)));
  };
  add("model.embed_tokens.weight", {u(s.vocab), u(s.hidden)}, s.dtype);
  for (int l = 0; l < s.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {u(s.hidden)}, s.dtype);
    add(p + "mlp.down_proj.weight", {u(s.hidden), u(s.intermediate)}, s.dtype);
    add(p + "mlp.gate_proj.weight", {u(s.intermediate), u(s.hidden)}, s.dtype);
    add(p + "mlp.up_proj.weight", {u(s.intermediate), u(s.hidden)}, s.dtype);
    add(p + "post_attention_layernorm.weight", {u(s.hidden)}, s.dtype);
    if (s.qkv_bias)
      add(p + "self_attn.k_proj.bias", {kv_rows}, s.dtype);
    add(p + "self_attn.k_proj.weight", {kv_rows, u(s.hidden)}, s.dtype);
    add(p + "self_attn.o_proj.weight", {u(s.hidden), q_rows}, s.dtype);
    if (s.qkv_bias)
      add(p + "self_attn.q_proj.bias", {q_rows}, s.dtype);
    add(p + "self_attn.q_proj.weight", {q_rows, u(s.hidden)}, s.dtype);
    if (s.inv_freq)
      add(p + "self_attn.rotary_emb.inv_freq", {head_dim / 2}, DType::kF32);
    if (s.qkv_bias)
      add(p + "self_attn.v_proj.bias", {kv_rows}, s.dtype);
    add(p + "self_attn.v_proj.weight", {kv_rows, u(s.hidden)}, s.dtype);
  }
  add("model.norm.weight", {u(s.hidden)}, s.dtype);
  if (s.lm_head)
    add("lm_head.weight", {u(s.vocab), u(s.hidden)}, s.dtype);
  return out;
}

std::string LlamaConfigJson(const LlamaShape& s) {
  std::string j = "{\n";
  j += "  \"architectures\": [\"" +
       std::string(s.model_type == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM") + "\"],\n";
  j += "  \"model_type\": \"" + s.model_type + "\",\n";
  j += "  \"hidden_size\": " + std::to_string(s.hidden) + ",\n";
  j += "  \"intermediate_size\": " + std::to_string(s.intermediate) + ",\n";
  j += "  \"num_attention_heads\": " + std::to_string(s.heads) + ",\n";
  j += "  \"num_hidden_layers\": " + std::to_string(s.layers) + ",\n";
  j += "  \"num_key_value_heads\": " + std::to_string(s.kv_heads) + ",\n";
  if (s.head_dim)
    j += "  \"head_dim\": " + std::to_string(s.head_dim) + ",\n";
  if (s.model_type == "llama")
    j += "  \"attention_bias\": " + std::string(s.qkv_bias ? "true" : "false") + ",\n";
  j += "  \"rms_norm_eps\": 1e-06,\n";
  j += "  \"rope_scaling\": null,\n";
  j += "  \"tie_word_embeddings\": " + std::string(s.tied ? "true" : "false") + ",\n";
  j += "  \"vocab_size\": " + std::to_string(s.vocab) + "\n}\n";
  return j;
}

ParamInputs LlamaParams(const LlamaShape& s) {
  ParamInputs p;
  auto config = ParseConfigJson(LlamaConfigJson(s), "config.json");
  if (!config.ok())
    throw std::runtime_error(config.error().ToString());
  p.config = std::move(config).value();
  return p;
}

std::vector<TensorInfo> SortedByName(std::vector<TensorInfo> tensors) {
  std::sort(tensors.begin(), tensors.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
  return tensors;
}

}  // namespace cw::test
