package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/schedule"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/clock"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/logtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
)

// These tests drive the refresher with a fake clock and a scripted CreateSession, to check its decisions
// step by step; the end-to-end tests in package daemon and cmd/spiffe-aws-bridge run it against the real
// emulator and Workload API.

const (
	testSecret = "s3cr3tAccessKeyValueThatMustNeverBeLogged0"
	testToken  = "SessionTokenValueThatMustNeverBeLogged=="
)

var start = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// scripted answers CreateSession from a queue of results and records every call.
type scripted struct {
	mu      sync.Mutex
	clk     *clock.Fake
	results []error // nil = success
	calls   chan signer.CreateSessionInput
	serial  int
}

func (s *scripted) CreateSession(_ context.Context, in signer.CreateSessionInput) (creds.Credentials, error) {
	s.mu.Lock()
	var err error
	if len(s.results) > 0 {
		err, s.results = s.results[0], s.results[1:]
	}
	s.serial++
	n := s.serial
	s.mu.Unlock()
	s.calls <- in
	if err != nil {
		return creds.Credentials{}, err
	}
	now := s.clk.Now()
	return creds.Credentials{
		AccessKeyID:     "ASIAAAAAAAAAAAAAAAA" + string(rune('A'+n%26)),
		SecretAccessKey: testSecret, SessionToken: testToken,
		Expiration: now.Add(time.Hour), AssumedRoleARN: "arn:aws:sts::123456789012:assumed-role/app/x",
	}, nil
}

// recordingSink records what it is given and can be told to fail.
type recordingSink struct {
	mu      sync.Mutex
	fail    error
	puts    chan creds.Credentials
	cleared chan struct{}
}

func newRecordingSink() *recordingSink {
	return &recordingSink{puts: make(chan creds.Credentials, 16), cleared: make(chan struct{}, 4)}
}
func (s *recordingSink) Name() string { return "recording" }
func (s *recordingSink) Put(_ context.Context, c creds.Credentials) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.puts <- c
	return nil
}
func (s *recordingSink) Clear(context.Context) error { s.cleared <- struct{}{}; return nil }
func (s *recordingSink) setFail(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

type harness struct {
	t      *testing.T
	clk    *clock.Fake
	api    *scripted
	sink   *recordingSink
	svids  chan *svid.SVID
	ca     *svidtest.CA
	r      *Refresher
	logs   *logtest.Buffer
	cancel context.CancelFunc
	done   chan struct{}
}

func newHarness(t *testing.T, results ...error) *harness {
	t.Helper()
	return newHarnessWith(t, nil, results...)
}

// newHarnessWith is newHarness with options changed by opt before the refresher is built.
func newHarnessWith(t *testing.T, opt func(*RefresherOptions), results ...error) *harness {
	t.Helper()
	ca, err := svidtest.NewCA(svidtest.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, clk: clock.NewFake(start), sink: newRecordingSink(), svids: make(chan *svid.SVID, 1),
		ca: ca, logs: &logtest.Buffer{}, done: make(chan struct{})}
	h.api = &scripted{clk: h.clk, results: results, calls: make(chan signer.CreateSessionInput, 16)}
	o := RefresherOptions{
		Profile: "app",
		Session: signer.CreateSessionInput{RoleARN: "arn:aws:iam::123456789012:role/app"},
		SVIDs:   h.svids,
		Client:  h.api,
		Sinks:   []Sink{h.sink},
		Policy:  schedule.NoJitter(),
		Clock:   h.clk,
		Rand:    func() float64 { return 0.5 },
		Logger:  hclog.New(&hclog.LoggerOptions{Output: h.logs, Level: hclog.Trace}),
	}
	if opt != nil {
		opt(&o)
	}
	h.r, err = NewRefresher(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { defer close(h.done); _ = h.r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-h.done
		if logs := h.logs.String(); strings.Contains(logs, testSecret) || strings.Contains(logs, testToken) {
			t.Errorf("a secret reached the logs:\n%s", logs)
		}
	})
	return h
}

func (h *harness) rotate() { h.t.Helper(); h.rotateWith(svidtest.MintOptions{}) }

func (h *harness) rotateWith(mint svidtest.MintOptions) {
	h.t.Helper()
	s, err := h.ca.MintX509SVID(spiffeid.RequireFromString("spiffe://example.org/app"), mint)
	if err != nil {
		h.t.Fatal(err)
	}
	h.svids <- &svid.SVID{ID: s.ID, Certificates: s.Certificates, PrivateKey: s.PrivateKey}
}

func (h *harness) expectCall() {
	h.t.Helper()
	select {
	case <-h.api.calls:
	case <-time.After(5 * time.Second):
		h.t.Fatal("no CreateSession call")
	}
}

func (h *harness) expectPut() creds.Credentials {
	h.t.Helper()
	select {
	case c := <-h.sink.puts:
		return c
	case <-time.After(5 * time.Second):
		h.t.Fatal("no credentials delivered to the sink")
	}
	return creds.Credentials{}
}

// advanceTo waits until the refresher has armed its timer, then moves the clock to t.
func (h *harness) advanceTo(t time.Time) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.clk.Pending() == 0 {
		if time.Now().After(deadline) {
			h.t.Fatal("the refresher armed no timer")
		}
		time.Sleep(time.Millisecond)
	}
	h.clk.Set(t)
}

