#!/usr/bin/env bash
# The referee: the real kube-apiserver (and, on demand, kube-controller-manager and
# kube-scheduler) built from Kubernetes' own Go modules (tests/kube-reference/go.mod), run on
# loopback beside etcd.
#
#   scripts/kube-reference.sh build
#       Builds the three binaries and etcd (Go's module and build caches make a second build cost
#       seconds) into target/kube-reference/bin and prints that folder.
#
#   scripts/kube-reference.sh up DIR [--controllers] [--durable] [-- EXTRA KUBE-APISERVER FLAGS...]
#       Starts etcd and kube-apiserver on free loopback ports, with certificates and
#       service-account keys made now, `--authorization-mode=Node,RBAC` and kubelet client
#       credentials. Writes into DIR:
#         admin.kubeconfig        a system:masters client certificate
#         ca.crt                  the CA of the serving certificate (and of client certificates)
#         client-ca.crt/.key      the CA kube-apiserver trusts for client certificates, so that
#                                 tests can make users of their own (same as ca.crt/ca.key)
#         kubelet-client-ca.crt   the CA of kube-apiserver's kubelet client certificate, for
#                                 simulated nodes to trust
#         sa.key / sa.pub         the service-account signing key pair
#         server                  the API server's URL
#         logs/                   each process's output (NAME.log) and pid (NAME.pid)
#         ready                   touched once /readyz answers ok
#       With --controllers, the real kube-controller-manager and kube-scheduler start too, each
#       under its own identity (system:kube-controller-manager, system:kube-scheduler).
#       etcd skips fsync unless --durable (for benchmarks: kgate's own store syncs).
#       Extra flags replace the defaults of the same name; --authorization-config replaces
#       --authorization-mode. Stops everything on SIGTERM or SIGINT.
#
# Why 1.34.2: the newest patch release of the first minor after the API kgate serves (1.33);
# its Go modules are the ones the project reads for kube's semantics, and client-go 1.34 reads
# 1.33 objects unchanged.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODULE="$ROOT/tests/kube-reference"
BIN="${KUBE_REFERENCE_BIN:-$ROOT/target/kube-reference/bin}"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'kube-reference: %s\n' "$*" >&2; exit 1; }

build() {
    command -v go >/dev/null 2>&1 || die "go is not installed (needs Go >= 1.24)"
    mkdir -p "$BIN"
    # `tool` is go.mod's list of the three commands; the module cache and the build cache make
    # a repeated build a link check of a few seconds.
    # The version kube's own build stamps (hack/lib/version.sh), so that clients and discovery
    # see v1.34.2 rather than v0.0.0-master.
    local version
    version="$(cd "$MODULE" && go list -m -f '{{.Version}}' k8s.io/kubernetes)"
    local minor="${version#v1.}"
    minor="${minor%%.*}"
    local ldflags=""
    local pkg
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
        ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    (cd "$MODULE" && GOFLAGS="${GOFLAGS:-} -mod=readonly" go build -ldflags "$ldflags" -o "$BIN/" tool) ||
        die "go build failed (see above)"
    echo "$BIN"
}

# etcd: the one built from tests/kube-reference (cmd/etcd, etcd 3.6 as Kubernetes pins it),
# else Debian's (3.4: kube-apiserver runs on it, but without watch-progress requests it
# serves every consistent list from etcd rather than from its cache).
etcd_bin() {
    if [ -x "$BIN/etcd" ]; then
        echo "$BIN/etcd"
    elif command -v etcd >/dev/null 2>&1; then
        command -v etcd
    else
        die "etcd is not installed (Debian package etcd-server)"
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# A CA: $1 = path prefix, $2 = common name.
make_ca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$1.key" -out "$1.crt" -days 30 -subj "/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
}

# A leaf: $1 = path prefix, $2 = CA prefix, $3 = subject, $4 = extendedKeyUsage, $5 = SANs or "".
make_leaf() {
    local ext
    ext="$(mktemp)"
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$4"
        [ -z "$5" ] || echo "subjectAltName=$5"
    } >"$ext"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$1.key" -out "$1.csr" -subj "$3" 2>/dev/null
    openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial \
        -out "$1.crt" -days 30 -extfile "$ext" 2>/dev/null
    rm -f "$1.csr" "$ext"
}

