#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (build-fuzz) and runs each for a while.
#
#   tests/fuzz/run_fuzzers.sh [SECONDS [PARSER...]]     SECONDS per target, default 60
#
# At most CW_FUZZ_JOBS (default 2) fuzzers run at once. Each one starts from its seeds
# (corpus/<parser>/), its regressions and what earlier runs found (build-fuzz/fuzz-out/<parser>/
# corpus/, kept between runs), with its dictionary. Every crash, leak, timeout or out-of-memory
# input is copied to regressions/<parser>/ as <kind>-<sha1>: rename it after what it found once
# fixed. Exits non-zero when any target found something. Logs: build-fuzz/fuzz-out/<parser>.log.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$root/build-fuzz"
out="$build/fuzz-out"
seconds="${1:-60}"
shift || true
parsers=("$@")
[[ ${#parsers[@]} -gt 0 ]] || parsers=(safetensors ckpt strategy hf_index zip pickle torch rules)
jobs="${CW_FUZZ_JOBS:-2}"

# Longest input each target tries: room for a few small tensors (rules: a bundled rule file and
# an inventory), short enough to stay fast.
declare -A max_len=([safetensors]=16384 [ckpt]=16384 [strategy]=16384 [hf_index]=8192 [zip]=16384
  [pickle]=8192 [torch]=16384 [rules]=16384)

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCW_FUZZ=ON >/dev/null
cmake --build "$build" --target "${parsers[@]/%/_fuzzer}"

export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Runs one target, leaving its exit status in $out/<parser>.rc.
run_one() {
  local parser="$1" rc=0
  mkdir -p "$out/$parser/corpus" "$out/$parser/artifacts" "$here/regressions/$parser"
  "$build/tests/fuzz/${parser}_fuzzer" -max_total_time="$seconds" \
    -max_len="${max_len[$parser]:-16384}" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -dict="$here/corpus/$parser.dict" -artifact_prefix="$out/$parser/artifacts/" \
    "$out/$parser/corpus" "$here/corpus/$parser" "$here/regressions/$parser" \
    >"$out/$parser.log" 2>&1 || rc=$?
  echo "$rc" >"$out/$parser.rc"
}

mkdir -p "$out"
rm -f "$out"/*/artifacts/*
for parser in "${parsers[@]}"; do
  while [[ $(jobs -rp | wc -l) -ge $jobs ]]; do
    wait -n
  done
  run_one "$parser" &
done
wait

status=0
for parser in "${parsers[@]}"; do
  result=ok
  rc="$(cat "$out/$parser.rc")"
  [[ "$rc" == 0 ]] || result="failed (exit $rc)"
  for artifact in "$out/$parser/artifacts"/*; do
    [[ -e "$artifact" ]] || continue
    kind="$(basename "$artifact")"
    kind="${kind%%-*}"
    [[ "$kind" == slow ]] && continue  # slow-unit: reported by -timeout only when over it
    mkdir -p "$here/regressions/$parser"
    cp "$artifact" "$here/regressions/$parser/$kind-$(sha1sum <"$artifact" | cut -c1-12)"
    result="found $kind: $artifact"
  done
  [[ "$result" == ok ]] || status=1
  stats="$(grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
    "$out/$parser.log" | sed 's/^stat:://' | tr -s ' \n' ' ' || true)"
  echo "$parser: ${seconds}s, ${stats:-no stats} -> $result"
done
exit "$status"