func (h *harness) waitState(what string, ok func(ProfileState) bool) ProfileState {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := h.r.State()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("state never reached %s: %+v", what, s)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFirstSVIDRefreshesAtOnceAndFeedsTheSinks(t *testing.T) {
	h := newHarness(t)
	h.rotate()
	h.expectCall()
	c := h.expectPut()
	if !c.Expiration.Equal(start.Add(time.Hour)) || c.SecretAccessKey != testSecret {
		t.Fatalf("sink got %v", c)
	}
	s := h.waitState("one refresh", func(s ProfileState) bool { return s.Refreshes == 1 })
	if !s.Expiration.Equal(start.Add(time.Hour)) || s.SpiffeID != "spiffe://example.org/app" || s.Expiration.Sub(start) < 15*time.Minute {
		t.Fatalf("state = %+v", s)
	}
	// NoJitter: the next timer refresh is due exactly at the deadline, 40 minutes into a 1h session.
	if got := s.NextRefresh.Sub(start).Round(time.Millisecond); got != 40*time.Minute {
		t.Fatalf("next refresh in %v, want 40m", got)
	}
}

func TestEachRotationRefreshes(t *testing.T) {
	h := newHarness(t)
	h.rotate()
	h.expectCall()
	first := h.expectPut()
	h.clk.Advance(5 * time.Minute)
	h.rotate()
	h.expectCall()
	second := h.expectPut()
	if first.AccessKeyID == second.AccessKeyID {
		t.Fatal("rotation did not deliver new credentials")
	}
}

func TestTimerRefreshBeforeExpiry(t *testing.T) {
	h := newHarness(t)
	h.rotate()
	h.expectCall()
	h.expectPut()
	h.advanceTo(start.Add(40 * time.Minute))
	h.expectCall()
	c := h.expectPut()
	if !c.Expiration.Equal(start.Add(100 * time.Minute)) {
		t.Fatalf("timer refresh gave expiration %v", c.Expiration)
	}
}

func TestTransientFailuresBackOffThenRecover(t *testing.T) {
	throttled := &signer.APIError{StatusCode: 429, Type: "ThrottlingException", Message: "Rate exceeded"}
	h := newHarness(t, throttled, throttled)
	h.rotate()
	h.expectCall()
	// Retry 1: rand 0.5 × base 2s = 1s later.
	s := h.waitState("one failure", func(s ProfileState) bool { return s.ConsecutiveFailures == 1 })
	if got := s.NextRefresh.Sub(start); got != time.Second || s.LastErrorType != "ThrottlingException" {
		t.Fatalf("after a 429: retry in %v (want 1s), error type %q", got, s.LastErrorType)
	}
	h.advanceTo(start.Add(time.Second))
	h.expectCall()
	s = h.waitState("two failures", func(s ProfileState) bool { return s.ConsecutiveFailures == 2 })
	if got := s.NextRefresh.Sub(start.Add(time.Second)); got != 2*time.Second {
		t.Fatalf("second retry in %v, want 2s (0.5 × 2s × 2)", got)
	}
	h.advanceTo(s.NextRefresh)
	h.expectCall()
	h.expectPut()
	h.waitState("recovered", func(s ProfileState) bool { return s.ConsecutiveFailures == 0 && s.Refreshes == 1 })
}

func TestAccessDeniedKeepsCredentialsUntilExpiryThenWithdraws(t *testing.T) {
	denied := &signer.APIError{StatusCode: 403, Type: "AccessDeniedException", Message: "Unable to assume role"}
	h := newHarness(t)
	h.rotate()
	h.expectCall()
	h.expectPut()
	h.api.mu.Lock()
	h.api.results = []error{denied, denied, denied, denied, denied, denied, denied, denied}
	h.api.mu.Unlock()
	// Timer refresh at +40m fails; slow retries follow; the credentials stay in service meanwhile.
	h.advanceTo(start.Add(40 * time.Minute))
	h.expectCall()
	for i := 0; i < 3; i++ {
		s := h.waitState("a failure recorded", func(s ProfileState) bool { return s.ConsecutiveFailures == i+1 })
		if c, _, ok := h.r.Credentials(); !ok || c.SecretAccessKey != testSecret {
			t.Fatal("credentials withdrawn while still valid")
		}
		if s.NextRefresh.After(start.Add(time.Hour)) {
			break
		}
		h.advanceTo(s.NextRefresh)
		h.expectCall()
	}
	// Expiry: withdrawn from every sink, not ready.
	h.advanceTo(start.Add(time.Hour))
	select {
	case <-h.sink.cleared:
	case <-time.After(5 * time.Second):
		t.Fatal("expired credentials were not withdrawn from the sink")
	}
	if s := h.r.State(); !s.Expiration.IsZero() {
		t.Fatalf("state after expiry = %+v", s)
	}
	if _, _, ok := h.r.Credentials(); ok {
		t.Fatal("Credentials() still returns expired credentials")
	}
	// The same AWS message is logged as an error once, not on every slow retry.
	if n := strings.Count(h.logs.String(), "[ERROR] refresher: refresh failed"); n != 1 {
		t.Fatalf("AccessDenied logged %d times at error level, want once:\n%s", n, h.logs.String())
	}
}

func TestFailingSinkIsRetriedWithoutANewSession(t *testing.T) {
	h := newHarness(t)
	h.sink.setFail(errors.New("disk full"))
	h.rotate()
	h.expectCall()
	s := h.waitState("failing sink reported", func(s ProfileState) bool { return len(s.FailingSinks) == 1 })
	h.sink.setFail(nil)
	// rand 0.5 × 2s: the sink retry is due 1s later.
	h.advanceTo(start.Add(time.Second))
	h.expectPut()
	select {
	case <-h.api.calls:
		t.Fatal("a sink retry called CreateSession again")
	default:
	}
	_ = s
	h.waitState("sink recovered", func(s ProfileState) bool { return len(s.FailingSinks) == 0 })
}

// hookSink is a recordingSink marked as a hook (bridge.Hook).
type hookSink struct{ *recordingSink }

func (hookSink) Name() string { return "hook" }
func (hookSink) IsHook()      {}

// orderSink records, in a log shared by several sinks, the order in which they are written.
type orderSink struct {
	name string
	mu   *sync.Mutex
	log  *[]string
}

func (s orderSink) Name() string { return s.name }
func (s orderSink) Put(context.Context, creds.Credentials) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	*s.log = append(*s.log, s.name)
	return nil
}
func (s orderSink) Clear(context.Context) error { return nil }

