package schedule

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func fixed(r float64) func() float64 { return func() float64 { return r } }

// spireSVID is the validity of an X.509-SVID SPIRE issues at issued for ttl: NotBefore backdated 10s.
func spireSVID(issued time.Time, ttl time.Duration) SVID {
	return SVID{NotBefore: issued.Add(-10 * time.Second), NotAfter: issued.Add(ttl)}
}

// hourSVID is SPIRE's default: a 1h SVID issued at issued.
func hourSVID(issued time.Time) SVID { return spireSVID(issued, time.Hour) }

func TestDeadlineFollowsDesignRule(t *testing.T) {
	// design.md §6: refresh at the latest when a third of the lifetime or 15 minutes, whichever is
	// longer, remains; and (our guard) never before half the lifetime has passed.
	cases := []struct {
		name     string
		lifetime time.Duration
		want     time.Duration // after issue
	}{
		{"1h session: a third (20m) is longer than 15m", time.Hour, 40 * time.Minute},
		{"12h session: a third is 4h", 12 * time.Hour, 8 * time.Hour},
		{"30m session: 15m floor beats a third (10m)", 30 * time.Minute, 15 * time.Minute},
		{"15m session: the floor would be due at issue, so half-life instead", 15 * time.Minute, 7*time.Minute + 30*time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Policy{}, fixed(0))
			s.Succeeded(t0, t0, t0.Add(tc.lifetime))
			if got := s.Deadline().Sub(t0); got != tc.want {
				t.Fatalf("deadline = issue+%v, want issue+%v", got, tc.want)
			}
		})
	}
}

func TestSucceededDrawsFromTheJitterWindowBeforeTheDeadline(t *testing.T) {
	// 1h session, jitter fraction 0.1: the window is the 6 minutes ending at issue+40m.
	for _, tc := range []struct {
		r    float64
		want time.Duration
	}{{0, 40 * time.Minute}, {0.5, 37 * time.Minute}, {0.999999, 34*time.Minute + 4*time.Millisecond}} {
		s := New(Policy{}, fixed(tc.r))
		got := s.Succeeded(t0, t0, t0.Add(time.Hour)).Sub(t0)
		if got.Round(10*time.Millisecond) != tc.want.Round(10*time.Millisecond) {
			t.Errorf("rand %v: next refresh at issue+%v, want issue+%v", tc.r, got, tc.want)
		}
	}
}

func TestSVIDRotation(t *testing.T) {
	t.Run("without credentials the refresh is immediate", func(t *testing.T) {
		s := New(Policy{}, fixed(0.9))
		if got := s.SVIDRotated(t0, hourSVID(t0)); !got.Equal(t0) {
			t.Fatalf("next = %v, want now", got)
		}
	})
	t.Run("with credentials it is spread over RotationSpread", func(t *testing.T) {
		s := New(Policy{}, fixed(0.5))
		s.Succeeded(t0, t0, t0.Add(time.Hour))
		// rotation at +10m, default spread 28m, r=0.5 → +24m, earlier than the timer (+37m).
		if got := s.SVIDRotated(t0.Add(10*time.Minute), hourSVID(t0.Add(10*time.Minute))).Sub(t0); got != 24*time.Minute {
			t.Fatalf("next = issue+%v, want issue+24m", got)
		}
	})
	t.Run("the spread never passes the deadline", func(t *testing.T) {
		s := New(Policy{JitterFraction: 1e-9}, fixed(0.9))
		s.Succeeded(t0, t0, t0.Add(time.Hour))
		if got := s.SVIDRotated(t0.Add(38*time.Minute), hourSVID(t0.Add(38*time.Minute))).Sub(t0); got.Round(time.Millisecond) != 40*time.Minute {
			t.Fatalf("next = issue+%v, want the deadline issue+40m", got)
		}
	})
	t.Run("past the deadline it is immediate", func(t *testing.T) {
		s := New(Policy{}, fixed(0.9))
		s.Succeeded(t0, t0, t0.Add(time.Hour))
		now := t0.Add(45 * time.Minute)
		if got := s.SVIDRotated(now, hourSVID(now)); !got.Equal(now) {
			t.Fatalf("next = %v, want now %v", got, now)
		}
	})
	t.Run("while backing off a new SVID is tried at once", func(t *testing.T) {
		s := New(Policy{}, fixed(0.9))
		s.Succeeded(t0, t0, t0.Add(time.Hour))
		s.Failed(t0.Add(40*time.Minute), Configuration)
		now := t0.Add(41 * time.Minute)
		if got := s.SVIDRotated(now, hourSVID(now)); !got.Equal(now) {
			t.Fatalf("next = %v, want now", got)
		}
	})
	t.Run("NoJitter refreshes on rotation immediately", func(t *testing.T) {
		s := New(NoJitter(), fixed(0.9))
		s.Succeeded(t0, t0, t0.Add(time.Hour))
		now := t0.Add(time.Minute)
		if got := s.SVIDRotated(now, hourSVID(now)); !got.Equal(now) {
			t.Fatalf("next = %v, want now", got)
		}
	})
}

