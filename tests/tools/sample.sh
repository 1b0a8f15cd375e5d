#!/usr/bin/env bash
# The main job on the bundled sample, a tiny Qwen2-shaped HF folder (tests/data/qwen2_tiny):
# installs what is missing, builds, converts it to a MindSpore .ckpt with rules/qwen2.yaml,
# converts that back to an HF folder, and shows that the round trip is exact.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
"$root/tests/tools/install_deps.sh"
cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$root/build" -j "$(nproc)" --target convert_weight >/dev/null
cw="$root/build/cli/convert_weight"
sample="$root/tests/data/qwen2_tiny"
rules="$root/rules/qwen2.yaml"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

echo "== the sample (HF safetensors folder)"
"$cw" inspect "$sample"
echo "== HF -> MindSpore"
"$cw" convert --rules "$rules" --input "$sample" --output "$out/qwen2_tiny.ckpt"
"$cw" inspect "$out/qwen2_tiny.ckpt"
echo "== MindSpore -> HF"
"$cw" convert --rules "$rules" --input "$out/qwen2_tiny.ckpt" --output "$out/back/" --reverse \
  --config "$sample/config.json"
ls "$out/back"
cmp "$sample/model.safetensors" "$out/back/model.safetensors"
echo "round trip exact: back/model.safetensors is byte-identical to the original"