// TestSinksAreWrittenInTheirOrder: a refresh writes the sinks in the order given, every time, so that a
// hook the daemon puts last (on_refresh, signal) runs after the file and endpoints hold the new
// credentials. Before, the order was a map's: a hook could make a workload re-read the old file.
func TestSinksAreWrittenInTheirOrder(t *testing.T) {
	var mu sync.Mutex
	var log []string
	var want []string
	h := newHarnessWith(t, func(o *RefresherOptions) {
		for i := range 8 {
			s := orderSink{name: fmt.Sprintf("sink%d", i), mu: &mu, log: &log}
			o.Sinks = append(o.Sinks, s)
		}
	})
	for _, s := range h.r.o.Sinks {
		want = append(want, s.Name())
	}
	for round := range 3 {
		mu.Lock()
		log = nil
		mu.Unlock()
		h.rotate()
		h.expectCall()
		h.expectPut()
		h.waitState("every sink written", func(ProfileState) bool {
			mu.Lock()
			defer mu.Unlock()
			return len(log) == len(want)-1
		})
		mu.Lock()
		got := append([]string(nil), log...)
		mu.Unlock()
		if strings.Join(got, ",") != strings.Join(want[1:], ",") {
			t.Fatalf("round %d: sinks written in the order %v, want %v", round, got, want[1:])
		}
	}
}