func TestFailedBacksOffWithFullJitter(t *testing.T) {
	// Transient: base 2s, cap 2m; r = 0.5 → half of min(cap, 2s·2^n).
	s := New(Policy{}, fixed(0.5))
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
		32 * time.Second, time.Minute, time.Minute, time.Minute}
	for i, w := range want {
		if got := s.Failed(t0, Transient).Sub(t0); got != w {
			t.Fatalf("failure %d: retry in %v, want %v", i+1, got, w)
		}
	}
	// Configuration errors: base 30s, cap 10m.
	c := New(Policy{}, fixed(0.5))
	if got := c.Failed(t0, Configuration).Sub(t0); got != 15*time.Second {
		t.Fatalf("first configuration retry in %v, want 15s", got)
	}
	for range 10 {
		c.Failed(t0, Configuration)
	}
	if got := c.Failed(t0, Configuration).Sub(t0); got != 5*time.Minute {
		t.Fatalf("capped configuration retry in %v, want 5m (half of the 10m cap)", got)
	}
	// NoIdentity waits for the next SVID: no timer.
	n := New(Policy{}, fixed(0.5))
	if got := n.Failed(t0, NoIdentity); !got.IsZero() {
		t.Fatalf("no-identity retry at %v, want none", got)
	}
	// A success resets the count.
	s.Succeeded(t0, t0, t0.Add(time.Hour))
	if s.Failures() != 0 {
		t.Fatalf("failures = %d after success", s.Failures())
	}
}

func TestBackoffNeverOverflows(t *testing.T) {
	if got := Backoff(time.Second, time.Minute, 1000, 0.999); got > time.Minute || got < 59*time.Second {
		t.Fatalf("Backoff at attempt 1000 = %v, want just under the 1m cap", got)
	}
}

func TestPolicyDefaults(t *testing.T) {
	p := Policy{}.WithDefaults()
	if p.RefreshFraction != 1.0/3 || p.MinRemaining != 15*time.Minute || p.JitterFraction != 0.1 ||
		p.RotationSpread != 28*time.Minute || p.RetryBase != 2*time.Second || p.RetryMax != 2*time.Minute ||
		p.ConfigRetryBase != 30*time.Second || p.ConfigRetryMax != 10*time.Minute {
		t.Fatalf("defaults = %+v", p)
	}
	if got := (Policy{JitterFraction: 3}).WithDefaults().JitterFraction; got != 0.5 {
		t.Fatalf("jitter fraction 3 clamped to %v, want 0.5", got)
	}
}

