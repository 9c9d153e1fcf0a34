// Package plan answers an operator's question "does my fleet fit the account's Roles Anywhere quota, and
// how large may it grow?" (`spiffe-aws-bridge plan`, Evaluate) with a deterministic simulation of a fleet
// of bridges that share one AWS account's IAM Roles Anywhere CreateSession quota. Every simulated bridge runs the daemon's own refresh state machine,
// schedule.Schedule, driven by a virtual clock: a discrete-event simulation over a priority queue, with no
// goroutines, no sleeping and one seeded random source, so a run is a pure function of its Options and the
// scheduling it measures is exactly the scheduling the daemon runs.
//
// The model, and every assumption in it (each is repeated where the code makes it, and in
// docs/fleet-simulation.md):
//
//   - Boot: each bridge boots at a uniformly random moment within the first SVID half-life (agents start at
//     different times), or all at t=0 with ColdStart. At boot it receives its first SVID, which the
//     refresher reports as schedule.SVIDRotated; without credentials that refreshes at once.
//   - SVIDs: the agent rotates the SVID at half its TTL, every SVIDTTL/2 from the bridge's boot. At RestartAt
//     a SPIRE server restart makes every agent rotate: each bridge gets a new SVID at a uniform moment in
//     [RestartAt, RestartAt+RestartWindow), and its rotation phase restarts from that moment, so after the
//     restart the whole fleet rotates within RestartWindow of each other, every half-life, to the end.
//     Each SVID is issued as it is delivered (NotBefore then, NotAfter SVIDTTL later; SPIRE's 10 s
//     backdating is left out) and reported with that validity, so the schedule bounds the rotation spread
//     by its half-life (schedule.SVID.SpreadBound) as it does in the daemon.
//   - Quota: AWS throttles with a token bucket per account and region: QuotaPerSecond tokens a second, at
//     most Burst stored. A call is charged when it is sent (the network's one-way delay is ignored for the
//     throttling decision). A call that finds a token succeeds; one that finds none is a 429.
//   - Calls: each refresh attempt is exactly one CreateSession call; the signer's own quick in-call retries
//     are off, so every retry goes through the schedule's backoff and is counted. Every call, accepted or
//     throttled, returns after a latency uniform in [LatencyMin, LatencyMax]. A success is reported as
//     Succeeded(t, t, t+SessionDuration) at the return time t; a 429 as Failed(t, kind), where kind is
//     what the daemon's own classifier (signer.Classify, as bridge.Refresher applies it) makes of AWS's
//     ThrottlingException: transient, the fast backoff.
//     No other failures are modelled (no network errors, no configuration errors, sinks always accept).
//   - Role chaining: with ChainHops > 0, a refresh whose CreateSession succeeds goes on with ChainHops STS
//     AssumeRole calls, one after the other, each after its own latency. STS's request quota is separate
//     from Roles Anywhere's: hop k draws from its own token bucket (STSQuotaPerSecond, STSBurst), since each
//     hop is called by a role of a different account (hop 1 by the Roles Anywhere role's account, hop 2 by
//     hop 1's, …). A throttled hop fails the whole refresh as a transient failure, and the retry starts
//     again from CreateSession, as chain.Creator does; the Roles Anywhere session it had is wasted.
//   - Like the refresher, a bridge is blocked while its call is in flight: an SVID that arrives meanwhile is
//     reported when the call returns, and an expiry meanwhile is reported to the schedule only if the call
//     failed (a success replaces the credentials first).
//   - Freshness: a workload always holds its bridge's current credentials. Their remaining lifetime is
//     lowest just before a replacement or at expiry, so the run measures it there: at each success, the old
//     credentials' expiry minus now; a replacement with less than FreshnessGoal left is a violation, and so
//     is every expiry without a replacement. The remaining lifetime at the end of the run is not a low point
//     (the next refresh is still to come) and is not measured.
package plan

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/schedule"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
)

// FreshnessGoal is the fleet's goal: no workload may ever hold credentials with less than this left.
// A replacement that finds less than this remaining on the old credentials is a violation.
const FreshnessGoal = 15 * time.Minute

