#!/usr/bin/env bash
# The storage benchmark command: installs etcd (etcd-server) and protoc with Google's .proto files
# (protobuf-compiler, libprotobuf-dev: kgate's etcd client needs them to build) if missing,
# builds kgate and the harness in release mode, and prints one table: kgate up on the embedded
# store, kgate up on etcd, and the real kube-apiserver on etcd (built from Kubernetes' Go modules
# by scripts/kube-reference.sh, which needs Go), through the API.
# Usage: loadtest/storebench.sh [kgate-storebench flags, e.g. --seconds 5 --pods 20000]
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
[ -x /usr/bin/etcd ] || missing+=(etcd-server)
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
[ -f /usr/include/google/protobuf/descriptor.proto ] || missing+=(libprotobuf-dev)
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
cargo build --release -q -p kgate-cli --bin kgate -p kgate-loadtest --bin kgate-storebench
scripts/kube-reference.sh build >/dev/null
exec target/release/kgate-storebench --kgate target/release/kgate --etcd /usr/bin/etcd "$@"
