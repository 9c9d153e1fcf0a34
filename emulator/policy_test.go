package emulator

import "testing"

// TestPolicyEvaluation: the evaluator's rules, each a line of AWS's policy evaluation logic.
func TestPolicyEvaluation(t *testing.T) {
	const role = "arn:aws:iam::222222222222:role/b"
	must := func(doc string) *Policy {
		t.Helper()
		p, err := ParsePolicy(doc)
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		return p
	}
	allowAll := must(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`)
	onlyIdentity := must(`{"Statement":[{"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}]}`)
	assumeB := must(`{"Statement":[{"Effect":"Allow","Action":["sts:Assume*"],"Resource":"arn:aws:iam::222222222222:role/*"}]}`)
	denyTag := must(`{"Statement":[{"Effect":"Allow","Action":"sts:*","Resource":"*"},{"Effect":"Deny","Action":"sts:TagSession","Resource":"*"}]}`)
	notAction := must(`{"Statement":[{"Effect":"Allow","NotAction":"sts:TagSession","Resource":"*"}]}`)
	origin := must(`{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*","Condition":{"StringLike":{"aws:OriginIdentity/Subject":"spiffe://example.org/ns/prod/*"}}}]}`)
	ifExists := must(`{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*","Condition":{"StringEqualsIfExists":{"aws:RequestTag/team":"blue"}}}]}`)
	notEquals := must(`{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*","Condition":{"StringNotEquals":{"aws:PrincipalTag/env":"prod"}}}]}`)
	prod := map[string]string{"aws:OriginIdentity/Subject": "spiffe://example.org/ns/prod/web", "aws:PrincipalTag/env": "prod"}
	for _, tc := range []struct {
		name   string
		perms  permissions
		action string
		ctx    map[string]string
		want   string // "" = allowed, else the reason's start
	}{
		{"nothing modelled allows", permissions{}, "sts:AssumeRole", nil, ""},
		{"session policy narrows", permissions{session: []*Policy{onlyIdentity}}, "sts:AssumeRole", nil, "because no session policy allows"},
		{"intersection: identity allows, session allows", permissions{identity: []*Policy{allowAll}, session: []*Policy{assumeB}}, "sts:AssumeRole", nil, ""},
		{"intersection: session allows, identity does not", permissions{identity: []*Policy{onlyIdentity}, session: []*Policy{assumeB}}, "sts:AssumeRole", nil, "because no identity-based policy allows"},
		{"any one session policy may allow", permissions{session: []*Policy{onlyIdentity, assumeB}}, "sts:AssumeRole", nil, ""},
		{"explicit deny wins over allow", permissions{identity: []*Policy{denyTag}, session: []*Policy{allowAll}}, "sts:TagSession", nil, "with an explicit deny in an identity-based policy"},
		{"explicit deny in a session policy", permissions{session: []*Policy{allowAll, denyTag}}, "sts:TagSession", nil, "with an explicit deny in a session policy"},
		{"actions are case-insensitive", permissions{session: []*Policy{assumeB}}, "STS:assumerole", nil, ""},
		{"NotAction", permissions{session: []*Policy{notAction}}, "sts:TagSession", nil, "because no session policy allows"},
		{"StringLike on the origin identity holds", permissions{session: []*Policy{origin}}, "sts:AssumeRole", prod, ""},
		{"StringLike on a missing origin identity fails", permissions{session: []*Policy{origin}}, "sts:AssumeRole", nil, "because no session policy allows"},
		{"IfExists holds when the key is absent", permissions{session: []*Policy{ifExists}}, "sts:AssumeRole", nil, ""},
		{"IfExists tests the key when present", permissions{session: []*Policy{ifExists}}, "sts:AssumeRole", map[string]string{"aws:RequestTag/team": "red"}, "because no session policy allows"},
		{"StringNotEquals", permissions{session: []*Policy{notEquals}}, "sts:AssumeRole", prod, "because no session policy allows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.perms.authorize(tc.action, role, tc.ctx)
			switch {
			case tc.want == "" && d != nil:
				t.Fatalf("refused: %s", d.reason)
			case tc.want != "" && (d == nil || len(d.reason) < len(tc.want) || d.reason[:len(tc.want)] != tc.want):
				t.Fatalf("got %+v, want a refusal %q", d, tc.want)
			}
		})
	}
	if d := (permissions{session: []*Policy{assumeB}}).authorize("sts:AssumeRole", "arn:aws:iam::333333333333:role/c", nil); d == nil {
		t.Fatal("a Resource of account 222222222222's roles allowed a role of account 333333333333")
	}
	for _, bad := range []string{
		`{"Statement":[{"Effect":"Maybe","Action":"*"}]}`,
		`{"Statement":[{"Effect":"Allow"}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"*","Principal":"*"}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"*","Condition":{"StringEquals":{"aws:PrincipalTag/x":"${aws:username}"}}}]}`,
		`{"Version":"2020-01-01","Statement":[]}`,
	} {
		if _, err := ParsePolicy(bad); err == nil {
			t.Errorf("ParsePolicy accepted %s", bad)
		}
	}
}

// TestLikeTreatsOnlyThePatternsStarAsAWildcard: StringLike's '*' and '?' are wildcards in the pattern
// only; a '*' in the value (an ExternalId, a DNS SAN such as "*.a.example") is a character like any other
// and must not consume the pattern's wildcard, or StringNotLike and Deny conditions stop holding.
func TestLikeTreatsOnlyThePatternsStarAsAWildcard(t *testing.T) {
	for _, c := range []struct {
		pattern, value string
		want           bool
	}{
		{"*.untrusted.example", "*.a.untrusted.example", true},
		{"*admin*", "*.admin.example", true},
		{"*forbidden*", "*x-forbidden", true},
		{"*", "*", true},
		{"a*", "*a", false},
		{"spiffe://example.org/ns/*/sa/web", "spiffe://example.org/ns/prod/sa/web", true},
		{"spiffe://example.org/ns/*/sa/web", "spiffe://example.org/ns/prod/sa/api", false},
		{"web-?", "web-1", true},
		{"web-?", "web-12", false},
		{"", "", true},
		{"", "x", false},
	} {
		if got := like(c.pattern, c.value); got != c.want {
			t.Errorf("like(%q, %q) = %v, want %v", c.pattern, c.value, got, c.want)
		}
	}
}
