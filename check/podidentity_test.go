package check_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/check"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

const (
	podTA      = "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/0f0e0d0c-0b0a-4909-8807-060504030201"
	podProfile = "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/01020304-0506-4708-8900-0a0b0c0d0e0f"
	podRole    = "arn:aws:iam::111122223333:role/"
)

// podRule is a rule block for pattern and role (a role name, or a whole ARN); extra adds lines.
func podRule(pattern, role, extra string) string {
	if !strings.HasPrefix(role, "arn:") {
		role = podRole + role
	}
	return fmt.Sprintf("  rule {\n    spiffe_id        = %q\n    trust_anchor_arn = %q\n    profile_arn      = %q\n    role_arn         = %q\n%s  }\n",
		pattern, podTA, podProfile, role, extra)
}

// writePodConfig writes a config of a pod_identity block (settings, then rules) and returns its path; its
// ruleLine finds the rules' lines.
func writePodConfig(t *testing.T, settings string, rules ...string) string {
	t.Helper()
	text := "delegated_identity {\n  admin_address = \"unix:///run/spire/admin.sock\"\n}\n\npod_identity {\n" + settings + strings.Join(rules, "") + "}\n"
	path := filepath.Join(t.TempDir(), "bridge.hcl")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// hasLine reports whether a line of text starts with prefix and contains want.
func hasLine(text, prefix, want string) bool {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) && strings.Contains(line, want) {
			return true
		}
	}
	return false
}

// ruleLine is the line of the n-th rule block (from 0) of the config at path: its position in the report.
func ruleLine(t *testing.T, path string, n int) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "rule {" {
			if n == 0 {
				return fmt.Sprintf("%s:%d", path, i+1)
			}
			n--
		}
	}
	t.Fatalf("%s has no rule %d", path, n)
	return ""
}

// runCheck runs check on the config at path with no agent at the Workload API address (none is needed
// by a pod_identity-only config), and returns its result and report.
func runCheck(t *testing.T, path, spiffeID string, env map[string]string) (check.Result, string) {
	t.Helper()
	var out bytes.Buffer
	r, err := check.Run(context.Background(), check.Options{
		Out: &out, ConfigPath: path, SpiffeID: spiffeID,
		WorkloadSocket: "unix://" + filepath.Join(t.TempDir(), "no-agent.sock"),
		Getenv:         func(k string) string { return env[k] },
	})
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out.String())
	}
	return r, out.String()
}

// ruleSection is the report's part for the rule named name ("rule[1]"): from its heading to the next
// blank line.
func ruleSection(t *testing.T, report, name string) string {
	t.Helper()
	i := strings.Index(report, "\n  "+name+" at ")
	if i < 0 {
		t.Fatalf("no section for %s in:\n%s", name, report)
	}
	s := report[i+1:]
	if j := strings.Index(s, "\n\n"); j >= 0 {
		s = s[:j]
	}
	return s
}

