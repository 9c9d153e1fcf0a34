// Package delegated follows the SPIRE agent's Delegated Identity API (the admin socket's
// spire.api.agent.delegatedidentity.v1): it streams the X.509-SVIDs of *other* workloads on the host, by
// their selectors, to a process the agent lists in authorized_delegates. It is the node-mode counterpart
// of svid.Source: one bridge per host serves every workload with that workload's own SVID.
//
// A Source holds one gRPC connection to the admin socket and one SubscribeToX509SVIDs stream per distinct
// selector set, shared by every subscription with those selectors; subscriptions pick an SVID among the
// workload's with an svid.Selector (SPIFFE ID or hint), exactly as profiles do on the Workload API. Each
// subscription delivers its SVID on every rotation and nil when the identity is withdrawn (the entry was
// deleted, or the agent no longer authorises the bridge): the same contract as svid.Subscription, so the
// refresher consumes either.
package delegated

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	delegatedv1 "github.com/spiffe/spire-api-sdk/proto/spire/api/agent/delegatedidentity/v1"
	"github.com/spiffe/spire-api-sdk/proto/spire/api/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/agentaddr"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/selector"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
)

// ParseSelector checks a SPIRE selector written "type:value" (split at the first colon, as SPIRE's CLI
// does: "unix:uid:1001" is type "unix", value "uid:1001") and returns its two parts.
func ParseSelector(s string) (typ, value string, err error) { return selector.Parse(s) }

// Key is the canonical form of a selector set (sorted, without duplicates), naming its stream.
func Key(selectors []string) string {
	s := slices.Clone(selectors)
	slices.Sort(s)
	return strings.Join(slices.Compact(s), "\x00")
}

// CheckAddress checks an admin API address: unix:///absolute/path (SPIRE serves the admin API on a unix
// socket only).
func CheckAddress(addr string) error { return agentaddr.CheckAdmin(addr) }

// Status is a stream's state.
type Status string

// Statuses of a stream.
const (
	StatusConnecting Status = "connecting"
	StatusConnected  Status = "connected"
	// StatusNoMatch: connected, but no entry matches the selectors.
	StatusNoMatch Status = "no_matching_entry"
	// StatusDenied: the agent refused the bridge (not an authorized delegate, or no identity).
	StatusDenied Status = "denied"
	StatusError  Status = "error"
)

// StreamState is a snapshot of one selector set's stream.
type StreamState struct {
	Selectors []string
	Status    Status
	// Err is the last failure, classified (nil when connected with SVIDs).
	Err *Error
	// SVIDs is how many SVIDs the workload has now.
	SVIDs int
	// Since is when Status last changed; LastUpdate when the agent last sent SVIDs.
	Since, LastUpdate time.Time
	// Subscribers is how many subscriptions share the stream.
	Subscribers int
}

// Options configures a Source.
type Options struct {
	// Address is the agent's admin socket, unix:///path/to/admin.sock (required).
	Address string
	// Logger; default discard.
	Logger hclog.Logger
	// Now is the clock for state timestamps; default time.Now.
	Now func() time.Time
	// Backoff between reconnection attempts of each stream (default 250ms up to 15s; a refusal by the
	// agent — PermissionDenied, Unimplemented — backs off up to 4 times as long).
	Backoff svid.Backoff
	// StartupGrace is how long after a stream opens "no registration entry matches" is the normal wait
	// for SPIRE's entry to reach the agent (a new pod's, whose entry the controller manager makes as the
	// pod starts): logged at INFO, and at ERROR only if it still holds when the grace is over. A workload
	// that had SVIDs and loses them is an ERROR at once. Zero: an ERROR at once.
	StartupGrace time.Duration
}

// Source follows the Delegated Identity API for any number of workloads. It is safe for concurrent use.
type Source struct {
	opts Options
	log  hclog.Logger
	conn *grpc.ClientConn
	api  delegatedv1.DelegatedIdentityClient

	mu      sync.Mutex
	streams map[string]*stream
	closed  bool
	wg      sync.WaitGroup
}

