package bridge_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/schedule"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/clock"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/logtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// keySink records the access key ids it is given.
type keySink struct{ keys chan string }

func (s keySink) Name() string { return "keys" }
func (s keySink) Put(_ context.Context, c creds.Credentials) error {
	s.keys <- c.AccessKeyID
	return nil
}
func (keySink) Clear(context.Context) error { return nil }

// TestShortSVIDsGetAFreshSessionBeforeTheirHalfLife is the short-SVID story: SPIRE issues 2m X.509-SVIDs
// (NotBefore backdated 10s, so the agent rotates them every 55s) and the profile keeps the default
// refresh policy (on_rotation, rotation_spread 28m). Each rotation on the fake agent is followed by a
// new CreateSession, verified by the emulator, before the new SVID's half-life: the spread is bounded by
// the SVID, not only by rotation_spread. The random draw is injected: 0.01 lands inside the half-life
// even with the unbounded 28m spread (the control: nothing else stops a rotation from refreshing), 0.5
// and 0.999 do not (before the bound, no rotation was followed by a session within 4 minutes).
func TestShortSVIDsGetAFreshSessionBeforeTheirHalfLife(t *testing.T) {
	for _, r := range []float64{0.01, 0.5, 0.999} {
		t.Run(fmt.Sprintf("rand %g", r), func(t *testing.T) {
			fake := clock.NewFake(time.Now().Truncate(time.Second))
			w := testworld.New(t, testworld.Options{Clock: fake.Now, SVIDTTL: 2 * time.Minute, QuotaPerSecond: -1})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			src, err := svid.New(ctx, svid.Options{Address: w.Agent.Addr(), Now: fake.Now})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			sub := src.Subscribe(svid.Selector{})
			defer sub.Close()
			logger, logs := logtest.New()
			logger.SetLevel(hclog.Debug)
			sink := keySink{keys: make(chan string, 16)}
			r, err := bridge.NewRefresher(bridge.RefresherOptions{
				Profile: "app",
				Session: signer.CreateSessionInput{TrustAnchorARN: w.TrustAnchorARN, ProfileARN: w.ProfileARN,
					RoleARN: testworld.RoleARN, Endpoint: w.Emulator.URL},
				SVIDs:  sub.C(),
				Client: signer.New(signer.Options{Now: fake.Now, Retry: signer.RetryPolicy{MaxAttempts: 1}}),
				Sinks:  []bridge.Sink{sink},
				Policy: schedule.Policy{}, // the defaults: on_rotation, rotation_spread 28m
				Clock:  fake,
				Rand:   func() float64 { return r },
				Logger: logger,
			})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { defer close(done); _ = r.Run(ctx) }()
			defer func() { cancel(); <-done }()
			defer func() {
				if t.Failed() {
					t.Logf("refresher logs:\n%s", logs.String())
				}
			}()
			key := func(what string) string {
				t.Helper()
				select {
				case k := <-sink.keys:
					return k
				case <-time.After(5 * time.Second):
					t.Fatalf("no credentials delivered: %s", what)
				}
				return ""
			}
			// took waits until the refresher holds the agent's current SVID and returns it.
			took := func() *svid.SVID {
				t.Helper()
				deadline := time.Now().Add(5 * time.Second)
				for {
					cur, err := src.Current(svid.Selector{})
					if err == nil && r.State().SVIDExpiry.Equal(cur.ExpiresAt()) && cur.ExpiresAt().Equal(w.Agent.Current()[0].Certificates[0].NotAfter) {
						return cur
					}
					if time.Now().After(deadline) {
						t.Fatal("the refresher did not take the agent's new SVID")
					}
					time.Sleep(time.Millisecond)
				}
			}

			took()
			last := key("the first SVID")
			if n := w.Emulator.Stats().CreateSession; n != 1 {
				t.Fatalf("%d CreateSession calls for the first SVID, want 1", n)
			}
			// Four rotations, each at the agent's rotation time (the previous SVID's half-life).
			for i := 1; i <= 4; i++ {
				cur, _ := src.Current(svid.Selector{})
				fake.Set(half(cur.Leaf().NotBefore, cur.Leaf().NotAfter))
				if err := w.Agent.Rotate(); err != nil {
					t.Fatal(err)
				}
				s := took()
				halfLife := half(s.Leaf().NotBefore, s.Leaf().NotAfter)
				// The last instant before the new SVID's half-life: the refresh must have happened.
				fake.Set(halfLife.Add(-time.Millisecond))
				k := key(fmt.Sprintf("rotation %d at %s (SVID valid %s–%s, half-life %s), not followed by a session before the half-life",
					i, fake.Now().Format(time.TimeOnly), s.Leaf().NotBefore.Format(time.TimeOnly), s.Leaf().NotAfter.Format(time.TimeOnly), halfLife.Format(time.TimeOnly)))
				if k == last {
					t.Fatalf("rotation %d: the same session (%s) delivered again", i, k)
				}
				last = k
				if n := w.Emulator.Stats().CreateSession; n != 1+i {
					t.Fatalf("after rotation %d: %d CreateSession calls, want %d (one per SVID)", i, n, 1+i)
				}
			}
			if strings.Contains(logs.String(), "[ERROR]") {
				t.Errorf("errors logged:\n%s", logs.String())
			}
		})
	}
}

// half is the middle of [from, to].
func half(from, to time.Time) time.Time { return from.Add(to.Sub(from) / 2) }
