#!/usr/bin/env bash
# Runs every test: unit tests of each crate, then the conformance suite, which starts the real
# fsgate binary on free ports with temporary data directories and drives it with aws cli,
# boto3, the MinIO SDK, rclone (sync and FUSE mount), s3cmd, the AWS SDK for Rust and the AWS
# SDK for JavaScript v3.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
export FSGATE_PYTHON="${FSGATE_VENV:-$PWD/.venv}/bin/python"
# One profile (release) for the binaries the tests start and for the tests: RocksDB builds once.
# The tests' build has crash points (`fsgate_store::crash`, armed only by FSGATE_CRASH_AT);
# `cargo build --release` leaves them out.
features=(--features fsgate-store/crash-points)
cargo build --release --bins "${features[@]}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
cargo test --release --workspace --lib --bins --tests "${features[@]}" -- --test-threads "${FSGATE_TEST_THREADS:-4}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line with the totals of every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i == "passed;") p += $(i-1); if ($i == "failed;") f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
# Every fuzz target for a minute, when the nightly toolchain (which cargo-fuzz builds with) is
# here. Long runs: scripts/fuzz.sh 3600.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  scripts/fuzz.sh "${FSGATE_FUZZ_SECONDS:-60}" || status=1
else
  echo "fuzz: no nightly toolchain here; fuzz targets not run" >&2
fi
exit "$status"
