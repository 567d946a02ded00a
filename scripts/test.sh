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
cargo build --release --bins
cargo test --release --workspace -- --test-threads "${FSGATE_TEST_THREADS:-4}"
