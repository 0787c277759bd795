#!/usr/bin/env bash
# The load harness command: installs nginx if missing, builds kgate and the harness in release
# mode, and prints one table (kgate vs direct vs nginx, concurrency 1 and 64).
# Usage: loadtest/run.sh [kgate-load flags, e.g. --seconds 5]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nginx-light >/dev/null
fi
cargo build --release -q -p kgate-cli --bin kgate -p kgate-loadtest --bin kgate-load
exec target/release/kgate-load --kgate target/release/kgate "$@"