// TestSinkStateFollowsEveryWrite: each sink's state says whether its last write succeeded, why not, and
// how often it failed; the profile counts every failed write; a hook is marked as one. A sink that
// works again is OK again with the next retry, no new session needed.
func TestSinkStateFollowsEveryWrite(t *testing.T) {
	hook := hookSink{newRecordingSink()}
	h := newHarnessWith(t, func(o *RefresherOptions) { o.Sinks = append(o.Sinks, hook) })
	h.sink.setFail(errors.New("credfile: writing /ro/credentials: read-only file system"))
	h.rotate()
	h.expectCall()
	s := h.waitState("the file sink failing, the hook run", func(s ProfileState) bool {
		return len(s.Sinks) == 2 && s.Sinks[0].Failures == 1 && s.Sinks[1].OK
	})
	if f := s.Sinks[0]; f.Name != "recording" || f.OK || f.Hook || !strings.Contains(f.LastError, "/ro/credentials: read-only") || !f.LastErrorAt.Equal(start) {
		t.Errorf("failing sink state %+v", f)
	}
	if k := s.Sinks[1]; k.Name != "hook" || !k.Hook || k.Failures != 0 || k.LastError != "" {
		t.Errorf("hook state %+v", k)
	}
	if s.SinkFailures != 1 {
		t.Errorf("SinkFailures = %d, want 1", s.SinkFailures)
	}
	// Still failing at the first retry (1 s later), then working at the second (2 s after that).
	h.advanceTo(start.Add(time.Second))
	h.waitState("a second failure", func(s ProfileState) bool { return s.SinkFailures == 2 && s.Sinks[0].Failures == 2 })
	h.sink.setFail(nil)
	h.advanceTo(start.Add(3 * time.Second))
	h.expectPut()
	s = h.waitState("the sink recovered", func(s ProfileState) bool { return s.Sinks[0].OK })
	if f := s.Sinks[0]; f.LastError != "" || f.Failures != 2 || s.SinkFailures != 2 || len(s.FailingSinks) != 0 {
		t.Errorf("recovered sink state %+v (profile: %d failures, failing %v)", f, s.SinkFailures, s.FailingSinks)
	}
	select {
	case <-h.api.calls:
		t.Fatal("a sink retry called CreateSession again")
	default:
	}
	// The state handed out is a copy: changing it changes nothing in the refresher.
	s.Sinks[0].OK = false
	if !h.r.State().Sinks[0].OK {
		t.Error("State() shares its Sinks with the refresher")
	}
}

