package sessionname_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/sessionname"
)

func hash(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "-" + hex.EncodeToString(sum[:])[:16]
}

func TestFromSPIFFEID(t *testing.T) {
	long := "spiffe://example.org/" + strings.Repeat("very-long-segment/", 6) + "web"
	for _, tc := range []struct{ name, id, want string }{
		{"a path without dots reads back exactly: kept", "spiffe://example.org/ns/prod/app", "example.org@ns.prod.app"},
		{"a trust domain alone: kept", "spiffe://example.org", "example.org"},
		{"a dot in a path segment: hashed", "spiffe://td/team/a.b", "td@team.a.b" + hash("spiffe://td/team/a.b")},
		{"a character STS refuses: hashed", "spiffe://td/a b/c%20d", "td@a-b.c-20d" + hash("spiffe://td/a b/c%20d")},
		{"no spiffe:// prefix: hashed", "td/a", "td@a" + hash("td/a")},
		{"too short: hashed", "spiffe://x", "x" + hash("spiffe://x")},
		{"over 64 characters: cut and hashed", long, "example.org@very-long-segment.very-long-segment.very-"[:47] + hash(long)},
		{"a readable form that looks hashed: hashed", "spiffe://td/x-0123456789abcdef", "td@x-0123456789abcdef" + hash("spiffe://td/x-0123456789abcdef")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := sessionname.FromSPIFFEID(tc.id)
			if got != tc.want {
				t.Errorf("FromSPIFFEID(%q) = %q, want %q", tc.id, got, tc.want)
			}
			if !sessionname.Valid(got) {
				t.Errorf("FromSPIFFEID(%q) = %q is not a valid role session name", tc.id, got)
			}
		})
	}
}

// TestSecuritySessionNamesTellWorkloadsApart: IDs that a readable form would merge — a "." or a "/" in
// the path, "-" or a character STS refuses, the end of the trust domain, a common prefix over 64
// characters, an ID and one whose readable form ends in the other's hash — get different names, so
// CloudTrail and session-name conditions tell the workloads apart. Before, spiffe://td/team/a.b and
// spiffe://td/team/a/b shared a name both in the assume_role hops (spiffe.td.team.a.b) and in the
// credentials command (td@team.a.b); so did the "-"/" " pair in both, and the trust-domain pairs in the
// hops.
func TestSecuritySessionNamesTellWorkloadsApart(t *testing.T) {
	long := "spiffe://example.org/" + strings.Repeat("x", 80)
	pairs := [][2]string{
		{"spiffe://td/team/a.b", "spiffe://td/team/a/b"},
		{"spiffe://td/team/a-b", "spiffe://td/team/a b"},
		{"spiffe://td/a", "spiffe://td.a"},
		{"spiffe://example.org/ns/prod", "spiffe://example.org.ns/prod"},
		{long + "/one", long + "/two"},
	}
	hashed := sessionname.FromSPIFFEID("spiffe://td/team/a.b")
	pairs = append(pairs, [2]string{"spiffe://td/team/a.b", "spiffe://td/" + strings.ReplaceAll(strings.TrimPrefix(hashed, "td@"), ".", "/")})
	for _, p := range pairs {
		a, b := sessionname.FromSPIFFEID(p[0]), sessionname.FromSPIFFEID(p[1])
		if a == b {
			t.Errorf("%q and %q share the session name %q", p[0], p[1], a)
		}
		for _, n := range []string{a, b} {
			if !sessionname.Valid(n) {
				t.Errorf("%q is not a valid role session name", n)
			}
		}
	}
}
