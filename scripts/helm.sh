#!/usr/bin/env bash
# Builds helm ($HELM_VERSION, default v3.22.0) from the Go module proxy into a cache outside the clone,
# ${SAB_CACHE:-/var/cache/spiffe-aws-bridge}/helm-$HELM_VERSION, once, and prints that directory (the
# binary is "helm" in it). Idempotent: a second run finds the binary and only prints the directory.
# CI (.ci/run) lints and renders charts/spiffe-aws-bridge with it; nothing is fetched at test time.
#
#   PATH="$(scripts/helm.sh):$PATH" helm lint --strict charts/spiffe-aws-bridge
set -euo pipefail

version=${HELM_VERSION:-v3.22.0}
dir=${SAB_CACHE:-/var/cache/spiffe-aws-bridge}/helm-$version
if [ ! -x "$dir/helm" ]; then
  mkdir -p "$dir"
  # One build at a time (two CI runs on one machine share the cache).
  exec 9>"$dir/.lock"
  flock 9
  if [ ! -x "$dir/helm" ]; then
    start=$SECONDS
    tmp=$(mktemp -d "$dir/.build.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    # Outside any module, so that the clone's go.mod plays no part; static like the project's binaries.
    (cd "$tmp" && GOFLAGS=-mod=mod GOBIN="$tmp" CGO_ENABLED=0 \
      go install -trimpath -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@$version") >&2
    mv "$tmp/helm" "$dir/helm"
    echo "built helm $version into $dir in $((SECONDS - start))s" >&2
  fi
fi
echo "$dir"
