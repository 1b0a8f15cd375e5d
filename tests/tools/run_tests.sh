#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite: first under AddressSanitizer and
# UndefinedBehaviorSanitizer, then the optimised build. Exits non-zero when any test fails, or when
# building and testing left files that git would see (scratch files belong in build folders).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
"$root/tests/tools/install_deps.sh"

jobs="$(nproc)"
git_status() { git -C "$root" status --porcelain --untracked-files=all 2>/dev/null || true; }
status_before="$(git_status)"
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

status_after="$(git_status)"
if [ "$status_after" != "$status_before" ]; then
  echo "run_tests.sh: building and testing changed what git status shows:" >&2
  diff <(echo "$status_before") <(echo "$status_after") >&2 || true
  exit 1
fi
