package podrules_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/wiring/podrules"
)

const conf = `delegated_identity {
  admin_address = "unix:///run/spire/admin.sock"
}
pod_identity {
  rule {
    spiffe_id         = "spiffe://example.org/ns/{ns}/sa/{sa}"
    trust_anchor_arn  = "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/0f0e0d0c-0b0a-4909-8807-060504030201"
    profile_arn       = "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/01020304-0506-4708-8900-0a0b0c0d0e0f"
    role_arn          = "arn:aws:iam::111122223333:role/{ns}/{sa}"
    role_session_name = "{sa}"
    assume_role {
      role_arn          = "arn:aws:iam::444455556666:role/{sa}"
      role_session_name = "hop-{ns}"
      external_id       = "tenant-7"
    }
  }
}
`

// A rule's profile comes back from a match with the SPIFFE ID, the filled role, session name and hops,
// and every other setting of the rule (here the hop's external_id) untouched; the rule's own profile is
// not modified.
func TestProfileOfAMatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bridge.hcl")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := podrules.Compile(cfg.PodIdentity)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := rules.Match(spiffeid.RequireFromString("spiffe://example.org/ns/prod/sa/billing"))
	if err != nil {
		t.Fatal(err)
	}
	pc, ok := podrules.Profile(spec)
	if !ok {
		t.Fatal("no profile")
	}
	if pc.Name != "pod_identity:spiffe://example.org/ns/prod/sa/billing" || pc.SpiffeID != "spiffe://example.org/ns/prod/sa/billing" ||
		pc.RoleARN != "arn:aws:iam::111122223333:role/prod/billing" || pc.RoleSessionName != "billing" ||
		pc.AssumeRole[0].RoleARN != "arn:aws:iam::444455556666:role/billing" || pc.AssumeRole[0].RoleSessionName != "hop-prod" ||
		pc.AssumeRole[0].ExternalID != "tenant-7" || pc.TrustAnchorARN != cfg.PodIdentity.Rules[0].TrustAnchorARN {
		t.Errorf("profile = %+v", pc)
	}
	if r := cfg.PodIdentity.Rules[0]; r.AssumeRole[0].RoleARN != "arn:aws:iam::444455556666:role/{sa}" || r.RoleARN != "arn:aws:iam::111122223333:role/{ns}/{sa}" {
		t.Errorf("the rule's templates changed: %+v", r)
	}
	if _, ok := podrules.Profile(podidentity.SessionSpec{}); ok {
		t.Error("a spec without a rule's settings gave a profile")
	}
}
