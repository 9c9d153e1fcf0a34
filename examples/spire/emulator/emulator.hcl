# The emulated AWS account of the demo: a Roles Anywhere trust anchor holding the SPIRE bundle (exported
# by the `register` service to the shared volume at start-up), a profile, and the role "demo", whose trust
# policy admits any SPIFFE ID under spiffe://example.org/ns/demo/. The profile has trusted identity
# propagation on: the emulator's /_emulator/sessions view shows each session's origin identity (the SPIFFE
# ID), which AWS policies can require as aws:OriginIdentity/Subject.

account_id = "123456789012"

trust_anchor "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/5b7e3c1a-8f2d-4a6b-9c0e-1d2f3a4b5c6d" {
  ca_bundle_file = "/shared/bundle.pem"
}

profile "arn:aws:rolesanywhere:us-east-1:123456789012:profile/9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b" {
  role_arns        = ["arn:aws:iam::123456789012:role/demo"]
  duration_seconds = 3600
  # Trusted identity propagation: each session carries its SPIFFE ID as aws:OriginIdentity/Subject.
  tip {
    status         = "ENABLED"
    subject_source = "x509SAN/URI"
    subject_type   = "workload"
  }
}

role "arn:aws:iam::123456789012:role/demo" {
  condition {
    tag    = "x509SAN/URI"
    values = ["spiffe://example.org/ns/demo/*"]
  }
}
