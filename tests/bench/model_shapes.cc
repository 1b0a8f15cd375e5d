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

namespace {

struct DeepSeekV3 {
  uint64_t vocab = 129280, hidden = 7168, intermediate = 18432, moe_intermediate = 2048;
  uint64_t heads = 128, q_lora = 1536, kv_lora = 512, nope = 128, rope = 64, v_head = 128;
};

int DenseLayers(int layers) { return layers >= 2 ? 1 : 0; }

}  // namespace

std::vector<TensorInfo> DeepSeekV3Tensors(int layers, uint64_t experts, bool fp8) {
  const DeepSeekV3 d;
  std::vector<TensorInfo> out;
  auto linear = [&](const std::string& name, uint64_t rows, uint64_t cols) {
    Add(out, name, fp8 ? DType::kF8E4M3 : DType::kBF16, {rows, cols});
    if (fp8) {
      const std::string stem = name.substr(0, name.size() - std::string("weight").size());
      Add(out, stem + "weight_scale_inv", DType::kF32, {(rows + 127) / 128, (cols + 127) / 128});
    }
  };
  auto mlp = [&](const std::string& p, uint64_t width) {
    linear(p + "gate_proj.weight", width, d.hidden);
    linear(p + "up_proj.weight", width, d.hidden);
    linear(p + "down_proj.weight", d.hidden, width);
  };
  Add(out, "model.embed_tokens.weight", DType::kBF16, {d.vocab, d.hidden});
  for (int l = 0; l < layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    Add(out, p + "input_layernorm.weight", DType::kBF16, {d.hidden});
    Add(out, p + "post_attention_layernorm.weight", DType::kBF16, {d.hidden});
    linear(p + "self_attn.q_a_proj.weight", d.q_lora, d.hidden);
    Add(out, p + "self_attn.q_a_layernorm.weight", DType::kBF16, {d.q_lora});
    linear(p + "self_attn.q_b_proj.weight", d.heads * (d.nope + d.rope), d.q_lora);
    linear(p + "self_attn.kv_a_proj_with_mqa.weight", d.kv_lora + d.rope, d.hidden);
    Add(out, p + "self_attn.kv_a_layernorm.weight", DType::kBF16, {d.kv_lora});
    linear(p + "self_attn.kv_b_proj.weight", d.heads * (d.nope + d.v_head), d.kv_lora);
    linear(p + "self_attn.o_proj.weight", d.hidden, d.heads * d.v_head);
    if (l < DenseLayers(layers)) {
      mlp(p + "mlp.", d.intermediate);
      continue;
    }
    Add(out, p + "mlp.gate.weight", DType::kBF16, {experts, d.hidden});
    Add(out, p + "mlp.gate.e_score_correction_bias", DType::kF32, {experts});
    mlp(p + "mlp.shared_experts.", d.moe_intermediate);
    for (uint64_t e = 0; e < experts; ++e)
      mlp(p + "mlp.experts." + std::to_string(e) + ".", d.moe_intermediate);
  }
  Add(out, "model.norm.weight", DType::kBF16, {d.hidden});
  Add(out, "lm_head.weight", DType::kBF16, {d.vocab, d.hidden});
  return out;
}

std::string DeepSeekV3ConfigJson(int layers, uint64_t experts, bool fp8) {
  const DeepSeekV3 d;
  std::string j = "{\n";
  auto field = [&](const std::string& k, const std::string& v) {
    j += "  \"" + k + "\": " + v + ",\n";
  };
  field("architectures", "[\"DeepseekV3ForCausalLM\"]");
  field("model_type", "\"deepseek_v3\"");
  field("vocab_size", std::to_string(d.vocab));
  field("hidden_size", std::to_string(d.hidden));
  field("intermediate_size", std::to_string(d.intermediate));
  field("moe_intermediate_size", std::to_string(d.moe_intermediate));
  field("num_attention_heads", std::to_string(d.heads));
  field("num_key_value_heads", std::to_string(d.heads));
  field("q_lora_rank", std::to_string(d.q_lora));
  field("kv_lora_rank", std::to_string(d.kv_lora));
  field("qk_nope_head_dim", std::to_string(d.nope));
  field("qk_rope_head_dim", std::to_string(d.rope));
  field("v_head_dim", std::to_string(d.v_head));
  field("n_routed_experts", std::to_string(experts));
  field("n_shared_experts", "1");
  field("num_experts_per_tok", "8");
  field("first_k_dense_replace", std::to_string(DenseLayers(layers)));
  field("num_nextn_predict_layers", "0");
  field("num_hidden_layers", std::to_string(layers));
  if (fp8) {
    field("quantization_config",
          "{\"activation_scheme\": \"dynamic\", \"fmt\": \"e4m3\", "
          "\"quant_method\": \"fp8\", \"weight_block_size\": [128, 128]}");
  }
  j += "  \"torch_dtype\": \"bfloat16\"\n}\n";
  return j;
}

}  // namespace cw::bench