func TestCarriedOverCredentialsAreServedWithoutACall(t *testing.T) {
	clk := clock.NewFake(start)
	sink := newRecordingSink()
	api := &scripted{clk: clk, calls: make(chan signer.CreateSessionInput, 4)}
	r, err := NewRefresher(RefresherOptions{
		Profile: "app", SVIDs: make(chan *svid.SVID), Client: api, Sinks: []Sink{sink}, Clock: clk,
		Initial: creds.Credentials{AccessKeyID: "ASIAKEPT", SecretAccessKey: testSecret, SessionToken: testToken,
			Expiration: start.Add(50 * time.Minute)},
		InitialIssued: start.Add(-10 * time.Minute),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case c := <-sink.puts:
		if c.AccessKeyID != "ASIAKEPT" {
			t.Fatalf("sink got %v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("carried-over credentials were not delivered")
	}
	select {
	case <-api.calls:
		t.Fatal("CreateSession called although valid credentials were carried over")
	case <-time.After(50 * time.Millisecond):
	}
}

// TestFailingSinkIsNeverReportedAsDelivered: after a sink fails, the refresh is not logged at INFO as if
// the credentials were delivered; the WARN line names the sinks that got them and those that did not.
func TestFailingSinkIsNeverReportedAsDelivered(t *testing.T) {
	h := newHarness(t)
	h.sink.setFail(errors.New("disk full"))
	h.rotate()
	h.expectCall()
	h.waitState("failing sink reported", func(s ProfileState) bool { return len(s.FailingSinks) == 1 })
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(h.logs.String(), "refreshed credentials") && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	logs := h.logs.String()
	name := h.sink.Name()
	if strings.Contains(logs, "[INFO]  refresher: refreshed credentials") ||
		!strings.Contains(logs, "[WARN]  refresher: refreshed credentials, but not every sink has them; retrying those") ||
		!strings.Contains(logs, "failed_sinks=[\""+name+"\"]") || !strings.Contains(logs, "delivered_to=[]") {
		t.Fatalf("logs:\n%s", logs)
	}
}

func TestDeliveredSinksAreNamed(t *testing.T) {
	h := newHarness(t)
	h.rotate()
	h.expectPut()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(h.logs.String(), "refreshed credentials") && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "[INFO]  refresher: refreshed credentials") || !strings.Contains(logs, "delivered_to=[\""+h.sink.Name()+"\"]") {
		t.Fatalf("logs:\n%s", logs)
	}
}

func (h *harness) expectNoCall(within time.Duration) {
	h.t.Helper()
	select {
	case in := <-h.api.calls:
		h.t.Fatalf("CreateSession called (leaf serial %s) although the identity is gone", in.Identity.Leaf.SerialNumber.Text(16))
	case <-time.After(within):
	}
}

func (h *harness) expectCleared() {
	h.t.Helper()
	select {
	case <-h.sink.cleared:
	case <-time.After(5 * time.Second):
		h.t.Fatal("credentials were not withdrawn from the sink")
	}
}

// A withdrawn identity (nil from the subscription) stops CreateSession at once; with "withdraw" the
// credentials leave every sink at once; the next SVID recovers the profile.
func TestIdentityLossWithdrawStopsMintingAndClearsSinks(t *testing.T) {
	h := newHarnessWith(t, func(o *RefresherOptions) { o.OnIdentityLoss = Withdraw })
	h.rotate()
	h.expectCall()
	h.expectPut()
	h.svids <- nil
	h.expectCleared()
	s := h.waitState("identity lost", func(s ProfileState) bool { return s.Identity == "no_identity" })
	if !s.Expiration.IsZero() || s.LastErrorType != "no_identity" || !s.NextRefresh.IsZero() {
		t.Fatalf("state after identity loss = %+v", s)
	}
	if _, _, ok := h.r.Credentials(); ok {
		t.Fatal("Credentials() still returns the withdrawn credentials")
	}
	// The refresh deadline passes: nothing is minted.
	h.advanceTo(start.Add(45 * time.Minute))
	h.expectNoCall(100 * time.Millisecond)
	if n := strings.Count(h.logs.String(), "[ERROR] refresher: identity lost"); n != 1 || !strings.Contains(h.logs.String(), "spiffe_id=spiffe://example.org/app") {
		t.Fatalf("identity loss logged %d times at ERROR (want once, naming the SPIFFE ID):\n%s", n, h.logs.String())
	}
	h.rotate()
	h.expectCall()
	h.expectPut()
	h.waitState("recovered", func(s ProfileState) bool { return s.Identity == "" && s.Refreshes == 2 })
}

// With the default keep_until_expiry, delivered credentials stay until they expire, then are withdrawn;
// no CreateSession is made meanwhile.
func TestIdentityLossKeepUntilExpiry(t *testing.T) {
	h := newHarness(t)
	h.rotate()
	h.expectCall()
	h.expectPut()
	h.svids <- nil
	h.waitState("identity lost", func(s ProfileState) bool { return s.Identity == "no_identity" })
	if _, _, ok := h.r.Credentials(); !ok {
		t.Fatal("keep_until_expiry withdrew valid credentials")
	}
	select {
	case <-h.sink.cleared:
		t.Fatal("keep_until_expiry cleared the sinks before expiry")
	default:
	}
	h.advanceTo(start.Add(45 * time.Minute))
	h.expectNoCall(100 * time.Millisecond)
	h.advanceTo(start.Add(time.Hour))
	h.expectCleared()
	h.expectNoCall(50 * time.Millisecond)
}

// An SVID past NotAfter is never signed with: the profile reports svid_expired and waits for a new one.
func TestSecuritySVIDPastNotAfterIsNeverSignedWith(t *testing.T) {
	h := newHarness(t)
	h.rotateWith(svidtest.MintOptions{NotBefore: start.Add(-time.Minute), NotAfter: start.Add(20 * time.Minute)})
	h.expectCall()
	h.expectPut()
	// The refresh deadline (+40m) comes after the SVID's NotAfter (+20m).
	h.advanceTo(start.Add(20 * time.Minute))
	s := h.waitState("svid expired", func(s ProfileState) bool { return s.Identity == "svid_expired" })
	if s.LastErrorType != "svid_expired" {
		t.Fatalf("state = %+v", s)
	}
	h.advanceTo(start.Add(41 * time.Minute))
	h.expectNoCall(100 * time.Millisecond)
	// An already-expired SVID delivered by the API is refused too.
	h.rotateWith(svidtest.MintOptions{NotBefore: start.Add(-2 * time.Hour), NotAfter: start.Add(-time.Hour)})
	h.expectNoCall(100 * time.Millisecond)
	h.rotate()
	h.expectCall()
	h.waitState("recovered", func(s ProfileState) bool { return s.Identity == "" && s.Refreshes == 2 })
}

// Real timers, an injected wall clock that steps 2h forward: the expired credentials are withdrawn and a
// refresh starts within 30s (the refresher never trusts a monotonic timer for longer).
func TestClockJumpWithdrawsExpiredCredentialsAndRefreshesWithin30s(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: waits for the 30 s wall-clock watch; the full run covers it")
	}
	t.Parallel()
	j := startForJump(t, nil)
	r, api, sink, clk, first := j.r, j.api, j.sink, j.clk, j.first
	j.jump(2 * time.Hour)
	jumped := time.Now()
	if _, _, ok := r.Credentials(); ok {
		t.Fatal("Credentials() returns credentials that expired an hour ago")
	}
	select {
	case <-sink.cleared:
	case <-time.After(30 * time.Second):
		t.Fatal("expired credentials still in the sink 30s after the clock jumped")
	}
	select {
	case <-api.calls:
	case <-time.After(30*time.Second - time.Since(jumped)):
		t.Fatal("no refresh within 30s of the clock jump")
	}
	second := <-sink.puts
	if second.AccessKeyID == first.AccessKeyID || !second.ValidAt(clk.Now()) {
		t.Fatalf("after the jump the sink got %v, want new valid credentials", second.Redacted())
	}
	t.Logf("withdrawn and refreshed %s after the jump", time.Since(jumped).Round(time.Millisecond))
}

// A configuration problem is logged at ERROR once per distinct cause: the same AWS answer with a new
// request id on every call is the same cause. A TLS failure is one too, retried slowly.
func TestConfigurationProblemsLoggedOncePerCauseAndRetriedSlowly(t *testing.T) {
	denied := func(id string) error {
		return &signer.APIError{StatusCode: 403, Type: "AccessDeniedException", Message: "Unable to assume role", RequestID: id}
	}
	h := newHarness(t, denied("req-1"), denied("req-2"), denied("req-3"))
	h.rotate()
	h.expectCall()
	s := h.waitState("one failure", func(s ProfileState) bool { return s.ConsecutiveFailures == 1 })
	// rand 0.5 × 30s: the slow configuration backoff, not the 2s transient one.
	if got := s.NextRefresh.Sub(start); got != 15*time.Second || s.LastErrorType != "AccessDeniedException" {
		t.Fatalf("after a 403: retry in %v (want 15s), type %q", got, s.LastErrorType)
	}
	for i := 2; i <= 3; i++ {
		h.advanceTo(s.NextRefresh)
		h.expectCall()
		s = h.waitState("another failure", func(s ProfileState) bool { return s.ConsecutiveFailures == i })
	}
	if n := strings.Count(h.logs.String(), "[ERROR] refresher: refresh failed"); n != 1 {
		t.Fatalf("the same 403 (three request ids) logged %d times at ERROR, want once:\n%s", n, h.logs.String())
	}
}

// manualWall is a WallClock the test tells of a jump by hand.
type manualWall struct {
	mu sync.Mutex
	c  chan struct{}
}

func newManualWall() *manualWall { return &manualWall{c: make(chan struct{})} }

func (m *manualWall) Jumped() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.c
}

