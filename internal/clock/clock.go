// Package clock abstracts time so that refresh scheduling can be tested deterministically.
package clock

import (
	"sync"
	"sync/atomic"
	"time"
)

// Clock tells the time and makes timers.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the bridge uses.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

// Real is the wall clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// NewTimer returns a real timer.
func (Real) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }

// Fake is a manual clock for tests: time moves only when Advance or Set is called, and timers whose
// deadline has been reached fire then.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

// NewFake returns a fake clock set to start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer returns a timer that fires when the fake time reaches now+d.
func (f *Fake) NewTimer(d time.Duration) Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{f: f, at: f.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- f.now
		t.fired = true
		return t
	}
	f.timers = append(f.timers, t)
	return t
}

// Advance moves the fake time forward by d and fires due timers.
func (f *Fake) Advance(d time.Duration) { f.Set(f.Now().Add(d)) }

// Set moves the fake time to t and fires due timers.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = t
	kept := f.timers[:0]
	for _, tm := range f.timers {
		if !tm.fired && !tm.at.After(t) {
			tm.fired = true
			tm.c <- t
			continue
		}
		if !tm.fired {
			kept = append(kept, tm)
		}
	}
	f.timers = kept
}

// Pending is the number of timers that have not fired or been stopped.
func (f *Fake) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

type fakeTimer struct {
	f     *Fake
	at    time.Time
	c     chan time.Time
	fired bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	if t.fired {
		return false
	}
	t.fired = true
	for i, tm := range t.f.timers {
		if tm == t {
			t.f.timers = append(t.f.timers[:i], t.f.timers[i+1:]...)
			break
		}
	}
	return true
}

// Shifted is the wall clock moved by an adjustable offset, with real timers: it behaves as the system
// clock does when NTP steps it or the machine resumes from suspend (the wall clock jumps, monotonic timers
// do not). Its readings carry no monotonic part, so differences between them are wall-clock differences.
// The zero value is the wall clock.
type Shifted struct{ offset atomic.Int64 }

// Now returns the wall clock plus the offset.
func (s *Shifted) Now() time.Time { return time.Now().Round(0).Add(time.Duration(s.offset.Load())) }

// NewTimer returns a real timer: it measures d on the monotonic clock, unaffected by Jump.
func (s *Shifted) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

// Jump moves the clock by d (forward when positive), as a step of the system clock does.
func (s *Shifted) Jump(d time.Duration) { s.offset.Add(int64(d)) }
