package clock_test

import (
	"testing"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/clock"
)

var start = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

func fired(t clock.Timer) bool {
	select {
	case <-t.C():
		return true
	default:
		return false
	}
}

func TestFakeTimerFiresOnlyWhenTimeReachesItsDeadline(t *testing.T) {
	c := clock.NewFake(start)
	tm := c.NewTimer(time.Minute)
	c.Advance(59 * time.Second)
	if fired(tm) {
		t.Fatal("fired before its deadline")
	}
	c.Advance(time.Second)
	if !fired(tm) {
		t.Fatal("did not fire at its deadline")
	}
	if c.Pending() != 0 || tm.Stop() {
		t.Error("a fired timer must not be pending nor stoppable")
	}
	if got := c.Now(); !got.Equal(start.Add(time.Minute)) {
		t.Errorf("Now = %v", got)
	}
}

func TestFakeTimerStopPreventsFiring(t *testing.T) {
	c := clock.NewFake(start)
	tm := c.NewTimer(time.Second)
	if !tm.Stop() || c.Pending() != 0 {
		t.Fatal("Stop of a pending timer must report true and remove it")
	}
	c.Advance(time.Hour)
	if fired(tm) {
		t.Fatal("a stopped timer fired")
	}
}

func TestFakeNonPositiveTimerFiresAtOnce(t *testing.T) {
	c := clock.NewFake(start)
	if !fired(c.NewTimer(0)) || !fired(c.NewTimer(-time.Second)) {
		t.Fatal("timers with d <= 0 must fire immediately")
	}
}

func TestFakeSetBackwardsFiresNothing(t *testing.T) {
	c := clock.NewFake(start)
	tm := c.NewTimer(time.Minute)
	c.Set(start.Add(-time.Hour))
	if fired(tm) || c.Pending() != 1 {
		t.Fatal("moving the clock back must not fire timers")
	}
}

func TestRealTimerFires(t *testing.T) {
	tm := clock.Real{}.NewTimer(time.Millisecond)
	select {
	case <-tm.C():
	case <-time.After(10 * time.Second):
		t.Fatal("real timer never fired")
	}
}