func (m *manualWall) jump() {
	m.mu.Lock()
	defer m.mu.Unlock()
	close(m.c)
	m.c = make(chan struct{})
}

// countingClock counts the timers armed on a fake clock.
type countingClock struct {
	*clock.Fake
	timers atomic.Int64
}

func (c *countingClock) NewTimer(d time.Duration) clock.Timer {
	c.timers.Add(1)
	return c.Fake.NewTimer(d)
}

// With a WallClock (a daemon's shared clock.Watch) an idle refresher sleeps until its next deadline: it
// arms no timer while 25-second steps of time pass; without one it wakes at every step to re-read the wall
// clock. (1,000 node-mode profiles woke 40 times a second on an idle host before.)
func TestWithAWallClockAnIdleRefresherSleepsUntilItsDeadline(t *testing.T) {
	for _, tc := range []struct {
		name   string
		wall   WallClock
		wakeup bool
	}{{"shared wall clock", newManualWall(), false}, {"no wall clock", nil, true}} {
		t.Run(tc.name, func(t *testing.T) {
			var clk *countingClock
			h := newHarnessWith(t, func(o *RefresherOptions) {
				clk = &countingClock{Fake: o.Clock.(*clock.Fake)}
				o.Clock, o.WallClock = clk, tc.wall
			})
			h.rotate()
			h.expectCall()
			h.expectPut()
			h.waitState("the next refresh scheduled", func(s ProfileState) bool { return !s.NextRefresh.IsZero() })
			steps := int((40*time.Minute - time.Minute) / DefaultMaxWait)
			for deadline := time.Now().Add(5 * time.Second); clk.Pending() == 0 && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond) // the timer armed after the refresh
			}
			armed := clk.timers.Load()
			for i := 1; i <= steps; i++ {
				h.advanceTo(start.Add(time.Duration(i) * DefaultMaxWait))
				if tc.wakeup { // it re-arms at once; wait for that before the next step
					want := armed + int64(i)
					deadline := time.Now().Add(5 * time.Second)
					for clk.timers.Load() < want && time.Now().Before(deadline) {
						time.Sleep(time.Millisecond)
					}
				}
			}
			time.Sleep(50 * time.Millisecond)
			got := clk.timers.Load() - armed
			if tc.wakeup && got != int64(steps) || !tc.wakeup && got != 0 {
				t.Fatalf("%d timers armed over %d steps of %v before the deadline (want %d)", got, steps, DefaultMaxWait,
					map[bool]int{true: steps, false: 0}[tc.wakeup])
			}
			// Either way the deadline itself is kept.
			h.advanceTo(start.Add(40 * time.Minute))
			h.expectCall()
			h.expectPut()
		})
	}
}

