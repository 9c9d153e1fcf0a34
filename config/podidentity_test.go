package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// podBlock is a pod_identity block with one rule; extra goes into the rule, outer into the block.
func podBlock(outer, extra string) string {
	return "pod_identity {\n" + outer + "  rule {\n" +
		"    spiffe_id        = \"spiffe://example.org/ns/{ns}/sa/{sa}\"\n" +
		"    trust_anchor_arn = \"" + ta + "\"\n" +
		"    profile_arn      = \"" + pa + "\"\n" +
		"    role_arn         = \"arn:aws:iam::123456789012:role/{ns}-{sa}\"\n" +
		extra + "  }\n}\n"
}

// A pod_identity block alone is a whole config; defaults apply; rules keep their order and templates.
func TestPodIdentityConfig(t *testing.T) {
	c := mustParse(t, adminBlock+podBlock("", `    role_session_name = "{sa}"
    assume_role {
      role_arn = "arn:aws:iam::210987654321:role/{ns}"
    }
    refresh {
      rotation_spread = "0s"
    }
`)+`pod_identity_extra_rule_marker = 1`[0:0])
	pi := c.PodIdentity
	if pi == nil {
		t.Fatal("no PodIdentity")
	}
	if !reflect.DeepEqual(pi.Listen, []string{"169.254.170.23:80"}) || pi.Interface != "spiffe-aws-pod0" || pi.Audience != "spiffe-aws-bridge" ||
		pi.TokenCacheTTL != time.Minute || pi.NodeName != "" || pi.Kubeconfig != "" || pi.AllowAnyAddress || !pi.VerifySourceAddress {
		t.Errorf("defaults = %+v", pi)
	}
	if len(c.Profiles) != 0 || len(pi.Rules) != 1 {
		t.Fatalf("profiles %d rules %d", len(c.Profiles), len(pi.Rules))
	}
	r := pi.Rules[0]
	if r.Name != "rule[0]" || r.SpiffeID != "spiffe://example.org/ns/{ns}/sa/{sa}" || r.RoleARN != "arn:aws:iam::123456789012:role/{ns}-{sa}" ||
		r.RoleSessionName != "{sa}" || r.Region != "us-east-1" || r.SessionDuration != time.Hour || r.Refresh.RotationSpread != 0 ||
		len(r.AssumeRole) != 1 || r.AssumeRole[0].RoleARN != "arn:aws:iam::210987654321:role/{ns}" || r.Pos != "test.hcl:5" {
		t.Errorf("rule = %+v", r)
	}
	c2 := mustParse(t, adminBlock+podBlock(`  listen = ["169.254.170.23:8080", "[fd00:ec2::23]:80", "127.0.0.1:9920"]
  interface = ""
  node_name = "node-1.example"
  audience = "aws"
  kubeconfig = "/etc/kube/config"
  token_cache_ttl = "10s"
`, ""))
	pi = c2.PodIdentity
	if !reflect.DeepEqual(pi.Listen, []string{"169.254.170.23:8080", "[fd00:ec2::23]:80", "127.0.0.1:9920"}) || pi.Interface != "" ||
		pi.NodeName != "node-1.example" || pi.Audience != "aws" || pi.Kubeconfig != "/etc/kube/config" || pi.TokenCacheTTL != 10*time.Second {
		t.Errorf("settings = %+v", pi)
	}
	// Profiles run beside pod identity.
	c3 := mustParse(t, adminBlock+podBlock("", "")+prof("app", ""))
	if len(c3.Profiles) != 1 || c3.PodIdentity == nil {
		t.Errorf("profile beside pod_identity: %d profiles", len(c3.Profiles))
	}
	if !c.Equal(mustParse(t, "\n"+adminBlock+podBlock("", `    role_session_name = "{sa}"
    assume_role {
      role_arn = "arn:aws:iam::210987654321:role/{ns}"
    }
    refresh {
      rotation_spread = "0s"
    }
`))) {
		t.Error("the same pod_identity one line lower is not Equal")
	}
}

