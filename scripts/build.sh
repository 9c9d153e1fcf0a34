#!/usr/bin/env bash
# Builds the release binaries, spiffe-aws-bridge and rolesanywhere-emulator, into OUTDIR: static
# (CGO_ENABLED=0), reproducible (-trimpath), stripped, and stamped with VERSION and COMMIT (defaults "dev"
# and "unknown"), which `spiffe-aws-bridge version` prints. The Dockerfile and CI both call this script, so
# that the image and the release archives hold the same binaries.
#
#   VERSION=$(git describe --tags --always) COMMIT=$(git rev-parse HEAD) scripts/build.sh dist/
set -euo pipefail

if [ "$#" -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."

for cmd in spiffe-aws-bridge rolesanywhere-emulator; do
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/buildinfo.version=${VERSION:-dev} -X github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/buildinfo.commit=${COMMIT:-unknown}" \
    -o "$out/$cmd" "./cmd/$cmd"
done
echo "built $out/spiffe-aws-bridge and $out/rolesanywhere-emulator (version ${VERSION:-dev}, commit ${COMMIT:-unknown})"
