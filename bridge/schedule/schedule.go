// Package schedule decides when a bridge profile refreshes its credentials and how it backs off after a
// failure. It is pure: no goroutines, timers or clocks, only decisions from reported events, so that the
// daemon (package bridge) and the fleet simulation (package plan) run exactly the same logic.
package schedule

import (
	"math"
	"time"
)

// Policy is when a profile refreshes and how it backs off. The zero value of each field means its
// default; defaults are applied in one place, WithDefaults. The defaults were chosen with the fleet
// simulation in package plan (see docs/benchmarks.md): they keep 10,000 bridges under Roles Anywhere's
// shared 10 requests/s quota, even when a SPIRE server restart makes every agent rotate at once, while no
// workload ever holds credentials with less than 15 minutes left.
type Policy struct {
	// RefreshFraction: refresh at the latest when this fraction of the credentials' lifetime remains
	// (default 1/3, design.md §6).
	RefreshFraction float64
	// MinRemaining: ... or when this much remains, whichever is longer (default 15m: SDKs refresh 5–15
	// minutes before expiry, and readers of the credentials file need ample life left).
	MinRemaining time.Duration
	// JitterFraction spreads timer refreshes: each is drawn uniformly from the window of this fraction
	// of the lifetime that ends at the deadline above (default 0.1).
	JitterFraction float64
	// RotationSpread spreads refreshes triggered by a new SVID: each waits a uniform random delay in
	// [0, RotationSpread), never past the timer deadline (default 28m; negative: refresh at once). A SPIRE
	// server restart rotates every SVID in the fleet at once, and the fleet then keeps rotating in step
	// every SVID half-life: without this spread the whole fleet would call CreateSession in the same
	// second. The fleet simulation (docs/fleet-simulation.md) chose 28m: with 10,000 bridges, 1h SVIDs and
	// 1h sessions, 10m to 25m starve some workloads below 15 minutes of credentials (for some seeds), 28m
	// never did, for any seed tried.
	//
	// The spread is also bounded by the new SVID (see SVID.SpreadBound): the delay never reaches the
	// SVID's half-life, when the SPIRE agent rotates it, so every SVID gets its own session while it is
	// fresh. SPIRE's default 1h SVID has a half-life of about 30m and keeps the full 28m; a 2m SVID
	// (half-life 55s) spreads over 55s instead.
	RotationSpread time.Duration
	// RetryBase and RetryMax bound the capped exponential backoff, with full jitter, after a transient
	// failure (network, 5xx, 429). Defaults 2s and 2m.
	RetryBase, RetryMax time.Duration
	// ConfigRetryBase and ConfigRetryMax bound the slower backoff after AccessDenied, Validation and
	// NotFound errors, which need an operator rather than a retry. Defaults 30s and 10m.
	ConfigRetryBase, ConfigRetryMax time.Duration
	// TimerOnly (config: refresh { on_rotation = false }) ignores new SVIDs while the credentials are
	// good: refresh only on the session's own schedule, signing with whichever SVID is current then. One
	// CreateSession per session instead of one per SVID rotation, which is what lets 200,000 profiles
	// share one account's quota (docs/fleet-simulation.md). The cost: a session minted just before an
	// identity is revoked lives on at AWS until it expires. A new SVID still triggers a refresh when
	// there are no credentials, or while backing off after a failure.
	TimerOnly bool
}

// WithDefaults returns p with every zero field set to its default and out-of-range values clamped.
func (p Policy) WithDefaults() Policy {
	if p.RefreshFraction <= 0 || p.RefreshFraction >= 1 {
		p.RefreshFraction = 1.0 / 3
	}
	if p.MinRemaining <= 0 {
		p.MinRemaining = 15 * time.Minute
	}
	if p.JitterFraction <= 0 {
		p.JitterFraction = 0.1
	}
	if p.JitterFraction > 0.5 {
		p.JitterFraction = 0.5
	}
	if p.RotationSpread == 0 {
		p.RotationSpread = 28 * time.Minute
	}
	if p.RetryBase <= 0 {
		p.RetryBase = 2 * time.Second
	}
	if p.RetryMax < p.RetryBase {
		p.RetryMax = max(2*time.Minute, p.RetryBase)
	}
	if p.ConfigRetryBase <= 0 {
		p.ConfigRetryBase = 30 * time.Second
	}
	if p.ConfigRetryMax < p.ConfigRetryBase {
		p.ConfigRetryMax = max(10*time.Minute, p.ConfigRetryBase)
	}
	return p
}

