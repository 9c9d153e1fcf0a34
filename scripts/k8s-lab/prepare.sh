#!/bin/bash
# prepare.sh: makes a running stage-3 k8s-lab ready for the project's pod identity (idempotent; run it after
# every `up.sh --stage 3` / `stage3.sh`, which rewrite the SPIRE agent's config and start the API server
# without what is added here). Run as root. What it does, each only when not done yet:
#   1. SPIRE agent: admin_socket_path ($ADMIN_SOCK) and authorized_delegates ($DELEGATES) in
#      $LAB/spire/agent.conf's agent block; the agent is restarted the way stage3.sh starts it (env.sh's
#      start/stop by recorded PID) when the running one was not started from that config by this script.
#   2. kube-apiserver: --enable-aggregator-routing=true (no kube-proxy: the API server must reach the
#      webhook's Service by its endpoints). The running API server's own command line is reused, plus the flag.
#   3. The pod identity address 169.254.170.23/32 on the lab's own port-less node bridge (k8slab-node0),
#      so the node bridge finds it present and adds nothing to the machine's loopback; down.sh removes it
#      with that link.
#   4. helm v3.22.0 in /var/cache/spiffe-aws-bridge/helm-v3.22.0 (the project's scripts/helm.sh).
# Then it checks the stage-3 services pod identity and the sidecar example rely on and prints a summary;
# exit status 1 when a check fails.
# (Host-network pods cannot reach the kubernetes Service IP here, DNAT is in PREROUTING only: the chart's
# DaemonSet gets KUBERNETES_SERVICE_HOST/PORT from run-pod-identity.sh's helm post-renderer, not here.)
#
# Settings: ADMIN_SOCK (default /run/k8slab/spire/admin/admin.sock), DELEGATES (comma-separated SPIFFE IDs,
# default the chart's node bridge for release and namespace spiffe-aws-bridge), HELM_PROJECT (a checkout
# with scripts/helm.sh, default: this repository), SCM_CLASS_NAME (expected controller manager class, default
# spire-server-spire).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
LABSH=${LABSH:-$(cd "$REPO/../shared/k8s-lab" 2>/dev/null && pwd || echo "$REPO/../shared/k8s-lab")}
. "$LABSH/env.sh"
ADMIN_SOCK=${ADMIN_SOCK:-/run/k8slab/spire/admin/admin.sock}
DELEGATES=${DELEGATES:-spiffe://example.org/ns/spiffe-aws-bridge/sa/spiffe-aws-bridge-node}
HELM_PROJECT=${HELM_PROJECT:-$REPO}
SCM_CLASS_NAME=${SCM_CLASS_NAME:-spire-server-spire}
POD_IDENTITY_IP=169.254.170.23
SP=$LAB/spire
fail=0
ok() { printf '  ok    %s\n' "$*"; }
bad() { printf '  FAIL  %s\n' "$*"; fail=1; }
[ "$(id -u)" = 0 ] || { echo "prepare.sh: run as root" >&2; exit 1; }
alive kube-apiserver || { echo "prepare.sh: the lab is not up (no kube-apiserver): run up.sh --stage 3 first" >&2; exit 1; }
[ -f "$SP/agent.conf" ] || { echo "prepare.sh: no $SP/agent.conf: run up.sh --stage 3 first" >&2; exit 1; }

echo "== 1. SPIRE agent: admin socket $ADMIN_SOCK, authorized_delegates [$DELEGATES]"
if [ "$(dirname "$ADMIN_SOCK")" = "$(dirname "$SPIRE_AGENT_SOCK")" ]; then
  echo "ADMIN_SOCK must not be in the Workload API socket's directory (SPIRE refuses it; pods see that one)" >&2; exit 1
fi
mkdir -p "$(dirname "$ADMIN_SOCK")"; chmod 0755 "$(dirname "$ADMIN_SOCK")"
dl=""; IFS=, read -ra _d <<<"$DELEGATES"; for d in "${_d[@]}"; do dl+="${dl:+, }\"$d\""; done
# Drop our lines (a previous run's, or stage3.sh's rewrite has none), then add them after trust_domain in
# the agent block.
awk -v a="  admin_socket_path = \"$ADMIN_SOCK\"" -v d="  authorized_delegates = [$dl]" '
  /^[[:space:]]*(admin_socket_path|authorized_delegates)[[:space:]]*=/ { next }
  { print }
  /^agent[[:space:]]*\{/ { inagent = 1 }
  inagent && /^[[:space:]]*trust_domain[[:space:]]*=/ { print a; print d; inagent = 0; added = 1 }
  END { if (!added) exit 3 }' "$SP/agent.conf" > "$SP/agent.conf.prep" ||
  { echo "could not find trust_domain in the agent block of $SP/agent.conf" >&2; exit 1; }
want=$(sha256sum < "$SP/agent.conf.prep" | cut -d' ' -f1)
running_pid=$(cat "$PIDS/spire-agent.pid" 2>/dev/null || true)
if alive spire-agent && [ "$(cat "$SP/agent.prepared" 2>/dev/null)" = "$running_pid $want" ] && [ -S "$ADMIN_SOCK" ]; then
  mv "$SP/agent.conf.prep" "$SP/agent.conf"   # stage3.sh may have rewritten the file under the running agent
  echo "  the agent (pid $running_pid) already runs with it"
else
  mv "$SP/agent.conf.prep" "$SP/agent.conf"
  stop spire-agent
  start spire-agent "$B3/spire-agent" run -config "$SP/agent.conf"
  waitfor 90 "spire-agent healthy" "$B3/spire-agent" healthcheck -socketPath "$SPIRE_AGENT_SOCK"
  waitfor 30 "admin socket $ADMIN_SOCK" test -S "$ADMIN_SOCK"
  echo "$(cat "$PIDS/spire-agent.pid") $want" > "$SP/agent.prepared"
fi

echo "== 2. kube-apiserver --enable-aggregator-routing=true"
apid=$(cat "$PIDS/kube-apiserver.pid")
mapfile -d '' args < "/proc/$apid/cmdline"
if printf '%s\n' "${args[@]}" | grep -x -- '--enable-aggregator-routing=true' >/dev/null; then
  echo "  already set (pid $apid)"
else
  [[ "${args[0]}" == */kube-apiserver ]] || { echo "pid $apid is not a kube-apiserver (${args[0]})" >&2; exit 1; }
  stop kube-apiserver 30
  start kube-apiserver "${args[@]}" --enable-aggregator-routing=true
  waitfor 180 "apiserver /readyz" kc get --raw /readyz
  echo "  restarted with the flag (pid $(cat "$PIDS/kube-apiserver.pid"))"
fi

echo "== 3. $POD_IDENTITY_IP/32 on $NODE_IF"
if ip -4 -o addr show | grep -F " $POD_IDENTITY_IP/" >/dev/null; then
  echo "  present: $(ip -4 -o addr show | grep -F " $POD_IDENTITY_IP/" | awk '{print $2, $4}')"
else
  ip addr add "$POD_IDENTITY_IP/32" dev "$NODE_IF"
  echo "  added to $NODE_IF"
fi

echo "== 4. helm"
HELM_DIR=$("$HELM_PROJECT/scripts/helm.sh")
echo "  $HELM_DIR/helm: $("$HELM_DIR/helm" version --short)"

echo "== checks"
grep -F "admin_socket_path = \"$ADMIN_SOCK\"" "$SP/agent.conf" >/dev/null && [ -S "$ADMIN_SOCK" ] &&
  ok "agent admin socket $ADMIN_SOCK ($(grep authorized_delegates "$SP/agent.conf" | sed 's/^ *//'))" || bad "agent admin socket"
"$B3/spire-agent" healthcheck -socketPath "$SPIRE_AGENT_SOCK" >/dev/null 2>&1 && ok "spire-agent healthy" || bad "spire-agent healthcheck"
"$B3/spire-server" healthcheck -socketPath "$SPIRE_SERVER_SOCK" >/dev/null 2>&1 && ok "spire-server healthy" || bad "spire-server healthcheck"
tr '\0' '\n' < "/proc/$(cat "$PIDS/kube-apiserver.pid")/cmdline" | grep -x -- '--enable-aggregator-routing=true' >/dev/null &&
  ok "kube-apiserver --enable-aggregator-routing=true" || bad "kube-apiserver flag"
kc get --raw /readyz >/dev/null 2>&1 && ok "apiserver ready" || bad "apiserver /readyz"
kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -x True >/dev/null &&
  ok "node $NODE_NAME Ready" || bad "node not Ready"
alive emulator && ok "emulator on $NODE_IP:8443 ($(grep -c '^role ' "$SP/emulator.hcl") roles in $SP/emulator.hcl)" || bad "emulator not running"
if alive spire-controller-manager; then
  grep -x "className: $SCM_CLASS_NAME" "$SP/scm.yaml" >/dev/null && ok "spire-controller-manager, className $SCM_CLASS_NAME" ||
    bad "spire-controller-manager runs without className $SCM_CLASS_NAME: rerun up.sh with SCM_CLASS_NAME=$SCM_CLASS_NAME"
else bad "spire-controller-manager not running"; fi
if alive spiffe-csi-driver && alive node-driver-registrar; then
  kc get csinode "$NODE_NAME" -o jsonpath='{.spec.drivers[*].name}' | grep -w csi.spiffe.io >/dev/null &&
    ok "CSI driver csi.spiffe.io registered on $NODE_NAME" || bad "csi.spiffe.io not in CSINode $NODE_NAME"
else bad "CSI driver or registrar not running"; fi
ip -4 -o addr show | grep -F " $POD_IDENTITY_IP/" >/dev/null && ok "$POD_IDENTITY_IP on the node" || bad "$POD_IDENTITY_IP missing"
[ -x "$HELM_DIR/helm" ] && ok "helm $HELM_DIR/helm" || bad "helm"
exit $fail
