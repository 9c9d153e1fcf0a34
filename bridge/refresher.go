// Package bridge keeps one AWS profile's credentials fresh: a Refresher per profile follows the profile's
// X.509-SVID, calls Roles Anywhere CreateSession on each rotation and before expiry, and fans the
// credentials out to the profile's Sinks. Timing is decided by Schedule, a pure state machine shared with
// the fleet simulation.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/schedule"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/clock"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/errtype"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
)

// SessionCreator creates a Roles Anywhere session; *signer.Client implements it.
type SessionCreator interface {
	CreateSession(ctx context.Context, in signer.CreateSessionInput) (creds.Credentials, error)
}

// Attempt describes one refresh attempt, for metrics.
type Attempt struct {
	Profile string
	// Result is "success" or "failure".
	Result string
	// ErrorType is one of the fixed set of package errtype on failure: an AWS error type (e.g.
	// "ThrottlingException"), "network", "tls", "dns", "no_identity", "svid_expired" or "other"; empty
	// on success.
	ErrorType string
	// Hop names the step that failed, for the metrics' hop label: "rolesanywhere" for CreateSession,
	// "assume_role[i]" for the profile's i-th assume_role hop (0-based, as in the config); empty on
	// success. (The hop's role ARN goes to logs and /ready, never to a metric label.)
	Hop     string
	Latency time.Duration
}

// Observer receives refresh events; package metrics implements it. Methods must not block.
type Observer interface {
	ObserveAttempt(Attempt)
	ObserveSink(profile, sink string, err error)
}

// IdentityLossPolicy is what a profile does with the credentials it already delivered when its identity
// is lost (the Workload API no longer issues its SVID, or the SVID is past NotAfter). Either way it stops
// calling CreateSession at once.
type IdentityLossPolicy string

// Identity loss policies.
const (
	// KeepUntilExpiry leaves valid credentials in the sinks until they expire, then withdraws them (the
	// default: a workload keeps working through a brief SPIRE outage or re-registration).
	KeepUntilExpiry IdentityLossPolicy = "keep_until_expiry"
	// Withdraw clears the credentials from every sink at once.
	Withdraw IdentityLossPolicy = "withdraw"
)

// DefaultMaxWait bounds every wait of a refresher without a WallClock: timers run on the monotonic clock,
// which stands still during suspend and ignores steps of the wall clock, so no wait may trust one for long
// (design.md §6: ~30 s). 25 s leaves room for the refresh itself within 30 s of a jump.
const DefaultMaxWait = 25 * time.Second

// WallClock tells a refresher when the wall clock jumped; *clock.Watch implements it.
type WallClock interface {
	// Jumped returns a channel closed at the next jump after the call.
	Jumped() <-chan struct{}
}

// Limiter bounds how many refreshes run at once among the refreshers that share it. A daemon's profiles
// share one: after a mass rotation, 1,000 node-mode profiles would otherwise all sign, wait for a
// connection and write their files at the same time, each holding its buffers meanwhile; the bridge's
// memory would peak with them, and no refresh would finish sooner on a host with a few CPUs.
type Limiter struct{ slots chan struct{} }

// NewLimiter returns a Limiter letting n refreshes run at once (at least 1).
func NewLimiter(n int) *Limiter { return &Limiter{slots: make(chan struct{}, max(n, 1))} }