func TestPodIdentityErrors(t *testing.T) {
	rule := func(extra string) string { return adminBlock + podBlock("", extra) }
	replace := func(old, new string) string { return strings.Replace(adminBlock+podBlock("", ""), old, new, 1) }
	cases := []struct{ name, src, want string }{
		{"needs delegated_identity", podBlock("", ""), `test.hcl:1:1: pod_identity needs a delegated_identity`},
		{"needs a rule", adminBlock + "pod_identity {\n}\n", `test.hcl:4:1: pod_identity needs at least one rule`},
		{"rule without spiffe_id", replace(`    spiffe_id        = "spiffe://example.org/ns/{ns}/sa/{sa}"`, ""), `pod_identity.rule[0]: spiffe_id is required`},
		{"pattern not spiffe", replace("spiffe://example.org/ns/{ns}/sa/{sa}", "https://example.org/{ns}"), `pod_identity.rule[0]: spiffe_id "https://example.org/{ns}" is not a spiffe:// ID pattern`},
		{"capture spans part of a segment", replace("spiffe://example.org/ns/{ns}/sa/{sa}", "spiffe://example.org/ns-{ns}/sa/{sa}"), `segment "ns-{ns}" mixes a capture with text`},
		{"capture named twice", replace("spiffe://example.org/ns/{ns}/sa/{sa}", "spiffe://example.org/ns/{ns}/sa/{ns}"), `capture {ns} appears twice`},
		{"capture in the trust domain", replace("spiffe://example.org/ns/{ns}/sa/{sa}", "spiffe://{td}/ns/{ns}"), `trust domain "{td}"`},
		{"placeholder not captured in role_arn", replace("role/{ns}-{sa}", "role/{team}"), `pod_identity.rule[0]: role_arn "arn:aws:iam::123456789012:role/{team}": placeholder {team} is not captured by the rule's spiffe_id pattern (it captures {ns}, {sa})`},
		{"placeholder not captured in session name", rule(`    role_session_name = "{pod}"` + "\n"), `role_session_name "{pod}": placeholder {pod} is not captured`},
		{"placeholder not captured in a hop", rule("    assume_role {\n      role_arn = \"arn:aws:iam::210987654321:role/{x}\"\n    }\n"), `pod_identity.rule[0]: assume_role[0].role_arn "arn:aws:iam::210987654321:role/{x}": placeholder {x} is not captured`},
		{"expanded role ARN does not parse", replace("arn:aws:iam::123456789012:role/{ns}-{sa}", "arn:aws:iam::{ns}:role/x"), `pod_identity.rule[0]: role_arn "arn:aws:iam::sample:role/x"`},
		{"placeholder in the trust anchor", replace(ta, strings.Replace(ta, "0f0e0d0c", "{ns}", 1)), `pod_identity.rule[0]: trust_anchor_arn`},
		{"sinks are not rule settings", rule("    credentials_file {\n      path = \"/tmp/x\"\n    }\n"), `Unsupported block type; Blocks of type "credentials_file"`},
		{"unspecified address", adminBlock + podBlock(`  listen = ["0.0.0.0:80"]`+"\n", ""), `pod_identity.listen[0] "0.0.0.0:80": 0.0.0.0 would serve every pod's credentials on every address of the node`},
		{"routable address", adminBlock + podBlock(`  listen = ["10.0.0.5:80"]`+"\n", ""), `pod_identity.listen[0] "10.0.0.5:80": 10.0.0.5 is neither link-local nor loopback, so other hosts could reach it; set allow_any_address = true`},
		{"host name", adminBlock + podBlock(`  listen = ["localhost:80"]`+"\n", ""), `host "localhost" must be an IP address`},
		{"no port", adminBlock + podBlock(`  listen = ["169.254.170.23"]`+"\n", ""), `pod_identity.listen[0] "169.254.170.23": not host:port`},
		{"empty listen", adminBlock + podBlock(`  listen = []`+"\n", ""), `pod_identity.listen must name at least one address`},
		{"listed twice", adminBlock + podBlock(`  listen = ["169.254.170.23:80", "169.254.170.23:80"]`+"\n", ""), `pod_identity.listen[1] "169.254.170.23:80" is listed twice`},
		{"bad interface", adminBlock + podBlock(`  interface = "a/b"`+"\n", ""), `pod_identity.interface "a/b" is not a network interface name`},
		{"bad node name", adminBlock + podBlock(`  node_name = "Node_1"`+"\n", ""), `pod_identity.node_name "Node_1" is not a Kubernetes node name`},
		{"relative kubeconfig", adminBlock + podBlock(`  kubeconfig = "kube/config"`+"\n", ""), `pod_identity.kubeconfig "kube/config" must be an absolute path`},
		{"empty audience", adminBlock + podBlock(`  audience = ""`+"\n", ""), `pod_identity.audience must not be empty`},
		{"cache ttl too long", adminBlock + podBlock(`  token_cache_ttl = "1h"`+"\n", ""), `pod_identity.token_cache_ttl "1h" is out of range (1s–10m)`},
		{"verify_source_address not a bool", adminBlock + podBlock(`  verify_source_address = "no"`+"\n", ""), `test.hcl:5:27: pod_identity.verify_source_address must be true or false`},
		{"two pod_identity blocks", adminBlock + podBlock("", "") + podBlock("", ""), `only one pod_identity block is allowed`},
		{"port clash with health", adminBlock + podBlock(`  listen = ["127.0.0.1:8080"]`+"\n", "") + "health_checks {\n  bind_address = \"127.0.0.1\"\n  bind_port = 8080\n}\n", `port 8080 is already used by pod_identity`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "test.hcl")
			if err == nil {
				t.Fatalf("no error; want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
		})
	}
}

