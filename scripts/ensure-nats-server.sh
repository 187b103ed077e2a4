#!/usr/bin/env bash
# Installs nats-server (Debian package) when neither NATS_SERVER_BIN nor PATH provides one.
# Tests, the demo and benchmarks start their own nats-server processes on free ports.
# On failure the last line on stderr says why and what to do (`npm run demo` shows that line).
set -uo pipefail
fail() {
  echo "ensure-nats-server: $*" >&2
  exit 1
}
if [ -n "${NATS_SERVER_BIN:-}" ]; then
  # Named explicitly: use it or say so (bus/nats-server.ts refuses a wrong one the same way).
  [ -x "${NATS_SERVER_BIN}" ] && [ -f "${NATS_SERVER_BIN}" ] && exit 0
  fail "NATS_SERVER_BIN=${NATS_SERVER_BIN} is not an executable file; fix it or unset it"
fi
if command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; then exit 0; fi
FIX="install nats-server (Debian/Ubuntu: apt-get install nats-server; else a release from https://github.com/nats-io/nats-server/releases) and put it on PATH, or set NATS_SERVER_BIN to it"
command -v apt-get >/dev/null 2>&1 || fail "nats-server is not installed and this machine has no apt-get; $FIX"
echo "nats-server not found; installing the Debian package" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || fail "nats-server is not installed and apt-get needs root (no sudo here); $FIX"
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || fail "apt-get update failed (see above); $FIX"
$SUDO apt-get install -y -qq nats-server >/dev/null || fail "apt-get install nats-server failed (see above); $FIX"
# Debian's package may start a system service on 4222; ferry never uses it.
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || fail "apt-get installed nats-server, but it is neither on PATH nor at /usr/sbin/nats-server; $FIX"