# A kubeconfig: $1 = file, $2 = server, $3 = CA file, $4 = client cert prefix.
write_kubeconfig() {
    local ca cert key
    ca="$(base64 -w0 <"$3")"
    cert="$(base64 -w0 <"$4.crt")"
    key="$(base64 -w0 <"$4.key")"
    cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kube-reference
  cluster:
    server: $2
    certificate-authority-data: $ca
users:
- name: user
  user:
    client-certificate-data: $cert
    client-key-data: $key
contexts:
- name: kube-reference
  context:
    cluster: kube-reference
    user: user
current-context: kube-reference
EOF
    chmod 600 "$1"
}

# The name of a flag (`--a=b` or `--a`) without dashes and value.
flag_name() {
    local f="${1#--}"
    echo "${f%%=*}"
}

PIDS=()
stop_all() {
    trap - TERM INT EXIT
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}

up() {
    [ $# -ge 1 ] || die "usage: kube-reference.sh up DIR [--controllers] [--durable] [-- FLAGS...]"
    local dir="$1"
    shift
    local controllers=0
    # Tests need no durability; a benchmark against kgate's store (which syncs) passes --durable.
    local fsync=(--unsafe-no-fsync)
    local extra=()
    while [ $# -gt 0 ]; do
        case "$1" in
        --controllers) controllers=1 ;;
        --durable) fsync=() ;;
        --)
            shift
            extra=("$@")
            break
            ;;
        *) die "unknown option $1" ;;
        esac
        shift
    done

    # Build unless the binaries are newer than the module's pins: parallel tests each start a
    # reference, and the suite builds once before them (scripts/test.sh).
    local b
    for b in etcd kube-apiserver kube-controller-manager kube-scheduler; do
        if [ ! -x "$BIN/$b" ] || [ "$MODULE/go.mod" -nt "$BIN/$b" ] || [ "$MODULE/go.sum" -nt "$BIN/$b" ]; then
            build >/dev/null
            break
        fi
    done
    mkdir -p "$dir/logs" "$dir/pki" "$dir/etcd"
    dir="$(cd "$dir" && pwd)"
    rm -f "$dir/ready"
    local pki="$dir/pki"

    # Certificates: one CA for serving and client certificates (kube-apiserver's
    # --client-ca-file), one for its kubelet client certificate.
    make_ca "$pki/ca" kube-reference-ca
    make_leaf "$pki/apiserver" "$pki/ca" "/CN=kube-apiserver" serverAuth \
        "IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    make_leaf "$pki/admin" "$pki/ca" "/O=system:masters/CN=kube-reference-admin" clientAuth ""
    make_ca "$pki/kubelet-client-ca" kube-reference-kubelet-client-ca
    make_leaf "$pki/kubelet-client" "$pki/kubelet-client-ca" \
        "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth ""
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/sa.key" 2>/dev/null
    openssl pkey -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
    cp "$pki/ca.crt" "$dir/ca.crt"
    cp "$pki/ca.crt" "$dir/client-ca.crt"
    cp "$pki/ca.key" "$dir/client-ca.key"
    cp "$pki/kubelet-client-ca.crt" "$dir/kubelet-client-ca.crt"

    trap stop_all TERM INT EXIT

    local etcd_client etcd_peer
    etcd_client="$(free_port)"
    etcd_peer="$(free_port)"
    "$(etcd_bin)" --name kube-reference --data-dir "$dir/etcd" \
        --listen-client-urls "http://127.0.0.1:$etcd_client" \
        --advertise-client-urls "http://127.0.0.1:$etcd_client" \
        --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
        --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
        --initial-cluster "kube-reference=http://127.0.0.1:$etcd_peer" \
        "${fsync[@]}" >"$dir/logs/etcd.log" 2>&1 &
    PIDS+=($!)
    echo $! >"$dir/logs/etcd.pid"

    local port
    port="$(free_port)"
    local server="https://127.0.0.1:$port"
    local defaults=(
        "--etcd-servers=http://127.0.0.1:$etcd_client"
        "--bind-address=127.0.0.1"
        "--advertise-address=127.0.0.1"
        "--secure-port=$port"
        "--cert-dir=$dir/pki"
        "--tls-cert-file=$pki/apiserver.crt"
        "--tls-private-key-file=$pki/apiserver.key"
        "--client-ca-file=$pki/ca.crt"
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local"
        "--service-account-key-file=$dir/sa.pub"
        "--service-account-signing-key-file=$dir/sa.key"
        "--api-audiences=https://kubernetes.default.svc.cluster.local"
        "--service-cluster-ip-range=10.0.0.0/24"
        "--authorization-mode=Node,RBAC"
        "--kubelet-client-certificate=$pki/kubelet-client.crt"
        "--kubelet-client-key=$pki/kubelet-client.key"
        "--allow-privileged=true"
        "--endpoint-reconciler-type=none"
        "--profiling=false"
        "--v=1"
    )
    # Extra flags replace the defaults they name; an authorization config file replaces the mode.
    local replaced=" "
    local f
    for f in "${extra[@]}"; do
        case "$f" in
        --*)
            replaced+="$(flag_name "$f") "
            [ "$(flag_name "$f")" != authorization-config ] || replaced+="authorization-mode "
            ;;
        esac
    done
    local args=()
    for f in "${defaults[@]}"; do
        [[ "$replaced" == *" $(flag_name "$f") "* ]] || args+=("$f")
    done
    args+=("${extra[@]}")

    # etcd first: kube-apiserver retries, but a clean start keeps its log readable.
    local i
    for i in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$etcd_client/health" >/dev/null 2>&1 && break
        kill -0 "${PIDS[0]}" 2>/dev/null || die "etcd exited: $(tail -5 "$dir/logs/etcd.log")"
        sleep 0.1
    done

    "$BIN/kube-apiserver" "${args[@]}" >"$dir/logs/kube-apiserver.log" 2>&1 &
    local apiserver=$!
    PIDS+=("$apiserver")
    echo "$apiserver" >"$dir/logs/kube-apiserver.pid"

    write_kubeconfig "$dir/admin.kubeconfig" "$server" "$pki/ca.crt" "$pki/admin"
    echo "$server" >"$dir/server"

    for i in $(seq 1 1200); do
        if curl -fsS --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
            "$server/readyz" >/dev/null 2>&1; then
            break
        fi
        kill -0 "$apiserver" 2>/dev/null ||
            die "kube-apiserver exited: $(tail -20 "$dir/logs/kube-apiserver.log")"
        sleep 0.1
    done
    [ "$i" -lt 1200 ] || die "kube-apiserver not ready after 120 s"

    if [ "$controllers" = 1 ]; then
        make_leaf "$pki/controller-manager" "$pki/ca" "/CN=system:kube-controller-manager" clientAuth ""
        write_kubeconfig "$dir/controller-manager.kubeconfig" "$server" "$pki/ca.crt" "$pki/controller-manager"
        make_leaf "$pki/scheduler" "$pki/ca" "/CN=system:kube-scheduler" clientAuth ""
        write_kubeconfig "$dir/scheduler.kubeconfig" "$server" "$pki/ca.crt" "$pki/scheduler"
        "$BIN/kube-controller-manager" \
            --kubeconfig="$dir/controller-manager.kubeconfig" \
            --authentication-kubeconfig="$dir/controller-manager.kubeconfig" \
            --authorization-kubeconfig="$dir/controller-manager.kubeconfig" \
            --bind-address=127.0.0.1 --secure-port="$(free_port)" \
            --cert-dir="$dir/pki/controller-manager-serving" \
            --use-service-account-credentials=true \
            --service-account-private-key-file="$dir/sa.key" \
            --root-ca-file="$pki/ca.crt" \
            --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
            --service-cluster-ip-range=10.0.0.0/24 \
            --leader-elect=true --profiling=false --v=1 \
            >"$dir/logs/kube-controller-manager.log" 2>&1 &
        PIDS+=($!)
        echo $! >"$dir/logs/kube-controller-manager.pid"
        "$BIN/kube-scheduler" \
            --kubeconfig="$dir/scheduler.kubeconfig" \
            --authentication-kubeconfig="$dir/scheduler.kubeconfig" \
            --authorization-kubeconfig="$dir/scheduler.kubeconfig" \
            --bind-address=127.0.0.1 --secure-port="$(free_port)" \
            --leader-elect=true --profiling=false --v=1 \
            >"$dir/logs/kube-scheduler.log" 2>&1 &
        PIDS+=($!)
        echo $! >"$dir/logs/kube-scheduler.pid"
    fi

    # Whoever started us may die without a word (a test killed by its harness): then stop too.
    local parent=$PPID
    (while kill -0 "$parent" 2>/dev/null; do sleep 1; done) &
    PIDS+=($!)

    touch "$dir/ready"
    say "kube-apiserver ready at $server (admin kubeconfig: $dir/admin.kubeconfig)"
    # Wait until any process exits or we are told to stop; then stop the rest.
    set +e
    wait -n "${PIDS[@]}"
    local code=$?
    say "a process exited ($code); stopping the reference"
    exit "$code"
}

case "${1:-}" in
build)
    build
    ;;
up)
    shift
    up "$@"
    ;;
*)
    die "usage: kube-reference.sh build | up DIR [--controllers] [--durable] [-- FLAGS...]"
    ;;
esac
