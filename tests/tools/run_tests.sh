#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite: first under AddressSanitizer and
# UndefinedBehaviorSanitizer, then the optimised build. Exits non-zero when any test fails.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
"$root/tests/tools/install_deps.sh"

jobs="$(nproc)"
run() {
  local dir="$1"
  shift
  cmake -S "$root" -B "$root/$dir" -G Ninja "$@" >/dev/null
  cmake --build "$root/$dir" -j "$jobs"
  ctest --test-dir "$root/$dir" -j "$jobs" --output-on-failure
}

# The sanitizers abort on the first finding, so any report fails its test.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run build-asan -DCMAKE_BUILD_TYPE=Debug -DCW_SANITIZE=ON
run build -DCMAKE_BUILD_TYPE=Release
