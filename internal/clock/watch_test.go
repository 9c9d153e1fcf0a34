package clock_test

import (
	"context"
	"testing"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/clock"
)

// armedClock tells when a timer is armed.
type armedClock struct {
	clock.Clock
	armed chan struct{}
}

func (a armedClock) NewTimer(d time.Duration) clock.Timer {
	select {
	case a.armed <- struct{}{}:
	default:
	}
	return a.Clock.NewTimer(d)
}

// runWatch starts a Watch on clk re-reading it every 10 ms, and returns once it is watching (a step
// before that is no jump: it is the time the Watch starts from); jumps receives what OnJump is told.
func runWatch(t *testing.T, clk clock.Clock) (*clock.Watch, chan clock.Jump) {
	t.Helper()
	jumps := make(chan clock.Jump, 16)
	ac := armedClock{clk, make(chan struct{}, 1)}
	w := clock.NewWatch(clock.WatchOptions{Clock: ac, Every: 10 * time.Millisecond, OnJump: func(j clock.Jump) { t.Logf("jump %+v", j); jumps <- j }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-ac.armed
	return w, jumps
}

func closedWithin(c <-chan struct{}, d time.Duration) bool {
	select {
	case <-c:
		return true
	default:
	}
	select {
	case <-c:
		return true
	case <-time.After(d):
		return false
	}
}

// A step of the wall clock either way (NTP, a resume from suspend) wakes every waiter at once; a steady
// clock wakes nobody.
func TestWatchWakesEveryWaiterWhenTheWallClockSteps(t *testing.T) {
	t.Parallel()
	clk := &clock.Shifted{}
	w, jumps := runWatch(t, clk)
	first, second := w.Jumped(), w.Jumped()
	if closedWithin(first, 200*time.Millisecond) {
		t.Fatal("Jumped closed on a steady clock")
	}
	clk.Jump(2 * time.Hour)
	if !closedWithin(first, 5*time.Second) || !closedWithin(second, 0) {
		t.Fatal("a 2h step did not wake every waiter within 5s")
	}
	if j := <-jumps; j.Moved < 2*time.Hour || j.Drift < 2*time.Hour-time.Second {
		t.Fatalf("OnJump told %+v, want the wall clock moved by about 2h", j)
	}
	next := w.Jumped()
	if next == first {
		t.Fatal("Jumped returned the closed channel after the jump")
	}
	if closedWithin(next, 200*time.Millisecond) {
		t.Fatal("Jumped closed again without a second step")
	}
	clk.Jump(-time.Hour)
	if !closedWithin(next, 5*time.Second) {
		t.Fatal("a step backwards did not wake the waiters")
	}
	if j := <-jumps; j.Drift > -time.Hour+time.Second {
		t.Fatalf("OnJump told %+v, want about -1h", j)
	}
}

// Steps each below the tolerance add up: the waiters are woken once the total passes it.
func TestWatchAddsUpSmallSteps(t *testing.T) {
	t.Parallel()
	clk := &clock.Shifted{}
	w, _ := runWatch(t, clk)
	c := w.Jumped()
	for i := 0; i < 2; i++ {
		clk.Jump(400 * time.Millisecond)
		if closedWithin(c, 100*time.Millisecond) {
			t.Fatalf("woken after %d steps of 0.4s (%.1fs in all, tolerance 1s)", i+1, 0.4*float64(i+1))
		}
	}
	clk.Jump(400 * time.Millisecond)
	if !closedWithin(c, 5*time.Second) {
		t.Fatal("three steps of 0.4s (1.2s in all) did not wake the waiters")
	}
}

func TestWatchDefaults(t *testing.T) {
	if got := clock.NewWatch(clock.WatchOptions{}).Every(); got != clock.DefaultWatchEvery {
		t.Errorf("default Every = %v", got)
	}
	if got := clock.NewWatch(clock.WatchOptions{Every: time.Hour}).Every(); got != clock.DefaultWatchEvery {
		t.Errorf("Every = 1h was kept as %v; the maximum is %v", got, clock.DefaultWatchEvery)
	}
}
