package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckPodIdentityRulesStory: an operator with a pod_identity config and no cluster nor agent asks the
// built binary what the rules map. The listing names each rule's position and warns of the wide one
// (exit 0: warnings do not fail); --spiffe-id names the rule and role a pod would get (exit 0), or that
// no rule maps it (exit 1, as the node bridge's 403).
func TestCheckPodIdentityRulesStory(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bridge.hcl")
	const ta, prof = "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/0f0e0d0c-0b0a-4909-8807-060504030201",
		"arn:aws:rolesanywhere:eu-west-1:111122223333:profile/01020304-0506-4708-8900-0a0b0c0d0e0f"
	text := `delegated_identity {
  admin_address = "unix:///run/spire/admin.sock"
}
pod_identity {
  node_name = "node-1"
  rule {
    spiffe_id        = "spiffe://example.org/ns/shop/sa/{sa}"
    trust_anchor_arn = "` + ta + `"
    profile_arn      = "` + prof + `"
    role_arn         = "arn:aws:iam::111122223333:role/shop-{sa}"
  }
  rule {
    spiffe_id        = "spiffe://example.org/ns/{ns}/sa/default"
    trust_anchor_arn = "` + ta + `"
    profile_arn      = "` + prof + `"
    role_arn         = "arn:aws:iam::111122223333:role/default"
  }
}
`
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	noAgent := "unix://" + filepath.Join(dir, "agent.sock")
	r := runBin(t, nil, "check", "--config", cfg, "--workload-socket", noAgent)
	for _, want := range []string{
		"rule[0] at " + cfg + ":6",
		"rule[1] at " + cfg + ":12",
		"warn maps too widely: every pod whose SPIFFE ID matches gets the one role arn:aws:iam::111122223333:role/default",
		"note some IDs this rule matches go to rule[0] (" + cfg + ":6), which comes first: e.g. spiffe://example.org/ns/shop/sa/default",
		"All checks passed, with 1 warning(s).",
	} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("check: exit %d, want 0 and %q in:\n%s%s", r.code, want, r.stdout, r.stderr)
		}
	}
	r = runBin(t, nil, "check", "--config", cfg, "--workload-socket", noAgent, "--spiffe-id", "spiffe://example.org/ns/shop/sa/cart")
	if r.code != 0 || !strings.Contains(r.stdout, "ok   rule[0] ("+cfg+":6) matches") || !strings.Contains(r.stdout, "role_arn           arn:aws:iam::111122223333:role/shop-cart") ||
		!strings.Contains(r.stdout, "info static answer") {
		t.Errorf("--spiffe-id matching: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runBin(t, nil, "check", "--config", cfg, "--workload-socket", noAgent, "--spiffe-id", "spiffe://example.org/ns/shop/sa/cart/v2")
	if r.code != 1 || !strings.Contains(r.stdout, `FAIL SPIFFE ID "spiffe://example.org/ns/shop/sa/cart/v2" matched no pod_identity rule`) {
		t.Errorf("--spiffe-id without a rule: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
}
