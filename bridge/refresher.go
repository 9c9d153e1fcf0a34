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
	// ErrorType is the AWS error type (e.g. "ThrottlingException"), "network", "no_identity" or
	// "invalid_input" on failure; empty on success.
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

	svid         *svid.SVID
	pendingSinks map[int]bool // sinks whose last Put failed, by index
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
	r := &Refresher{
		o:            opts,
		sched:        schedule.New(opts.Policy, opts.Rand),
		log:          opts.Logger.Named("refresher").With("profile", opts.Profile),
		pendingSinks: map[int]bool{},
	}
	r.state = ProfileState{Profile: opts.Profile, RoleARN: opts.Session.RoleARN, AssumeRoleARNs: opts.AssumeRoleARNs}
	return r, nil
}

// State is a snapshot of the profile's refresh state (no secrets).
func (r *Refresher) State() ProfileState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
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
		wake := r.nextWake()
		var timerC <-chan time.Time
		var timer clock.Timer
		if !wake.IsZero() {
			timer = r.o.Clock.NewTimer(wake.Sub(r.o.Clock.Now()))
			timerC = timer.C()
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return nil
		case s, ok := <-svids:
			if timer != nil {
				timer.Stop()
			}
			if !ok {
				svids = nil
				continue
			}
			r.onSVID(s)
		case <-timerC:
		}
		r.tick(ctx)
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
	return wake
}

func (r *Refresher) onSVID(s *svid.SVID) {
	if s == nil {
		return
	}
	now := r.o.Clock.Now()
	r.svid = s
	r.mu.Lock()
	r.state.SpiffeID = s.ID.String()
	r.state.SVIDExpiry = s.ExpiresAt()
	r.mu.Unlock()
	next := r.sched.SVIDRotated(now)
	r.log.Debug("new SVID", "spiffe_id", s.ID.String(), "serial", s.Leaf().SerialNumber.Text(16),
		"svid_expiry", s.ExpiresAt().UTC().Format(time.RFC3339), "refresh_at", next.UTC().Format(time.RFC3339))
}

// tick does whatever is due at the current time: withdraw expired credentials, refresh, retry sinks.
func (r *Refresher) tick(ctx context.Context) {
	now := r.o.Clock.Now()
	r.mu.Lock()
	expired := !r.current.IsZero() && !now.Before(r.current.Expiration)
	r.mu.Unlock()
	if expired {
		r.expire(ctx)
	}
	if next := r.sched.Next(); !next.IsZero() && !now.Before(next) {
		r.refresh(ctx)
	}
	if len(r.pendingSinks) > 0 && !r.o.Clock.Now().Before(r.sinkRetry) {
		r.retrySinks(ctx)
	}
}

func (r *Refresher) expire(ctx context.Context) {
	r.log.Error("credentials expired without a replacement; withdrawing them from every sink")
	r.sched.Expired()
	r.mu.Lock()
	r.current = creds.Credentials{}
	r.state.Expiration = time.Time{}
	r.mu.Unlock()
	r.pendingSinks = map[int]bool{}
	for _, s := range r.o.Sinks {
		if err := s.Clear(ctx); err != nil {
			r.log.Error("could not withdraw credentials", "sink", s.Name(), "error", err)
		}
	}
}

func (r *Refresher) refresh(ctx context.Context) {
	start := r.o.Clock.Now()
	if r.svid == nil {
		r.fail(start, schedule.NoIdentity, "no_identity", errors.New("no X.509-SVID received yet for this profile"), 0)
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
		r.fail(now, schedule.Transient, "invalid_response", fmt.Errorf("CreateSession returned credentials that are not valid now (%s)", c.Redacted()), latency)
		return
	}
	r.observe(Attempt{Profile: r.o.Profile, Result: "success", Latency: latency})
	r.lastLogged = ""
	r.install(ctx, c, now, now)
	delivered, failed := r.sinkResult()
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
	for i := range r.pendingSinks {
		s := r.o.Sinks[i]
		err := s.Put(ctx, c)
		if r.o.Observer != nil {
			r.o.Observer.ObserveSink(r.o.Profile, s.Name(), err)
		}
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
		// An operator has to act: say it once per distinct message, not on every slow retry.
		if msg := typ + err.Error(); msg != r.lastLogged {
			r.lastLogged = msg
			r.log.Error("refresh failed; fix the configuration or trust policy, retrying slowly", args...)
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
// role, the STS error code and whether a retry may help.
type HopFailure interface {
	error
	HopRole() string
	// HopIndex is the hop's 0-based position among the profile's assume_role blocks.
	HopIndex() int
	Code() string
	Retryable() bool
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

// classify maps a CreateSession (or role-chaining) error to a backoff kind and a metrics/error type
// label.
func classify(err error) (schedule.FailureKind, string) {
	var hf HopFailure
	if errors.As(err, &hf) {
		if hf.Retryable() {
			return schedule.Transient, hf.Code()
		}
		return schedule.Configuration, hf.Code()
	}
	var api *signer.APIError
	if errors.As(err, &api) {
		typ := api.Type
		if typ == "" {
			typ = fmt.Sprintf("HTTP%d", api.StatusCode)
		}
		if api.Retryable() {
			return schedule.Transient, typ
		}
		return schedule.Configuration, typ
	}
	if signer.Retryable(err) || errors.Is(err, context.DeadlineExceeded) {
		return schedule.Transient, "network"
	}
	return schedule.Configuration, "invalid_input"
}
