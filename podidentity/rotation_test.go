package podidentity_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/schedule"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/clock"
)

// TestPodSessionsFollowRotationsOfShortSVIDs: the pod's SPIRE entry has 2m X.509-SVIDs (rotated every
// 55s) and the node keeps the default refresh policy (on_rotation, rotation_spread 28m), with the
// latest random draw (0.999). Each rotation of the pod's SVID on the Delegated Identity API is followed,
// before the new SVID's half-life, by a new CreateSession (counted by the emulator) and the pod's next
// request gets the new session's key. Before the spread was bounded by the SVID, the pod kept its first
// session for 28 minutes whatever the rotations.
func TestPodSessionsFollowRotationsOfShortSVIDs(t *testing.T) {
	fake := clock.NewFake(time.Now().Truncate(time.Second))
	w := newWorld(t, worldOptions{
		identities: []identity{{"prod", "app"}},
		clock:      fake, svidTTL: 2 * time.Minute, rand: func() float64 { return 0.999 },
		policy: schedule.Policy{RotationSpread: 28 * time.Minute}, // the default, stated (the world's zero is -1)
	})
	_, token := w.pod("prod", "app", "app-1")
	code, doc := w.get(t, token)
	if code != http.StatusOK || doc["AccessKeyId"] == "" {
		t.Fatalf("first request: %d %v", code, doc)
	}
	last := doc["AccessKeyId"]
	id := idOf("prod", "app")
	for i := 1; i <= 4; i++ {
		cur := w.admin.Current(id).Certificates[0]
		fake.Set(midpoint(cur.NotBefore, cur.NotAfter)) // the agent rotates at the half-life
		if err := w.admin.RotateEntry(id); err != nil {
			t.Fatal(err)
		}
		next := w.admin.Current(id).Certificates[0]
		within(t, 5*time.Second, fmt.Sprintf("rotation %d reaches the session", i), func() bool {
			st := w.srv.States()
			return len(st) == 1 && st[0].SVIDExpiry.Equal(next.NotAfter)
		})
		halfLife := midpoint(next.NotBefore, next.NotAfter)
		fake.Set(halfLife.Add(-time.Millisecond))
		within(t, 5*time.Second, fmt.Sprintf("a new session after rotation %d, before the SVID's half-life %s", i, halfLife.Format(time.TimeOnly)),
			func() bool { return w.creates() == 1+i })
		// The emulator counts the CreateSession as it answers; the session hands the new credentials to
		// the pods a moment later.
		var code int
		var doc map[string]string
		within(t, 5*time.Second, fmt.Sprintf("the pod gets the new session's key after rotation %d", i), func() bool {
			code, doc = w.get(t, token)
			return code == http.StatusOK && doc["AccessKeyId"] != "" && doc["AccessKeyId"] != last
		})
		if w.creates() != 1+i {
			t.Fatalf("after rotation %d: %d CreateSession calls, want %d", i, w.creates(), 1+i)
		}
		last = doc["AccessKeyId"]
	}
}

// midpoint is the middle of [from, to].
func midpoint(from, to time.Time) time.Time { return from.Add(to.Sub(from) / 2) }
