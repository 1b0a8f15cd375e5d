#!/usr/bin/python3
"""The safetensors peer of the benchmark: per shard, load_file, rename every tensor, save_file, as
the usual Python converters do (DeepSeek's fp8_cast_bf16 works shard by shard this way). Needs the
safetensors package (the newer-Debian chroot); the renaming is torch_baseline.py's.

    safetensors_baseline.py IN_FOLDER OUT_FOLDER
"""

import json
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file

from torch_baseline import rename


def main(folder, output):
    out = Path(output)
    out.mkdir()
    weight_map = {}
    for shard in sorted(Path(folder).glob("*.safetensors")):
        tensors = {rename(k): v for k, v in load_file(shard).items()}
        save_file(tensors, out / shard.name, metadata={"format": "ms"})
        weight_map.update({k: shard.name for k in tensors})
    (out / "param_name_map.json").write_text(json.dumps(weight_map))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