// on_rotation = false: a new SVID does not move the refresh while the credentials are good; it still
// refreshes at once without credentials, past the deadline, or while backing off.
func TestTimerOnlyIgnoresRotationWhileCredentialsAreGood(t *testing.T) {
	s := New(Policy{TimerOnly: true, RotationSpread: -1}, fixed(0.5))
	if got := s.SVIDRotated(t0, hourSVID(t0)); !got.Equal(t0) {
		t.Fatalf("first SVID without credentials: refresh at %v, want now", got)
	}
	timer := s.Succeeded(t0, t0, t0.Add(12*time.Hour))
	for _, at := range []time.Duration{30 * time.Minute, 2 * time.Hour, 7 * time.Hour} {
		if got := s.SVIDRotated(t0.Add(at), hourSVID(t0.Add(at))); !got.Equal(timer) {
			t.Fatalf("rotation at +%v moved the refresh to %v, want the timer's %v", at, got, timer)
		}
	}
	// The same rotation with the default policy (spread off) refreshes at once.
	d := New(Policy{RotationSpread: -1}, fixed(0.5))
	d.Succeeded(t0, t0, t0.Add(12*time.Hour))
	if got := d.SVIDRotated(t0.Add(30*time.Minute), hourSVID(t0.Add(30*time.Minute))); !got.Equal(t0.Add(30 * time.Minute)) {
		t.Fatalf("default policy: rotation refresh at %v", got)
	}
	// Past the deadline a rotation refreshes at once.
	if got := s.SVIDRotated(s.Deadline().Add(time.Second), hourSVID(s.Deadline().Add(time.Second))); !got.Equal(s.Deadline().Add(time.Second)) {
		t.Fatalf("past the deadline: %v", got)
	}
	// Backing off: a new SVID may fix it; try now.
	b := New(Policy{TimerOnly: true}, fixed(0.5))
	b.Succeeded(t0, t0, t0.Add(12*time.Hour))
	b.Failed(t0.Add(time.Hour), Configuration)
	if got := b.SVIDRotated(t0.Add(time.Hour+time.Second), hourSVID(t0.Add(time.Hour+time.Second))); !got.Equal(t0.Add(time.Hour + time.Second)) {
		t.Fatalf("backing off: %v", got)
	}
}

// The spread after a rotation is bounded by the new SVID: the refresh lands before its half-life, when
// the agent rotates it. SPIRE's default 1h SVID keeps the full 28m.
func TestRotationSpreadIsBoundedByTheNewSVIDsHalfLife(t *testing.T) {
	rotation := t0.Add(10 * time.Minute) // credentials issued at t0 for 12h: the timer (~7h) is far off
	cases := []struct {
		name   string
		policy Policy
		svid   SVID
		r      float64
		want   time.Duration // after the rotation
	}{
		{"1h SVID: the default 28m spread, unchanged", Policy{}, hourSVID(rotation), 0.5, 14 * time.Minute},
		{"1h SVID: the last draw of the 28m spread, unchanged", Policy{}, hourSVID(rotation), 0.999, time.Duration(0.999 * float64(28*time.Minute))},
		{"2m SVID: spread over its 55s to the half-life", Policy{}, spireSVID(rotation, 2*time.Minute), 0.5, 27*time.Second + 500*time.Millisecond},
		{"2m SVID: the last draw is still before the half-life", Policy{}, spireSVID(rotation, 2*time.Minute), 0.999, time.Duration(0.999 * float64(55*time.Second))},
		{"10m SVID: spread over 4m55s", Policy{}, spireSVID(rotation, 10*time.Minute), 0.5, 2*time.Minute + 27*time.Second + 500*time.Millisecond},
		{"1h SVID and a 45m spread: bounded by the half-life (29m55s)", Policy{RotationSpread: 45 * time.Minute}, hourSVID(rotation), 0.5, 14*time.Minute + 57*time.Second + 500*time.Millisecond},
		{"1h SVID delivered 20m after issue (a reload): until its half-life, 9m55s", Policy{}, hourSVID(rotation.Add(-20 * time.Minute)), 0.5, 4*time.Minute + 57*time.Second + 500*time.Millisecond},
		{"an SVID delivered past its half-life: at once", Policy{}, hourSVID(rotation.Add(-40 * time.Minute)), 0.5, 0},
		{"NotBefore unknown: half of the remaining lifetime", Policy{}, SVID{NotAfter: rotation.Add(2 * time.Minute)}, 0.5, 30 * time.Second},
		{"lifetime unknown: the full spread", Policy{}, SVID{}, 0.5, 14 * time.Minute},
		{"no spread configured: at once, whatever the SVID", Policy{RotationSpread: -1}, hourSVID(rotation), 0.5, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := New(tc.policy, fixed(tc.r))
			s.Succeeded(t0, t0, t0.Add(12*time.Hour))
			got := s.SVIDRotated(rotation, tc.svid).Sub(rotation)
			if got != tc.want {
				t.Fatalf("refresh %v after the rotation, want %v", got, tc.want)
			}
			if h := tc.svid.HalfLife(rotation); !h.IsZero() && got > 0 && !rotation.Add(got).Before(h) {
				t.Fatalf("refresh at %v, not before the SVID's half-life %v", rotation.Add(got), h)
			}
		})
	}
}