// allow_any_address lets an operator whose network keeps other hosts out listen on a routable address.
func TestPodIdentityAllowAnyAddress(t *testing.T) {
	c := mustParse(t, adminBlock+podBlock("  allow_any_address = true\n  listen = [\"10.0.0.5:80\"]\n", ""))
	if !c.PodIdentity.AllowAnyAddress || c.PodIdentity.Listen[0] != "10.0.0.5:80" {
		t.Errorf("got %+v", c.PodIdentity)
	}
}

// verify_source_address = false turns the source-address check off (CNIs that SNAT pod traffic).
func TestPodIdentityVerifySourceAddressOff(t *testing.T) {
	c := mustParse(t, adminBlock+podBlock("  verify_source_address = false\n", ""))
	if c.PodIdentity.VerifySourceAddress {
		t.Errorf("got %+v", c.PodIdentity)
	}
}

// A pod identity endpoint on an address other hosts can reach would serve them every pod's credentials
// for a stolen token: the unspecified address is always refused, a routable one without
// allow_any_address.
func TestSecurityPodIdentityListenRefusesAddressesOtherHostsReach(t *testing.T) {
	for _, l := range []string{"0.0.0.0:80", "[::]:80", "10.0.0.5:80", "[2001:db8::1]:80", "192.168.1.10:80", "[::ffff:0.0.0.0]:80"} {
		_, err := Parse([]byte(adminBlock+podBlock("  listen = [\""+l+"\"]\n", "")), "test.hcl")
		if err == nil {
			t.Errorf("listen %s accepted", l)
		}
	}
	for _, l := range []string{"0.0.0.0:80", "[::]:80"} {
		_, err := Parse([]byte(adminBlock+podBlock("  allow_any_address = true\n  listen = [\""+l+"\"]\n", "")), "test.hcl")
		if err == nil {
			t.Errorf("listen %s accepted with allow_any_address", l)
		}
	}
	for _, l := range []string{"169.254.170.23:80", "[fd00:ec2::23]:80", "[fe80::23]:80", "127.0.0.1:80", "[::1]:80"} {
		if _, err := Parse([]byte(adminBlock+podBlock("  listen = [\""+l+"\"]\n", "")), "test.hcl"); err != nil {
			t.Errorf("listen %s refused: %v", l, err)
		}
	}
}