// TestCheckListsPodIdentityRules: check --config lists the pod_identity block's settings and each rule in
// order with its position, pattern, trust anchor, profile, role, session name and hops; a config of pod
// identity alone needs no Workload API, and clean rules pass without a warning.
func TestCheckListsPodIdentityRules(t *testing.T) {
	path := writePodConfig(t, "  audience = \"aws-pods\"\n  token_cache_ttl = \"30s\"\n",
		podRule("spiffe://example.org/ns/shop/sa/payments", "shop-payments",
			"    assume_role {\n      role_arn = \"arn:aws:iam::444455556666:role/payments\"\n      role_session_name = \"shop-payments\"\n    }\n"),
		podRule("spiffe://example.org/ns/{ns}/sa/{sa}", "{ns}_{sa}", "    role_session_name = \"{sa}\"\n"))
	r, report := runCheck(t, path, "", map[string]string{"NODE_NAME": "node-7"})
	if !r.OK() || r.Warnings != 0 {
		t.Fatalf("result %+v, want no problem and no warning:\n%s", r, report)
	}
	for _, want := range []string{
		"skip cannot fetch X.509-SVIDs",
		"not a problem for this config, which has no profile",
		"Pod identity (" + path + ":5)",
		"listen             169.254.170.23:80 (added to link spiffe-aws-pod0",
		"audience           aws-pods",
		`node name          $NODE_NAME, read when the daemon starts ("node-7" here)`,
		"token cache TTL    30s",
		"API server         the in-cluster config",
		"2 rule(s), in order",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("the report lacks %q:\n%s", want, report)
		}
	}
	r0 := ruleSection(t, report, "rule[0]")
	for _, want := range []string{
		"rule[0] at " + ruleLine(t, path, 0),
		"spiffe_id          spiffe://example.org/ns/shop/sa/payments",
		"trust_anchor_arn   " + podTA,
		"profile_arn        " + podProfile,
		"role_arn           " + podRole + "shop-payments",
		"role_session_name  (default: the SVID's serial number)",
		"assume_role[0]     arn:aws:iam::444455556666:role/payments (role_session_name shop-payments)",
		"pods get           the credentials of assume_role[0]'s role",
	} {
		if !strings.Contains(r0, want) {
			t.Errorf("rule[0] lacks %q:\n%s", want, r0)
		}
	}
	r1 := ruleSection(t, report, "rule[1]")
	for _, want := range []string{
		"rule[1] at " + ruleLine(t, path, 1),
		"spiffe_id          spiffe://example.org/ns/{ns}/sa/{sa}",
		"role_arn           " + podRole + "{ns}_{sa}",
		"role_session_name  {sa}",
		"note some IDs this rule matches go to rule[0] (" + ruleLine(t, path, 0) + "), which comes first: e.g. spiffe://example.org/ns/shop/sa/payments",
	} {
		if !strings.Contains(r1, want) {
			t.Errorf("rule[1] lacks %q:\n%s", want, r1)
		}
	}

	// node_name in the file is named as the source.
	path = writePodConfig(t, "  node_name = \"node-1\"\n  kubeconfig = \"/etc/kube/config\"\n", podRule("spiffe://example.org/ns/shop/sa/payments", "shop-payments", ""))
	_, report = runCheck(t, path, "", nil)
	for _, want := range []string{"node name          node-1 (node_name)", "API server         kubeconfig /etc/kube/config"} {
		if !strings.Contains(report, want) {
			t.Errorf("the report lacks %q:\n%s", want, report)
		}
	}
}