// phaseLength is how long the startup phase and the after-restart phase last.
const phaseLength = time.Hour

// Options describe one simulated run. Start from DefaultOptions and change what the experiment varies.
type Options struct {
	// Bridges is the number of bridges (one profile each) sharing the account's quota.
	Bridges int
	// Duration is the simulated time.
	Duration time.Duration
	// SVIDTTL is the X.509-SVID lifetime; the agent rotates at half of it.
	SVIDTTL time.Duration
	// SessionDuration is the lifetime of the AWS credentials CreateSession returns.
	SessionDuration time.Duration
	// RestartAt is when the SPIRE server restarts and every agent rotates its SVID; zero: no restart.
	RestartAt time.Duration
	// RestartWindow: after the restart each agent receives its new SVID at a uniform moment in
	// [RestartAt, RestartAt+RestartWindow).
	RestartWindow time.Duration
	// QuotaPerSecond is the token bucket's refill rate: CreateSession calls per second for the account.
	QuotaPerSecond float64
	// Burst is the token bucket's capacity. AWS does not publish the burst of the Roles Anywhere quota;
	// the default assumes one second's worth.
	Burst int
	// LatencyMin and LatencyMax bound the uniform round-trip time of a CreateSession call.
	LatencyMin, LatencyMax time.Duration
	// Policy is the refresh policy every bridge runs (zero fields take the schedule's defaults).
	Policy schedule.Policy
	// Seed makes the run reproducible: the same Options give the same Result.
	Seed uint64
	// ColdStart boots every bridge at t=0 instead of spreading boots over the first SVID half-life.
	ColdStart bool
	// BootWindow spreads the boots over [0, BootWindow) instead of the first SVID half-life (a staged
	// roll-out of a fleet too large to get its first sessions within a half-life); zero: SVIDTTL/2.
	BootWindow time.Duration
	// StopAtFirstViolation ends the run at the first violation (a capacity search needs only to know
	// whether there is one, and an overloaded fleet is the slowest to simulate).
	StopAtFirstViolation bool
	// MaxCalls, when positive, ends the run once more calls than this were sent (a capacity search's
	// other failure: a policy whose calls, throttled or not, exceed the quota over the run).
	MaxCalls int
	// ChainHops is the number of assume_role hops (STS AssumeRole calls) after each CreateSession.
	ChainHops int
	// STSQuotaPerSecond and STSBurst are each hop's STS token bucket (AWS's default STS request quota is
	// 600 per second per account and region; DefaultOptions assumes a burst of one second's worth).
	STSQuotaPerSecond float64
	STSBurst          int
}

// DefaultOptions is the reference scenario with the project's default policy: 10,000 bridges sharing one
// account's 10 requests/s CreateSession quota (burst 10), 1h SVIDs rotated at half-life, 1h sessions,
// 24 simulated hours with a SPIRE server restart at 12h that rotates every SVID within 5 seconds, calls
// taking 50–150 ms.
func DefaultOptions() Options {
	return Options{
		Bridges:         10000,
		Duration:        24 * time.Hour,
		SVIDTTL:         time.Hour,
		SessionDuration: time.Hour,
		RestartAt:       12 * time.Hour,
		RestartWindow:   5 * time.Second,
		QuotaPerSecond:  10,
		Burst:           10,
		LatencyMin:      50 * time.Millisecond,
		LatencyMax:      150 * time.Millisecond,
		Seed:            1,

		STSQuotaPerSecond: 600,
		STSBurst:          600,
	}
}

