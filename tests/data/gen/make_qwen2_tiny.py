#!/usr/bin/python3
"""Writes tests/data/qwen2_tiny: a tiny Qwen2-shaped HF checkpoint folder with the real tensor names.

Qwen2.5-0.5B's structure at toy size: grouped-query attention (4 heads, 2 KV heads), q/k/v biases,
tied embeddings (no lm_head.weight), bfloat16. Values are seeded random numbers from torch, so the
file is reproducible. safetensors is written by hand (Debian 12 has no safetensors package),
following the official layout: u64 header length, compact JSON padded with spaces to 8 bytes,
tensors back to back.
Run with Debian's python (torch 1.13): /usr/bin/python3 tests/data/gen/make_qwen2_tiny.py
"""
import json
import os
import struct

import torch

CONFIG = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_hidden_layers": 2,
    "vocab_size": 64,
    "max_position_embeddings": 128,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
}


def tensors():
    c = CONFIG
    h, inter, vocab = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    head_dim = h // c["num_attention_heads"]
    kv = c["num_key_value_heads"] * head_dim
    g = torch.Generator().manual_seed(20261128)

    def rand(*shape):
        return (torch.randn(*shape, generator=g) * 0.02).to(torch.bfloat16)

    out = {"model.embed_tokens.weight": rand(vocab, h)}
    for layer in range(c["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        out[p + "self_attn.q_proj.weight"] = rand(h, h)
        out[p + "self_attn.q_proj.bias"] = rand(h)
        out[p + "self_attn.k_proj.weight"] = rand(kv, h)
        out[p + "self_attn.k_proj.bias"] = rand(kv)
        out[p + "self_attn.v_proj.weight"] = rand(kv, h)
        out[p + "self_attn.v_proj.bias"] = rand(kv)
        out[p + "self_attn.o_proj.weight"] = rand(h, h)
        out[p + "mlp.gate_proj.weight"] = rand(inter, h)
        out[p + "mlp.up_proj.weight"] = rand(inter, h)
        out[p + "mlp.down_proj.weight"] = rand(h, inter)
        out[p + "input_layernorm.weight"] = torch.ones(h, dtype=torch.bfloat16)
        out[p + "post_attention_layernorm.weight"] = torch.ones(h, dtype=torch.bfloat16)
    out["model.norm.weight"] = torch.ones(h, dtype=torch.bfloat16)
    return out


def write_safetensors(path, named):
    header = {"__metadata__": {"format": "pt"}}
    blobs, offset = [], 0
    for name, t in named.items():
        data = t.contiguous().view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "qwen2_tiny")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 1, "eos_token_id": 2, "max_new_tokens": 16}, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(out, "model.safetensors"), tensors())


if __name__ == "__main__":
    main()
