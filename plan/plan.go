package plan

import (
	"fmt"
	"math"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/schedule"
)

// Fleet is an operator's fleet as `spiffe-aws-bridge plan` asks about it: how many profiles share one
// account's Roles Anywhere quota in one region, and the config keys that set how often each calls
// CreateSession. Zero values are not defaults: start from DefaultFleet.
type Fleet struct {
	// Profiles is how many profiles share the quota (every bridge's, all nodes' workloads in node mode).
	Profiles int
	// SVIDTTL is the X.509-SVID lifetime; the SPIRE agent rotates at half of it.
	SVIDTTL time.Duration
	// SessionDuration is the profiles' session_duration.
	SessionDuration time.Duration
	// OnRotation is refresh { on_rotation }: refresh when a new SVID arrives (true, the default) or only
	// on the session's own schedule.
	OnRotation bool
	// RotationSpread is refresh { rotation_spread } (0: refresh at once, as in the config).
	RotationSpread time.Duration
	// JitterFraction is refresh { jitter_fraction }.
	JitterFraction float64
	// AssumeRoleHops is the number of assume_role blocks per profile (STS calls after each
	// CreateSession); a chained session lasts at most one hour.
	AssumeRoleHops int
	// QuotaPerSecond is the account's CreateSession quota (Roles Anywhere's default: 10 per second per
	// account and region); Burst the token bucket's capacity (AWS does not publish it).
	QuotaPerSecond float64
	Burst          int
	// Seed makes the simulation reproducible.
	Seed uint64
}

// DefaultFleet is the project's defaults (1h SVIDs, 1h sessions, refresh on rotation spread over 28m,
// jitter 0.1, no hops) on Roles Anywhere's default quota of 10 calls/s, for profiles profiles.
func DefaultFleet(profiles int) Fleet {
	p := schedule.Policy{}.WithDefaults()
	return Fleet{
		Profiles: profiles, SVIDTTL: time.Hour, SessionDuration: time.Hour, OnRotation: true,
		RotationSpread: p.RotationSpread, JitterFraction: p.JitterFraction, QuotaPerSecond: 10, Burst: 10, Seed: 1,
	}
}

// Validate reports the first number that cannot be planned for, naming it and its value.
func (f Fleet) Validate() error {
	switch {
	case f.Profiles < 1:
		return fmt.Errorf("plan: profiles must be at least 1, got %d", f.Profiles)
	case f.SVIDTTL < 2*time.Minute:
		return fmt.Errorf("plan: the SVID TTL must be at least 2m, got %v", f.SVIDTTL)
	case f.SessionDuration < 15*time.Minute:
		return fmt.Errorf("plan: session_duration must be at least 15m, got %v", f.SessionDuration)
	case f.RotationSpread < 0:
		return fmt.Errorf("plan: rotation_spread must not be negative, got %v", f.RotationSpread)
	case !(f.JitterFraction > 0 && f.JitterFraction <= 0.5):
		return fmt.Errorf("plan: jitter_fraction must be in (0, 0.5], got %v", f.JitterFraction)
	case f.AssumeRoleHops < 0:
		return fmt.Errorf("plan: assume_role hops must not be negative, got %d", f.AssumeRoleHops)
	case !(f.QuotaPerSecond > 0) || math.IsInf(f.QuotaPerSecond, 0):
		return fmt.Errorf("plan: the quota must be a positive number of calls per second, got %v", f.QuotaPerSecond)
	case f.Burst < 1:
		return fmt.Errorf("plan: the burst must be at least 1, got %d", f.Burst)
	}
	return nil
}

// Policy is the schedule's policy for f's refresh keys.
func (f Fleet) Policy() schedule.Policy {
	p := schedule.Policy{RotationSpread: f.RotationSpread, JitterFraction: f.JitterFraction, TimerOnly: !f.OnRotation}
	if p.RotationSpread == 0 {
		p.RotationSpread = -1 // config "0s": refresh at once (the schedule's zero is its default)
	}
	return p
}

// EffectiveSession is the lifetime of the credentials a workload holds: the session's, at most one hour
// with assume_role hops (AWS caps chained sessions).
func (f Fleet) EffectiveSession() time.Duration {
	if f.AssumeRoleHops > 0 {
		return min(f.SessionDuration, time.Hour)
	}
	return f.SessionDuration
}

// Options is the scenario plan simulates for f: the reference day of docs/fleet-simulation.md (24 h, a
// SPIRE server restart at 12 h that rotates every SVID within 5 s, calls of 50–150 ms) with f's numbers.
// Boots are staged as the capacity search stages them (StagedRollout at 80 % of the quota).
func (f Fleet) Options() Options {
	o := DefaultOptions()
	o.Bridges, o.SVIDTTL, o.SessionDuration, o.Policy = f.Profiles, f.SVIDTTL, f.EffectiveSession(), f.Policy()
	o.ChainHops, o.QuotaPerSecond, o.Burst, o.Seed = f.AssumeRoleHops, f.QuotaPerSecond, f.Burst, f.Seed
	return o
}