// Validate reports the first option that cannot be simulated, naming it and its value.
func (o Options) Validate() error {
	switch {
	case o.Bridges <= 0:
		return fmt.Errorf("fleet: Bridges must be positive, got %d", o.Bridges)
	case o.Duration <= 0:
		return fmt.Errorf("fleet: Duration must be positive, got %v", o.Duration)
	case o.SVIDTTL <= 0:
		return fmt.Errorf("fleet: SVIDTTL must be positive, got %v", o.SVIDTTL)
	case o.SessionDuration <= 0:
		return fmt.Errorf("fleet: SessionDuration must be positive, got %v", o.SessionDuration)
	case o.RestartAt < 0:
		return fmt.Errorf("fleet: RestartAt must not be negative, got %v", o.RestartAt)
	case o.RestartWindow < 0:
		return fmt.Errorf("fleet: RestartWindow must not be negative, got %v", o.RestartWindow)
	case !(o.QuotaPerSecond > 0) || math.IsInf(o.QuotaPerSecond, 0):
		return fmt.Errorf("fleet: QuotaPerSecond must be positive and finite, got %v", o.QuotaPerSecond)
	case o.Burst < 1:
		return fmt.Errorf("fleet: Burst must be at least 1, got %d", o.Burst)
	case o.BootWindow < 0 || o.BootWindow >= o.Duration:
		return fmt.Errorf("fleet: BootWindow must be in [0, Duration), got %v", o.BootWindow)
	case o.ChainHops < 0:
		return fmt.Errorf("fleet: ChainHops must not be negative, got %d", o.ChainHops)
	case o.ChainHops > 0 && (!(o.STSQuotaPerSecond > 0) || math.IsInf(o.STSQuotaPerSecond, 0) || o.STSBurst < 1):
		return fmt.Errorf("fleet: with ChainHops, STSQuotaPerSecond must be positive and finite and STSBurst at least 1, got %v and %d", o.STSQuotaPerSecond, o.STSBurst)
	case o.LatencyMin < 0 || o.LatencyMax < o.LatencyMin:
		return fmt.Errorf("fleet: latency range [%v, %v] must satisfy 0 <= LatencyMin <= LatencyMax", o.LatencyMin, o.LatencyMax)
	}
	return nil
}

// PhaseStats are the figures of one phase of a run, the span [From, To) of virtual time.
type PhaseStats struct {
	// Name says which phase this is.
	Name string
	// From and To bound the phase; From == To for a phase the run does not have.
	From, To time.Duration
	// Calls, Throttled and Successes count CreateSession calls sent in the phase, those refused with 429,
	// and the successes returned in it.
	Calls, Throttled, Successes int
	// PeakCallsPerSecond and PeakAcceptedPerSecond are the most calls, and accepted calls, sent in one
	// second of the phase.
	PeakCallsPerSecond, PeakAcceptedPerSecond int
	// MeanCallsPerSecond is Calls over the phase's length.
	MeanCallsPerSecond float64
	// Replacements counts successes that replaced credentials still held; MinRemaining is the least life
	// the replaced credentials had left (zero when there was no replacement or any expiry).
	Replacements int
	MinRemaining time.Duration
	// Violations counts replacements with less than FreshnessGoal left plus expiries; Expiries counts
	// credentials that ran out without a replacement.
	Violations, Expiries int
}

// ThrottledPercent is Throttled as a percentage of Calls.
func (p PhaseStats) ThrottledPercent() float64 { return percent(p.Throttled, p.Calls) }

