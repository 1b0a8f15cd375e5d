#!/usr/bin/python3
"""What the reference converter does, as the benchmark's baseline: load the whole state dict of a
sharded .bin folder with torch.load, rename every tensor, and save it with torch.save.

    torch_baseline.py IN_FOLDER OUT_FILE

The renaming is the llama HF -> MindSpore mapping (rules/llama.yaml), written the way the reference
tool's llama converter writes it: string replacements over each name.
"""

import sys
from pathlib import Path

import torch

REPLACEMENTS = [
    ("model.embed_tokens.weight", "model.tok_embeddings.embedding_weight"),
    (".self_attn.q_proj.", ".attention.wq."),
    (".self_attn.k_proj.", ".attention.wk."),
    (".self_attn.v_proj.", ".attention.wv."),
    (".self_attn.o_proj.", ".attention.wo."),
    (".mlp.gate_proj.", ".feed_forward.w1."),
    (".mlp.down_proj.", ".feed_forward.w2."),
    (".mlp.up_proj.", ".feed_forward.w3."),
    (".input_layernorm.", ".attention_norm."),
    (".post_attention_layernorm.", ".ffn_norm."),
    ("model.norm.weight", "model.norm_out.weight"),
]


def rename(name):
    for old, new in REPLACEMENTS:
        name = name.replace(old, new)
    return name


def main(folder, output):
    state = {}
    for shard in sorted(Path(folder).glob("*.bin")):
        state.update(torch.load(shard, map_location="cpu"))
    torch.save({rename(k): v for k, v in state.items()}, output)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