// NoJitter is a policy with every random spread turned off, for benchmarks and tests that need exact
// timing. Never use it in a fleet.
func NoJitter() Policy {
	return Policy{JitterFraction: 1e-9, RotationSpread: -1}.WithDefaults()
}

// FailureKind classifies a failed refresh for the backoff.
type FailureKind int

const (
	// Transient failures (network, 5xx, 429) retry quickly.
	Transient FailureKind = iota
	// Configuration failures (AccessDenied, Validation, NotFound) retry slowly.
	Configuration
	// NoIdentity means the Workload API has not (yet) offered the selected SVID; the refresher waits
	// for the next SVID update rather than a timer.
	NoIdentity
)

// Schedule is the refresh decision for one profile, as a pure state machine: the caller reports what
// happened and when, and Schedule answers when the next refresh is due. It owns no goroutine, timer or
// clock; the Refresher drives it with real timers, and the fleet simulation with a virtual clock, so the
// simulation exercises exactly the scheduling the daemon runs.
//
// Schedule is not safe for concurrent use.
type Schedule struct {
	p    Policy
	rand func() float64

	issued, expires time.Time // current credentials; zero when none
	failures        int       // consecutive failures
	next            time.Time // zero: nothing scheduled (waiting for an SVID)
}

// NewSchedule returns a schedule with policy p (defaults applied) and jitter drawn from rand, a source of
// uniform values in [0, 1).
func New(p Policy, rand func() float64) *Schedule {
	return &Schedule{p: p.WithDefaults(), rand: rand}
}

// Policy is the schedule's policy, defaults applied.
func (s *Schedule) Policy() Policy { return s.p }

// Next is when the next refresh is due; zero when the schedule waits for an SVID.
func (s *Schedule) Next() time.Time { return s.next }

// Failures is the number of consecutive failed refreshes.
func (s *Schedule) Failures() int { return s.failures }

// Deadline is the latest time the current credentials should be replaced: when RefreshFraction of their
// lifetime or MinRemaining remains, whichever is longer, but never earlier than half-way through their
// lifetime (a 15-minute session would otherwise be due the moment it is issued). Zero without credentials.
func (s *Schedule) Deadline() time.Time {
	if s.expires.IsZero() {
		return time.Time{}
	}
	life := s.expires.Sub(s.issued)
	before := max(time.Duration(float64(life)*s.p.RefreshFraction), s.p.MinRemaining)
	before = min(before, life/2)
	return s.expires.Add(-before)
}

// Adopt installs credentials obtained elsewhere (carried over a config reload) as if just refreshed.
func (s *Schedule) Adopt(now, issued, expires time.Time) time.Time {
	return s.Succeeded(now, issued, expires)
}

// SVID is the validity window of an X.509-SVID (its leaf's NotBefore and NotAfter), as a refresh
// decision needs it. The zero value is an SVID of unknown lifetime, which bounds nothing.
type SVID struct {
	NotBefore, NotAfter time.Time
}

// HalfLife is the middle of the SVID's validity window: when the SPIRE agent rotates it (the agent
// replaces an X.509-SVID once less than half of its lifetime remains). SPIRE backdates NotBefore by
// 10s, so a 2m SVID issued at t has its half-life at t+55s. With NotBefore unknown it is half-way from
// now to NotAfter; zero when NotAfter is unknown.
func (v SVID) HalfLife(now time.Time) time.Time {
	if v.NotAfter.IsZero() {
		return time.Time{}
	}
	from := v.NotBefore
	if from.IsZero() {
		from = now
	}
	return from.Add(v.NotAfter.Sub(from) / 2)
}