// TestCheckWarnsOfRulesThatMapTooWidely: each warning of docs/security.md's "a rule that maps too widely",
// with its reason, under the rule it is about (named by position), next to a rule that does not earn it.
// Warnings do not fail the check.
func TestCheckWarnsOfRulesThatMapTooWidely(t *testing.T) {
	hop := func(role string) string {
		return fmt.Sprintf("    assume_role {\n      role_arn = %q\n    }\n", podRole+role)
	}
	cases := []struct {
		name  string
		rules []string
		warn  string // "" for none
	}{
		{"captures only, one role: every ID of the trust domain of that length",
			[]string{podRule("spiffe://example.org/{a}/{b}", "everyone", "")},
			"maps too widely: every pod whose SPIFFE ID matches gets the one role " + podRole + "everyone (role_arn uses no capture) and the pattern is captures only, so it matches every SPIFFE ID of example.org with 2 path segment(s)"},
		{"captures only, the role uses them: no warning",
			[]string{podRule("spiffe://example.org/{a}/{b}", "pods-{b}", "")}, ""},
		{"a namespace capture, one role",
			[]string{podRule("spiffe://example.org/ns/{ns}/sa/default", "default-sa", "")},
			"maps too widely: every pod whose SPIFFE ID matches gets the one role " + podRole + "default-sa (role_arn uses no capture) and {ns} takes every namespace, including ones created later"},
		{"a literal namespace, one role: no warning",
			[]string{podRule("spiffe://example.org/ns/shop/sa/default", "shop-default", "")}, ""},
		{"a service account capture, one role",
			[]string{podRule("spiffe://example.org/ns/shop/sa/{sa}", "shop", "")},
			"gets the one role " + podRole + "shop (role_arn uses no capture) and {sa} takes any value"},
		{"the namespace capture the role ignores",
			[]string{podRule("spiffe://example.org/ns/{ns}/sa/{sa}", "{sa}", "")},
			"maps too widely: {ns} takes every namespace, including ones created later, and role_arn does not use it"},
		{"a namespace and a service account joined by a character neither holds: no warning",
			[]string{podRule("spiffe://example.org/ns/{ns}/sa/{sa}", "{ns}_{sa}", "")}, ""},
		{"a namespace and a service account joined by a character only the service account holds: no warning",
			[]string{podRule("spiffe://example.org/ns/{ns}/sa/{sa}", "{ns}.{sa}", "")}, ""},
		{"captures of any segment joined by a character no segment holds: no warning",
			[]string{podRule("spiffe://example.org/{a}/{b}", "{a}+{b}", "")}, ""},
		{"captures of any segment joined by a character a segment may hold",
			[]string{podRule("spiffe://example.org/{a}/{b}", "{a}_{b}", "")},
			`ambiguous role: {a} and {b} meet with "_" between them, which both may hold, so different SPIFFE IDs get the same role: {a}="p_q", {b}="r" and {a}="p", {b}="q_r" both make ` + podRole + "p_q_r"},
		{"captures joined by a character a segment may hold",
			[]string{podRule("spiffe://example.org/ns/{ns}/sa/{sa}", "{ns}-{sa}", "")},
			`ambiguous role: {ns} and {sa} meet with "-" between them, which both may hold, so different SPIFFE IDs get the same role: {ns}="p-q", {sa}="r" and {ns}="p", {sa}="q-r" both make ` + podRole + "p-q-r"},
		{"captures joined by nothing",
			[]string{podRule("spiffe://example.org/ns/{ns}/sa/{sa}", "pods/{ns}{sa}", "")},
			`ambiguous role: {ns} and {sa} meet with "" between them`},
		{"the pods get the last hop's role: a fixed one is one role for all",
			[]string{podRule("spiffe://example.org/ns/shop/sa/{sa}", "shop-{sa}", hop("shared"))},
			"gets the one role " + podRole + "shared (assume_role[0].role_arn uses no capture)"},
		{"the last hop's role uses the capture: no warning",
			[]string{podRule("spiffe://example.org/ns/shop/sa/{sa}", "shop", hop("shop-{sa}"))}, ""},
		{"a rule shadowed by an earlier, wider one",
			[]string{podRule("spiffe://example.org/ns/{ns}/sa/{sa}", "{ns}_{sa}", ""), podRule("spiffe://example.org/ns/shop/sa/{sa}", "shop_{sa}", "")},
			"shadowed: never matches, because rule[0] (RULE0) comes first and matches every SPIFFE ID this rule does"},
		{"the same rules, narrow first: a note, no warning",
			[]string{podRule("spiffe://example.org/ns/shop/sa/{sa}", "shop_{sa}", ""), podRule("spiffe://example.org/ns/{ns}/sa/{sa}", "{ns}_{sa}", "")}, ""},
		{"an earlier rule that captures where this one has a literal and the reverse does not shadow it",
			[]string{podRule("spiffe://example.org/ns/{ns}/sa/default", "{ns}_default", ""), podRule("spiffe://example.org/ns/shop/sa/{sa}", "shop_{sa}", "")}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writePodConfig(t, "", c.rules...)
			r, report := runCheck(t, path, "", nil)
			if !r.OK() {
				t.Fatalf("warnings failed the check: %+v\n%s", r, report)
			}
			last := ruleSection(t, report, fmt.Sprintf("rule[%d]", len(c.rules)-1))
			if c.warn == "" {
				if r.Warnings != 0 || strings.Contains(report, "warn") {
					t.Fatalf("%d warning(s), want none:\n%s", r.Warnings, report)
				}
				return
			}
			want := strings.ReplaceAll(c.warn, "RULE0", ruleLine(t, path, 0))
			pos := ruleLine(t, path, len(c.rules)-1)
			if r.Warnings != 1 || !hasLine(last, "    warn ", want) {
				t.Fatalf("%d warning(s); want one under rule[%d] (%s) containing %q:\n%s", r.Warnings, len(c.rules)-1, pos, want, report)
			}
			if !strings.Contains(last, " at "+pos+"\n") {
				t.Errorf("the warned rule's position is not named:\n%s", last)
			}
			if !strings.Contains(report, "1 warning(s): the rules map as written; the warnings do not fail the check") {
				t.Errorf("no warning count:\n%s", report)
			}
		})
	}
}

