package schedule

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func fixed(r float64) func() float64 { return func() float64 { return r } }

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
		if got := s.SVIDRotated(t0); !got.Equal(t0) {
			t.Fatalf("next = %v, want now", got)
		}
	})
	t.Run("with credentials it is spread over RotationSpread", func(t *testing.T) {
		s := New(Policy{}, fixed(0.5))
		s.Succeeded(t0, t0, t0.Add(time.Hour))
		// rotation at +10m, default spread 28m, r=0.5 → +24m, earlier than the timer (+37m).
		if got := s.SVIDRotated(t0.Add(10 * time.Minute)).Sub(t0); got != 24*time.Minute {
			t.Fatalf("next = issue+%v, want issue+24m", got)
		}
	})
	t.Run("the spread never passes the deadline", func(t *testing.T) {
		s := New(Policy{JitterFraction: 1e-9}, fixed(0.9))
		s.Succeeded(t0, t0, t0.Add(time.Hour))
		if got := s.SVIDRotated(t0.Add(38 * time.Minute)).Sub(t0); got.Round(time.Millisecond) != 40*time.Minute {
			t.Fatalf("next = issue+%v, want the deadline issue+40m", got)
		}
	})
	t.Run("past the deadline it is immediate", func(t *testing.T) {
		s := New(Policy{}, fixed(0.9))
		s.Succeeded(t0, t0, t0.Add(time.Hour))
		now := t0.Add(45 * time.Minute)
		if got := s.SVIDRotated(now); !got.Equal(now) {
			t.Fatalf("next = %v, want now %v", got, now)
		}
	})
	t.Run("while backing off a new SVID is tried at once", func(t *testing.T) {
		s := New(Policy{}, fixed(0.9))
		s.Succeeded(t0, t0, t0.Add(time.Hour))
		s.Failed(t0.Add(40*time.Minute), Configuration)
		now := t0.Add(41 * time.Minute)
		if got := s.SVIDRotated(now); !got.Equal(now) {
			t.Fatalf("next = %v, want now", got)
		}
	})
	t.Run("NoJitter refreshes on rotation immediately", func(t *testing.T) {
		s := New(NoJitter(), fixed(0.9))
		s.Succeeded(t0, t0, t0.Add(time.Hour))
		now := t0.Add(time.Minute)
		if got := s.SVIDRotated(now); !got.Equal(now) {
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
	if got := s.SVIDRotated(t0); !got.Equal(t0) {
		t.Fatalf("first SVID without credentials: refresh at %v, want now", got)
	}
	timer := s.Succeeded(t0, t0, t0.Add(12*time.Hour))
	for _, at := range []time.Duration{30 * time.Minute, 2 * time.Hour, 7 * time.Hour} {
		if got := s.SVIDRotated(t0.Add(at)); !got.Equal(timer) {
			t.Fatalf("rotation at +%v moved the refresh to %v, want the timer's %v", at, got, timer)
		}
	}
	// The same rotation with the default policy (spread off) refreshes at once.
	d := New(Policy{RotationSpread: -1}, fixed(0.5))
	d.Succeeded(t0, t0, t0.Add(12*time.Hour))
	if got := d.SVIDRotated(t0.Add(30 * time.Minute)); !got.Equal(t0.Add(30 * time.Minute)) {
		t.Fatalf("default policy: rotation refresh at %v", got)
	}
	// Past the deadline a rotation refreshes at once.
	if got := s.SVIDRotated(s.Deadline().Add(time.Second)); !got.Equal(s.Deadline().Add(time.Second)) {
		t.Fatalf("past the deadline: %v", got)
	}
	// Backing off: a new SVID may fix it; try now.
	b := New(Policy{TimerOnly: true}, fixed(0.5))
	b.Succeeded(t0, t0, t0.Add(12*time.Hour))
	b.Failed(t0.Add(time.Hour), Configuration)
	if got := b.SVIDRotated(t0.Add(time.Hour + time.Second)); !got.Equal(t0.Add(time.Hour + time.Second)) {
		t.Fatalf("backing off: %v", got)
	}
}