// Result is what a run measured.
type Result struct {
	// Options are the options simulated.
	Options Options
	// Calls, Throttled and Successes count every CreateSession call, those refused with 429 and the
	// successes.
	Calls, Throttled, Successes int
	// PeakCallsPerSecond and PeakAcceptedPerSecond are the most calls, and accepted calls, sent in any
	// one-second bucket [n s, (n+1) s) of the run.
	PeakCallsPerSecond, PeakAcceptedPerSecond int
	// MeanCallsPerSecond is Calls over Duration.
	MeanCallsPerSecond float64
	// Replacements counts successes that replaced credentials the bridge still held.
	Replacements int
	// MinRemaining is the least lifetime any workload's credentials had left when they were replaced;
	// zero if any expired without a replacement (or if nothing was ever replaced).
	MinRemaining time.Duration
	// MeanRemaining is the mean lifetime left on credentials when they were replaced.
	MeanRemaining time.Duration
	// RemainingHistogram[i] counts replacements with between i and i+1 minutes left (the last bucket
	// also holds anything longer).
	RemainingHistogram []int
	// Violations counts refreshes that found less than FreshnessGoal left on the credentials they
	// replaced, plus expiries. The goal is zero.
	Violations int
	// Expiries counts credentials that ran out without a replacement: moments a workload had none.
	Expiries int
	// ViolatingBridges is how many bridges had at least one violation.
	ViolatingBridges int
	// MaxFirstCredentials is the longest any bridge waited from its boot to its first credentials.
	MaxFirstCredentials time.Duration
	// STSCalls and STSThrottled count the role-chaining AssumeRole calls (all hops) and those refused
	// for STS's quota; PeakSTSCallsPerSecond is the most sent in one second (all hops together).
	STSCalls, STSThrottled, PeakSTSCallsPerSecond int
	// Startup is the first hour (bridges booting), Steady the rest until the restart, AfterRestart the
	// hour after the restart and Aligned the rest of the run, in which every SVID in the fleet rotates
	// within RestartWindow of the others.
	Startup, Steady, AfterRestart, Aligned PhaseStats
}

// ThrottledPercent is Throttled as a percentage of Calls.
func (r Result) ThrottledPercent() float64 { return percent(r.Throttled, r.Calls) }

// Phases are the run's phases in time order, omitting those the run does not have.
func (r Result) Phases() []PhaseStats {
	var out []PhaseStats
	for _, p := range []PhaseStats{r.Startup, r.Steady, r.AfterRestart, r.Aligned} {
		if p.To > p.From {
			out = append(out, p)
		}
	}
	return out
}

func percent(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}

// bridge is the simulated state of one bridge: the real schedule plus what the refresher around it
// knows (is a call in flight, what does the workload hold).
type bridge struct {
	sched   *schedule.Schedule
	boot    time.Duration
	restart time.Duration // when the restart's SVID arrives; -1: the restart does not affect this bridge
	// svidIssued is when the current SVID was issued: its NotBefore, and SVIDTTL later its NotAfter.
	svidIssued time.Duration

	armed    time.Duration // time of the pending timer event; -1: none
	timerGen uint32
	credGen  uint32
	expires  time.Duration // expiry of the credentials the workload holds, when hasCreds

	hasCreds, everHadCreds bool
	inflight, callOK       bool
	stage                  int  // 0: CreateSession in flight; k: the k-th STS hop in flight
	pendingSVID            bool // an SVID arrived during the call
	pendingExpire          bool // the credentials expired during the call
	violated               bool
}

// sim is one run in progress.
type sim struct {
	o    Options
	rng  *rand.Rand
	base time.Time // virtual time zero
	now  time.Duration
	q    agenda
	seq  uint64
	b    []bridge

	tokens     float64
	lastRefill time.Duration
	sts        []stsBucket // one per hop
	stsCalls   []int32     // per one-second bucket

	calls, accepted []int32 // per one-second bucket
	phases          [4]PhaseStats
	minRem          [4]time.Duration
	sumRem          time.Duration
	res             Result
}