// TestCheckSpiffeIDSaysWhichRoleAPodGets: --spiffe-id answers with the server's own rule engine: the first
// matching rule with its position, the captures filled into the role, hops and session names; a shadowed
// rule's IDs go to the rule before it; an ID no rule matches fails as the server's 403 does. Without an
// SVID for the ID, the answer is static and says so.
func TestCheckSpiffeIDSaysWhichRoleAPodGets(t *testing.T) {
	path := writePodConfig(t, "",
		podRule("spiffe://example.org/ns/{ns}/sa/{sa}", "{ns}/{sa}", "    role_session_name = \"{ns}.{sa}\"\n"+
			"    assume_role {\n      role_arn = \"arn:aws:iam::444455556666:role/{sa}\"\n      role_session_name = \"hop-{sa}\"\n    }\n"),
		podRule("spiffe://example.org/ns/shop/sa/{sa}", "shop-{sa}", ""),
		podRule("spiffe://example.org/batch/{job}", "batch-{job}", ""))
	cases := []struct {
		id   string
		ok   bool
		want []string
	}{
		{"spiffe://example.org/ns/prod/sa/billing", true, []string{
			"ok   rule[0] (" + ruleLine(t, path, 0) + ") matches: spiffe_id spiffe://example.org/ns/{ns}/sa/{sa}",
			"captures           {ns}=prod {sa}=billing",
			"role_arn           " + podRole + "prod/billing",
			"role_session_name  prod.billing",
			"assume_role[0]     arn:aws:iam::444455556666:role/billing (role_session_name hop-billing)",
			"pods get           arn:aws:iam::444455556666:role/billing (session pod_identity:spiffe://example.org/ns/prod/sa/billing",
		}},
		// rule[1] is shadowed: its IDs go to rule[0].
		{"spiffe://example.org/ns/shop/sa/cart", true, []string{"ok   rule[0] (" + ruleLine(t, path, 0) + ")", "role_arn           " + podRole + "shop/cart"}},
		{"spiffe://example.org/batch/nightly", true, []string{
			"ok   rule[2] (" + ruleLine(t, path, 2) + ") matches", "role_arn           " + podRole + "batch-nightly",
			"role_session_name  (default: the SVID's serial number)",
			"pods get           " + podRole + "batch-nightly",
		}},
		{"spiffe://example.org/ns/prod/sa/billing/v2", false, []string{
			`FAIL SPIFFE ID "spiffe://example.org/ns/prod/sa/billing/v2" matched no pod_identity rule: a pod with this SPIFFE ID gets HTTP 403 and no credentials`,
		}},
		{"spiffe://example.com/batch/nightly", false, []string{"matched no pod_identity rule"}},
		{"not-an-id", false, []string{`SPIFFE ID "not-an-id"`, "FAIL not a SPIFFE ID"}},
	}
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			r, report := runCheck(t, path, c.id, nil)
			if r.OK() != c.ok {
				t.Errorf("OK = %v, want %v", r.OK(), c.ok)
			}
			for _, want := range c.want {
				if !strings.Contains(report, want) {
					t.Errorf("the answer lacks %q:\n%s", want, report)
				}
			}
			if c.ok && !strings.Contains(report, "info static answer, no CreateSession tried: the Workload API at unix://") {
				t.Errorf("the answer does not say it is static:\n%s", report)
			}
			if strings.Contains(report, "Pod identity (") {
				t.Errorf("--spiffe-id printed the whole listing:\n%s", report)
			}
		})
	}

	// Without a pod_identity block, --spiffe-id is a usage error.
	noPod := filepath.Join(t.TempDir(), "profiles.hcl")
	if err := os.WriteFile(noPod, []byte("profile \"app\" {\n  trust_anchor_arn = \""+podTA+"\"\n  profile_arn = \""+podProfile+"\"\n  role_arn = \""+podRole+"app\"\n  credentials_file {\n    path = \"/tmp/creds\"\n  }\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := check.Run(context.Background(), check.Options{Out: &bytes.Buffer{}, ConfigPath: noPod, SpiffeID: "spiffe://example.org/a"})
	if err == nil || !strings.Contains(err.Error(), `--spiffe-id "spiffe://example.org/a" asks which pod_identity rule maps that ID, but `+noPod+" has no pod_identity block") {
		t.Errorf("--spiffe-id without pod_identity: %v", err)
	}
}

// TestCheckSpiffeIDProvesTheRoleWhenTheAgentOffersItsSVID: in a world whose agent serves the SVID of the
// asked ID, --spiffe-id signs a real CreateSession with it for the role the rule fills in (the emulator
// verifies the signature and the role's trust); a rule that fills in a role the account does not have
// fails, with AWS's error explained.
func TestCheckSpiffeIDProvesTheRoleWhenTheAgentOffersItsSVID(t *testing.T) {
	w := testworld.New(t, testworld.Options{Entries: []svidtest.Entry{{ID: spiffeid.RequireFromString(testworld.SPIFFEID)}}})
	rule := func(pattern, role string) string {
		return fmt.Sprintf("  rule {\n    spiffe_id = %q\n    trust_anchor_arn = %q\n    profile_arn = %q\n    role_arn = %q\n    endpoint = %q\n    insecure_endpoint = true\n  }\n",
			pattern, w.TrustAnchorARN, w.ProfileARN, role, w.Emulator.URL)
	}
	run := func(rules string) (check.Result, string) {
		path := w.WriteConfig(t, "bridge.hcl", "delegated_identity {\n  admin_address = \"unix:///run/spire/admin.sock\"\n}\npod_identity {\n"+rules+"}\n")
		var out bytes.Buffer
		r, err := check.Run(context.Background(), check.Options{Out: &out, ConfigPath: path, SpiffeID: testworld.SPIFFEID})
		if err != nil {
			t.Fatal(err)
		}
		return r, out.String()
	}
	// testworld.SPIFFEID is spiffe://example.org/ns/prod/app; the world's role is role/app.
	r, report := run(rule("spiffe://example.org/ns/prod/{name}", "arn:aws:iam::"+testworld.AccountID+":role/{name}"))
	if !r.OK() || !strings.Contains(report, "offers an X.509-SVID for this ID: proving the role end to end") ||
		!strings.Contains(report, "ok   CreateSession succeeded: arn:aws:sts::"+testworld.AccountID+":assumed-role/"+testworld.RoleName+"/") {
		t.Fatalf("result %+v:\n%s", r, report)
	}
	r, report = run(rule("spiffe://example.org/ns/{ns}/{name}", "arn:aws:iam::"+testworld.AccountID+":role/{ns}-{name}"))
	if r.OK() || !strings.Contains(report, "role_arn           arn:aws:iam::"+testworld.AccountID+":role/prod-app") || !strings.Contains(report, "FAIL CreateSession") {
		t.Fatalf("a role the account does not have: %+v:\n%s", r, report)
	}
}
