#include "tests/bench/model_shapes.h"

namespace cw::bench {
namespace {

const ModelShape kShapes[] = {
    {"llama2-7b", "llama", "LlamaForCausalLM", 32000, 4096, 11008, 32, 32, 0, false, false},
    {"qwen2-7b", "qwen2", "Qwen2ForCausalLM", 152064, 3584, 18944, 28, 4, 0, true, false},
    {"mixtral-8x7b", "mixtral", "MixtralForCausalLM", 32000, 4096, 14336, 32, 8, 8, false, false},
    // DeepSeek-V3's sizes (256 routed experts of width 2048) under Mixtral's names, so that
    // rules/mixtral.yaml plans it: a stress shape for the planner, not a real checkpoint.
    {"deepseek-v3-like", "mixtral", "MixtralForCausalLM", 129280, 7168, 2048, 128, 128, 256, false,
     false},
};

void Add(std::vector<TensorInfo>& out, std::string name, DType dtype, Shape shape) {
  const uint64_t bytes = *ByteSize(dtype, shape);
  out.push_back(TensorInfo{std::move(name), dtype, std::move(shape), bytes});
}

}  // namespace

std::optional<ModelShape> FindShape(const std::string& name) {
  for (const ModelShape& s : kShapes) {
    if (s.name == name)
      return s;
  }
  return std::nullopt;
}

std::vector<TensorInfo> Tensors(const ModelShape& s, int layers, DType dtype) {
  const uint64_t head_dim = s.hidden / s.heads;
  const uint64_t kv = s.kv_heads * head_dim;
  std::vector<TensorInfo> out;
  Add(out, "model.embed_tokens.weight", dtype, {s.vocab, s.hidden});
  for (int l = 0; l < layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    Add(out, p + "input_layernorm.weight", dtype, {s.hidden});
    Add(out, p + "self_attn.q_proj.weight", dtype, {s.hidden, s.hidden});
    Add(out, p + "self_attn.k_proj.weight", dtype, {kv, s.hidden});
    Add(out, p + "self_attn.v_proj.weight", dtype, {kv, s.hidden});
    if (s.qkv_bias) {
      Add(out, p + "self_attn.q_proj.bias", dtype, {s.hidden});
      Add(out, p + "self_attn.k_proj.bias", dtype, {kv});
      Add(out, p + "self_attn.v_proj.bias", dtype, {kv});
    }
    Add(out, p + "self_attn.o_proj.weight", dtype, {s.hidden, s.hidden});
    Add(out, p + "post_attention_layernorm.weight", dtype, {s.hidden});
    if (s.experts == 0) {
      Add(out, p + "mlp.gate_proj.weight", dtype, {s.intermediate, s.hidden});
      Add(out, p + "mlp.up_proj.weight", dtype, {s.intermediate, s.hidden});
      Add(out, p + "mlp.down_proj.weight", dtype, {s.hidden, s.intermediate});
      continue;
    }
    Add(out, p + "block_sparse_moe.gate.weight", dtype, {s.experts, s.hidden});
    for (uint64_t e = 0; e < s.experts; ++e) {
      const std::string x = p + "block_sparse_moe.experts." + std::to_string(e) + ".";
      Add(out, x + "w1.weight", dtype, {s.intermediate, s.hidden});
      Add(out, x + "w2.weight", dtype, {s.hidden, s.intermediate});
      Add(out, x + "w3.weight", dtype, {s.intermediate, s.hidden});
    }
  }
  Add(out, "model.norm.weight", dtype, {s.hidden});
  if (!s.tied)
    Add(out, "lm_head.weight", dtype, {s.vocab, s.hidden});
  return out;
}

std::string ConfigJson(const ModelShape& s, int layers, DType dtype) {
  std::string j = "{\n";
  auto field = [&](const std::string& k, const std::string& v) {
    j += "  \"" + k + "\": " + v + ",\n";
  };
  field("architectures", "[\"" + s.architecture + "\"]");
  field("model_type", "\"" + s.model_type + "\"");
  field("vocab_size", std::to_string(s.vocab));
  field("hidden_size", std::to_string(s.hidden));
  field("intermediate_size", std::to_string(s.intermediate));
  field("num_attention_heads", std::to_string(s.heads));
  field("num_key_value_heads", std::to_string(s.kv_heads));
  field("num_hidden_layers", std::to_string(layers));
  if (s.experts != 0) {
    field("num_local_experts", std::to_string(s.experts));
    field("num_experts_per_tok", "2");
  }
  field("torch_dtype", "\"" + std::string(Info(dtype).torch) + "\"");
  j += "  \"tie_word_embeddings\": " + std::string(s.tied ? "true" : "false") + "\n}\n";
  return j;
}

}  // namespace cw::bench