func (l *Limiter) acquire(ctx context.Context) bool {
	if l == nil {
		return true
	}
	select {
	case l.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (l *Limiter) release() {
	if l != nil {
		<-l.slots
	}
}

// RefresherOptions configures a Refresher.
type RefresherOptions struct {
	// Profile is the bridge profile's name, used in logs, state and metrics.
	Profile string
	// Session is the CreateSession input for this profile, without Identity (filled from each SVID).
	Session signer.CreateSessionInput
	// SVIDs delivers the profile's selected SVID: the current one first, then each rotation.
	SVIDs <-chan *svid.SVID
	// Client calls CreateSession (and, for a profile with assume_role hops, the chain after it).
	Client SessionCreator
	// AssumeRoleARNs are the role-chaining hops Client runs after CreateSession, for the state.
	AssumeRoleARNs []string
	// Sinks receive every fresh credential set.
	Sinks []Sink
	// Policy is the refresh timing; zero fields take their defaults.
	Policy schedule.Policy
	// Initial is credentials carried over from a previous run of the same profile (config reload);
	// used while valid instead of an immediate CreateSession.
	Initial creds.Credentials
	// InitialIssued is when Initial was issued (for its lifetime); defaults to now.
	InitialIssued time.Time
	// OnIdentityLoss is what happens to delivered credentials when the identity is lost; default
	// KeepUntilExpiry.
	OnIdentityLoss IdentityLossPolicy
	// WallClock, when set, tells the refresher that the wall clock jumped (a step, or a resume from
	// suspend): it then sleeps until its next deadline however far away, and re-checks its deadlines
	// against the wall clock when told. A daemon shares one clock.Watch among all its refreshers, so an
	// idle host does not wake once per profile every 25 s.
	WallClock WallClock
	// Limiter, when set, is shared with other refreshers: a refresh (CreateSession, then delivery to the
	// sinks) waits for one of its slots. While it waits the refresher does nothing else, so share one only
	// among refreshers of one endpoint (package daemon keeps one per endpoint).
	Limiter *Limiter
	// MaxWait bounds every wait of a refresher without a WallClock: it re-reads the wall clock at least
	// this often, so deadlines hold across suspend and clock steps; default (and maximum)
	// DefaultMaxWait.
	MaxWait time.Duration

	Clock    clock.Clock    // default: the wall clock
	Rand     func() float64 // default: math/rand/v2
	Logger   hclog.Logger   // default: discard
	Observer Observer       // optional
	Timeout  time.Duration  // per CreateSession call, including the client's own retries; default 1m
}

// Refresher keeps one profile's credentials fresh. Create it with NewRefresher and start it with Run.
type Refresher struct {
	o     RefresherOptions
	sched *schedule.Schedule
	log   hclog.Logger

	mu      sync.Mutex
	state   ProfileState
	current creds.Credentials
	issued  time.Time

	svid         *svid.SVID   // nil: none, or lost (never signed with)
	lostID       string       // the SPIFFE ID of the identity lost, while it is
	pendingSinks map[int]bool // sinks whose last Put failed, by index
	sinkState    []SinkState  // each sink's delivery state, by index; under mu
	sinkRetry    time.Time
	sinkFailures int
	lastLogged   string // last configuration error message logged, to log each distinct one once
	failHop      string // the role of the step that failed, for the next fail call
	failHopLabel string // and its metrics label
}

// NewRefresher validates opts and returns a Refresher ready to Run.
func NewRefresher(opts RefresherOptions) (*Refresher, error) {
	if opts.Profile == "" {
		return nil, errors.New("bridge: refresher needs a profile name")
	}
	if opts.SVIDs == nil {
		return nil, fmt.Errorf("bridge: profile %q: no SVID channel", opts.Profile)
	}
	if opts.Client == nil {
		return nil, fmt.Errorf("bridge: profile %q: no CreateSession client", opts.Profile)
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Rand == nil {
		opts.Rand = rand.Float64
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	switch opts.OnIdentityLoss {
	case "":
		opts.OnIdentityLoss = KeepUntilExpiry
	case KeepUntilExpiry, Withdraw:
	default:
		return nil, fmt.Errorf("bridge: profile %q: on_identity_loss %q is neither %q nor %q", opts.Profile, opts.OnIdentityLoss, KeepUntilExpiry, Withdraw)
	}
	if opts.MaxWait <= 0 || opts.MaxWait > DefaultMaxWait {
		opts.MaxWait = DefaultMaxWait
	}
	r := &Refresher{
		o:            opts,
		sched:        schedule.New(opts.Policy, opts.Rand),
		log:          opts.Logger.Named("refresher").With("profile", opts.Profile),
		pendingSinks: map[int]bool{},
	}
	r.state = ProfileState{Profile: opts.Profile, RoleARN: opts.Session.RoleARN, AssumeRoleARNs: opts.AssumeRoleARNs}
	r.sinkState = make([]SinkState, len(opts.Sinks))
	for i, s := range opts.Sinks {
		_, hook := s.(Hook)
		r.sinkState[i] = SinkState{Name: s.Name(), Hook: hook}
	}
	return r, nil
}

// State is a snapshot of the profile's refresh state and of each sink's (no secrets).
func (r *Refresher) State() ProfileState {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.state
	if len(r.sinkState) > 0 {
		st.Sinks = append([]SinkState(nil), r.sinkState...)
	}
	return st
}

// Credentials returns the current credentials and when they were issued, if they are still valid.
func (r *Refresher) Credentials() (c creds.Credentials, issued time.Time, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.current.ValidAt(r.o.Clock.Now()) {
		return creds.Credentials{}, time.Time{}, false
	}
	return r.current, r.issued, true
}

// Run refreshes until ctx ends. It returns nil on cancellation; it never gives up on errors.
//
// Deadlines are wall-clock instants, but timers run on the monotonic clock, which stands still while the
// machine is suspended and ignores steps of the wall clock. So on every wake-up the refresher compares the
// wall clock with its deadlines, and it wakes up when WallClock reports a jump or, without one, at least
// every MaxWait. After a jump or a resume, expired credentials are withdrawn and a due refresh starts
// within the Watch's interval (or MaxWait).
func (r *Refresher) Run(ctx context.Context) error {
	now := r.o.Clock.Now()
	if r.o.Initial.ValidAt(now) {
		issued := r.o.InitialIssued
		if issued.IsZero() || issued.After(now) {
			issued = now
		}
		r.install(ctx, r.o.Initial, issued, now)
		r.log.Info("kept credentials across reload", "expiration", r.o.Initial.Expiration.UTC().Format(time.RFC3339))
	}
	svids := r.o.SVIDs
	for {
		var jumped <-chan struct{}
		if r.o.WallClock != nil {
			jumped = r.o.WallClock.Jumped() // before reading the clock: a jump in between is not missed
		}
		armed := r.o.Clock.Now()
		wait, bounded := r.o.MaxWait, jumped == nil
		if wake := r.nextWake(); !wake.IsZero() {
			wait, bounded = wake.Sub(armed), true
			if jumped == nil {
				wait = min(wait, r.o.MaxWait)
			}
		}
		var timer clock.Timer
		var fired <-chan time.Time
		if bounded {
			timer = r.o.Clock.NewTimer(wait)
			fired = timer.C()
		}
		select {
		case <-ctx.Done():
			stop(timer)
			return nil
		case s, ok := <-svids:
			stop(timer)
			if !ok {
				svids = nil
				continue
			}
			r.onSVID(ctx, s)
		case <-jumped:
			stop(timer) // the Watch logged the jump; tick acts on the new time
		case <-fired:
			if jumped == nil {
				r.checkJump(armed, wait)
			}
		}
		r.tick(ctx)
	}
}

func stop(t clock.Timer) {
	if t != nil {
		t.Stop()
	}
}

// checkJump logs when the wall clock moved by more than a few seconds more (or less) than the timer
// armed at armed for wait: a step of the clock, or a suspend. tick then acts on the new time at once.
func (r *Refresher) checkJump(armed time.Time, wait time.Duration) {
	moved := r.o.Clock.Now().Round(0).Sub(armed.Round(0)) // wall-clock readings, not monotonic
	if jump := moved - max(wait, 0); jump > 5*time.Second || jump < -5*time.Second {
		r.log.Info("wall clock moved; re-checking credentials and refresh deadlines against it",
			"timer", wait.Round(time.Millisecond).String(), "wall_clock_moved", moved.Round(time.Second).String())
	}
}

func (r *Refresher) nextWake() time.Time {
	wake := r.sched.Next()
	earliest := func(t time.Time) {
		if !t.IsZero() && (wake.IsZero() || t.Before(wake)) {
			wake = t
		}
	}
	r.mu.Lock()
	if !r.current.IsZero() {
		earliest(r.current.Expiration)
	}
	r.mu.Unlock()
	if len(r.pendingSinks) > 0 {
		earliest(r.sinkRetry)
	}
	if r.svid != nil {
		earliest(r.svid.ExpiresAt()) // past NotAfter the identity is gone
	}
	return wake
}

// onSVID takes a new SVID from the Workload API, or nil when the API withdrew the identity.
func (r *Refresher) onSVID(ctx context.Context, s *svid.SVID) {
	now := r.o.Clock.Now()
	if s == nil {
		if r.svid != nil {
			r.loseIdentity(ctx, now, errtype.NoIdentity, r.svid.ID.String(),
				"the SPIRE agent no longer issues this identity (registration entry deleted — for a node-mode profile, no entry matches its workload_selectors — or PermissionDenied)")
		}
		return
	}
	if !now.Before(s.ExpiresAt()) {
		r.svid = nil
		r.loseIdentity(ctx, now, errtype.SVIDExpired, s.ID.String(),
			fmt.Sprintf("the Workload API delivered an X.509-SVID that expired at %s", s.ExpiresAt().UTC().Format(time.RFC3339)))
		return
	}
	lost := r.lostID != ""
	r.svid, r.lostID = s, ""
	r.mu.Lock()
	r.state.SpiffeID = s.ID.String()
	r.state.SVIDExpiry = s.ExpiresAt()
	r.state.Identity = ""
	r.mu.Unlock()
	next := r.sched.SVIDRotated(now, schedule.SVID{NotBefore: s.Leaf().NotBefore, NotAfter: s.ExpiresAt()})
	if lost {
		r.log.Info("identity issued again; refreshing", "spiffe_id", s.ID.String(), "refresh_at", next.UTC().Format(time.RFC3339))
	}
	if r.log.IsDebug() { // the arguments cost more than the rest of onSVID; 1,000 profiles rotate at once
		r.log.Debug("new SVID", "spiffe_id", s.ID.String(), "serial", s.Leaf().SerialNumber.Text(16),
			"svid_expiry", s.ExpiresAt().UTC().Format(time.RFC3339), "refresh_at", next.UTC().Format(time.RFC3339))
	}
}

// loseIdentity stops minting for the profile at once: the SVID for id is gone (kind errtype.NoIdentity)
// or past NotAfter (errtype.SVIDExpired). It is logged at ERROR once, naming the SPIFFE ID; delivered
// credentials are withdrawn now or at their expiry, per OnIdentityLoss. A new SVID recovers the profile.
func (r *Refresher) loseIdentity(ctx context.Context, now time.Time, kind, id, why string) {
	r.svid = nil
	first := r.lostID == ""
	r.lostID = id
	r.sched.Failed(now, schedule.NoIdentity) // no timer: the next SVID triggers the refresh
	r.mu.Lock()
	if kind != r.state.Identity {
		first = true
	}
	r.state.Identity = kind
	r.state.LastErrorType = kind
	r.state.LastError = why
	r.state.LastErrorAt = now
	r.state.NextRefresh = time.Time{}
	r.state.ConsecutiveFailures = r.sched.Failures()
	have := r.current.ValidAt(now)
	remaining := r.current.Expiration.Sub(now)
	r.mu.Unlock()
	if !first {
		return
	}
	args := []any{"spiffe_id", id, "error_type", kind, "reason", why, "on_identity_loss", string(r.o.OnIdentityLoss)}
	switch {
	case have && r.o.OnIdentityLoss == Withdraw:
		args = append(args, "credentials", "withdrawn now")
	case have:
		args = append(args, "credentials", "kept until they expire", "current_credentials_remaining", remaining.Round(time.Second).String())
	}
	r.log.Error("identity lost: no new AWS sessions for it until the Workload API issues it again", args...)
	if have && r.o.OnIdentityLoss == Withdraw {
		r.withdraw(ctx)
	}
}

// tick does whatever is due at the current time: withdraw expired credentials, refresh, retry sinks.
func (r *Refresher) tick(ctx context.Context) {
	now := r.o.Clock.Now()
	if r.svid != nil && !now.Before(r.svid.ExpiresAt()) {
		r.loseIdentity(ctx, now, errtype.SVIDExpired, r.svid.ID.String(),
			fmt.Sprintf("the X.509-SVID expired at %s and the Workload API has not delivered a new one", r.svid.ExpiresAt().UTC().Format(time.RFC3339)))
	}
	r.mu.Lock()
	expired := !r.current.IsZero() && !now.Before(r.current.Expiration)
	r.mu.Unlock()
	if expired {
		r.log.Error("credentials expired without a replacement; withdrawing them from every sink")
		r.withdraw(ctx)
	}
	if next := r.sched.Next(); !next.IsZero() && !now.Before(next) {
		r.refresh(ctx)
	}
	if len(r.pendingSinks) > 0 && !r.o.Clock.Now().Before(r.sinkRetry) {
		r.retrySinks(ctx)
	}
}

// withdraw clears the credentials from the refresher and every sink.
func (r *Refresher) withdraw(ctx context.Context) {
	r.sched.Expired()
	r.mu.Lock()
	r.current = creds.Credentials{}
	r.state.Expiration = time.Time{}
	r.mu.Unlock()
	r.pendingSinks = map[int]bool{}
	r.mu.Lock()
	for i := range r.sinkState {
		r.sinkState[i].OK = false // holds nothing now (or, failing to clear, expired credentials)
	}
	r.mu.Unlock()
	for _, s := range r.o.Sinks {
		if err := s.Clear(ctx); err != nil {
			r.log.Error("could not withdraw credentials", "sink", s.Name(), "error", err)
		}
	}
}

func (r *Refresher) refresh(ctx context.Context) {
	start := r.o.Clock.Now()
	if r.svid == nil {
		if r.lostID != "" {
			return // identity lost: already reported; the next SVID triggers the refresh
		}
		r.fail(start, schedule.NoIdentity, errtype.NoIdentity, errors.New("no X.509-SVID received yet for this profile"), 0)
		return
	}
	if !start.Before(r.svid.ExpiresAt()) {
		// Never sign with an SVID past NotAfter: it is no longer an identity.
		r.loseIdentity(ctx, start, errtype.SVIDExpired, r.svid.ID.String(),
			fmt.Sprintf("the X.509-SVID expired at %s", r.svid.ExpiresAt().UTC().Format(time.RFC3339)))
		return
	}
	if !r.o.Limiter.acquire(ctx) {
		return // shutting down
	}
	defer r.o.Limiter.release()
	if queued := r.o.Clock.Now(); !queued.Before(r.svid.ExpiresAt()) {
		// Expired while waiting for a slot: as above.
		r.loseIdentity(ctx, queued, errtype.SVIDExpired, r.svid.ID.String(),
			fmt.Sprintf("the X.509-SVID expired at %s", r.svid.ExpiresAt().UTC().Format(time.RFC3339)))
		return
	}
	in := r.o.Session
	in.Identity = signer.Identity{Leaf: r.svid.Leaf(), Intermediates: r.svid.Intermediates(), Key: r.svid.PrivateKey}
	cctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	c, err := r.o.Client.CreateSession(cctx, in)
	cancel()
	now := r.o.Clock.Now()
	latency := now.Sub(start)
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down
		}
		kind, typ := classify(err)
		r.failHop, r.failHopLabel = hopOf(err, in.RoleARN)
		r.fail(now, kind, typ, err, latency)
		return
	}
	if !c.ValidAt(now) {
		r.fail(now, schedule.Transient, errtype.Other, fmt.Errorf("CreateSession returned credentials that are not valid now (%s)", c.Redacted()), latency)
		return
	}
	r.observe(Attempt{Profile: r.o.Profile, Result: "success", Latency: latency})
	r.lastLogged = ""
	r.install(ctx, c, now, now)
	delivered, failed := r.sinkResult()
	if len(failed) == 0 && !r.log.IsInfo() {
		return // log_level warn or error: skip formatting a line nobody reads
	}
	args := []any{"spiffe_id", r.svid.ID.String(), "role", in.RoleARN,
		"access_key_id", c.AccessKeyID, "expiration", c.Expiration.UTC().Format(time.RFC3339),
		"next_refresh", r.sched.Next().UTC().Format(time.RFC3339), "delivered_to", delivered}
	if len(r.o.AssumeRoleARNs) > 0 {
		// Role chaining: the credentials are the last hop's.
		args = append(args, "assume_role", r.o.AssumeRoleARNs, "assumed_role", c.AssumedRoleARN)
	}
	if len(failed) > 0 {
		// Never an INFO line that reads as "delivered" after a sink failed.
		r.log.Warn("refreshed credentials, but not every sink has them; retrying those", append(args, "failed_sinks", failed)...)
		return
	}
	r.log.Info("refreshed credentials", args...)
}

// sinkResult names the sinks that hold the current credentials and those still pending (failed).
func (r *Refresher) sinkResult() (delivered, failed []string) {
	delivered, failed = []string{}, []string{}
	for i, s := range r.o.Sinks {
		if r.pendingSinks[i] {
			failed = append(failed, s.Name())
		} else {
			delivered = append(delivered, s.Name())
		}
	}
	return delivered, failed
}

// install makes c current, schedules the next refresh and delivers c to every sink.
func (r *Refresher) install(ctx context.Context, c creds.Credentials, issued, now time.Time) {
	next := r.sched.Succeeded(now, issued, c.Expiration)
	r.mu.Lock()
	r.current, r.issued = c, issued
	r.state.LastSuccess = now
	r.state.Expiration = c.Expiration
	r.state.NextRefresh = next
	r.state.ConsecutiveFailures = 0
	r.state.Refreshes++
	r.mu.Unlock()
	r.pendingSinks = map[int]bool{}
	for i := range r.o.Sinks {
		r.pendingSinks[i] = true
	}
	r.sinkFailures = 0
	r.retrySinks(ctx)
}

func (r *Refresher) retrySinks(ctx context.Context) {
	r.mu.Lock()
	c := r.current
	r.mu.Unlock()
	if !c.ValidAt(r.o.Clock.Now()) {
		r.pendingSinks = map[int]bool{}
		return
	}
	var failed []string
	// In the configured order, never a map's: the daemon puts hooks last, so that an on_refresh command
	// or a signal tells a workload to re-read credentials that the file and endpoints already hold.
	for i := range r.o.Sinks {
		if !r.pendingSinks[i] {
			continue
		}
		s := r.o.Sinks[i]
		err := s.Put(ctx, c)
		if r.o.Observer != nil {
			r.o.Observer.ObserveSink(r.o.Profile, s.Name(), err)
		}
		r.mu.Lock()
		st := &r.sinkState[i]
		st.OK = err == nil
		if err != nil {
			st.LastError, st.LastErrorAt = err.Error(), r.o.Clock.Now()
			st.Failures++
			r.state.SinkFailures++
		} else {
			st.LastError = ""
		}
		r.mu.Unlock()
		if err != nil {
			r.log.Error("sink failed; will retry", "sink", s.Name(), "error", err)
			failed = append(failed, s.Name())
			continue
		}
		delete(r.pendingSinks, i)
	}
	r.mu.Lock()
	r.state.FailingSinks = failed
	r.mu.Unlock()
	if len(r.pendingSinks) > 0 {
		p := r.sched.Policy()
		r.sinkRetry = r.o.Clock.Now().Add(schedule.Backoff(p.RetryBase, p.RetryMax, r.sinkFailures, r.o.Rand()))
		r.sinkFailures++
	}
}

func (r *Refresher) fail(now time.Time, kind schedule.FailureKind, typ string, err error, latency time.Duration) {
	next := r.sched.Failed(now, kind)
	hop, label := r.failHop, r.failHopLabel
	r.failHop, r.failHopLabel = "", ""
	r.observe(Attempt{Profile: r.o.Profile, Result: "failure", ErrorType: typ, Hop: label, Latency: latency})
	r.mu.Lock()
	r.state.LastErrorHop = hop
	r.state.LastErrorType = typ
	r.state.LastError = err.Error()
	r.state.LastErrorAt = now
	r.state.ConsecutiveFailures = r.sched.Failures()
	r.state.NextRefresh = next
	remaining := r.current.Expiration.Sub(now)
	have := !r.current.IsZero()
	r.mu.Unlock()
	args := []any{"error_type", typ, "error", err.Error(), "attempt", r.sched.Failures()}
	if hop != "" {
		args = append(args, "hop", hop)
	}
	if !next.IsZero() {
		args = append(args, "retry_in", next.Sub(now).Round(time.Millisecond).String())
	}
	if have {
		args = append(args, "current_credentials_remaining", remaining.Round(time.Second).String())
	}
	switch kind {
	case schedule.Configuration, schedule.NoIdentity:
		// An operator has to act: say it once per distinct cause, not on every slow retry.
		if msg := typ + "\x00" + cause(err); msg != r.lastLogged {
			r.lastLogged = msg
			what := "refresh failed; an operator must fix the configuration, trust policy or endpoint; retrying slowly"
			if kind == schedule.NoIdentity {
				what = "refresh failed; waiting for the Workload API to issue the profile's X.509-SVID"
			}
			r.log.Error(what, args...)
		} else {
			r.log.Debug("refresh failed again", args...)
		}
	default:
		r.log.Warn("refresh failed; retrying", args...)
	}
}

func (r *Refresher) observe(a Attempt) {
	if r.o.Observer != nil {
		r.o.Observer.ObserveAttempt(a)
	}
}

// HopFailure is implemented by the errors of a role-chaining hop (chain.HopError): the failing hop's
// role and position, its error-type label (package errtype), whether a retry may help, and a stable
// description for logging a repeated failure once.
type HopFailure interface {
	error
	HopRole() string
	// HopIndex is the hop's 0-based position among the profile's assume_role blocks.
	HopIndex() int
	// Code is the error-type label, one of package errtype's.
	Code() string
	Retryable() bool
	// Cause describes the failure without what changes on every call (the request id).
	Cause() string
}

// hopOf is the role of the step that failed (a chained hop's, else the Roles Anywhere role) and its
// metrics label.
func hopOf(err error, rolesAnywhereRole string) (role, label string) {
	var hf HopFailure
	if errors.As(err, &hf) {
		return hf.HopRole(), fmt.Sprintf("assume_role[%d]", hf.HopIndex())
	}
	return rolesAnywhereRole, "rolesanywhere"
}

// classify maps a CreateSession (or role-chaining) error to a backoff kind and an error-type label
// (signer.Classify, or the hop's own classification): permanent failures (400/403, TLS verification,
// unknown host, refused input) retry slowly, transient ones (429, 5xx, timeouts, resets) quickly.
func classify(err error) (schedule.FailureKind, string) {
	var hf HopFailure
	if errors.As(err, &hf) {
		if hf.Retryable() {
			return schedule.Transient, hf.Code()
		}
		return schedule.Configuration, hf.Code()
	}
	class, label := signer.Classify(err)
	if class == signer.Permanent {
		return schedule.Configuration, label
	}
	return schedule.Transient, label
}

// cause is what identifies a failure's cause for logging it once: an API error without its request id
// (which differs on every call), else the message.
func cause(err error) string {
	var hf HopFailure
	if errors.As(err, &hf) {
		return hf.Cause()
	}
	var api *signer.APIError
	if errors.As(err, &api) {
		return fmt.Sprintf("%s %d %s", api.Type, api.StatusCode, api.Message)
	}
	return err.Error()
}
