#!/bin/sh
# One-shot `register` service of the docker-compose demo. It runs once spire-server is healthy, talks to the
# server's admin socket, and prepares everything the other services need:
#   1. /shared/bundle.pem  - the trust bundle: the agent bootstraps with it, the emulator's trust anchor holds it;
#   2. /shared/join-token  - a one-time join token that attests the agent as $AGENT_SPIFFE_ID;
#   3. the registration entry $BRIDGE_SPIFFE_ID for processes of uid $BRIDGE_UID under that agent;
#   4. /aws, owned by $BRIDGE_UID, where the bridge writes the credentials file and the endpoint's token.
# It is safe to run again: the bundle and token are refreshed, an existing entry is kept.
set -eu

: "${SOCKET:=/tmp/spire-server/private/api.sock}"
: "${AGENT_SPIFFE_ID:?}" "${BRIDGE_SPIFFE_ID:?}" "${BRIDGE_UID:?}"

spire() { /opt/spire/bin/spire-server "$@"; }

echo "register: exporting the trust bundle to /shared/bundle.pem"
spire bundle show -socketPath "$SOCKET" -format pem > /shared/bundle.pem.tmp
chmod 0644 /shared/bundle.pem.tmp
mv /shared/bundle.pem.tmp /shared/bundle.pem

echo "register: generating a join token for $AGENT_SPIFFE_ID"
token=$(spire token generate -socketPath "$SOCKET" -spiffeID "$AGENT_SPIFFE_ID" -ttl 600 | sed -n 's/^Token: *//p')
if [ -z "$token" ]; then
  echo "register: spire-server token generate printed no token" >&2
  exit 1
fi
umask 077
printf '%s\n' "$token" > /shared/join-token
umask 022

if spire entry show -socketPath "$SOCKET" -spiffeID "$BRIDGE_SPIFFE_ID" | grep -q "Entry ID"; then
  echo "register: entry for $BRIDGE_SPIFFE_ID already exists"
else
  echo "register: creating the entry $BRIDGE_SPIFFE_ID (selector unix:uid:$BRIDGE_UID)"
  spire entry create -socketPath "$SOCKET" \
    -parentID "$AGENT_SPIFFE_ID" \
    -spiffeID "$BRIDGE_SPIFFE_ID" \
    -selector "unix:uid:$BRIDGE_UID"
fi

# The bridge runs as $BRIDGE_UID (distroless nonroot); a fresh named volume is owned by root.
chown "$BRIDGE_UID:$BRIDGE_UID" /aws
chmod 0755 /aws
echo "register: done"
