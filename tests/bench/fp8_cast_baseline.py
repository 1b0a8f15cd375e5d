#!/usr/bin/python3
"""The Python peer of the FP8 benchmark, as DeepSeek's fp8_cast_bf16 works: per shard, load_file,
multiply every float8_e4m3fn weight by its 128 x 128 block scale (<name>_scale_inv) in float32,
round to bfloat16, drop the scales, save_file. Needs torch 2.x and safetensors (the newer-Debian
chroot). No renaming: the MCore layout is not what that script makes, only the dequantisation.

    fp8_cast_baseline.py IN_FOLDER OUT_FOLDER
"""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def dequantize(weight, scale, block=128):
    rows, cols = weight.shape
    expanded = scale.repeat_interleave(block, 0)[:rows].repeat_interleave(block, 1)[:, :cols]
    return (weight.to(torch.float32) * expanded).to(torch.bfloat16)


def main(folder, output):
    out = Path(output)
    out.mkdir()
    weight_map = {}
    for shard in sorted(Path(folder).glob("*.safetensors")):
        tensors = load_file(shard)
        result = {}
        for name, t in tensors.items():
            if name.endswith("_scale_inv"):
                continue
            scale = tensors.get(name + "_scale_inv")
            result[name] = dequantize(t, scale) if t.dtype == torch.float8_e4m3fn else t
        save_file(result, out / shard.name, metadata={"format": "pt"})
        weight_map.update({k: shard.name for k in result})
    (out / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
