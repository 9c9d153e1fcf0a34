package podidentity_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity/podidentitytest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
)

// The rules of an example cluster: a specific rule before a general one, a rule with hops.
var exampleRules = []podidentity.Rule{
	{Name: "batch-admin", Pattern: "spiffe://example.org/ns/batch/sa/admin", RoleARN: "arn:aws:iam::111122223333:role/batch-admin"},
	{Name: "per-sa", Pattern: "spiffe://example.org/ns/{ns}/sa/{sa}", RoleARN: "arn:aws:iam::111122223333:role/{ns}-{sa}", RoleSessionName: "{sa}"},
	{Name: "cross-account", Pattern: "spiffe://partner.example/team/{team}", RoleARN: "arn:aws:iam::111122223333:role/partner",
		AssumeRoleARNs: []string{"arn:aws:iam::444455556666:role/{team}"}, AssumeRoleSessionNames: []string{"partner-{team}"}},
	{Name: "wide", Pattern: "spiffe://example.org/{any}", RoleARN: "arn:aws:iam::111122223333:role/default"},
}

func TestRulesMatch(t *testing.T) {
	rules, err := podidentity.CompileRules(exampleRules)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, id, rule, role, session, hop, hopSession string
	}{
		{"the specific rule wins over the general one after it", "spiffe://example.org/ns/batch/sa/admin", "batch-admin", "arn:aws:iam::111122223333:role/batch-admin", "", "", ""},
		{"captures fill the role and the session name", "spiffe://example.org/ns/prod/sa/billing", "per-sa", "arn:aws:iam::111122223333:role/prod-billing", "billing", "", ""},
		{"captures fill a hop's role and session name", "spiffe://partner.example/team/blue", "cross-account", "arn:aws:iam::111122223333:role/partner", "", "arn:aws:iam::444455556666:role/blue", "partner-blue"},
		{"a capture never spans a slash: a deeper path falls to no rule", "spiffe://example.org/ns/prod/sa/billing/extra", "", "", "", "", ""},
		{"a capture never spans a slash: two segments are not {any}", "spiffe://example.org/a/b", "", "", "", "", ""},
		{"one segment matches the wide rule", "spiffe://example.org/web", "wide", "arn:aws:iam::111122223333:role/default", "", "", ""},
		{"the trust domain is literal", "spiffe://evil.example/ns/prod/sa/billing", "", "", "", "", ""},
		{"literal segments must match exactly", "spiffe://example.org/NS/prod/sa/billing", "", "", "", "", ""},
		{"the trust domain alone matches nothing", "spiffe://example.org", "", "", "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec, err := rules.Match(spiffeid.RequireFromString(c.id))
			if c.rule == "" {
				var nr *podidentity.NoRuleError
				if !errors.As(err, &nr) || nr.SpiffeID != c.id || !strings.Contains(err.Error(), c.id) {
					t.Fatalf("Match(%s) = %+v, %v; want a NoRuleError naming it", c.id, spec, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			hop, hopSession := "", ""
			if len(spec.AssumeRoleARNs) > 0 {
				hop, hopSession = spec.AssumeRoleARNs[0], spec.AssumeRoleSessionNames[0]
			}
			if spec.RuleName != c.rule || spec.RoleARN != c.role || spec.RoleSessionName != c.session || hop != c.hop || hopSession != c.hopSession || spec.SpiffeID != c.id {
				t.Fatalf("Match(%s) = %+v", c.id, spec)
			}
		})
	}
}

// Two pods of different service accounts never share a session; pods of one do.
func TestSessionKeys(t *testing.T) {
	rules, _ := podidentity.CompileRules(exampleRules)
	a, errA := rules.Match(spiffeid.RequireFromString("spiffe://example.org/ns/prod/sa/api"))
	a2, _ := rules.Match(spiffeid.RequireFromString("spiffe://example.org/ns/prod/sa/api"))
	b, errB := rules.Match(spiffeid.RequireFromString("spiffe://example.org/ns/prod/sa/web"))
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if a.Key() != a2.Key() || a.Key() == b.Key() {
		t.Fatalf("keys: a %q a2 %q b %q", a.Key(), a2.Key(), b.Key())
	}
}

func TestRulesRefused(t *testing.T) {
	cases := []struct {
		name string
		rule podidentity.Rule
		want string
	}{
		{"placeholder not captured", podidentity.Rule{Name: "r", Pattern: "spiffe://example.org/ns/{ns}", RoleARN: "arn:aws:iam::1:role/{sa}"}, "placeholder {sa} is not captured"},
		{"capture inside a segment", podidentity.Rule{Name: "r", Pattern: "spiffe://example.org/ns-{ns}", RoleARN: "arn:aws:iam::1:role/x"}, `mixes a capture with text`},
		{"duplicate capture", podidentity.Rule{Name: "r", Pattern: "spiffe://example.org/{a}/{a}", RoleARN: "arn:aws:iam::1:role/x"}, "appears twice"},
		{"not a spiffe ID", podidentity.Rule{Name: "r", Pattern: "example.org/{a}", RoleARN: "arn:aws:iam::1:role/x"}, "not a spiffe://"},
		{"empty segment", podidentity.Rule{Name: "r", Pattern: "spiffe://example.org//{a}", RoleARN: "arn:aws:iam::1:role/x"}, "empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := podidentity.CompileRules([]podidentity.Rule{c.rule})
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "r:") {
				t.Fatalf("error %v; want it to name rule r and contain %q", err, c.want)
			}
		})
	}
}

// A capture that fills a role name past IAM's limits is refused at the request, naming the rule and ID.
func TestExpansionChecked(t *testing.T) {
	rules, err := podidentity.CompileRules([]podidentity.Rule{{Name: "r", Pattern: "spiffe://example.org/{a}", RoleARN: "arn:aws:iam::111122223333:role/{a}", RoleSessionName: "{a}"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = rules.Match(spiffeid.RequireFromString("spiffe://example.org/x"))
	if err == nil || !strings.Contains(err.Error(), `role_session_name "x" must be 2–64`) || !strings.Contains(err.Error(), "r maps SPIFFE ID") {
		t.Fatalf("one-letter session name: %v", err)
	}
}

// The engine refuses, on its own, listen addresses other hosts could reach (config refuses them first).
func TestSecurityEngineRefusesRoutableListenAddresses(t *testing.T) {
	rules, _ := podidentity.CompileRules(exampleRules)
	for _, c := range []struct {
		addr     string
		allowAny bool
		ok       bool
	}{
		{"0.0.0.0:80", false, false}, {"0.0.0.0:80", true, false}, {"[::]:80", true, false},
		{"10.1.2.3:80", false, false}, {"10.1.2.3:80", true, true},
		{"169.254.170.23:80", false, true}, {"[fd00:ec2::23]:80", false, true}, {"127.0.0.1:0", false, true},
	} {
		_, err := podidentity.New(podidentity.Options{Listen: []string{c.addr}, AllowAnyAddress: c.allowAny, Rules: rules,
			Authenticator: &podidentitytest.Authenticator{},
			Subscribe:     func([]string) (podidentity.Subscription, error) { return nil, errors.New("unused") },
			NewRefresher: func(podidentity.SessionSpec, <-chan *svid.SVID, []bridge.Sink) (*bridge.Refresher, error) {
				return nil, errors.New("unused")
			}})
		if (err == nil) != c.ok {
			t.Errorf("listen %s (allow_any_address %v): %v", c.addr, c.allowAny, err)
		}
	}
}
