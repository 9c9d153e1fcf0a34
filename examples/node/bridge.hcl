# /etc/spiffe-aws-bridge/bridge.hcl for node mode: one bridge serves every service on the host, each with
# its own SVID from the SPIRE agent's Delegated Identity API, its own role, files owned by its own user
# (the default with a unix:uid selector) and its own container endpoint port and token.

agent_address = "unix:///run/spire/sockets/agent.sock"
log_level     = "info"

delegated_identity {
  admin_address = "unix:///run/spire/admin/admin.sock"
}

health_checks {
  bind_address = "127.0.0.1"
  bind_port    = 8080
}

profile "billing" {
  workload_selectors = ["unix:uid:1001"]
  spiffe_id          = "spiffe://example.org/host/billing"
  trust_anchor_arn   = "arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/0f0e0d0c-0b0a-4909-8807-060504030201"
  profile_arn        = "arn:aws:rolesanywhere:us-east-1:111122223333:profile/01020304-0506-4708-8900-0a0b0c0d0e0f"
  role_arn           = "arn:aws:iam::111122223333:role/billing"

  # Owned by uid 1001, mode 0600: AWS_SHARED_CREDENTIALS_FILE=/run/spiffe-aws-bridge/billing/credentials.
  credentials_file {
    path         = "/run/spiffe-aws-bridge/billing/credentials"
    profile_name = "default"
  }

  # Its own port; the token file is owned by uid 1001.
  container_endpoint {
    bind_port       = 9921
    auth_token_file = "/run/spiffe-aws-bridge/billing/container.token"
  }
}

profile "reports" {
  workload_selectors = ["unix:uid:1002"]
  trust_anchor_arn   = "arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/0f0e0d0c-0b0a-4909-8807-060504030201"
  profile_arn        = "arn:aws:rolesanywhere:us-east-1:111122223333:profile/01020304-0506-4708-8900-0a0b0c0d0e0f"
  role_arn           = "arn:aws:iam::111122223333:role/reports"

  credentials_file {
    path         = "/run/spiffe-aws-bridge/reports/credentials"
    profile_name = "default"
  }
}

profile "search" {
  workload_selectors = ["unix:uid:1003"]
  trust_anchor_arn   = "arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/0f0e0d0c-0b0a-4909-8807-060504030201"
  profile_arn        = "arn:aws:rolesanywhere:us-east-1:111122223333:profile/01020304-0506-4708-8900-0a0b0c0d0e0f"
  role_arn           = "arn:aws:iam::111122223333:role/search"

  container_endpoint {
    bind_port       = 9923
    auth_token_file = "/run/spiffe-aws-bridge/search/container.token"
  }
}
