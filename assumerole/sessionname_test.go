package assumerole

import (
	"regexp"
	"strings"
	"testing"
)

func TestSessionNameForFollowsSTSRules(t *testing.T) {
	valid := regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	cases := map[string]string{
		"spiffe://example.org/ns/prod/app": "example.org@ns.prod.app",
		"spiffe://example.org":             "example.org",
	}
	for in, want := range cases {
		if got := sessionNameFor(in); got != want {
			t.Errorf("sessionNameFor(%q) = %q, want %q", in, got, want)
		}
	}
	// Characters STS refuses are replaced, and the ID's hash appended: the replacement loses information.
	if got := sessionNameFor("spiffe://td/a b/c%20d"); !strings.HasPrefix(got, "td@a-b.c-20d-") || len(got) != len("td@a-b.c-20d-")+16 {
		t.Errorf("sessionNameFor with replaced characters = %q, want td@a-b.c-20d-<16 hex digits>", got)
	}
	long1 := "spiffe://example.org/" + strings.Repeat("x", 80) + "/one"
	long2 := "spiffe://example.org/" + strings.Repeat("x", 80) + "/two"
	a, b := sessionNameFor(long1), sessionNameFor(long2)
	if len(a) != 64 || !valid.MatchString(a) || a == b {
		t.Errorf("long IDs: %q and %q must be valid, 64 characters and distinct", a, b)
	}
	if got := sessionNameFor("spiffe://x"); !valid.MatchString(got) {
		t.Errorf("short ID gave %q", got)
	}
}
