#!/bin/sh
# Entrypoint of the spire-agent service: start the agent with the join token `register` wrote. On a restart
# with a still-valid SVID in /var/lib/spire/agent the agent reuses it and ignores the (spent) token.
set -eu
token=$(cat /shared/join-token)
exec /opt/spire/bin/spire-agent run -config /etc/spire/agent/agent.conf -joinToken "$token"