// SpreadBound is the longest a refresh triggered by this SVID may wait at now: until its half-life (zero
// when that has passed: an SVID that arrives that old is refreshed at once), or no bound (-1) for an
// SVID of unknown lifetime.
//
// Why the half-life: a refresh that waits past it may find the SVID already replaced, so the SVID that
// triggered it never signs a session of its own and refresh { on_rotation } no longer means "a fresh
// session per SVID". Before it, the session is signed by an SVID at most half-way through its life,
// the same age the agent allows an SVID it serves. Half of the remaining lifetime would be the same for
// an SVID of zero age, but SPIRE backdates NotBefore, so it would let a 2m SVID's refresh land after the
// agent's rotation (at 60s of a 55s half-life) for one draw in twelve.
func (v SVID) SpreadBound(now time.Time) time.Duration {
	h := v.HalfLife(now)
	if h.IsZero() {
		return -1
	}
	return max(0, h.Sub(now))
}

// SVIDRotated records that a new SVID, valid over svid, arrived at now and returns the next refresh
// time. Without valid credentials the refresh is immediate; otherwise it waits a uniform random delay in
// [0, min(RotationSpread, svid.SpreadBound(now))), never later than the timer deadline, and never later
// than a refresh already due (another rotation's).
func (s *Schedule) SVIDRotated(now time.Time, svid SVID) time.Time {
	if s.expires.IsZero() || !now.Before(s.Deadline()) {
		s.next = now
		return s.next
	}
	if s.failures > 0 {
		// Backing off, or waiting for an identity that was lost: a new SVID may be what fixes it, so
		// try now.
		s.next = now
		return s.next
	}
	if s.p.TimerOnly && !s.next.IsZero() {
		return s.next
	}
	spread := max(0, s.p.RotationSpread)
	if b := svid.SpreadBound(now); b >= 0 && b < spread {
		spread = b
	}
	at := now.Add(time.Duration(s.rand() * float64(spread)))
	if d := s.Deadline(); at.After(d) {
		at = d
	}
	if s.next.IsZero() || at.Before(s.next) {
		s.next = at
	}
	return s.next
}

// Succeeded records a refresh that produced credentials valid from issued to expires and returns when
// the next one is due: a uniform point in the jitter window that ends at the deadline.
func (s *Schedule) Succeeded(now, issued, expires time.Time) time.Time {
	s.issued, s.expires, s.failures = issued, expires, 0
	deadline := s.Deadline()
	window := time.Duration(float64(expires.Sub(issued)) * s.p.JitterFraction)
	at := deadline.Add(-time.Duration(s.rand() * float64(window)))
	if at.Before(now) {
		at = now
	}
	s.next = at
	return s.next
}

// Failed records a failed refresh attempt at now and returns when to retry: capped exponential backoff
// with full jitter (a uniform delay in [0, min(max, base·2^n))), slow for configuration errors. For
// NoIdentity it returns zero: the next SVID update, not a timer, triggers the retry.
func (s *Schedule) Failed(now time.Time, kind FailureKind) time.Time {
	s.failures++
	if kind == NoIdentity {
		s.next = time.Time{}
		return s.next
	}
	base, ceiling := s.p.RetryBase, s.p.RetryMax
	if kind == Configuration {
		base, ceiling = s.p.ConfigRetryBase, s.p.ConfigRetryMax
	}
	s.next = now.Add(Backoff(base, ceiling, s.failures-1, s.rand()))
	return s.next
}

// Expired records that the current credentials ran out without a replacement.
func (s *Schedule) Expired() {
	s.issued, s.expires = time.Time{}, time.Time{}
}

// Backoff is capped exponential backoff with full jitter: r·min(ceiling, base·2^attempt) for r in [0, 1).
// attempt counts from 0.
func Backoff(base, ceiling time.Duration, attempt int, r float64) time.Duration {
	d := float64(base) * math.Pow(2, float64(min(attempt, 62)))
	if d > float64(ceiling) || math.IsInf(d, 0) {
		d = float64(ceiling)
	}
	return time.Duration(r * d)
}
