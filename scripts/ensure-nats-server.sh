#!/usr/bin/env bash
# Installs nats-server (Debian package) when neither NATS_SERVER_BIN nor PATH provides one.
# Tests, the demo and benchmarks start their own nats-server processes on free ports.
set -euo pipefail
if [ -n "${NATS_SERVER_BIN:-}" ] && [ -x "${NATS_SERVER_BIN}" ]; then exit 0; fi
if command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; then exit 0; fi
echo "nats-server not found; installing the Debian package" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq nats-server >/dev/null
# Debian's package may start a system service on 4222; ferry never uses it.
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]