// Simulate runs the scenario o describes and returns what it measured. It panics if o.Validate fails
// (a caller's bug: options are constants of an experiment, not input).
func Simulate(o Options) Result {
	if err := o.Validate(); err != nil {
		panic(err)
	}
	s := &sim{
		o:        o,
		rng:      rand.New(rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15)),
		base:     time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		b:        make([]bridge, o.Bridges),
		tokens:   float64(o.Burst), // the bucket starts full
		calls:    make([]int32, (o.Duration+time.Second-1)/time.Second),
		accepted: make([]int32, (o.Duration+time.Second-1)/time.Second),
		q:        make(agenda, 0, 3*o.Bridges),
	}
	s.res.Options = o
	for range o.ChainHops {
		s.sts = append(s.sts, stsBucket{tokens: float64(o.STSBurst)})
	}
	if o.ChainHops > 0 {
		s.stsCalls = make([]int32, len(s.calls))
	}
	s.res.RemainingHistogram = make([]int, int(o.SessionDuration/time.Minute)+1)
	s.definePhases()

	half := o.SVIDTTL / 2
	restarts := o.RestartAt > 0 && o.RestartAt < o.Duration
	for i := range s.b {
		b := &s.b[i]
		// Every bridge's schedule draws from the run's one seeded source; events run in a fixed order, so
		// the draws, and the run, are reproducible.
		b.sched = schedule.New(o.Policy, s.rng.Float64)
		b.armed, b.restart = -1, -1
		if !o.ColdStart {
			// Assumption: agents boot at uniformly random moments within the first SVID half-life.
			window := half
			if o.BootWindow > 0 {
				window = o.BootWindow
			}
			b.boot = time.Duration(s.rng.Float64() * float64(window))
		}
		if restarts {
			// Assumption: after a server restart each agent gets its new SVID within RestartWindow.
			if r := o.RestartAt + time.Duration(s.rng.Float64()*float64(o.RestartWindow)); r > b.boot {
				b.restart = r
			}
		}
		s.push(b.boot, i, evBoot, 0)
	}

	for len(s.q) > 0 {
		e := heap.Pop(&s.q).(event)
		if e.at >= o.Duration || (o.StopAtFirstViolation && s.res.Violations > 0) || (o.MaxCalls > 0 && s.res.Calls > o.MaxCalls) {
			break
		}
		s.now = e.at
		s.handle(e)
	}
	return s.finish()
}

func (s *sim) push(at time.Duration, i int, k kind, gen uint32) {
	s.seq++
	heap.Push(&s.q, event{at: at, seq: s.seq, bridge: int32(i), gen: gen, kind: k})
}

func (s *sim) vt(d time.Duration) time.Time { return s.base.Add(d) }

func (s *sim) handle(e event) {
	i := int(e.bridge)
	b := &s.b[i]
	switch e.kind {
	case evBoot, evRotate:
		s.nextRotation(i)
		b.svidIssued = s.now // the agent issues the SVID as it rotates
		if b.inflight {
			b.pendingSVID = true // the refresher reads its SVID channel once the call returns
		} else {
			b.sched.SVIDRotated(s.vt(s.now), s.svid(b))
		}
	case evTimer:
		if e.gen != b.timerGen || b.inflight {
			return
		}
		b.armed = -1
	case evExpire:
		if e.gen != b.credGen || !b.hasCreds {
			return
		}
		s.expire(b)
	case evDone:
		s.done(i)
	}
	s.settle(i)
}

// nextRotation schedules the agent's next SVID rotation after the one happening now: a half-life later,
// or the restart's rotation if that comes first; after the restart the phase counts from it.
func (s *sim) nextRotation(i int) {
	b := &s.b[i]
	next := s.now + s.o.SVIDTTL/2
	if b.restart >= 0 && s.now < b.restart && next >= b.restart {
		next = b.restart
	}
	if next < s.o.Duration {
		s.push(next, i, evRotate, 0)
	}
}

// settle does what the refresher's loop does after an event: if the schedule's Next is due, call
// CreateSession; otherwise make sure a timer is set for it.
func (s *sim) settle(i int) {
	b := &s.b[i]
	if b.inflight {
		return
	}
	next := b.sched.Next()
	if next.IsZero() { // waiting for an SVID; the next rotation event wakes the bridge
		b.armed = -1
		return
	}
	at := next.Sub(s.base)
	if at <= s.now {
		s.call(i)
		return
	}
	if at != b.armed {
		b.timerGen++
		b.armed = at
		s.push(at, i, evTimer, b.timerGen)
	}
}

// take draws a token from the account's bucket, refilled at QuotaPerSecond up to Burst.
func (s *sim) take() bool {
	s.tokens = min(float64(s.o.Burst), s.tokens+(s.now-s.lastRefill).Seconds()*s.o.QuotaPerSecond)
	s.lastRefill = s.now
	if s.tokens >= 1 {
		s.tokens--
		return true
	}
	return false
}

