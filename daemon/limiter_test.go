package daemon

import (
	"testing"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
)

// Profiles share a refresh limiter with the profiles that call the same Roles Anywhere endpoint, and only
// with them: an endpoint that hangs holds its own slots, never another region's.
func TestProfilesShareARefreshLimiterPerEndpoint(t *testing.T) {
	d := &Daemon{limiters: map[string]*bridge.Limiter{}}
	east := "arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/0f0e0d0c-0b0a-4909-8807-060504030201"
	west := "arn:aws:rolesanywhere:us-west-2:111122223333:trust-anchor/0f0e0d0c-0b0a-4909-8807-060504030201"
	a := d.limiter(config.Profile{Name: "a", TrustAnchorARN: east})
	b := d.limiter(config.Profile{Name: "b", TrustAnchorARN: east, WorkloadSelectors: []string{"unix:uid:1001"}})
	c := d.limiter(config.Profile{Name: "c", TrustAnchorARN: west})
	e := d.limiter(config.Profile{Name: "e", TrustAnchorARN: east, Endpoint: "http://127.0.0.1:8443"})
	f := d.limiter(config.Profile{Name: "f", TrustAnchorARN: west, Endpoint: "http://127.0.0.1:8443"})
	if a != b {
		t.Error("two profiles of us-east-1 have different limiters")
	}
	if a == c || a == e || c == e {
		t.Error("profiles of different endpoints share a limiter")
	}
	if e != f {
		t.Error("two profiles of one configured endpoint have different limiters")
	}
}
