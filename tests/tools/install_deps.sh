#!/usr/bin/env bash
# Installs the Debian 12 packages ConvertWeight needs to build and test. Idempotent: does nothing
# when everything is present. Run as root (or through sudo).
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config clang-format
  libyaml-cpp-dev libre2-dev libprotobuf-dev protobuf-compiler libzip-dev zlib1g-dev
  nlohmann-json3-dev libcli11-dev doctest-dev
  # Real clients for the interoperability tests.
  python3 python3-torch python3-protobuf python3-numpy python3-jsonschema python3-yaml unzip
  # The benchmark script times commands with GNU time.
  time
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
