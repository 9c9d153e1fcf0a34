#!/bin/bash
# run-pod-identity.sh PROJECT_DIR [IMAGE_TAG]: the project's pod identity (Helm chart) and its sidecar example,
# end to end in the k8s-lab, from PROJECT_DIR's working tree. Run as root. Logs everything under
# $RUNS/<UTC time>/ (default /tmp/k8slab/sab-runs) (run.log: the console; results.txt: one PASS/FAIL line per check with its
# evidence; the rest: manifests, values, logs, samples). Exit status: the number of failed checks
# (100 + n when the setup itself failed before the checks).
#
#  1. lab: up.sh --stage 3 (SCM_CLASS_NAME=spire-server-spire, EMULATOR_HCL=emulator.hcl beside this script: roles
#     orders and payments), then prepare.sh (agent admin socket + delegates, aggregator routing, helm).
#  2. image: PROJECT_DIR's scripts/build.sh into an image root (every binary it builds), the Dockerfile's
#     ENTRYPOINT/CMD/USER, imported under every bridge reference `helm template` renders (tag IMAGE_TAG,
#     default lab-<hash of the binaries>).
#  3. clean: the previous run's release, namespaces shop and spiffe-aws-bridge, its ClusterSPIFFEIDs.
#  4. pod identity: helm upgrade --install PROJECT_DIR/charts/spiffe-aws-bridge (lab values; a post-renderer
#     gives host-network pods KUBERNETES_SERVICE_HOST/PORT), the example's ClusterSPIFFEID for shop with a
#     short SVID ttl ($SVID_TTL), namespace shop (opted in) with Deployments orders (2) and payments (1),
#     the aws CLI stand-in every 20 s. Checks: injection; own role, never the other's; calls succeed for
#     $SOAK_SECONDS across SVID rotations (access key ids and SVID expiries over time); 401 for a deleted
#     pod's token, a wrong audience, garbage and no token; 403 for a service account without a rule;
#     /ready lists the identities; no token or secret in the bridge's or webhook's logs (nor in the run dir).
#  5. sidecar example (PROJECT_DIR/examples/kubernetes as shipped, className spire-server-spire, only the
#     emulator endpoint added and the image reference replaced) in a fresh shop namespace: entries carry
#     k8s:container-name:spiffe-aws-bridge; the sidecar holds the SVID, another container of the pod gets
#     none; the app gets assumed-role/orders.
#
# Settings (environment): SOAK_SECONDS (270), SVID_TTL (120s), BRIDGE_LOG_LEVEL (debug), SKIP_UP=1 (no
# up.sh; prepare.sh still runs), SKIP_SIDECAR=1, LABSH (default: ../shared/k8s-lab beside the repository).
set -uo pipefail
[ $# -ge 1 ] || { sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
PROJECT_DIR=$(cd "$1" && pwd) || exit 2
IMAGE_TAG=${2:-}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
LABSH=${LABSH:-$(cd "$REPO/../shared/k8s-lab" 2>/dev/null && pwd || echo "$REPO/../shared/k8s-lab")}
LABWORK=$(cd "$(dirname "$0")" && pwd)
export PROJECT_DIR
. "$LABSH/env.sh"
SOAK_SECONDS=${SOAK_SECONDS:-270}
SVID_TTL=${SVID_TTL:-120s}
BRIDGE_LOG_LEVEL=${BRIDGE_LOG_LEVEL:-debug}
REL=spiffe-aws-bridge NSB=spiffe-aws-bridge NSA=shop
CHART=$PROJECT_DIR/charts/spiffe-aws-bridge
EXAMPLE=$PROJECT_DIR/examples/kubernetes
HEALTH=127.0.0.1:9924
PI_URL=http://169.254.170.23/v1/credentials
ADMIN_SOCK=/run/k8slab/spire/admin/admin.sock
CLASS=spire-server-spire
OWNER_LABEL=k8slab.run/owner=run-pod-identity
TA=arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/0f0e0d0c-0b0a-4909-8807-060504030201
PA=arn:aws:rolesanywhere:eu-west-1:111122223333:profile/01020304-0506-4708-8900-0a0b0c0d0e0f

R=${RUNS:-/tmp/k8slab/sab-runs}/$(date -u +%Y%m%dT%H%M%SZ); mkdir -p "$R"
exec > >(tee -a "$R/run.log") 2>&1
S=$(mktemp -d /tmp/k8slab-run-secrets.XXXXXX); chmod 700 "$S"   # tokens and credentials: never in $R
BG=()
cleanup() { for p in "${BG[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$S"; }
trap cleanup EXIT
T0=$(date +%s); PT=$T0
phase() { local n; n=$(date +%s); echo; echo "=== [$(date -u +%T) +$((n - T0))s, previous phase $((n - PT))s] $*"; PT=$n; }
PASS=0 FAIL=0
result() { # PASS|FAIL NAME EVIDENCE...
  local st=$1 name=$2; shift 2
  printf '%s  %s: %s\n' "$st" "$name" "$*" | tee -a "$R/results.txt"
  if [ "$st" = PASS ]; then PASS=$((PASS + 1)); else FAIL=$((FAIL + 1)); fi
}
check() { local name=$1 ev=$2; shift 2; if "$@"; then result PASS "$name" "$ev"; else result FAIL "$name" "$ev"; fi; }
diag() { # diag NAME: the cluster's state, into $R/diag-NAME.txt
  { echo "## pods"; kc get pods -A -o wide; echo "## events"; kc get events -A --sort-by=.lastTimestamp | tail -60
    echo "## node bridge"; kc -n "$NSB" logs -l app.kubernetes.io/component=node --tail=80 --prefix 2>&1
    echo "## webhook"; kc -n "$NSB" logs -l app.kubernetes.io/component=webhook --tail=40 --prefix 2>&1
    echo "## entries"; "$B3/spire-server" entry show -socketPath "$SPIRE_SERVER_SOCK" 2>&1 | tail -80
  } > "$R/diag-$1.txt" 2>&1
  echo "  diagnostics: $R/diag-$1.txt"
}
die() { echo "SETUP FAILED: $*"; diag setup-failed; echo "setup failed after $(( $(date +%s) - T0 ))s; results so far: $PASS passed, $FAIL failed"; exit $((100 + FAIL)); }
# cred_req HEADERFILE|- BODYFILE: GET the pod identity endpoint from the node, prints the HTTP status.
# With IN_POD=NAME (a pod of $NSA) the request is made from that pod's network namespace (nsenter into its
# container's netns: the source address is the pod's IP, as for the pod's own SDK); otherwise from the node.
pod_pid() {
  local id; id=$(kc -n "$NSA" get pod "$1" -o jsonpath='{.status.containerStatuses[0].containerID}'); id=${id#containerd://}
  ctrk task ls | awk -v id="$id" '$1 == id { print $2 }'
}
cred_req() {
  local a=(-s -o "$2" -w '%{http_code}' --max-time 30)
  [ "$1" != - ] && a+=(-H "@$1")
  if [ -n "${IN_POD:-}" ]; then
    nsenter -t "$(pod_pid "$IN_POD")" -n curl "${a[@]}" "$PI_URL"
  else
    curl "${a[@]}" "$PI_URL"
  fi
}
# redact BODYFILE: a credentials body without its secrets (AccessKeyId and Expiration kept), or the error.
redact() { jq -c 'if type == "object" and has("SecretAccessKey") then {AccessKeyId, Expiration, SecretAccessKey: "<redacted>", Token: "<redacted>"} else . end' "$1" 2>/dev/null || head -c 400 "$1"; }
# token_header NAME TOKENFILE: $S/NAME.hdr with "Authorization: TOKEN" (never on a command line)
token_header() { printf 'Authorization: %s\n' "$(cat "$2")" > "$S/$1.hdr"; }

echo "run-pod-identity.sh $PROJECT_DIR ${IMAGE_TAG:-(tag from the binaries)} -> $R"
commit=$(git -C "$PROJECT_DIR" rev-parse HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$PROJECT_DIR" status --porcelain --untracked-files=no 2>/dev/null | wc -l)
echo "project: $commit ($(git -C "$PROJECT_DIR" log -1 --format=%s 2>/dev/null | cut -c1-100)), $dirty modified tracked files" | tee "$R/project.txt"

# ---------------------------------------------------------------------------------------------------------
phase "1. lab: up.sh --stage 3 + prepare.sh"
if [ -z "${SKIP_UP:-}" ]; then
  SCM_CLASS_NAME=$CLASS EMULATOR_HCL=$LABWORK/emulator.hcl "$LABSH/up.sh" --stage 3 > "$R/up.log" 2>&1 ||
    die "up.sh --stage 3 (see $R/up.log)"
  grep -E "stage 3 services up|took" "$R/up.log" | tail -4
fi
"$LABWORK/prepare.sh" > "$R/prepare.log" 2>&1 || { cat "$R/prepare.log"; die "prepare.sh"; }
sed -n '/^== checks/,$p' "$R/prepare.log"
HELM="$("$PROJECT_DIR/scripts/helm.sh" 2>/dev/null || "$REPO/scripts/helm.sh")/helm"
[ -x "$HELM" ] || die "no helm"
echo "helm: $HELM ($("$HELM" version --short))"

# ---------------------------------------------------------------------------------------------------------
phase "2. image: $PROJECT_DIR scripts/build.sh"
ROOT=$LAB/sab-run/root; rm -rf "$ROOT"
mkdir -p "$ROOT/usr/local/bin" "$ROOT/etc/ssl/certs" "$ROOT/tmp" "$ROOT/home/nonroot"; chmod 1777 "$ROOT/tmp"
( cd "$PROJECT_DIR" && VERSION=$(git describe --tags --always --dirty 2>/dev/null || echo dev) COMMIT=$commit \
    nice -n 5 bash scripts/build.sh "$ROOT/usr/local/bin" ) > "$R/build.log" 2>&1 || { tail -20 "$R/build.log"; die "scripts/build.sh"; }
tail -1 "$R/build.log"
(cd "$ROOT/usr/local/bin" && ls -l) | tee "$R/binaries.txt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$ROOT/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' > "$ROOT/etc/group"
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/"
[ -n "$IMAGE_TAG" ] || IMAGE_TAG=lab-$(cat "$ROOT"/usr/local/bin/* | sha256sum | cut -c1-12)
# The Dockerfile's final ENTRYPOINT, CMD and USER (exec form), else the ones the Dockerfile has today.
df=$PROJECT_DIR/Dockerfile
entry=$(grep -E '^ENTRYPOINT \[' "$df" 2>/dev/null | tail -1 | sed 's/^ENTRYPOINT //'); entry=${entry:-'["/usr/local/bin/spiffe-aws-bridge"]'}
cmd=$(grep -E '^CMD \[' "$df" 2>/dev/null | tail -1 | sed 's/^CMD //'); cmd=${cmd:-'["run","--config","/etc/spiffe-aws-bridge/bridge.hcl"]'}
user=$(grep -E '^USER ' "$df" 2>/dev/null | tail -1 | awk '{print $2}'); user=${user:-nonroot:nonroot}
imgcfg=$(jq -cn --argjson e "$entry" --argjson c "$cmd" --arg u "$user" --arg rev "$commit" \
  '{User: $u, Entrypoint: $e, Cmd: $c, Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"], Labels: {"org.opencontainers.image.revision": $rev, "k8slab.note": "run-pod-identity.sh"}}') ||
  die "image config from $df"
echo "image config: $imgcfg"

# ---------------------------------------------------------------------------------------------------------
phase "3. values, render, import the image under the rendered references"
cat > "$R/values.yaml" <<YAML
# run-pod-identity.sh: the chart's values for the k8s-lab
image:
  tag: "$IMAGE_TAG"
  pullPolicy: IfNotPresent
bridge:
  logLevel: $BRIDGE_LOG_LEVEL
  logFormat: json
  defaults:
    trustAnchorArn: "$TA"
    profileArn: "$PA"
    endpoint: "http://$NODE_IP:8443"
    insecureEndpoint: true
  rules:
    - spiffeId: "spiffe://example.org/ns/shop/sa/orders"
      roleArn: "arn:aws:iam::111122223333:role/orders"
    - spiffeId: "spiffe://example.org/ns/shop/sa/payments"
      roleArn: "arn:aws:iam::111122223333:role/payments"
  metrics:
    host: "127.0.0.1"
spire:
  adminSocketPath: $ADMIN_SOCK
  clusterSPIFFEID:
    enabled: true
    className: $CLASS
webhook:
  enabled: true
daemonset:
  # No kube-proxy in the lab: the host-network node bridge reaches the API server by its own address.
  extraEnv:
    - name: KUBERNETES_SERVICE_HOST
      value: "$NODE_IP"
    - name: KUBERNETES_SERVICE_PORT
      value: "6443"
YAML
"$HELM" template "$REL" "$CHART" -n "$NSB" --kube-version "$K8S_VERSION" -f "$R/values.yaml" > "$R/rendered.yaml" 2> "$R/render.err" ||
  { cat "$R/render.err"; die "helm template"; }
cat "$R/render.err"
mapfile -t refs < <(yq -r '.. | objects | select(has("image")) | .image | strings' "$R/rendered.yaml" | sort -u)
echo "rendered images: ${refs[*]}"
[ ${#refs[@]} -gt 0 ] || die "the chart renders no image"
# Every binary a container runs (command[0], args run as the entrypoint's) must be in the image.
for c in $(yq -r '.. | objects | select(has("image")) | .command[0]? // empty' "$R/rendered.yaml" | sort -u); do
  [ -x "$ROOT$c" ] || [ -x "$ROOT/usr/local/bin/$(basename "$c")" ] || die "the chart runs $c, which scripts/build.sh did not build"
done
IMG_TAR=$LAB/sab-run/image.tar
"$LABSH/mkimage.sh" "${refs[0]}" "$ROOT" "$IMG_TAR" "$imgcfg" || die "mkimage"
ctrk images import "$IMG_TAR" > /dev/null || die "ctr import"
BRIDGE_REF=${refs[0]}
for ref in "${refs[@]:1}"; do ctrk images tag --force "$BRIDGE_REF" "$ref" > /dev/null || die "ctr tag $ref"; done
repo=${BRIDGE_REF%:*}
for old in $(ctrk images ls -q | grep "^$repo:lab-" | grep -vx -F -f <(printf '%s\n' "${refs[@]}")); do
  ctrk images rm "$old" > /dev/null 2>&1 && echo "  removed old image $old"
done
echo "imported ${refs[*]} ($(du -h "$IMG_TAR" | cut -f1))" | tee "$R/image.txt"

# ---------------------------------------------------------------------------------------------------------
phase "4. clean the previous run"
"$HELM" uninstall "$REL" -n "$NSB" --wait --timeout 2m 2>&1 | grep -v "not found" || true
kc delete clusterspiffeid -l "$OWNER_LABEL" --ignore-not-found
kc delete clusterspiffeid orders-aws --ignore-not-found    # the sidecar example's
kc delete namespace "$NSA" "$NSB" --ignore-not-found --wait=true --timeout=180s || die "namespaces not deleted"
# The controller manager removes the entries of the gone pods; wait for it so that the run starts clean.
for _ in $(seq 60); do
  n=$("$B3/spire-server" entry count -socketPath "$SPIRE_SERVER_SOCK" 2>/dev/null | grep -o '[0-9]*' | head -1)
  left=$("$B3/spire-server" entry show -socketPath "$SPIRE_SERVER_SOCK" 2>/dev/null | grep -cE 'k8s:ns:(shop|spiffe-aws-bridge)$' || true)
  [ "$left" = 0 ] && break; sleep 2
done
echo "  entries left for shop/spiffe-aws-bridge: $left (of ${n:-?})"

# ---------------------------------------------------------------------------------------------------------
phase "5. pod identity: helm upgrade --install"
"$HELM" upgrade --install "$REL" "$CHART" -n "$NSB" --create-namespace -f "$R/values.yaml" \
  > "$R/helm-install.log" 2>&1 || { cat "$R/helm-install.log"; die "helm upgrade --install"; }
sed -n '/^NOTES/,$p' "$R/helm-install.log" | head -12
kc -n "$NSB" rollout status ds/"$REL"-node --timeout=180s || die "node bridge DaemonSet not ready"
kc -n "$NSB" rollout status deploy/"$REL"-webhook --timeout=180s || die "webhook not ready"
kc -n "$NSB" get pods -o wide | tee "$R/pods-bridge.txt"
BRIDGE_POD=$(kc -n "$NSB" get pods -l app.kubernetes.io/component=node -o jsonpath='{.items[0].metadata.name}')
kc -n "$NSB" get pod "$BRIDGE_POD" -o jsonpath='{range .spec.containers[*]}{.name}: {.env}{"\n"}{end}' > "$R/bridge-env.txt"
check "host-network node bridge reaches the API server at the node's address" "$(cat "$R/bridge-env.txt")" \
  grep -q '"KUBERNETES_SERVICE_HOST","value":"10.250.0.1"' "$R/bridge-env.txt"
curl -s "$HEALTH/ready" > "$R/ready-initial.json"; echo "node bridge /ready: $(head -c 600 "$R/ready-initial.json")"
kc get mutatingwebhookconfiguration "$REL"-webhook -o jsonpath='{.webhooks[0].clientConfig.caBundle}' | head -c 1 | grep -q . ||
  echo "  note: the webhook's caBundle is still empty"

phase "6. pod identity: ClusterSPIFFEID (ttl $SVID_TTL), namespace shop, Deployments orders and payments"
yq -y --arg ttl "$SVID_TTL" '.spec.ttl = $ttl | .metadata.labels["k8slab.run/owner"] = "run-pod-identity"' \
  "$EXAMPLE/pod-identity/clusterspiffeid.yaml" > "$R/clusterspiffeid.yaml" || die "ClusterSPIFFEID"
cat > "$R/apps.yaml" <<'YAML'
# Two Deployments with no bridge in them: the aws CLI stand-in every 20 s, one line per call.
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    spiffe-aws-bridge.io/pod-identity: enabled
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: orders, namespace: shop}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: payments, namespace: shop}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: stranger, namespace: shop}
YAML
for app in orders:2 payments:1; do cat >> "$R/apps.yaml" <<YAML
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${app%:*}
  namespace: shop
  labels: {app.kubernetes.io/name: ${app%:*}}
spec:
  replicas: ${app#*:}
  selector:
    matchLabels: {app.kubernetes.io/name: ${app%:*}}
  template:
    metadata:
      labels: {app.kubernetes.io/name: ${app%:*}}
    spec:
      serviceAccountName: ${app%:*}
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 2
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: app
          image: amazon/aws-cli:2.17.0
          command: ["/bin/sh", "-c"]
          args:
            - |
              while true; do
                t=\$(date -u +%Y-%m-%dT%H:%M:%SZ)
                o=\$(aws sts get-caller-identity 2>&1); rc=\$?
                arn=\$(echo "\$o" | busybox sed -n 's/.*"Arn": "\([^"]*\)".*/\1/p')
                key=\$(echo "\$o" | busybox sed -n 's/.* access_key_id=\([^ ]*\) .*/\1/p')
                exp=\$(echo "\$o" | busybox sed -n 's/.* expires=\([^ ]*\).*/\1/p')
                if [ \$rc = 0 ]; then echo "CALL \$t rc=0 arn=\$arn key=\$key expires=\$exp"
                else echo "CALL \$t rc=\$rc error=\$(echo \$o)"; fi
                sleep 20
              done
          env:
            - {name: AWS_REGION, value: eu-west-1}
            - {name: AWS_ENDPOINT_URL_STS, value: "http://$NODE_IP:8443"}
            - {name: HOME, value: /tmp}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: ["ALL"]}
          volumeMounts: [{name: tmp, mountPath: /tmp}]
      volumes: [{name: tmp, emptyDir: {sizeLimit: 64Mi}}]
YAML
done
kc apply -f "$R/clusterspiffeid.yaml" -f "$R/apps.yaml" || die "apply"
kc -n "$NSA" rollout status deploy/orders --timeout=180s || die "orders not ready"
kc -n "$NSA" rollout status deploy/payments --timeout=180s || die "payments not ready"
kc -n "$NSA" get pods -o wide | tee "$R/pods-shop.txt"
mapfile -t PODS < <(kc -n "$NSA" get pods -l 'app.kubernetes.io/name in (orders,payments)' -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
role_of() { case $1 in orders-*) echo orders;; payments-*) echo payments;; esac; }

# Injection: both variables and the projected token volume, in every pod.
for p in "${PODS[@]}"; do
  kc -n "$NSA" get pod "$p" -o json > "$S/pod.json"
  ev=$(jq -c '[.spec.containers[0].env[] | select(.name | startswith("AWS_CONTAINER_"))]' "$S/pod.json")
  vol=$(jq -c '[.spec.volumes[] | select(.projected) | .projected.sources[] | .serviceAccountToken | select(.)]' "$S/pod.json")
  echo "$p env=$ev token-volume=$vol" >> "$R/injection.txt"
  check "webhook injected $p" "env $ev; projected token $vol" \
    jq -e '([.spec.containers[0].env[].name] | index("AWS_CONTAINER_CREDENTIALS_FULL_URI") and index("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")) and ([.spec.volumes[] | select(.projected) | .projected.sources[] | .serviceAccountToken.audience | select(. == "spiffe-aws-bridge")] | length == 1)' "$S/pod.json" > /dev/null
done

# The apps' first successful calls (the entry reaches the agent seconds after the pod starts).
SOAK_T0=$(date +%s)
for p in "${PODS[@]}"; do
  for _ in $(seq 90); do kc -n "$NSA" logs "$p" 2>/dev/null | grep -q 'CALL .* rc=0' && break; sleep 2; done
  echo "  $p first call: $(kc -n "$NSA" logs "$p" 2>/dev/null | grep -m1 'rc=0' || kc -n "$NSA" logs "$p" --tail=2)"
done

phase "7. soak ${SOAK_SECONDS}s: /ready every 10 s; meanwhile the token checks"
( while true; do printf '{"t":"%s","ready":%s}\n' "$(date -u +%FT%TZ)" "$(curl -s --max-time 5 "$HEALTH/ready" || echo null)"; sleep 10; done ) >> "$R/ready.jsonl" 2>/dev/null &
BG+=($!)
"$B3/spire-server" entry show -socketPath "$SPIRE_SERVER_SOCK" -selector k8s:ns:shop > "$R/entries-pod-identity.txt" 2>&1
"$B3/spire-server" entry show -socketPath "$SPIRE_SERVER_SOCK" -selector k8s:ns:spiffe-aws-bridge >> "$R/entries-pod-identity.txt" 2>&1

# Every app pod's own token, for the secrets grep (never printed).
for p in "${PODS[@]}"; do kc -n "$NSA" exec "$p" -- sh -c 'cat "$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"' > "$S/token-$p" 2>/dev/null; done

# A pod of its own for the deleted-pod check (sa orders), and one whose service account no rule names.
for v in victim:orders stranger:stranger; do kc apply -f - > /dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: ${v%:*}, namespace: shop, labels: {k8slab.run/role: ${v%:*}}}
spec:
  serviceAccountName: ${v#*:}
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  securityContext: {runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532}
  containers:
    - {name: c, image: k8slab/tools:v1, command: ["/bin/sleep", "3600"]}
YAML
done
kc -n "$NSA" wait --for=condition=Ready pod/victim pod/stranger --timeout=120s || die "victim/stranger pods"
for v in victim stranger; do
  kc -n "$NSA" exec "$v" -- sh -c 'cat "$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"' > "$S/token-$v" || die "token of $v"
  token_header "$v" "$S/token-$v"
done
VUID=$(kc -n "$NSA" get pod victim -o jsonpath='{.metadata.uid}')
# victim's live token: 200 (once its entry reached the agent), and the credentials are role orders.
for i in $(seq 60); do code=$(IN_POD=victim cred_req "$S/victim.hdr" "$S/victim.body"); [ "$code" = 200 ] && break; sleep 2; done
echo "  victim (live, sa orders): HTTP $code after ${i} tries: $(redact "$S/victim.body")"
arn=""
if [ "$code" = 200 ]; then
  arn=$(env -i PATH=/usr/bin:/bin AWS_REGION=eu-west-1 AWS_ENDPOINT_URL_STS=http://$NODE_IP:8443 \
    AWS_ACCESS_KEY_ID="$(jq -r .AccessKeyId "$S/victim.body")" AWS_SECRET_ACCESS_KEY="$(jq -r .SecretAccessKey "$S/victim.body")" \
    AWS_SESSION_TOKEN="$(jq -r .Token "$S/victim.body")" "$B3/aws" sts get-caller-identity 2>/dev/null | jq -r .Arn)
fi
check "live pod token (sa orders) gets role orders" "HTTP $code, $(redact "$S/victim.body"), STS says $arn" \
  eval '[ "$code" = 200 ] && [[ "$arn" == *assumed-role/orders/* ]]'
# The victim's token, stolen: from the node (a host process) and from another pod: 403 SourceAddress.
code=$(cred_req "$S/victim.hdr" "$S/stolen-host.body")
check "victim's token used from the node -> 403 SourceAddress" "HTTP $code $(head -c 300 "$S/stolen-host.body")" \
  eval '[ "$code" = 403 ] && grep -q SourceAddress "$S/stolen-host.body"'
code=$(IN_POD=stranger cred_req "$S/victim.hdr" "$S/stolen-pod.body")
check "victim's token used from another pod -> 403 SourceAddress" "HTTP $code $(head -c 300 "$S/stolen-pod.body")" \
  eval '[ "$code" = 403 ] && grep -q SourceAddress "$S/stolen-pod.body"'
# Wrong audience: a token bound to the live victim pod for another audience.
kc -n "$NSA" create token orders --audience sts.amazonaws.com --bound-object-kind Pod --bound-object-name victim \
  --bound-object-uid "$VUID" --duration 10m > "$S/token-wrongaud" && token_header wrongaud "$S/token-wrongaud"
code=$(IN_POD=victim cred_req "$S/wrongaud.hdr" "$S/wrongaud.body")
check "wrong audience -> 401" "HTTP $code $(head -c 300 "$S/wrongaud.body")" test "$code" = 401
printf 'Authorization: not-a-token\n' > "$S/garbage.hdr"
code=$(IN_POD=victim cred_req "$S/garbage.hdr" "$S/garbage.body")
check "garbage token -> 401" "HTTP $code $(head -c 300 "$S/garbage.body")" test "$code" = 401
code=$(IN_POD=victim cred_req - "$S/none.body")
check "no token -> 401" "HTTP $code $(head -c 300 "$S/none.body")" test "$code" = 401
for i in $(seq 30); do code=$(IN_POD=stranger cred_req "$S/stranger.hdr" "$S/stranger.body"); grep -q NoRule "$S/stranger.body" && break; sleep 2; done
check "service account without a rule (stranger) -> 403 NoRule" "HTTP $code $(head -c 300 "$S/stranger.body")" \
  eval '[ "$code" = 403 ] && grep -q NoRule "$S/stranger.body"' 
# Deleted pod: its token, valid until then, must stop working.
kc -n "$NSA" delete pod victim --wait=true --timeout=60s > /dev/null
del=$(date +%s)
for i in $(seq 120); do code=$(cred_req "$S/victim.hdr" "$S/victim-deleted.body"); [ "$code" != 200 ] && break; sleep 1; done
echo "  deleted pod's token: HTTP $code $(( $(date +%s) - del ))s after the deletion completed"
check "deleted pod's token -> 401" "HTTP $code $(( $(date +%s) - del ))s after deletion: $(head -c 300 "$S/victim-deleted.body")" test "$code" = 401
kc -n "$NSA" delete pod stranger --wait=false > /dev/null

left=$(( SOAK_T0 + SOAK_SECONDS - $(date +%s) ))
[ "$left" -gt 0 ] && { echo "  soaking ${left}s more"; sleep "$left"; }
kill "${BG[@]}" 2>/dev/null; BG=()

phase "8. pod identity: results"
for p in "${PODS[@]}"; do kc -n "$NSA" logs "$p" > "$R/app-$p.log" 2>&1; done
kc -n "$NSB" logs -l app.kubernetes.io/component=node --tail=-1 --prefix > "$R/bridge-node.log" 2>&1
kc -n "$NSB" logs -l app.kubernetes.io/component=webhook --tail=-1 --prefix > "$R/webhook.log" 2>&1
curl -s "$HEALTH/ready" | jq . > "$R/ready-final.json"
python3 "$LABWORK/analyze.py" "$R" | tee "$R/analysis.txt"
for p in "${PODS[@]}"; do
  want=$(role_of "$p")
  calls=$(grep -c '^CALL ' "$R/app-$p.log"); ok=$(grep -c '^CALL .* rc=0 ' "$R/app-$p.log")
  own=$(grep -c "^CALL .* rc=0 arn=arn:aws:sts::111122223333:assumed-role/$want/" "$R/app-$p.log")
  first=$(grep -m1 '^CALL ' "$R/app-$p.log" | awk '{print $2}'); last=$(grep '^CALL ' "$R/app-$p.log" | tail -1 | awk '{print $2}')
  span=$(( $(date -d "$last" +%s) - $(date -d "$first" +%s) ))
  check "$p: every call succeeds with its own role ($want)" "$ok/$calls calls rc=0, $own as assumed-role/$want, over ${span}s ($first .. $last)" \
    eval '[ "$calls" -gt 0 ] && [ "$ok" = "$calls" ] && [ "$own" = "$calls" ]'
  check "$p: calls span at least 4 minutes" "${span}s" test "$span" -ge 240
done
rot=$(grep -c '^ROTATION ' "$R/analysis.txt")
check "SVID rotations observed during the soak (ttl $SVID_TTL)" "$rot rotations ($R/analysis.txt)" test "$rot" -ge 2
ids=$(jq -r '[.. | objects | select(has("spiffe_id")) | "\(.spiffe_id) -> \(.role_arn // "?")"] | unique | join(", ")' "$R/ready-final.json" 2>/dev/null)
check "/ready lists the identities" "$ids" eval '[[ "$ids" == *sa/orders* ]] && [[ "$ids" == *sa/payments* ]]'

# ---------------------------------------------------------------------------------------------------------
if [ -z "${SKIP_SIDECAR:-}" ]; then
phase "9. sidecar example ($EXAMPLE) in a fresh shop namespace"
kc delete clusterspiffeid -l "$OWNER_LABEL" --ignore-not-found > /dev/null
kc delete namespace "$NSA" --wait=true --timeout=180s > /dev/null || die "namespace shop not deleted"
kc create namespace "$NSA" > /dev/null
cp "$EXAMPLE/clusterspiffeid.yaml" "$R/sidecar-clusterspiffeid.yaml"
# The emulator: endpoint and insecure_endpoint in the profile, after its role_arn line.
awk -v ep="http://$NODE_IP:8443" '{ print } /^[[:space:]]*role_arn[[:space:]]*=/ && !done { i = $0; sub(/[^[:space:]].*/, "", i)
  print i "endpoint         = \"" ep "\""; print i "insecure_endpoint = true"; done = 1 }' "$EXAMPLE/configmap.yaml" > "$R/sidecar-configmap.yaml"
sed -E "s#image: .*spiffe-aws-bridge:.*#image: $BRIDGE_REF#" "$EXAMPLE/deployment.yaml" > "$R/sidecar-deployment.yaml"
diff "$EXAMPLE/configmap.yaml" "$R/sidecar-configmap.yaml" | sed 's/^/  /'; diff "$EXAMPLE/deployment.yaml" "$R/sidecar-deployment.yaml" | sed 's/^/  /'
grep -q "className: $CLASS" "$R/sidecar-clusterspiffeid.yaml" && echo "  the example's ClusterSPIFFEID has className $CLASS"
kc apply -f "$R/sidecar-clusterspiffeid.yaml" -f "$R/sidecar-configmap.yaml" -f "$R/sidecar-deployment.yaml" || die "apply the sidecar example"
sc_t0=$(date +%s)
kc -n "$NSA" rollout status deploy/orders --timeout=240s || { diag sidecar; result FAIL "sidecar example: rollout" "see $R/diag-sidecar.txt"; }
echo "  rollout took $(( $(date +%s) - sc_t0 ))s"
kc -n "$NSA" get pods -o wide | tee "$R/pods-sidecar.txt"
mapfile -t SPODS < <(kc -n "$NSA" get pods -l app.kubernetes.io/name=orders -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
"$B3/spire-server" entry show -socketPath "$SPIRE_SERVER_SOCK" -spiffeID spiffe://example.org/ns/shop/sa/orders > "$R/entries-sidecar.txt" 2>&1
nent=$(grep -c '^Entry ID' "$R/entries-sidecar.txt"); ncn=$(grep -c 'k8s:container-name:spiffe-aws-bridge' "$R/entries-sidecar.txt")
check "sidecar: every shop entry carries k8s:container-name:spiffe-aws-bridge" "$ncn of $nent entries, ${#SPODS[@]} pods ($R/entries-sidecar.txt)" \
  eval '[ "$nent" -ge 1 ] && [ "$nent" = "$ncn" ]'
for p in "${SPODS[@]}"; do
  for _ in $(seq 60); do kc -n "$NSA" logs "$p" -c app 2>/dev/null | grep -q 'assumed-role' && break; sleep 3; done
  kc -n "$NSA" logs "$p" -c app > "$R/sidecar-app-$p.log" 2>&1
  kc -n "$NSA" logs "$p" -c spiffe-aws-bridge > "$R/sidecar-bridge-$p.log" 2>&1
  arn=$(grep -o '"Arn": "[^"]*"' "$R/sidecar-app-$p.log" | tail -1)
  check "sidecar $p: app gets assumed-role/orders" "$arn" eval '[[ "$arn" == *assumed-role/orders/* ]]'
  # The sidecar container is offered the SVID...
  kc -n "$NSA" exec "$p" -c spiffe-aws-bridge -- /usr/local/bin/spiffe-aws-bridge check \
    --workload-socket unix:///spiffe-workload-api/spire-agent.sock > "$R/sidecar-check-$p.txt" 2>&1
  check "sidecar $p: the spiffe-aws-bridge container holds spiffe://example.org/ns/shop/sa/orders" \
    "$(grep -m1 -o 'spiffe://example.org/ns/shop/sa/orders' "$R/sidecar-check-$p.txt") ($R/sidecar-check-$p.txt)" \
    grep -q 'spiffe://example.org/ns/shop/sa/orders' "$R/sidecar-check-$p.txt"
done
# ...and another container of the same pod, with the same socket, is not (the app has no socket at all).
p=${SPODS[0]}
kc -n "$NSA" patch pod "$p" --subresource ephemeralcontainers --type strategic -p "$(jq -cn --arg img "$BRIDGE_REF" '{spec: {ephemeralContainers: [{name: "probe", image: $img, command: ["/usr/local/bin/spiffe-aws-bridge", "check", "--workload-socket", "unix:///spiffe-workload-api/spire-agent.sock"], volumeMounts: [{name: "spiffe-workload-api", mountPath: "/spiffe-workload-api", readOnly: true}], securityContext: {runAsNonRoot: true, runAsUser: 65532, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: ["ALL"]}}}]}}')" > /dev/null &&
for _ in $(seq 60); do
  st=$(kc -n "$NSA" get pod "$p" -o jsonpath='{.status.ephemeralContainerStatuses[?(@.name=="probe")].state.terminated.reason}')
  [ -n "$st" ] && break; sleep 2
done
kc -n "$NSA" logs "$p" -c probe > "$R/sidecar-probe-$p.txt" 2>&1
check "sidecar $p: another container of the pod (ephemeral 'probe', same socket) gets no SVID" \
  "$(grep -v '^$' "$R/sidecar-probe-$p.txt" | head -3 | tr '\n' ' ' | cut -c1-300)" \
  eval '[ -s "$R/sidecar-probe-$p.txt" ] && ! grep -q "spiffe://example.org/ns/shop/sa/orders" "$R/sidecar-probe-$p.txt"'
fi

# ---------------------------------------------------------------------------------------------------------
phase "10. secrets: no token, key or credential in the bridge's and webhook's logs, nor in $R"
: > "$S/patterns"
for f in "$S"/token-*; do [ -s "$f" ] && cat "$f" >> "$S/patterns" && echo >> "$S/patterns"; done
for b in "$S"/*.body; do jq -r 'select(type == "object") | .SecretAccessKey // empty, .Token // empty' "$b" 2>/dev/null >> "$S/patterns"; done
sed -i '/^$/d' "$S/patterns"
np=$(wc -l < "$S/patterns")
logs=("$R/bridge-node.log" "$R/webhook.log")
[ -z "${SKIP_SIDECAR:-}" ] && logs+=("$R"/sidecar-bridge-*.log)
hits=$(cat "${logs[@]}" | grep -c -F -f "$S/patterns"); jwt=$(cat "${logs[@]}" | grep -c 'eyJhbGciOi')
key=$(cat "${logs[@]}" | grep -ciE 'PRIVATE KEY|secretaccesskey"?[:=] *"?[A-Za-z0-9/+]{20}')
check "no token or secret in the bridge/webhook logs" "$np known tokens/secrets: $hits hits; JWT-looking: $jwt; key/secret-looking: $key; $(cat "${logs[@]}" | wc -l) log lines" \
  eval '[ "$np" -gt 0 ] && [ "$hits" = 0 ] && [ "$jwt" = 0 ] && [ "$key" = 0 ]'
self=$(grep -rlF -f "$S/patterns" "$R" || true)
check "no token or secret in the run's own files" "${self:-none}" test -z "$self"

phase "done"
echo "results ($R/results.txt): $PASS passed, $FAIL failed; took $(( $(date +%s) - T0 ))s"
exit "$FAIL"
