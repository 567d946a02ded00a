#!/usr/bin/env bash
# Builds and runs fsgate on its embedded defaults: RocksDB + local disk in ./data, listening on
# 127.0.0.1:9000. Extra arguments go to `fsgate serve` (see `fsgate serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --build-only
cargo build --release --bins
exec "${CARGO_TARGET_DIR:-target}/release/fsgate" serve "$@"
