#!/usr/bin/env bash
# The cluster benchmark command: builds kgate and the harness in release mode (kgate's etcd
# client is generated at build time: protoc and Google's .proto files are installed first if
# missing), and prints one table: scheduling throughput, time to all Running and kgate's memory
# with `kgate up --nodes N` for each N.
# Usage: loadtest/clusterbench.sh [kgate-clusterbench flags, e.g. --nodes-list 100,1000 --pods 10000]
set -euo pipefail
cd "$(dirname "$0")/.."
packages=()
for pkg in protobuf-compiler libprotobuf-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || packages+=("$pkg")
done
if [ "${#packages[@]}" -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] && as_root=() || as_root=(sudo)
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${packages[@]}" >/dev/null
fi
cargo build --release -q -p kgate-cli --bin kgate -p kgate-loadtest --bin kgate-clusterbench
exec target/release/kgate-clusterbench --kgate target/release/kgate "$@"
