# The lab's rolesanywhere-emulator account for pod identity (run-pod-identity.sh passes it to stage3.sh as
# EMULATOR_HCL): the example's account, trust anchor and profile, two roles, each trusting only its own
# service account's SPIFFE ID: orders <- spiffe://example.org/ns/shop/sa/orders, payments <- .../sa/payments.
# The trust anchor holds the lab SPIRE server's bundle, which stage3.sh writes.
account_id = "111122223333"

trust_anchor "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/0f0e0d0c-0b0a-4909-8807-060504030201" {
  ca_bundle_file = "/tmp/k8slab/spire/bundle.pem"
}

profile "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/01020304-0506-4708-8900-0a0b0c0d0e0f" {
  role_arns        = ["arn:aws:iam::111122223333:role/orders", "arn:aws:iam::111122223333:role/payments"]
  duration_seconds = 3600
}

role "arn:aws:iam::111122223333:role/orders" {
  condition {
    tag    = "x509SAN/URI"
    values = ["spiffe://example.org/ns/shop/sa/orders"]
  }
}

role "arn:aws:iam::111122223333:role/payments" {
  condition {
    tag    = "x509SAN/URI"
    values = ["spiffe://example.org/ns/shop/sa/payments"]
  }
}
