#!/bin/bash
# build.sh: the lab's optional stage-3 binaries into $OUT (default /tmp/k8slab/bin3), from the scratch modules
# here (sources beside this script), at nice 10:
#   spire-controller-manager   github.com/spiffe/spire-controller-manager v0.6.4 (cmd)   [proxy: v0.6.6 not served]
#   spiffe-csi-driver          github.com/spiffe/spiffe-csi v0.2.6 (cmd/spiffe-csi-driver) [v0.2.12 not served;
#                              v0.2.6 is not in sum.golang.org here: GONOSUMDB for that one module, its hash pinned in go.sum]
#   csi-node-driver-registrar  the lab's stand-in (csi-node-driver-registrar/main.go): the kubelet's plugin
#                              registration protocol; the real one is not served
# Each is rebuilt only when missing or older than its go.mod/go.sum/sources (FORCE=1 rebuilds all).
# Build times are appended to $OUT/../timings.log.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/k8slab/bin3}
mkdir -p "$OUT"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
build() { # NAME DIR PKG
  local name=$1 dir=$2 pkg=$3 t0
  if [ -z "${FORCE:-}" ] && [ -x "$OUT/$name" ] && [ -z "$(find "$HERE/$dir" -newer "$OUT/$name" -type f)" ]; then
    echo "  $name up to date ($OUT/$name)"; return 0
  fi
  t0=$(date +%s)
  (cd "$HERE/$dir" && nice -n 10 go build -trimpath -ldflags "-s -w" -o "$OUT/$name.new" "$pkg")
  mv "$OUT/$name.new" "$OUT/$name"
  echo "  built $name in $(( $(date +%s) - t0 ))s" | tee -a "$(dirname "$OUT")/timings.log"
}
build csi-node-driver-registrar csi-node-driver-registrar .
GONOSUMDB=github.com/spiffe/spiffe-csi build spiffe-csi-driver spiffe-csi-driver github.com/spiffe/spiffe-csi/cmd/spiffe-csi-driver
build spire-controller-manager spire-controller-manager github.com/spiffe/spire-controller-manager/cmd
ls -l "$OUT/csi-node-driver-registrar" "$OUT/spiffe-csi-driver" "$OUT/spire-controller-manager"