// FloorCallsPerSecond is the sustained CreateSession rate f needs at the least: one call per profile per
// SVID half-life when refreshing on rotation (or per session, if shorter), else one per two thirds of a
// session (the schedule refreshes when a third is left).
func (f Fleet) FloorCallsPerSecond() float64 {
	every := 2 * f.EffectiveSession() / 3
	if f.OnRotation {
		every = min(every, f.SVIDTTL/2)
	}
	return float64(f.Profiles) / every.Seconds()
}

// holds runs the capacity criterion on o with n bridges: zero lapses (no replacement with less than
// FreshnessGoal left, no expiry) and no more calls, throttled ones included, than the quota allows over
// the run. Boots are staged at 80 % of the quota; a failing run stops at its first lapse or at the call
// budget.
func holds(o Options, n int) (Result, bool) {
	o.Bridges = n
	o.StopAtFirstViolation = true
	o.MaxCalls = int(o.QuotaPerSecond * o.Duration.Seconds())
	o = StagedRollout(o, 0.8)
	r := Simulate(o)
	return r, r.Violations == 0 && r.Expiries == 0 && r.Calls <= o.MaxCalls
}

// Answer is what plan found for a fleet.
type Answer struct {
	// Fleet is the fleet asked about; Options the scenario simulated for it.
	Fleet   Fleet
	Options Options
	// Holds says whether the quota keeps every workload of the fleet supplied (zero lapses, calls within
	// the quota over the day); Run is its simulation (stopped at the first lapse when it does not hold).
	Holds bool
	Run   Result
	// Searched says whether the largest fleet was searched. Largest is the largest fleet found to hold
	// (0: none, down to Resolution profiles), FirstFailing the smallest found to fail (0: none failed up
	// to the search's Max), both within Resolution of each other.
	Searched              bool
	Largest, FirstFailing int
	Resolution            int
	// Runs counts the simulations.
	Runs int
}

// Margin is how far the fleet can grow and still hold, as a fraction of it (0.25: 25 % more
// profiles); negative when it does not hold. Zero without a search.
func (a Answer) Margin() float64 {
	if !a.Searched {
		return 0
	}
	return float64(a.Largest)/float64(a.Fleet.Profiles) - 1
}

// Search says what plan looks for beyond the fleet's own verdict.
type Search struct {
	// Largest asks for the largest fleet that holds.
	Largest bool
	// Resolution is the step of the search: the bisection tries multiples of it, and the answer
	// brackets the largest fleet to within it. Zero: ResolutionFor the largest fleet found to hold before
	// bisecting (2,500 for fleets of 10,000 and more, the step of docs/fleet-simulation.md's table).
	Resolution int
	// Max bounds the search: a fleet of Max profiles that holds ends it (the answer is then "at least
	// Max"). Zero: 64 times the fleet.
	Max int
}

// ResolutionFor is the default search step for a fleet of n profiles: the largest of 1, 2.5 or 5 × 10^k
// that is at most n/4, and at most 2,500.
func ResolutionFor(n int) int {
	best := 1
	for p := 1; p <= 1000; p *= 10 {
		for _, m := range []int{p, 5 * p / 2, 5 * p} {
			if m <= n/4 && m <= 2500 && m > best {
				best = m
			}
		}
	}
	return best
}

// Evaluate simulates the fleet f and, if s asks, searches the largest fleet that would hold under the
// same numbers: it doubles (or halves) from f.Profiles until the verdict changes, then bisects on
// multiples of the resolution. It is deterministic: the same Fleet and Search give the same Answer.
func Evaluate(f Fleet, s Search) (Answer, error) {
	if err := f.Validate(); err != nil {
		return Answer{}, err
	}
	a := Answer{Fleet: f, Options: StagedRollout(f.Options(), 0.8)}
	o := f.Options()
	// No fleet larger than the day's call budget can hold: each profile needs at least one call.
	budget := int(o.QuotaPerSecond * o.Duration.Seconds())
	try := func(n int) bool {
		if n > budget {
			return false
		}
		a.Runs++
		_, ok := holds(o, n)
		return ok
	}
	a.Runs++
	a.Run, a.Holds = holds(o, f.Profiles)
	if !s.Largest {
		return a, nil
	}
	ceiling := s.Max
	if ceiling <= 0 {
		ceiling = 64 * f.Profiles
	}
	a.Searched = true
	lo, hi := 0, 0 // lo holds (0: none found), hi fails (0: none found)
	if a.Holds {
		lo = f.Profiles
		for lo < ceiling {
			n := min(2*lo, ceiling)
			if !try(n) {
				hi = n
				break
			}
			lo = n
		}
	} else {
		hi = f.Profiles
		floor := max(1, s.Resolution)
		for n := f.Profiles / 2; n >= floor && n < hi; n /= 2 {
			if try(n) {
				lo = n
				break
			}
			hi = n
		}
	}
	res := s.Resolution
	if res <= 0 {
		res = ResolutionFor(max(lo, 1))
	}
	a.Resolution = res
	for lo > 0 && hi > 0 && hi-lo > res {
		mid := (lo + hi) / 2 / res * res
		if mid <= lo {
			mid = (lo/res + 1) * res
		}
		if try(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	a.Largest, a.FirstFailing = lo, hi
	return a, nil
}
