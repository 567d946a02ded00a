#!/usr/bin/env bash
# The soak: one fsgate under `fsctl bench mixed --versioning --multipart` at 16 connections
# for DURATION (default 1h), sampling every minute the server's resident memory, open file
# descriptors, throughput and p99. Writes conformance/perf/soak/soak.json (the series) and,
# with matplotlib, soak.png; then checks what a soak must show and exits 1 when it does not:
# no error, resident memory flat within 10 % after the first fifth (warm-up: RocksDB's
# memtables and block cache fill), descriptors other than RocksDB's table files (which grow
# with the audit log) flat, p99 of the last tenth within 2x of the tenth after the warm-up.
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
cargo build --release --bins -q
bin="$CARGO_TARGET_DIR/release"
out="$root/conformance/perf/soak"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
FSGATE_ROOT_USER=soakadmin FSGATE_ROOT_PASSWORD=soakadmin-secret \
  "$bin/fsgate" serve --address "127.0.0.1:$port" --data "$work/data" >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
export FSCTL_ENDPOINT="http://127.0.0.1:$port" FSCTL_ACCESS_KEY=soakadmin FSCTL_SECRET_KEY=soakadmin-secret
echo "soak: $duration of mixed (versioning, multipart) at 16 connections, $size objects" >&2
"$bin/fsctl" --json bench mixed --versioning --multipart --concurrency 16 --objects 2000 \
  --size "$size" --duration "$duration" --interval 60s --watch-pid "$pid" >"$out/soak.json"
python3 "$root/conformance/perf/soak_check.py" "$out/soak.json" "$out/soak.png"
