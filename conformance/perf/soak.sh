#!/usr/bin/env bash
# The soak: one fsgate under `fsctl bench mixed --versioning --multipart` at 16 connections
# for DURATION (default 1h), sampling every minute the server's resident memory, open file
# descriptors, throughput and p99. Writes conformance/perf/soak/soak.json (the series) and,
# with matplotlib, soak.png; then checks what a soak must show and exits 1 when it does not:
# no error, resident memory flat within 10 % after the first fifth (warm-up: RocksDB's
# memtables and block cache fill; it lasts until the block cache is full, when that is later),
# descriptors other than RocksDB's table files (which grow with the audit log) flat, p99 of the
# last tenth within 2x of the tenth after the warm-up. Beside the series, soak-rocksdb.jsonl
# holds RocksDB's own memory gauges (memtables, block cache, table readers) each minute, from
# the server's /metrics, so the plot shows which part of resident memory is RocksDB's.
#
#   conformance/perf/soak.sh [DURATION] [SIZE]      e.g. 1h 128KiB (defaults), 10m 4KiB
#
# The test command runs the same for 60 s (conformance/tests/soak.rs).
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
duration=${1:-1h}
size=${2:-128KiB}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fsgate-ci-target}"
scripts/deps.sh --build-only
# The plot needs matplotlib: in the suite's virtual environment (scripts/deps.sh makes it).
python="${FSGATE_VENV:-$root/.venv}/bin/python"
[ -x "$python" ] || python=python3
"$python" -c 'import matplotlib' 2>/dev/null || "$python" -m pip install -q matplotlib >&2 ||
  echo "soak: no matplotlib, so no plot" >&2
cargo build --release --bins -q
bin="$CARGO_TARGET_DIR/release"
out="$root/conformance/perf/soak"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'kill "$pid" "$sampler" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
FSGATE_ROOT_USER=soakadmin FSGATE_ROOT_PASSWORD=soakadmin-secret \
FSGATE_METRICS_TOKEN=soak-metrics \
  "$bin/fsgate" serve --address "127.0.0.1:$port" --data "$work/data" >"$work/server.log" 2>&1 &
pid=$!
sampler=
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
# RocksDB's memory gauges and mimalloc's committed memory (fsgate's own allocations) each
# minute, as JSON lines {"t": seconds, "memtables": MiB, ..., "mimalloc": MiB}.
start=$(date +%s)
: >"$out/soak-rocksdb.jsonl"
while sleep 60; do
  curl -sf -H 'Authorization: Bearer soak-metrics' "http://127.0.0.1:$port/metrics" |
    awk -v t=$(($(date +%s) - start)) -F'[" ]' '
      /^fsgate_(rocksdb_memory|allocator_committed)_bytes\{/ { v[$2] = $NF / 1048576 }
      END { printf "{\"t\": %d", t; for (k in v) printf ", \"%s\": %.1f", k, v[k]; print "}" }' \
    >>"$out/soak-rocksdb.jsonl" || break
done &
sampler=$!
export FSCTL_ENDPOINT="http://127.0.0.1:$port" FSCTL_ACCESS_KEY=soakadmin FSCTL_SECRET_KEY=soakadmin-secret
echo "soak: $duration of mixed (versioning, multipart) at 16 connections, $size objects" >&2
"$bin/fsctl" --json bench mixed --versioning --multipart --concurrency 16 --objects 2000 \
  --size "$size" --duration "$duration" --interval 60s --watch-pid "$pid" >"$out/soak.json"
kill "$sampler" 2>/dev/null || true
"$python" "$root/conformance/perf/soak_check.py" "$out/soak.json" "$out/soak.png" "$out/soak-rocksdb.jsonl"
