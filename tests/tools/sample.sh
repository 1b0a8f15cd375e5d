#!/usr/bin/env bash
# The main job on the bundled sample (a tiny Qwen2-shaped HF folder): installs what is missing,
# builds, lists its tensors, writes it out in every format, and checks that each copy lists the
# same tensors (names, dtypes, shapes, bytes).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
"$root/tests/tools/install_deps.sh"
cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$root/build" -j "$(nproc)" --target convert_weight >/dev/null
cw="$root/build/cli/convert_weight"
sample="$root/tests/data/qwen2_tiny"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

# The tensor lines of `inspect` (all but the summary line, which names the format).
tensor_lines() { "$cw" inspect "$1" | sed '$d'; }

"$cw" inspect "$sample"
tensor_lines "$sample" >"$out/original.txt"
for target in model.ckpt pytorch_model.bin model.safetensors folder/; do
  "$cw" rewrite "$sample" "$out/$target"
  tensor_lines "$out/$target" | diff "$out/original.txt" - >/dev/null
  echo "wrote $target: same tensors"
done