// Real timers, an injected wall clock that steps 2h forward, and a WallClock that reports the step: the
// refresher acts on the new time at once, withdrawing the expired credentials and refreshing, though its
// own timer still points 40 minutes ahead.
func TestAReportedClockJumpIsActedOnAtOnce(t *testing.T) {
	t.Parallel()
	wall := newManualWall()
	j := startForJump(t, wall)
	api, sink, clk, first := j.api, j.sink, j.clk, j.first
	j.jump(2 * time.Hour)
	wall.jump()
	select {
	case <-sink.cleared:
	case <-time.After(5 * time.Second):
		t.Fatal("expired credentials still in the sink 5s after the jump was reported")
	}
	select {
	case <-api.calls:
	case <-time.After(5 * time.Second):
		t.Fatal("no refresh within 5s of the reported jump")
	}
	if second := <-sink.puts; second.AccessKeyID == first.AccessKeyID || !second.ValidAt(clk.Now()) {
		t.Fatalf("after the jump the sink got %v, want new valid credentials", second.Redacted())
	}
}

// blockingCreator holds every CreateSession until released, counting the calls in progress.
type blockingCreator struct {
	clk     *clock.Fake
	release chan struct{}
	started chan struct{}
	mu      sync.Mutex
	now     int
	most    int
}