// stsBucket is one hop's STS quota.
type stsBucket struct {
	tokens     float64
	lastRefill time.Duration
}

// takeSTS draws a token from hop k's STS bucket.
func (s *sim) takeSTS(k int) bool {
	b := &s.sts[k]
	b.tokens = min(float64(s.o.STSBurst), b.tokens+(s.now-b.lastRefill).Seconds()*s.o.STSQuotaPerSecond)
	b.lastRefill = s.now
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// hop sends the next STS AssumeRole of a refresh whose previous step succeeded.
func (s *sim) hop(i int) {
	b := &s.b[i]
	b.stage++
	s.res.STSCalls++
	s.stsCalls[s.now/time.Second]++
	b.callOK = s.takeSTS(b.stage - 1)
	if !b.callOK {
		s.res.STSThrottled++
	}
	lat := s.o.LatencyMin + time.Duration(s.rng.Float64()*float64(s.o.LatencyMax-s.o.LatencyMin))
	s.push(s.now+lat, i, evDone, 0)
}

// call sends one CreateSession call (one attempt: no in-call retries) and schedules its return.
func (s *sim) call(i int) {
	b := &s.b[i]
	b.inflight, b.armed, b.stage = true, -1, 0
	b.timerGen++ // any pending timer is stale: the refresher is busy with this call
	sec := s.now / time.Second
	ph := s.phase(s.now)
	s.calls[sec]++
	s.res.Calls++
	ph.Calls++
	b.callOK = s.take()
	if b.callOK {
		s.accepted[sec]++
	} else {
		s.res.Throttled++
		ph.Throttled++
	}
	lat := s.o.LatencyMin + time.Duration(s.rng.Float64()*float64(s.o.LatencyMax-s.o.LatencyMin))
	s.push(s.now+lat, i, evDone, 0)
}

// throttledKind is the backoff the daemon applies to AWS's 429: signer.Classify decides, as in
// bridge.Refresher (permanent failures take the slow configuration backoff).
var throttledKind = func() schedule.FailureKind {
	class, _ := signer.Classify(&signer.APIError{StatusCode: 429, Type: "ThrottlingException", Message: "Rate exceeded"})
	if class == signer.Permanent {
		return schedule.Configuration
	}
	return schedule.Transient
}()

// done reports a returned call to the schedule, then any SVID that arrived during it.
func (s *sim) done(i int) {
	b := &s.b[i]
	if b.callOK && b.stage < s.o.ChainHops {
		s.hop(i) // the refresh goes on with the next hop; the bridge stays busy
		return
	}
	b.inflight = false
	now := s.vt(s.now)
	if b.callOK {
		s.succeeded(i)
	} else {
		b.sched.Failed(now, throttledKind) // a 429, classified as the refresher classifies it
		if b.pendingExpire {
			b.sched.Expired()
		}
	}
	b.pendingExpire = false
	if b.pendingSVID {
		b.pendingSVID = false
		b.sched.SVIDRotated(now, s.svid(b))
	}
}

// svid is the validity of b's current SVID, as the refresher reports it to the schedule. Assumption: the
// agent issues it as it delivers it (no backdated NotBefore), valid for SVIDTTL, so its half-life is the
// agent's next rotation.
func (s *sim) svid(b *bridge) schedule.SVID {
	return schedule.SVID{NotBefore: s.vt(b.svidIssued), NotAfter: s.vt(b.svidIssued + s.o.SVIDTTL)}
}

func (s *sim) succeeded(i int) {
	b := &s.b[i]
	ph := s.phase(s.now)
	s.res.Successes++
	ph.Successes++
	if b.hasCreds {
		rem := b.expires - s.now
		s.res.Replacements++
		ph.Replacements++
		s.sumRem += rem
		k := s.phaseIndex(s.now)
		s.minRem[k] = min(s.minRem[k], rem)
		s.res.RemainingHistogram[min(max(0, int(rem/time.Minute)), len(s.res.RemainingHistogram)-1)]++
		if rem < FreshnessGoal {
			s.violation(b, ph)
		}
	} else if !b.everHadCreds {
		s.res.MaxFirstCredentials = max(s.res.MaxFirstCredentials, s.now-b.boot)
	}
	b.hasCreds, b.everHadCreds = true, true
	b.expires = s.now + s.o.SessionDuration
	b.credGen++
	if b.expires < s.o.Duration {
		s.push(b.expires, i, evExpire, b.credGen)
	}
	b.sched.Succeeded(s.vt(s.now), s.vt(s.now), s.vt(b.expires))
}

// expire: the workload's credentials ran out without a replacement.
func (s *sim) expire(b *bridge) {
	ph := s.phase(s.now)
	s.res.Expiries++
	ph.Expiries++
	s.violation(b, ph)
	b.hasCreds = false
	if b.inflight {
		b.pendingExpire = true // the refresher notices once the call returns, if it failed
	} else {
		b.sched.Expired()
	}
}

func (s *sim) violation(b *bridge, ph *PhaseStats) {
	s.res.Violations++
	ph.Violations++
	if !b.violated {
		b.violated = true
		s.res.ViolatingBridges++
	}
}

// definePhases splits the run: startup (the first hour), steady (until the restart), the hour after the
// restart, and the rest (rotations aligned by the restart).
func (s *sim) definePhases() {
	d := s.o.Duration
	end := d
	if s.o.RestartAt > 0 && s.o.RestartAt < d {
		end = s.o.RestartAt
	}
	clamp := func(t time.Duration) time.Duration { return min(max(t, 0), d) }
	s.phases[0] = PhaseStats{Name: "startup", From: 0, To: clamp(min(phaseLength, end))}
	s.phases[1] = PhaseStats{Name: "steady", From: s.phases[0].To, To: end}
	s.phases[2] = PhaseStats{Name: "after restart", From: end, To: clamp(end + phaseLength)}
	s.phases[3] = PhaseStats{Name: "aligned", From: s.phases[2].To, To: d}
	for k := range s.minRem {
		s.minRem[k] = math.MaxInt64
	}
}

func (s *sim) phaseIndex(t time.Duration) int {
	for k := range 3 {
		if t < s.phases[k].To {
			return k
		}
	}
	return 3
}

func (s *sim) phase(t time.Duration) *PhaseStats { return &s.phases[s.phaseIndex(t)] }

func (s *sim) finish() Result {
	r := s.res
	for sec := range s.calls {
		r.PeakCallsPerSecond = max(r.PeakCallsPerSecond, int(s.calls[sec]))
		r.PeakAcceptedPerSecond = max(r.PeakAcceptedPerSecond, int(s.accepted[sec]))
	}
	r.MeanCallsPerSecond = float64(r.Calls) / s.o.Duration.Seconds()
	for _, n := range s.stsCalls {
		r.PeakSTSCallsPerSecond = max(r.PeakSTSCallsPerSecond, int(n))
	}
	overall := time.Duration(math.MaxInt64)
	for k := range s.phases {
		p := &s.phases[k]
		for sec := p.From / time.Second; sec < (p.To+time.Second-1)/time.Second; sec++ {
			p.PeakCallsPerSecond = max(p.PeakCallsPerSecond, int(s.calls[sec]))
			p.PeakAcceptedPerSecond = max(p.PeakAcceptedPerSecond, int(s.accepted[sec]))
		}
		if p.To > p.From {
			p.MeanCallsPerSecond = float64(p.Calls) / (p.To - p.From).Seconds()
		}
		if p.Replacements > 0 && p.Expiries == 0 {
			p.MinRemaining = s.minRem[k]
		}
		overall = min(overall, s.minRem[k])
	}
	if r.Replacements > 0 {
		r.MeanRemaining = s.sumRem / time.Duration(r.Replacements)
		if r.Expiries == 0 {
			r.MinRemaining = overall
		}
	}
	r.Startup, r.Steady, r.AfterRestart, r.Aligned = s.phases[0], s.phases[1], s.phases[2], s.phases[3]
	return r
}