// New prepares a Source for the admin API at opts.Address. It does not connect until the first
// Subscribe, and never waits for the agent: streams report StatusConnecting and reconnect with backoff.
func New(opts Options) (*Source, error) {
	if err := CheckAddress(opts.Address); err != nil {
		return nil, fmt.Errorf("delegated identity: admin_address %q: %w", opts.Address, err)
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
	conn, err := grpc.NewClient(opts.Address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("delegated identity: admin API client for %s: %w", opts.Address, err)
	}
	return &Source{opts: opts, log: opts.Logger, conn: conn, api: delegatedv1.NewDelegatedIdentityClient(conn), streams: map[string]*stream{}}, nil
}

// Address is the admin API address.
func (s *Source) Address() string { return s.opts.Address }

// Subscribe follows the SVID sel picks among those the agent issues to the workload with selectors; the
// stream is shared with every other subscription of the same selector set.
func (s *Source) Subscribe(selectors []string, sel svid.Selector) (*Subscription, error) {
	if len(selectors) == 0 {
		return nil, errors.New("delegated identity: a subscription needs at least one selector")
	}
	parsed := make([]*types.Selector, 0, len(selectors))
	for _, x := range selectors {
		t, v, err := ParseSelector(x)
		if err != nil {
			return nil, fmt.Errorf("delegated identity: %w", err)
		}
		parsed = append(parsed, &types.Selector{Type: t, Value: v})
	}
	key := Key(selectors)
	sub := &Subscription{sel: sel, c: make(chan *svid.SVID, 1)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		close(sub.c)
		sub.closed = true
		return sub, nil
	}
	st, ok := s.streams[key]
	if !ok {
		ctx, cancel := context.WithCancel(context.Background())
		st = &stream{src: s, key: key, selectors: strings.Split(key, "\x00"), req: parsed, cancel: cancel,
			opened: s.opts.Now(), subs: map[*Subscription]struct{}{}, state: StreamState{Status: StatusConnecting, Since: s.opts.Now()}}
		s.streams[key] = st
		s.wg.Add(1)
		go st.run(ctx)
	}
	sub.st = st
	st.mu.Lock()
	st.subs[sub] = struct{}{}
	sub.offerLocked(st.svids, st.had)
	st.mu.Unlock()
	return sub, nil
}

// States snapshots every stream, sorted by selectors.
func (s *Source) States() []StreamState {
	s.mu.Lock()
	streams := make([]*stream, 0, len(s.streams))
	for _, st := range s.streams {
		streams = append(streams, st)
	}
	s.mu.Unlock()
	out := make([]StreamState, 0, len(streams))
	for _, st := range streams {
		out = append(out, st.snapshot())
	}
	slices.SortFunc(out, func(a, b StreamState) int { return strings.Compare(Key(a.Selectors), Key(b.Selectors)) })
	return out
}

// State is the stream of a selector set, if one is open.
func (s *Source) State(selectors []string) (StreamState, bool) {
	s.mu.Lock()
	st, ok := s.streams[Key(selectors)]
	s.mu.Unlock()
	if !ok {
		return StreamState{}, false
	}
	return st.snapshot(), true
}

// Close ends every stream and subscription and the connection.
func (s *Source) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	streams := s.streams
	s.streams = map[string]*stream{}
	s.mu.Unlock()
	for _, st := range streams {
		st.cancel()
		st.mu.Lock()
		st.stopGraceLocked()
		for sub := range st.subs {
			sub.closeLocked()
		}
		st.mu.Unlock()
	}
	s.wg.Wait()
	return s.conn.Close()
}

// release drops a subscription; the last one of a stream ends it.
func (s *Source) release(sub *Subscription) {
	st := sub.st
	s.mu.Lock()
	st.mu.Lock()
	delete(st.subs, sub)
	sub.closeLocked()
	last := len(st.subs) == 0
	if last {
		st.stopGraceLocked() // a workload gone before its entry came is no error
	}
	st.mu.Unlock()
	if last && s.streams[st.key] == st {
		delete(s.streams, st.key)
		st.cancel()
	}
	s.mu.Unlock()
}

