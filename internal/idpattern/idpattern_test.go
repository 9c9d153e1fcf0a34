package idpattern

import (
	"maps"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		name, pattern, id string
		want              map[string]string // nil: no match
	}{
		{"literal", "spiffe://example.org/web", "spiffe://example.org/web", map[string]string{}},
		{"captures", "spiffe://example.org/ns/{ns}/sa/{sa}", "spiffe://example.org/ns/prod/sa/api", map[string]string{"ns": "prod", "sa": "api"}},
		{"a capture is one segment, never a slash", "spiffe://example.org/ns/{ns}", "spiffe://example.org/ns/a/b", nil},
		{"fewer segments", "spiffe://example.org/ns/{ns}/sa/{sa}", "spiffe://example.org/ns/prod", nil},
		{"another trust domain", "spiffe://example.org/{x}", "spiffe://example.com/a", nil},
		{"trust domain only", "spiffe://example.org", "spiffe://example.org", map[string]string{}},
		{"trust domain only does not match a path", "spiffe://example.org", "spiffe://example.org/a", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Compile(c.pattern)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := p.Match(spiffeid.RequireFromString(c.id))
			if ok != (c.want != nil) || (ok && !maps.Equal(got, c.want)) {
				t.Fatalf("Match(%s) = %v, %v; want %v", c.id, got, ok, c.want)
			}
		})
	}
}

func TestCompileRefuses(t *testing.T) {
	for pattern, want := range map[string]string{
		"http://example.org/x":          "not a spiffe://",
		"spiffe://Example.org/x":        "trust domain",
		"spiffe://example.org/x/":       "empty",
		"spiffe://example.org/{a}/{a}":  "appears twice",
		"spiffe://example.org/a{b}":     "mixes a capture",
		"spiffe://example.org/{1a}":     "must be a name",
		"spiffe://example.org/a b":      "segment",
		"spiffe://example.org/../x":     `".."`,
		"spiffe://example.org/":         "must not end",
		"spiffe://example.org/{}":       "must be a name",
		"spiffe://example.org/{a}/{b}}": "must be a name",
	} {
		if _, err := Compile(pattern); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Compile(%q) = %v; want an error containing %q", pattern, err, want)
		}
	}
}

func TestTemplates(t *testing.T) {
	if err := Check("role/{ns}-{sa}", []string{"ns", "sa"}); err != nil {
		t.Error(err)
	}
	if err := Check("role/{team}", []string{"ns"}); err == nil || !strings.Contains(err.Error(), "{team} is not captured") {
		t.Errorf("uncaptured: %v", err)
	}
	if err := Check("role/{ns", []string{"ns"}); err == nil || !strings.Contains(err.Error(), "unmatched brace") {
		t.Errorf("stray brace: %v", err)
	}
	got, err := Expand("role/{ns}-{sa}-{ns}", map[string]string{"ns": "prod", "sa": "api"})
	if err != nil || got != "role/prod-api-prod" {
		t.Errorf("Expand = %q, %v", got, err)
	}
	if _, err := Expand("role/{x}", nil); err == nil {
		t.Error("Expand without a value succeeded")
	}
	if got := Sample("role/{ns}-{sa}"); got != "role/sample-sample" {
		t.Errorf("Sample = %q", got)
	}
}

// Covers is exact: p covers q when every ID q matches, p matches; a capture of q is never covered by a
// literal of p.
func TestCoversAndOverlap(t *testing.T) {
	cases := []struct {
		name, p, q string
		covers     bool
		overlap    string // "" when none
	}{
		{"a capture covers a literal", "spiffe://example.org/ns/{ns}/sa/{sa}", "spiffe://example.org/ns/prod/sa/api", true, "spiffe://example.org/ns/prod/sa/api"},
		{"a literal does not cover a capture", "spiffe://example.org/ns/prod/sa/api", "spiffe://example.org/ns/{ns}/sa/api", false, "spiffe://example.org/ns/prod/sa/api"},
		{"the same pattern", "spiffe://example.org/ns/{a}", "spiffe://example.org/ns/{b}", true, "spiffe://example.org/ns/x"},
		{"crossed literals overlap without covering", "spiffe://example.org/ns/{ns}/sa/default", "spiffe://example.org/ns/prod/sa/{sa}", false, "spiffe://example.org/ns/prod/sa/default"},
		{"different literals", "spiffe://example.org/ns/dev/{x}", "spiffe://example.org/ns/prod/{x}", false, ""},
		{"different lengths", "spiffe://example.org/{a}", "spiffe://example.org/{a}/{b}", false, ""},
		{"another trust domain", "spiffe://example.org/{a}", "spiffe://example.com/{a}", false, ""},
		{"bare trust domains", "spiffe://example.org", "spiffe://example.org", true, "spiffe://example.org"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, q := mustCompile(t, c.p), mustCompile(t, c.q)
			if got := p.Covers(q); got != c.covers {
				t.Errorf("%s Covers %s = %v, want %v", c.p, c.q, got, c.covers)
			}
			id, ok := p.Overlap(q)
			if ok != (c.overlap != "") || (ok && id.String() != c.overlap) {
				t.Fatalf("Overlap = %v, %v; want %q", id, ok, c.overlap)
			}
			if ok {
				_, m1 := p.Match(id)
				_, m2 := q.Match(id)
				if !m1 || !m2 {
					t.Errorf("the overlap %s is not matched by both (%v, %v)", id, m1, m2)
				}
			}
		})
	}
}

func mustCompile(t *testing.T, s string) *Pattern {
	t.Helper()
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
