#!/usr/bin/env bash
# Runs kgate's fuzz targets (fuzz/, cargo fuzz with libFuzzer), each for SECONDS (default 30),
# one after the other; exits non-zero at the first crash, property failure, timeout or
# out-of-memory. scripts/test.sh calls it with the default.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      every target, or the ones named
#
# Longer runs: scripts/fuzz.sh 3600 jwt_oidc (an hour on one target). For long runs an
# optimised build finds more per second, and AddressSanitizer watches the C code under ring:
#
#   KGATE_FUZZ_RELEASE=1 KGATE_FUZZ_SANITIZER=address scripts/fuzz.sh 3600
#
# More libFuzzer options go in KGATE_FUZZ_ARGS (e.g. KGATE_FUZZ_ARGS="-max_len=16384").
#
# Inputs: each target starts from its committed seeds, fuzz/corpus/<target>/ (read only here),
# and from what earlier runs on this machine found, target/fuzz/corpus/<target>/, where new
# inputs go. A failing input is saved in target/fuzz/artifacts/<target>/; replay it with
#   cargo +nightly fuzz run --dev -s none <target> <file>   (the libFuzzer build), or
#   cargo run -p kgate-fuzz --bin <target> -- <file>        (a plain build, any toolchain).
#
# Toolchain: cargo fuzz's is nightly: the nightly toolchain if installed, else the default one
# with RUSTC_BOOTSTRAP=1 (without a sanitizer no unstable flag is used, so either works).
# cargo-fuzz is installed (cargo install) if missing. The build goes to target/ like every other
# (target/x86_64-unknown-linux-gnu/), so it is cleaned and cached with it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${1:-30}"
shift || true
case "$seconds" in
    '' | *[!0-9]*)
        echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
        exit 2
        ;;
esac

say() { printf '\n==> %s\n' "$*"; }

if ! cargo fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz (cargo install)"
    cargo install cargo-fuzz --locked
fi

toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi
# No sanitizer by default: kgate is safe Rust (unsafe_code is forbidden), and AddressSanitizer
# slows every execution of a short run for the sake of the C and assembly under ring.
build=(-s "${KGATE_FUZZ_SANITIZER:-none}")
if [ -n "${KGATE_FUZZ_RELEASE:-}" ]; then
    build+=(--release)
else
    # Unoptimised kgate code over dependencies at opt-level 1 (the dev profile): a fraction of
    # the optimised build's compile time, fast enough for short runs.
    build+=(--dev)
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo "${toolchain[@]}" fuzz list)
    if [ "${#targets[@]}" -eq 0 ]; then
        echo "cargo fuzz list found no fuzz target" >&2
        exit 1
    fi
fi

say "cargo fuzz build ${build[*]}"
cargo "${toolchain[@]}" fuzz build "${build[@]}"

# shellcheck disable=SC2206 # KGATE_FUZZ_ARGS is a list of options
extra=(${KGATE_FUZZ_ARGS:-})
for target in "${targets[@]}"; do
    say "fuzzing $target for ${seconds}s"
    corpus="target/fuzz/corpus/$target"
    artifacts="target/fuzz/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    # The first corpus folder receives new inputs; the committed seeds stay as they are. A
    # single input running over 10 s counts as a failure (a hang), as does one over 2 GiB.
    if ! cargo "${toolchain[@]}" fuzz run "${build[@]}" "$target" "$corpus" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 "${extra[@]}"; then
        echo "fuzz target $target failed; the input is in $artifacts/ (see the top of scripts/fuzz.sh to replay it)" >&2
        exit 1
    fi
done
say "fuzzing passed (${#targets[@]} targets, ${seconds}s each)"
