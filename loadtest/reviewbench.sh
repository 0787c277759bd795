#!/usr/bin/env bash
# The webhook benchmark command: builds kgate and the harness in release mode, runs `kgate
# webhook` pinned to CPU 0 and the harness on CPU 1, and prints one table (TokenReview cached and
# uncached, SubjectAccessReview; at 1 and 16 connections).
# Usage: loadtest/reviewbench.sh [kgate-reviewbench flags, e.g. --seconds 10]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p kgate-cli --bin kgate -p kgate-loadtest --bin kgate-reviewbench
exec taskset -c 1 target/release/kgate-reviewbench --kgate target/release/kgate --webhook-cpu 0 "$@"