// stream is one SubscribeToX509SVIDs stream and the subscriptions sharing it.
type stream struct {
	src       *Source
	key       string
	selectors []string
	req       []*types.Selector
	cancel    context.CancelFunc

	mu    sync.Mutex
	svids []*svid.SVID
	had   bool // svids came from the agent (possibly empty since)
	// opened is when the stream started; matched that it has carried an SVID; graceTimer the ERROR
	// deferred by Options.StartupGrace.
	opened     time.Time
	matched    bool
	graceTimer *time.Timer
	subs       map[*Subscription]struct{}
	state      StreamState
}

func (st *stream) snapshot() StreamState {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := st.state
	out.Selectors = slices.Clone(st.selectors)
	out.SVIDs = len(st.svids)
	out.Subscribers = len(st.subs)
	return out
}

func (st *stream) run(ctx context.Context) {
	defer st.src.wg.Done()
	log := st.src.log.With("workload_selectors", st.selectors)
	attempt := 0
	for ctx.Err() == nil {
		got, err := st.follow(ctx, log)
		if ctx.Err() != nil {
			return
		}
		if got {
			attempt = 0
		}
		cerr := Classify(st.src.opts.Address, st.selectors, err)
		st.failed(cerr, log)
		ceiling := st.src.opts.Backoff.Max
		if cerr.Kind == KindNotAuthorized || cerr.Kind == KindNoCallerIdentity || cerr.Kind == KindUnimplemented {
			ceiling *= 4 // an operator has to act: poll slowly
		}
		d := st.src.opts.Backoff.Base << min(attempt, 20)
		if d <= 0 || d > ceiling {
			d = ceiling
		}
		attempt++
		t := time.NewTimer(time.Duration(rand.Int64N(int64(d))) + time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// follow opens the stream and applies its updates until it breaks; got says whether anything arrived.
func (st *stream) follow(ctx context.Context, log hclog.Logger) (got bool, err error) {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cl, err := st.src.api.SubscribeToX509SVIDs(cctx, &delegatedv1.SubscribeToX509SVIDsRequest{Selectors: st.req})
	if err != nil {
		return false, err
	}
	for {
		resp, err := cl.Recv()
		if err != nil {
			return got, err
		}
		got = true
		svids, perr := parseResponse(resp)
		if perr != nil {
			log.Error("Delegated Identity API sent an unusable X.509-SVID; ignoring the update", "error", perr)
			continue
		}
		st.update(svids, log)
	}
}

func (st *stream) update(svids []*svid.SVID, log hclog.Logger) {
	now := st.src.opts.Now()
	st.mu.Lock()
	prev := st.state.Status
	st.svids, st.had = svids, true
	st.state.LastUpdate = now
	status, kind := StatusConnected, Kind("")
	if len(svids) == 0 {
		status, kind = StatusNoMatch, KindNoMatch
	}
	if prev != status {
		st.state.Since = now
	}
	st.state.Status = status
	if kind != "" {
		st.state.Err = &Error{Kind: kind, Address: st.src.opts.Address, Selectors: st.selectors}
	} else {
		st.state.Err = nil
	}
	for sub := range st.subs {
		sub.offerLocked(svids, true)
	}
	errState := st.state.Err
	if len(svids) > 0 {
		st.matched = true
	}
	waiting := status == StatusNoMatch && prev != StatusNoMatch && !st.matched && now.Sub(st.opened) < st.src.opts.StartupGrace
	if waiting && st.graceTimer == nil {
		st.graceTimer = time.AfterFunc(st.src.opts.StartupGrace-now.Sub(st.opened), func() { st.graceOver(log) })
	}
	st.mu.Unlock()
	switch {
	case waiting:
		log.Info("waiting for SPIRE's registration entry for this workload to reach the agent (a new workload's entry is made as it starts)",
			"startup_grace", st.src.opts.StartupGrace.String(), "error", errState.Error())
	case status == StatusNoMatch && prev != StatusNoMatch:
		log.Error("no registration entry matches the workload; its profiles get no new AWS sessions", "error", errState.Error())
	case status == StatusConnected && prev != StatusConnected:
		ids := make([]string, len(svids))
		for i, v := range svids {
			ids[i] = v.ID.String()
		}
		log.Info("Delegated Identity API: receiving the workload's X.509-SVIDs", "address", st.src.opts.Address, "spiffe_ids", ids)
	}
	if log.IsDebug() {
		for _, v := range svids {
			log.Debug("received delegated X.509-SVID", "svid", v.String())
		}
	}
}

// stopGraceLocked cancels the deferred ERROR of a stream that ends.
func (st *stream) stopGraceLocked() {
	if st.graceTimer != nil {
		st.graceTimer.Stop()
		st.graceTimer = nil
	}
}

// graceOver logs the ERROR the start-up grace deferred, when the workload still has no entry and never had.
func (st *stream) graceOver(log hclog.Logger) {
	st.mu.Lock()
	still := st.graceTimer != nil && st.state.Status == StatusNoMatch && !st.matched
	errState := st.state.Err
	st.mu.Unlock()
	if still && errState != nil {
		log.Error("no registration entry matches the workload, and none has since its stream opened (startup_grace is over); its profiles get no new AWS sessions",
			"error", errState.Error())
	}
}

func (st *stream) failed(err *Error, log hclog.Logger) {
	now := st.src.opts.Now()
	status := StatusError
	drop := false
	switch err.Kind {
	case KindNotAuthorized, KindNoCallerIdentity:
		// The agent no longer lets the bridge act for the workload: its identities are withdrawn here too.
		status, drop = StatusDenied, true
	case KindNoAdminSocket:
		status = StatusConnecting
	}
	st.mu.Lock()
	changed := st.state.Status != status || st.state.Err == nil || st.state.Err.Kind != err.Kind
	if st.state.Status != status {
		st.state.Since = now
	}
	st.state.Status, st.state.Err = status, err
	kept := len(st.svids)
	if drop && kept > 0 {
		st.svids = nil
		for sub := range st.subs {
			sub.offerLocked(nil, true)
		}
	}
	st.mu.Unlock()
	if !changed {
		return
	}
	switch {
	case drop:
		log.Error("Delegated Identity API refused the bridge; no new AWS sessions for this workload", "error", err.Error(), "dropped_svids", kept)
	case status == StatusConnecting && kept == 0:
		// Nothing to keep (none received yet, or the last update held none): say what that means.
		log.Error("Delegated Identity API unavailable and there are no SVIDs to keep for this workload: it gets no new AWS credentials until the agent is back; reconnecting",
			"error", err.Error())
	case kept == 0:
		log.Error("Delegated Identity API stream failed and there are no SVIDs to keep for this workload: it gets no new AWS credentials until the stream works; reconnecting",
			"error", err.Error())
	case status == StatusConnecting:
		log.Warn("Delegated Identity API unavailable; keeping the workload's last SVIDs and reconnecting", "error", err.Error(), "kept_svids", kept)
	default:
		log.Error("Delegated Identity API stream failed; keeping the workload's last SVIDs and reconnecting", "error", err.Error(), "kept_svids", kept)
	}
}

func parseResponse(resp *delegatedv1.SubscribeToX509SVIDsResponse) ([]*svid.SVID, error) {
	out := make([]*svid.SVID, 0, len(resp.X509Svids))
	for _, w := range resp.X509Svids {
		x := w.GetX509Svid()
		if x == nil || x.Id == nil || len(x.CertChain) == 0 {
			return nil, errors.New("an X.509-SVID without SPIFFE ID or certificates")
		}
		id, err := spiffeid.FromString("spiffe://" + x.Id.TrustDomain + x.Id.Path)
		if err != nil {
			return nil, fmt.Errorf("SPIFFE ID %q: %w", "spiffe://"+x.Id.TrustDomain+x.Id.Path, err)
		}
		certs := make([]*x509.Certificate, 0, len(x.CertChain))
		for _, der := range x.CertChain {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, fmt.Errorf("%s: certificate: %w", id, err)
			}
			certs = append(certs, c)
		}
		k, err := x509.ParsePKCS8PrivateKey(w.X509SvidKey)
		if err != nil {
			return nil, fmt.Errorf("%s: private key: %w", id, err)
		}
		signer, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s: private key of type %T cannot sign", id, k)
		}
		if err := matchesKey(certs[0], signer); err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		if uri := leafID(certs[0]); uri != id.String() {
			return nil, fmt.Errorf("%s: the certificate's URI SAN is %q", id, uri)
		}
		out = append(out, &svid.SVID{ID: id, Hint: x.Hint, Certificates: certs, PrivateKey: signer})
	}
	return out, nil
}

func leafID(c *x509.Certificate) string {
	if len(c.URIs) != 1 {
		return ""
	}
	return c.URIs[0].String()
}

type publicKeyEqualer interface{ Equal(crypto.PublicKey) bool }

func matchesKey(c *x509.Certificate, k crypto.Signer) error {
	pub, ok := c.PublicKey.(publicKeyEqualer)
	if !ok || !pub.Equal(k.Public()) {
		return errors.New("the private key does not match the certificate")
	}
	return nil
}

// Subscription delivers one profile's SVID from a workload's stream. Read C; call Close when done.
type Subscription struct {
	st     *stream
	sel    svid.Selector
	c      chan *svid.SVID
	last   []byte
	missed string
	closed bool
}

// C delivers the selected SVID on every change, and nil when the identity is withdrawn (the entry was
// deleted, no entry matches any more, or the agent stopped authorising the bridge). It is closed when the
// Subscription or Source closes.
func (s *Subscription) C() <-chan *svid.SVID { return s.c }

// Selectors are the workload's selectors, in canonical order.
func (s *Subscription) Selectors() []string {
	if s.st == nil {
		return nil
	}
	return slices.Clone(s.st.selectors)
}

// State is the stream's state.
func (s *Subscription) State() StreamState {
	if s.st == nil {
		return StreamState{Status: StatusError}
	}
	return s.st.snapshot()
}

// Close stops delivery and closes C; the last subscription of a stream ends the stream.
func (s *Subscription) Close() {
	if s.st == nil {
		return
	}
	s.st.src.release(s)
}

func (s *Subscription) closeLocked() {
	if !s.closed {
		s.closed = true
		close(s.c)
	}
}

// offerLocked delivers the selected SVID if it changed; nil when a subscriber that had one finds none.
func (s *Subscription) offerLocked(svids []*svid.SVID, fromAgent bool) {
	if s.closed || !fromAgent {
		return
	}
	var v *svid.SVID
	if len(svids) > 0 {
		var err error
		if v, err = s.sel.Pick(svids); err != nil {
			if msg := err.Error(); msg != s.missed {
				s.missed = msg
				s.st.src.log.Error("selected SVID not among the workload's", "workload_selectors", s.st.selectors, "error", err)
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
	if string(s.last) == string(v.Leaf().Raw) {
		return
	}
	s.last = v.Leaf().Raw
	s.send(v)
}

func (s *Subscription) send(v *svid.SVID) {
	select {
	case <-s.c:
	default:
	}
	s.c <- v
}

// Probe opens one stream for selectors at addr and waits for the agent's first answer, as `check
// --config` does: the workload's SVIDs, or an *Error saying what is wrong (no admin socket, not an
// authorized delegate, no matching entry…).
func Probe(ctx context.Context, addr string, selectors []string) ([]*svid.SVID, error) {
	if err := CheckAddress(addr); err != nil {
		return nil, fmt.Errorf("delegated identity: admin_address %q: %w", addr, err)
	}
	req := &delegatedv1.SubscribeToX509SVIDsRequest{}
	for _, x := range selectors {
		t, v, err := ParseSelector(x)
		if err != nil {
			return nil, err
		}
		req.Selectors = append(req.Selectors, &types.Selector{Type: t, Value: v})
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, Classify(addr, selectors, err)
	}
	defer conn.Close()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cl, err := delegatedv1.NewDelegatedIdentityClient(conn).SubscribeToX509SVIDs(cctx, req)
	if err != nil {
		return nil, Classify(addr, selectors, err)
	}
	resp, err := cl.Recv()
	if err != nil {
		if ctx.Err() != nil {
			err = status.Error(codes.DeadlineExceeded, "no answer from the agent in time")
		}
		return nil, Classify(addr, selectors, err)
	}
	svids, err := parseResponse(resp)
	if err != nil {
		return nil, &Error{Kind: KindOther, Address: addr, Selectors: selectors, Err: err}
	}
	if len(svids) == 0 {
		return nil, Classify(addr, selectors, nil)
	}
	return svids, nil
}
