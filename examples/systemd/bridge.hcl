# /etc/spiffe-aws-bridge/bridge.hcl for spiffe-aws-bridge.service: one profile for the local user "app",
# whose SVID the SPIRE agent issues (entry selector unix:uid:<uid of app>, see README.md).

agent_address = "unix:///run/spire/sockets/agent.sock"
log_level     = "info"

# Loopback only: probe with curl http://127.0.0.1:8080/ready
health_checks {
  bind_address = "127.0.0.1"
  bind_port    = 8080
}

profile "app" {
  spiffe_id        = "spiffe://example.org/host/app"
  trust_anchor_arn = "arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/0f0e0d0c-0b0a-4909-8807-060504030201"
  profile_arn      = "arn:aws:rolesanywhere:us-east-1:111122223333:profile/01020304-0506-4708-8900-0a0b0c0d0e0f"
  role_arn         = "arn:aws:iam::111122223333:role/app"

  # AWS_SHARED_CREDENTIALS_FILE=/run/spiffe-aws-bridge/credentials (section [default]).
  credentials_file {
    path         = "/run/spiffe-aws-bridge/credentials"
    profile_name = "default"
  }

  # AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:9912/v1/credentials with
  # AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/run/spiffe-aws-bridge/container.token.
  container_endpoint {
    bind_port       = 9912
    auth_token_file = "/run/spiffe-aws-bridge/container.token"
  }
}
