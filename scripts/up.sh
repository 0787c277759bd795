#!/usr/bin/env bash
# Builds kgate (release) and runs `kgate up`: the gateway, the embedded control plane and the
# admin kubeconfig in DATA_DIR (default .kgate). Installs the one build tool a fresh Debian with
# the Rust toolchain lacks (protoc and Google's well-known .proto files, for the etcd client's
# generated code) if they are missing.
# Any argument goes to `kgate up`, e.g. scripts/up.sh --listen 127.0.0.1:7443.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v protoc >/dev/null 2>&1 || [ ! -f /usr/include/google/protobuf/descriptor.proto ]; then
    echo "==> installing protobuf-compiler libprotobuf-dev (apt-get)" >&2
    SUDO=()
    [ "$(id -u)" -eq 0 ] || SUDO=(sudo -n)
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends protobuf-compiler libprotobuf-dev
fi

args=("$@")
if [[ " ${args[*]} " != *" --data-dir "* ]]; then
    args=(--data-dir .kgate "${args[@]}")
fi
exec cargo run --release -p kgate-cli --bin kgate -- up "${args[@]}"
