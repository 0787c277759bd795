#!/usr/bin/env bash
# The whole test suite, from a fresh Debian with the Rust toolchain: installs what the suite
# needs (only what is missing), then runs fmt, clippy, the build of the kgate binary and of the
# real Kubernetes (tests/kube-reference), every test of the workspace, end-to-end and
# differential tests with the real kubectl and kube-apiserver included, and the fuzz targets for
# 30 s each. Idempotent, no prompts; exits non-zero on the first failure.
#
# One end-to-end file alone, after a build: cargo test -p kgate-e2e --test rbac
# (KGATE_E2E_KEEP=1 keeps each test's folder with the kgate logs; a failing test keeps it too.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\n==> %s\n' "$*"; }

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -n)
else
    SUDO=()
fi

# --- what the suite needs -------------------------------------------------------------------

# Debian packages: curl (the raw HTTPS requests of the end-to-end tests, the kubectl download),
# etcd-server (the etcd backend's tests start a real etcd), protobuf-compiler and libprotobuf-dev
# (the etcd client's gRPC code is generated at build time; its protos import Google's
# descriptor.proto, which libprotobuf-dev ships), python3-jwt and python3-cryptography (PyJWT,
# the independent verifier of ServiceAccount tokens), g++ (libFuzzer, built for the fuzz targets).
APT_PACKAGES=(curl ca-certificates etcd-server protobuf-compiler libprotobuf-dev python3 python3-jwt python3-cryptography g++)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    installed "$pkg" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# kubectl: the default one and the oldest and newest the suite drives (1.29, 1.33). Machines of
# this project have them (Google Cloud SDK); elsewhere they come from dl.k8s.io.
declare -A KUBECTL_VERSIONS=([1.29]=v1.29.15 [1.32]=v1.32.5 [1.33]=v1.33.1)
kubectl_dir=""
if command -v kubectl >/dev/null 2>&1; then
    kubectl_dir="$(dirname "$(readlink -f "$(command -v kubectl)")")"
fi
arch="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
fetch_kubectl() { # $1 = version, $2 = destination
    say "installing kubectl $1 as $2"
    local tmp
    tmp="$(mktemp)"
    curl -fsSL --retry 3 -o "$tmp" "https://dl.k8s.io/release/$1/bin/linux/$arch/kubectl"
    curl -fsSL --retry 3 -o "$tmp.sha256" "https://dl.k8s.io/release/$1/bin/linux/$arch/kubectl.sha256"
    echo "$(cat "$tmp.sha256")  $tmp" | sha256sum --check --quiet
    "${SUDO[@]}" install -m 0755 "$tmp" "$2"
    rm -f "$tmp" "$tmp.sha256"
}
if ! command -v kubectl >/dev/null 2>&1; then
    fetch_kubectl "${KUBECTL_VERSIONS[1.32]}" /usr/local/bin/kubectl
fi
for minor in 1.29 1.33; do
    if ! command -v "kubectl.$minor" >/dev/null 2>&1 &&
        { [ -z "$kubectl_dir" ] || [ ! -x "$kubectl_dir/kubectl.$minor" ]; } &&
        [ ! -x "/usr/bin/kubectl.$minor" ] && [ ! -x "/usr/local/bin/kubectl.$minor" ]; then
        fetch_kubectl "${KUBECTL_VERSIONS[$minor]}" "/usr/local/bin/kubectl.$minor"
    fi
done

# Rust components.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    say "installing rustfmt and clippy (rustup)"
    rustup component add rustfmt clippy
fi

# Node.js and the end-to-end tests' OpenID provider (tests/oidc-provider: the npm package
# oidc-provider, which needs Node >= 20.19). `npm ci` runs when node_modules is missing or older
# than package-lock.json.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    say "installing nodejs npm (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends nodejs npm
fi
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
    echo "node $(node --version) is too old for tests/oidc-provider (needs >= 20.19)" >&2
    exit 1
fi
oidc_dir=tests/oidc-provider
if [ ! -d "$oidc_dir/node_modules" ] || [ "$oidc_dir/package-lock.json" -nt "$oidc_dir/node_modules" ]; then
    say "npm ci in $oidc_dir"
    (cd "$oidc_dir" && npm ci --no-audit --no-fund)
    touch "$oidc_dir/node_modules"
fi

# Go (>= 1.24, or >= 1.21 that fetches the toolchain go.mod asks for from the module proxy):
# tests/kube-reference builds the real kube-apiserver, kube-controller-manager, kube-scheduler
# and etcd from Kubernetes' Go modules, the referee of the differential suites. Machines of this
# project have Go; elsewhere Debian's golang-go is tried.
if ! command -v go >/dev/null 2>&1; then
    say "installing golang-go (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends golang-go
fi
if ! go version | awk '{split(substr($3, 3), v, "."); exit !(v[1] > 1 || (v[1] == 1 && v[2] >= 21))}'; then
    echo "$(go version) cannot build tests/kube-reference (needs Go >= 1.21 to fetch 1.24)" >&2
    exit 1
fi

# --- the checks -----------------------------------------------------------------------------

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

say "cargo build -p kgate-cli --bin kgate"
cargo build -p kgate-cli --bin kgate

say "scripts/kube-reference.sh build (kube-apiserver & co. from Kubernetes' Go modules)"
# A first build takes minutes on 2 cores; Go's caches make the next a link of seconds.
scripts/kube-reference.sh build

say "cargo test --workspace"
# The end-to-end tests use target/debug/kgate, built just above. The differential suites
# (kgate against kube-apiserver) append their counts to the summary printed below.
summary="$PWD/target/differential-summary.txt"
rm -f "$summary"
KGATE_DIFFERENTIAL_SUMMARY="$summary" cargo test --workspace
say "differential suites (agreed / total; the rest is tests/kube-reference/known-differences.md)"
if [ ! -s "$summary" ]; then
    echo "no differential suite reported its counts" >&2
    exit 1
fi
sort "$summary"

# Each fuzz target (fuzz/) for 30 s from its committed seeds; any crash or broken property fails
# the suite. Longer runs: see scripts/fuzz.sh.
say "scripts/fuzz.sh (fuzz targets)"
scripts/fuzz.sh

say "all tests passed"
