#!/bin/sh
# Registration entries for node mode, run on the SPIRE server. PARENT is this host's agent ID (as
# `spire-server agent list` shows it). One entry for the bridge itself — the identity the agent checks
# against authorized_delegates — and one per service, each selected by the uid its processes run as. The
# bridge asks the Delegated Identity API for "unix:uid:1001", and so on (bridge.hcl's workload_selectors),
# and the agent answers with the SVIDs of the entries whose selectors all match.
set -eu
PARENT=${PARENT:?set PARENT to the agent SPIFFE ID, e.g. spiffe://example.org/spire/agent/x509pop/<fingerprint>}

# The bridge runs as root (it writes each service's files as that service's user).
spire-server entry create -parentID "$PARENT" -spiffeID spiffe://example.org/host/spiffe-aws-bridge -selector unix:uid:0

# One entry per service, by uid.
spire-server entry create -parentID "$PARENT" -spiffeID spiffe://example.org/host/billing -selector unix:uid:1001
spire-server entry create -parentID "$PARENT" -spiffeID spiffe://example.org/host/reports -selector unix:uid:1002
spire-server entry create -parentID "$PARENT" -spiffeID spiffe://example.org/host/search -selector unix:uid:1003
