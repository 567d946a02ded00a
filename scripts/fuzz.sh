#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/) for SECONDS each (default 60), FSGATE_FUZZ_JOBS
# (default 2) at a time, from its seed corpus (fuzz/corpus/TARGET; copied, so what a run
# finds stays out of the checkout). A crash, a leak, an out-of-memory or a timeout fails the
# run; libFuzzer writes the input to fuzz/artifacts/TARGET/ (make it a regression test).
# Needs the nightly toolchain (cargo-fuzz, installed here if missing, builds with it).
#
#   scripts/fuzz.sh             the test command's short run, 60 s a target
#   scripts/fuzz.sh 3600        long runs; or a fixed count: FSGATE_FUZZ_RUNS=10000000
#   scripts/fuzz.sh 60 request  one target
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(ls fuzz/fuzz_targets | sed 's/\.rs$//')
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo +nightly install cargo-fuzz --locked --quiet
fi
target_dir="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
# Every target, in one build (they share the dependencies).
(cd fuzz && cargo +nightly fuzz build --target-dir "$target_dir")
bin_dir="$target_dir/x86_64-unknown-linux-gnu/release"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ -n "${FSGATE_FUZZ_RUNS:-}" ]; then
  limit="-runs=$FSGATE_FUZZ_RUNS"
else
  limit="-max_total_time=$secs"
fi

run_one() {
  local t=$1
  mkdir -p "$work/$t" "fuzz/artifacts/$t"
  if "$bin_dir/$t" "$work/$t" "fuzz/corpus/$t" "$limit" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 >"$work/$t.log" 2>&1; then
    local runs rate
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$work/$t.log" | grep -oE '[0-9]+$' || echo '?')
    rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$work/$t.log" | grep -oE '[0-9]+$' || echo '?')
    echo "fuzz: $t: $runs executions, $rate/s, no crash"
  else
    echo "fuzz: $t FAILED:" >&2
    grep -E 'ERROR|panicked|SUMMARY|artifact|Test unit written' "$work/$t.log" | head -20 >&2
    tail -40 "$work/$t.log" >&2
    return 1
  fi
}
export -f run_one
export work bin_dir limit
printf '%s\n' "${targets[@]}" | xargs -P "${FSGATE_FUZZ_JOBS:-2}" -I{} bash -c 'run_one "$1"' _ {}