func (b *blockingCreator) CreateSession(ctx context.Context, _ signer.CreateSessionInput) (creds.Credentials, error) {
	b.mu.Lock()
	b.now++
	b.most = max(b.most, b.now)
	b.mu.Unlock()
	b.started <- struct{}{}
	defer func() { b.mu.Lock(); b.now--; b.mu.Unlock() }()
	select {
	case <-b.release:
	case <-ctx.Done():
		return creds.Credentials{}, ctx.Err()
	}
	return creds.Credentials{AccessKeyID: "ASIAAAAAAAAAAAAAAAAA", SecretAccessKey: testSecret, SessionToken: testToken,
		Expiration: b.clk.Now().Add(time.Hour)}, nil
}

// Refreshers sharing a Limiter of 2 never have more than 2 refreshes in progress: the others wait for a
// slot, and every one completes.
func TestSharedLimiterBoundsRefreshesInProgress(t *testing.T) {
	clk := clock.NewFake(start)
	api := &blockingCreator{clk: clk, release: make(chan struct{}), started: make(chan struct{}, 16)}
	ca, err := svidtest.NewCA(svidtest.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	limiter := NewLimiter(2)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	const n = 5
	sinks := make([]*recordingSink, n)
	for i := range n {
		sinks[i] = newRecordingSink()
		svids := make(chan *svid.SVID, 1)
		r, err := NewRefresher(RefresherOptions{Profile: fmt.Sprintf("p%d", i), SVIDs: svids, Client: api, Sinks: []Sink{sinks[i]},
			Clock: clk, Limiter: limiter, Policy: schedule.NoJitter()})
		if err != nil {
			t.Fatal(err)
		}
		sv, err := ca.MintX509SVID(spiffeid.RequireFromString(fmt.Sprintf("spiffe://example.org/p%d", i)), svidtest.MintOptions{})
		if err != nil {
			t.Fatal(err)
		}
		svids <- &svid.SVID{ID: sv.ID, Certificates: sv.Certificates, PrivateKey: sv.PrivateKey}
		wg.Add(1)
		go func() { defer wg.Done(); _ = r.Run(ctx) }()
	}
	for range 2 {
		<-api.started
	}
	select {
	case <-api.started:
		t.Fatal("a third refresh started while two held the limiter's slots")
	case <-time.After(200 * time.Millisecond):
	}
	for i := 0; i < n; i++ {
		api.release <- struct{}{}
	}
	for i, s := range sinks {
		select {
		case <-s.puts:
		case <-time.After(5 * time.Second):
			t.Fatalf("profile p%d never got credentials", i)
		}
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if api.most != 2 {
		t.Fatalf("%d refreshes were in progress at once, want 2", api.most)
	}
}

// jumpRun is a refresher on real timers and an injected wall clock, holding its first credentials (1 h,
// from a 24 h SVID), for the clock-jump tests.
type jumpRun struct {
	r     *Refresher
	api   *scripted
	sink  *recordingSink
	clk   *clock.Shifted
	fake  *clock.Fake // dates the scripted credentials
	first creds.Credentials
}

func startForJump(t *testing.T, wall WallClock) *jumpRun {
	t.Helper()
	j := &jumpRun{clk: &clock.Shifted{}, sink: newRecordingSink()}
	j.fake = clock.NewFake(j.clk.Now())
	j.api = &scripted{clk: j.fake, calls: make(chan signer.CreateSessionInput, 16)}
	svids := make(chan *svid.SVID, 1)
	ca, err := svidtest.NewCA(svidtest.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sv, err := ca.MintX509SVID(spiffeid.RequireFromString("spiffe://example.org/app"), svidtest.MintOptions{TTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	j.r, err = NewRefresher(RefresherOptions{Profile: "app", SVIDs: svids, Client: j.api, Sinks: []Sink{j.sink}, Clock: j.clk,
		WallClock: wall, Policy: schedule.NoJitter()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = j.r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	svids <- &svid.SVID{ID: sv.ID, Certificates: sv.Certificates, PrivateKey: sv.PrivateKey}
	<-j.api.calls
	j.first = <-j.sink.puts
	return j
}

// jump steps the wall clock by d; the next scripted session is dated after the jump.
func (j *jumpRun) jump(d time.Duration) {
	j.fake.Set(j.clk.Now().Add(d))
	j.clk.Jump(d)
}