func TestSVIDRotationWithShortSVIDs(t *testing.T) {
	t.Run("a refresh already due earlier is kept", func(t *testing.T) {
		draws := []float64{0, 0.1, 0.9} // Succeeded's jitter, then one draw per rotation
		s := New(Policy{}, func() float64 { r := draws[0]; draws = draws[1:]; return r })
		s.Succeeded(t0, t0, t0.Add(time.Hour))
		first := s.SVIDRotated(t0, spireSVID(t0, 2*time.Minute)) // +5.5s
		if want := t0.Add(5*time.Second + 500*time.Millisecond); !first.Equal(want) {
			t.Fatalf("first rotation: refresh at %v, want %v", first, want)
		}
		if got := s.SVIDRotated(t0.Add(time.Second), spireSVID(t0.Add(time.Second), 2*time.Minute)); !got.Equal(first) {
			t.Fatalf("a later draw (%v) replaced the refresh already due at %v", got, first)
		}
	})
	t.Run("one draw per rotation, bounded or not", func(t *testing.T) {
		n := 0
		s := New(Policy{}, func() float64 { n++; return 0.5 })
		s.Succeeded(t0, t0, t0.Add(time.Hour))
		for i, v := range []SVID{hourSVID(t0), spireSVID(t0, 2*time.Minute), hourSVID(t0.Add(-45 * time.Minute)), {}} {
			before := n
			s.SVIDRotated(t0, v)
			if n-before != 1 {
				t.Fatalf("rotation %d drew %d random values, want 1 (the fleet simulation's runs depend on it)", i, n-before)
			}
		}
	})
	t.Run("while backing off a short SVID is tried at once", func(t *testing.T) {
		s := New(Policy{}, fixed(0.9))
		s.Succeeded(t0, t0, t0.Add(time.Hour))
		s.Failed(t0.Add(time.Minute), Transient)
		now := t0.Add(time.Minute + time.Second)
		if got := s.SVIDRotated(now, spireSVID(now, 2*time.Minute)); !got.Equal(now) {
			t.Fatalf("next = %v, want now", got)
		}
	})
	t.Run("the backoff after a failure does not depend on the SVID", func(t *testing.T) {
		s := New(Policy{}, fixed(0.5))
		s.Succeeded(t0, t0, t0.Add(time.Hour))
		s.SVIDRotated(t0.Add(time.Minute), spireSVID(t0.Add(time.Minute), 2*time.Minute))
		if got := s.Failed(t0.Add(time.Minute), Transient).Sub(t0.Add(time.Minute)); got != time.Second {
			t.Fatalf("retry in %v, want 1s (half of the 2s base)", got)
		}
	})
	t.Run("on_rotation = false keeps the timer, however short the SVID", func(t *testing.T) {
		s := New(Policy{TimerOnly: true}, fixed(0.5))
		timer := s.Succeeded(t0, t0, t0.Add(time.Hour))
		now := t0.Add(time.Minute)
		if got := s.SVIDRotated(now, spireSVID(now, 2*time.Minute)); !got.Equal(timer) {
			t.Fatalf("next = %v, want the timer's %v", got, timer)
		}
	})
}
