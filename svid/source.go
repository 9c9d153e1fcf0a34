package svid

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Status is the Source's connection state with the Workload API.
type Status int

// Statuses.
const (
	// StatusConnecting: no response from the agent yet (first connection, or reconnecting after the
	// stream broke).
	StatusConnecting Status = iota
	// StatusConnected: the stream is up and has delivered SVIDs.
	StatusConnected
	// StatusNoIdentity: the agent answered PermissionDenied ("no identity issued"): no registration
	// entry matches this workload.
	StatusNoIdentity
	// StatusError: any other failure (socket missing, bad response…).
	StatusError
	// StatusUnused: no profile follows the bridge's own SVIDs (every profile is node mode's, or the
	// daemon serves pod identity alone), so the bridge does not connect to the Workload API at all.
	StatusUnused
)

// String is the status name used in health output and metric labels.
func (s Status) String() string {
	switch s {
	case StatusConnecting:
		return "connecting"
	case StatusConnected:
		return "connected"
	case StatusNoIdentity:
		return "no_identity"
	case StatusError:
		return "error"
	case StatusUnused:
		return "unused"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Statuses lists every Status, for metrics that export one series per state.
var Statuses = []Status{StatusConnecting, StatusConnected, StatusNoIdentity, StatusError, StatusUnused}

// State is a snapshot of the Source's connection.
type State struct {
	Status Status
	// Reason is the last error, when Status is not connected.
	Reason string
	// Since is when Status last changed.
	Since time.Time
	// LastUpdate is when SVIDs were last received.
	LastUpdate time.Time
}

// Backoff is the reconnect policy: capped exponential backoff with full jitter.
type Backoff struct {
	// Base is the first delay's cap; default 250ms.
	Base time.Duration
	// Max caps every delay; default 15s.
	Max time.Duration
}

// Options configures a Source.
type Options struct {
	// Address of the Workload API; resolved with ResolveAddress (so empty means
	// $SPIFFE_ENDPOINT_SOCKET, then SPIRE's default).
	Address string
	// Logger; default discard.
	Logger hclog.Logger
	// Now is the clock for State timestamps; default time.Now.
	Now func() time.Time
	// Backoff between reconnection attempts.
	Backoff Backoff
	// StartupGrace is how long after New a PermissionDenied ("no identity issued") before the first SVID
	// is the normal start-up wait, not a fault: SPIRE's registration entry for a new workload (a new
	// pod's, say) takes a few seconds to reach the agent. Within it the Source logs the wait at INFO,
	// saying what it waits for; after it, and whenever an identity it had is withdrawn, at ERROR. Zero:
	// no grace, an ERROR at once.
	StartupGrace time.Duration
}

// ErrNoSVID is returned by Current before the Workload API has delivered anything.
var ErrNoSVID = errors.New("no X.509-SVID received from the Workload API yet")

// ErrNoIdentity is returned by Current after the Workload API answered PermissionDenied ("no identity
// issued"): the workload's registration entries were deleted, and the SVIDs it had were dropped.
var ErrNoIdentity = errors.New("the Workload API issues no identity to this workload (PermissionDenied: no identity issued)")

// Source follows the Workload API's X.509-SVID stream. Create it with New; it is safe for concurrent use.
type Source struct {
	addr    string
	log     hclog.Logger
	now     func() time.Time
	started time.Time
	grace   time.Duration
	client  *workloadapi.Client
	cancel  context.CancelFunc
	done    chan struct{}

	mu      sync.Mutex
	svids   []*SVID
	bundles *x509bundle.Set
	state   State
	subs    map[*Subscription]struct{}
	closed  bool
	// hadSVID: the Workload API delivered SVIDs at least once; the start-up grace is over.
	hadSVID bool
	// noIdentityError: the current PermissionDenied episode was logged at ERROR.
	noIdentityError bool
}

// New starts following the Workload API at opts.Address. It does not wait for the agent: the Source
// reports StatusConnecting until the first response, and subscribers receive the first SVID when it
// arrives. ctx bounds only the setup; call Close to stop.
func New(ctx context.Context, opts Options) (*Source, error) {
	addr, err := ResolveAddress(opts.Address)
	if err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Backoff.Base <= 0 {
		opts.Backoff.Base = 250 * time.Millisecond
	}
	if opts.Backoff.Max <= 0 {
		opts.Backoff.Max = 15 * time.Second
	}
	client, err := workloadapi.New(ctx,
		workloadapi.WithAddr(addr),
		workloadapi.WithLogger(goSpiffeLogger{opts.Logger}),
		workloadapi.WithBackoffStrategy(backoffStrategy(opts.Backoff)))
	if err != nil {
		return nil, fmt.Errorf("workload API client for %s: %w", addr, err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s := &Source{
		addr: addr, log: opts.Logger, now: opts.Now, client: client, cancel: cancel, done: make(chan struct{}),
		subs: map[*Subscription]struct{}{}, grace: max(opts.StartupGrace, 0),
	}
	s.started = s.now()
	s.state = State{Status: StatusConnecting, Since: s.started}
	go func() {
		defer close(s.done)
		err := client.WatchX509Context(runCtx, watcher{s})
		if err != nil && !errors.Is(err, context.Canceled) && status.Code(err) != codes.Canceled {
			s.log.Error("Workload API watch ended", "address", addr, "error", err)
			s.setState(StatusError, err.Error())
		}
	}()
	s.log.Debug("following the Workload API", "address", addr)
	return s, nil
}

// Address is the resolved Workload API address.
func (s *Source) Address() string { return s.addr }

// State reports the connection state.
func (s *Source) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Current returns the SVID sel picks among the latest ones received. It returns ErrNoSVID before the
// first response, and a *NotFoundError listing what the agent offered when nothing matches.
func (s *Source) Current(sel Selector) (*SVID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.svids) == 0 {
		if s.state.Status == StatusNoIdentity {
			return nil, ErrNoIdentity
		}
		return nil, ErrNoSVID
	}
	return sel.pick(s.svids)
}

// Bundles returns the X.509 trust bundles received with the SVIDs (nil before the first response).
func (s *Source) Bundles() *x509bundle.Set {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bundles
}

// Subscribe returns a Subscription delivering the SVID sel picks: the current one at once (if any),
// then each new one, and nil when the identity is withdrawn (see Subscription.C). Slow readers only ever
// see the latest.
func (s *Source) Subscribe(sel Selector) *Subscription {
	sub := &Subscription{src: s, sel: sel, c: make(chan *SVID, 1)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		close(sub.c)
		sub.closed = true
		return sub
	}
	s.subs[sub] = struct{}{}
	sub.offerLocked(s.svids, s.log)
	return sub
}

// Close stops following the Workload API, closes every subscription and waits for the watcher to exit.
func (s *Source) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for sub := range s.subs {
		sub.closeLocked()
	}
	s.subs = nil
	s.mu.Unlock()
	s.cancel()
	<-s.done
	return s.client.Close()
}

func (s *Source) setState(st Status, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setStateLocked(st, reason)
}

func (s *Source) setStateLocked(st Status, reason string) {
	if s.state.Status != st {
		s.state.Since = s.now()
	}
	s.state.Status, s.state.Reason = st, reason
}

func (s *Source) update(c *workloadapi.X509Context) {
	svids := make([]*SVID, 0, len(c.SVIDs))
	for _, v := range c.SVIDs {
		svids = append(svids, fromX509SVID(v))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.state.Status != StatusConnected {
		s.log.Info("Workload API connected", "address", s.addr, "svids", len(svids))
	}
	s.svids, s.bundles = svids, c.Bundles
	s.hadSVID = s.hadSVID || len(svids) > 0
	s.noIdentityError = false
	s.state.LastUpdate = s.now()
	s.setStateLocked(StatusConnected, "")
	for _, v := range svids {
		s.log.Debug("received X.509-SVID", "svid", v.String())
	}
	for sub := range s.subs {
		sub.offerLocked(svids, s.log)
	}
}

func (s *Source) watchError(err error) {
	if err == nil || errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled {
		return
	}
	st := StatusError
	switch status.Code(err) {
	case codes.PermissionDenied:
		st = StatusNoIdentity
	case codes.Unavailable:
		st = StatusConnecting
	}
	s.mu.Lock()
	changed := s.state.Status != st || s.state.Reason != err.Error()
	s.setStateLocked(st, err.Error())
	var dropped []string
	if st == StatusNoIdentity && !s.closed {
		// SPIRE answers PermissionDenied when no registration entry matches the workload any more: the
		// identities are revoked, not merely unreachable. Drop them so that nothing signs with them.
		for _, v := range s.svids {
			dropped = append(dropped, v.ID.String())
		}
		s.svids = nil
		for sub := range s.subs {
			sub.offerLocked(nil, s.log)
		}
	}
	kept := len(s.svids)
	// Before the first SVID, PermissionDenied is the normal start-up wait for SPIRE's registration entry
	// to reach the agent, until the grace runs out; an identity once had and then refused is revoked.
	waited := s.now().Sub(s.started)
	waiting := st == StatusNoIdentity && !s.hadSVID && waited < s.grace
	escalate := st == StatusNoIdentity && !waiting && (changed || !s.noIdentityError)
	if st != StatusNoIdentity {
		s.noIdentityError = false
	} else if escalate || len(dropped) > 0 {
		s.noIdentityError = true
	}
	s.mu.Unlock()
	switch {
	case len(dropped) > 0:
		s.log.Error("Workload API issues no identity any more; dropped the SVIDs it had issued",
			"address", s.addr, "error", err, "spiffe_ids", dropped)
	case waiting && changed:
		s.log.Info("waiting for the Workload API to issue this workload's first X.509-SVID: it answers \"no identity issued\", as it does until SPIRE's registration entry for this workload reaches the agent (seconds after a new pod starts); an ERROR follows if none is issued within startup_grace",
			"address", s.addr, "startup_grace", s.grace.String(), "waited", waited.Round(time.Millisecond).String())
	case escalate && !s.hadSVID && s.grace > 0:
		s.log.Error("Workload API issues no identity to this workload, and has issued none since the bridge started: no registration entry matches it (startup_grace is over)",
			"address", s.addr, "startup_grace", s.grace.String(), "waited", waited.Round(time.Second).String(), "error", err, "hint", Hint(s.addr, err))
	case escalate:
		s.log.Error("Workload API issues no identity to this workload", "address", s.addr, "error", err, "hint", Hint(s.addr, err))
	case changed && kept == 0:
		// Nothing to keep (none received yet, or the last update held none): say what that means.
		s.log.Error("Workload API unavailable and there are no SVIDs to keep: no workload can be served new AWS credentials until the agent is back; reconnecting",
			"address", s.addr, "state", st.String(), "error", err, "hint", Hint(s.addr, err))
	case changed:
		s.log.Warn("Workload API unavailable; keeping the last SVIDs and reconnecting",
			"address", s.addr, "state", st.String(), "error", err, "hint", Hint(s.addr, err), "kept_svids", kept)
	}
}

func fromX509SVID(v *x509svid.SVID) *SVID {
	return &SVID{ID: v.ID, Hint: v.Hint, Certificates: v.Certificates, PrivateKey: v.PrivateKey}
}

// Subscription delivers one selector's SVIDs. Read C; call Close when done.
type Subscription struct {
	src    *Source
	sel    Selector
	c      chan *SVID
	last   []byte // raw leaf of the last SVID offered
	missed string // last selection error logged
	closed bool
}

// C delivers the selected SVID on every change, and nil when the identity is withdrawn: the Workload API
// answered PermissionDenied ("no identity issued"), or a new update no longer holds the selected SVID
// (its registration entry was deleted). It is closed when the Subscription or Source closes.
func (s *Subscription) C() <-chan *SVID { return s.c }

// Selector is what this subscription follows.
func (s *Subscription) Selector() Selector { return s.sel }

// Close stops delivery and closes C.
func (s *Subscription) Close() {
	s.src.mu.Lock()
	defer s.src.mu.Unlock()
	if s.src.subs != nil {
		delete(s.src.subs, s)
	}
	s.closeLocked()
}

func (s *Subscription) closeLocked() {
	if !s.closed {
		s.closed = true
		close(s.c)
	}
}

// offerLocked delivers the selected SVID if it changed, replacing an unread older one; when a subscriber
// had an SVID and svids no longer holds one it selects, it delivers nil (identity withdrawn).
func (s *Subscription) offerLocked(svids []*SVID, log hclog.Logger) {
	if s.closed {
		return
	}
	var v *SVID
	if len(svids) > 0 {
		var err error
		if v, err = s.sel.pick(svids); err != nil {
			if msg := err.Error(); msg != s.missed {
				s.missed = msg
				log.Error("selected SVID not issued by the Workload API", "error", err)
			}
		} else {
			s.missed = ""
		}
	}
	if v == nil {
		if s.last == nil {
			return
		}
		s.last = nil
		s.send(nil)
		return
	}
	if bytes.Equal(s.last, v.Leaf().Raw) {
		return
	}
	s.last = v.Leaf().Raw
	s.send(v)
}

func (s *Subscription) send(v *SVID) {
	select {
	case <-s.c: // drop the unread older value
	default:
	}
	s.c <- v
}

type watcher struct{ s *Source }

func (w watcher) OnX509ContextUpdate(c *workloadapi.X509Context) { w.s.update(c) }
func (w watcher) OnX509ContextWatchError(err error)              { w.s.watchError(err) }

type backoffStrategy Backoff

func (b backoffStrategy) NewBackoff() workloadapi.Backoff { return &expBackoff{p: Backoff(b)} }

type expBackoff struct {
	p Backoff
	n int
}

// Next is full jitter over min(Max, Base·2^n).
func (b *expBackoff) Next() time.Duration {
	d := b.p.Base << min(b.n, 20)
	if d <= 0 || d > b.p.Max {
		d = b.p.Max
	}
	b.n++
	return time.Duration(rand.Int64N(int64(d))) + time.Millisecond
}

func (b *expBackoff) Reset() { b.n = 0 }

// goSpiffeLogger routes go-spiffe's logging into hclog (its errors are reconnect chatter: debug).
type goSpiffeLogger struct{ l hclog.Logger }

func (g goSpiffeLogger) Debugf(f string, a ...any) { g.l.Trace(fmt.Sprintf(f, a...)) }
func (g goSpiffeLogger) Infof(f string, a ...any)  { g.l.Debug(fmt.Sprintf(f, a...)) }
func (g goSpiffeLogger) Warnf(f string, a ...any)  { g.l.Debug(fmt.Sprintf(f, a...)) }
func (g goSpiffeLogger) Errorf(f string, a ...any) { g.l.Debug(fmt.Sprintf(f, a...)) }
