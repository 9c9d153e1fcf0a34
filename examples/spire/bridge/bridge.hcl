# spiffe-aws-bridge in the docker-compose demo. It gets its X.509-SVID from the SPIRE agent (the entry
# spiffe://example.org/ns/demo/bridge selects unix:uid:65532, the uid the container runs as), trades it for
# credentials at the local Roles Anywhere emulator, and hands them to the workload twice: as the [default]
# profile of /aws/credentials (a shared volume) and from a container-credentials endpoint on 127.0.0.1:9912
# (the workload shares this container's network namespace). See README.md, "Switch to real AWS".

agent_address = "unix:///run/spire/sockets/agent.sock"
log_level     = "info"

health_checks {
  bind_address = "0.0.0.0"
  bind_port    = 8080
  allow_remote = true
}

profile "default" {
  spiffe_id        = "spiffe://example.org/ns/demo/bridge"
  trust_anchor_arn = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/5b7e3c1a-8f2d-4a6b-9c0e-1d2f3a4b5c6d"
  profile_arn      = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
  role_arn         = "arn:aws:iam::123456789012:role/demo"

  # The emulator, over plain http on the compose network. For real AWS, delete these two lines.
  endpoint          = "http://emulator:8443"
  insecure_endpoint = true

  # Short sessions, and a refresh as soon as SPIRE rotates the SVID (every ~2.5 minutes here), so that
  # the access key id visibly changes. In production keep the defaults (1h, 28m spread).
  session_duration = "15m"
  refresh {
    rotation_spread = "0s"
  }

  credentials_file {
    path = "/aws/credentials"
  }

  # Loopback only: AWS SDKs send credentials requests over plain http to loopback addresses only, so the
  # workload joins this container's network namespace (network_mode: service:bridge) and nobody else can
  # reach the endpoint.
  container_endpoint {
    bind_address    = "127.0.0.1"
    bind_port       = 9912
    auth_token_file = "/aws/container.token"
  }
}
