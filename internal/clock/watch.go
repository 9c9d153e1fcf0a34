package clock

import (
	"context"
	"sync"
	"time"
)

// DefaultWatchEvery is how often a Watch re-reads the wall clock: design.md §6 asks that no wait trusts a
// monotonic timer for more than ~30 s, and 25 s leaves room for the work a jump triggers.
const DefaultWatchEvery = 25 * time.Second

// DefaultWatchTolerance is how far the wall clock may drift from the Watch's timers, in total, before the
// Watch reports a jump. Timers fire a little late, so the drift grows by a few microseconds per interval
// even on a steady clock; a jump is reported at most every several hours for that, which costs one extra
// wake-up per waiter.
const DefaultWatchTolerance = time.Second

// Jump describes a change of the wall clock that a Watch noticed.
type Jump struct {
	// Timer is how long the Watch's last timer ran (on the monotonic clock).
	Timer time.Duration
	// Moved is how far the wall clock moved meanwhile; Moved-Timer is the step, or the time suspended.
	Moved time.Duration
	// Drift is how far the wall clock has moved from the Watch's timers since the last jump reported,
	// this one included (small steps add up).
	Drift time.Duration
}

// WatchOptions configures a Watch.
type WatchOptions struct {
	// Clock is the clock watched; default Real.
	Clock Clock
	// Every is how often the wall clock is re-read; default (and maximum) DefaultWatchEvery.
	Every time.Duration
	// Tolerance is the total drift reported as a jump; default DefaultWatchTolerance.
	Tolerance time.Duration
	// OnJump, if set, is called from Run after the waiters were released (for a log line).
	OnJump func(Jump)
}

// Watch notices when the wall clock moves other than the monotonic clock that timers run on does: a
// step of the system clock (NTP, an operator, a VM restored from a snapshot) or a resume from suspend,
// during which monotonic timers stand still. It then wakes every waiter at once.
//
// A waiter sleeps until its next wall-clock deadline on a plain timer, however far away, and also on
// Jumped(); when that channel closes, it re-reads the wall clock and re-arms. So one goroutine re-reads the
// clock every 25 s for a whole daemon, instead of every waiter waking that often to do it (1,000 profiles
// would be 40 wake-ups a second on an idle host).
//
// The zero Watch is not usable; create one with NewWatch and start it with Run.
type Watch struct {
	o WatchOptions

	mu     sync.Mutex
	jumped chan struct{}
}

// NewWatch returns a Watch; Run starts it.
func NewWatch(o WatchOptions) *Watch {
	if o.Clock == nil {
		o.Clock = Real{}
	}
	if o.Every <= 0 || o.Every > DefaultWatchEvery {
		o.Every = DefaultWatchEvery
	}
	if o.Tolerance <= 0 {
		o.Tolerance = DefaultWatchTolerance
	}
	return &Watch{o: o, jumped: make(chan struct{})}
}

// Every is how often the Watch re-reads the wall clock: a waiter learns of a jump at most this long (plus
// the tolerance) after it.
func (w *Watch) Every() time.Duration { return w.o.Every }

// Jumped returns a channel closed at the next jump the Watch notices after the call. Take it before
// reading the clock to arm a timer, so that a jump between the two is never missed.
func (w *Watch) Jumped() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.jumped
}

// Run watches the clock until ctx ends.
func (w *Watch) Run(ctx context.Context) {
	var drift time.Duration
	for {
		armed := w.o.Clock.Now()
		t := w.o.Clock.NewTimer(w.o.Every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		moved := w.o.Clock.Now().Round(0).Sub(armed.Round(0)) // wall-clock readings, not monotonic
		drift += moved - w.o.Every
		if drift < w.o.Tolerance && drift > -w.o.Tolerance {
			continue
		}
		w.mu.Lock()
		close(w.jumped)
		w.jumped = make(chan struct{})
		w.mu.Unlock()
		if w.o.OnJump != nil {
			w.o.OnJump(Jump{Timer: w.o.Every, Moved: moved, Drift: drift})
		}
		drift = 0
	}
}
