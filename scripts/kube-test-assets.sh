#!/usr/bin/env bash
# kube-test-assets.sh: puts kube-apiserver and etcd, the control plane of the Kubernetes tests
# (podidentity/kube/kubetest), into a cache outside the clone and prints the directory holding them; tests
# find it through KUBEBUILDER_ASSETS (without it, they look in the default directory below).
#
#   kube-apiserver $K8S_VERSION: built from the Go module proxy (a scratch module requiring
#     k8s.io/kubernetes, every staging module replaced by its v0.x.y release; CGO_ENABLED=0, -trimpath);
#     about 25 minutes on 2 cores with a cold Go build cache. KUBE_APISERVER_BIN may name a binary of the
#     same version built the same way (it is checked with --version, then copied).
#   etcd: Debian's etcd-server package, downloaded with apt-get download and extracted (not installed).
#
# Idempotent: a second run finds both and returns at once. Concurrent runs wait for each other.
#   SAB_CACHE    cache root (default /var/cache/spiffe-aws-bridge); the binaries go to $SAB_CACHE/kube-VERSION/bin
#   K8S_VERSION  default v1.34.4 (kubetest.Version says the same)
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.34.4}
CACHE=${SAB_CACHE:-/var/cache/spiffe-aws-bridge}
DIR=$CACHE/kube-$K8S_VERSION
BIN=$DIR/bin
export PATH="$PATH:/usr/local/go/bin"

log() { echo "kube-test-assets: $*" >&2; }

mkdir -p "$BIN"
exec 9>"$DIR/.lock"
flock 9

apiserver_ok() { [ -x "$1" ] && [ "$("$1" --version 2>/dev/null)" = "Kubernetes $K8S_VERSION" ]; }

if ! apiserver_ok "$BIN/kube-apiserver"; then
  t0=$SECONDS
  if [ -n "${KUBE_APISERVER_BIN:-}" ] && apiserver_ok "$KUBE_APISERVER_BIN"; then
    log "copying kube-apiserver $K8S_VERSION from $KUBE_APISERVER_BIN"
    cp "$KUBE_APISERVER_BIN" "$BIN/kube-apiserver.tmp"
  else
    [ -z "${KUBE_APISERVER_BIN:-}" ] || log "$KUBE_APISERVER_BIN is not kube-apiserver $K8S_VERSION: building it"
    log "building kube-apiserver $K8S_VERSION from the Go module proxy (about 25 min on 2 cores when the Go build cache is cold)"
    W=$DIR/build
    mkdir -p "$W"
    (
      cd "$W"
      export CGO_ENABLED=0 GOFLAGS=-mod=mod GOWORK=off
      if ! grep -q "^require k8s.io/kubernetes $K8S_VERSION" go.mod 2>/dev/null; then
        go mod download -json "k8s.io/kubernetes@$K8S_VERSION" >/dev/null
        kdir=$(go env GOMODCACHE)/k8s.io/kubernetes@$K8S_VERSION
        stv=v0.${K8S_VERSION#v1.}
        # k8s.io/kubernetes requires its staging modules at v0.0.0 with replace directives to ./staging;
        # a module depending on it replaces each with the published release instead.
        { printf 'module sab/kube-test-assets\n\ngo 1.24.0\n\ngodebug default=go1.24\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$K8S_VERSION"
          sed -n '/^replace/,/^)/p' "$kdir/go.mod" | awk -v v="$stv" '/=>/{printf "\t%s => %s %s\n", $1, $1, v}'
          echo ")"; } > go.mod.tmp
        mv go.mod.tmp go.mod
        rm -f go.sum
        go get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION"
      fi
      go build -trimpath \
        -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION" \
        -o "$BIN/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
    )
  fi
  apiserver_ok "$BIN/kube-apiserver.tmp" || { log "the kube-apiserver obtained does not report $K8S_VERSION"; exit 1; }
  mv "$BIN/kube-apiserver.tmp" "$BIN/kube-apiserver"
  log "kube-apiserver ready in $(( SECONDS - t0 ))s"
fi

if ! [ -x "$BIN/etcd" ] || ! "$BIN/etcd" --version >/dev/null 2>&1; then
  t0=$SECONDS
  log "fetching etcd from Debian's etcd-server package"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (
    cd "$tmp"
    apt-get download etcd-server >/dev/null 2>&1 || { apt-get update -qq && apt-get download etcd-server >/dev/null; }
    dpkg -x etcd-server_*.deb root
  )
  install -m 0755 "$tmp/root/usr/bin/etcd" "$BIN/etcd.tmp"
  mv "$BIN/etcd.tmp" "$BIN/etcd"
  log "etcd ready in $(( SECONDS - t0 ))s: $("$BIN/etcd" --version | head -n 1)"
fi

echo "$BIN"
