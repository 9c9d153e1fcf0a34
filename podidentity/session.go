package podidentity

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
)

// session is the node's one session for a SessionSpec: a refresher fed the newest SVID of the pods that
// use it, delivering to a memory sink the HTTP handler reads.
type session struct {
	s         *Server
	key       string
	spec      SessionSpec
	refresher *bridge.Refresher
	sink      *memorySink

	// Under s.mu.
	pods map[*pod]struct{}
	last *svid.SVID // the SVID last handed to the refresher (nil: none, or withdrawn)

	feed    chan *svid.SVID // the refresher's SVIDs channel
	kick    chan struct{}
	fmu     sync.Mutex
	pending *svid.SVID
	cancel  context.CancelFunc
	done    chan struct{}
	stopped sync.Once
}

// newSession builds and runs the session of spec. The caller holds s.mu.
func (s *Server) newSession(spec SessionSpec) (*session, error) {
	ss := &session{
		s: s, key: spec.Key(), spec: spec, pods: map[*pod]struct{}{},
		sink: &memorySink{clock: s.o.Clock, notify: s.notify},
		feed: make(chan *svid.SVID), kick: make(chan struct{}, 1), done: make(chan struct{}),
	}
	r, err := s.o.NewRefresher(spec, ss.feed, []bridge.Sink{ss.sink})
	if err != nil {
		return nil, err
	}
	ss.refresher = r
	ctx, cancel := context.WithCancel(context.Background())
	ss.cancel = cancel
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = r.Run(ctx) }()
	go func() { defer wg.Done(); ss.forward(ctx) }()
	go func() { wg.Wait(); close(ss.done) }()
	return ss, nil
}

// forward hands the refresher the latest SVID offered, dropping those it had no time to take.
func (ss *session) forward(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-ss.kick:
		}
		ss.fmu.Lock()
		v := ss.pending
		ss.fmu.Unlock()
		select {
		case ss.feed <- v:
		case <-ctx.Done():
			return
		}
	}
}

func (ss *session) push(v *svid.SVID) {
	ss.fmu.Lock()
	ss.pending = v
	ss.fmu.Unlock()
	select {
	case ss.kick <- struct{}{}:
	default:
	}
}

// offer hands the refresher v if it is newer than the SVID it has: fifty pods delivering the same SVID
// make one rotation, not fifty. The caller holds s.mu.
func (ss *session) offer(v *svid.SVID) {
	if v == nil || v.ID.String() != ss.spec.SpiffeID {
		return
	}
	if l := ss.last; l != nil && (bytes.Equal(l.Leaf().Raw, v.Leaf().Raw) || v.ExpiresAt().Before(l.ExpiresAt())) {
		return
	}
	ss.last = v
	ss.push(v)
}

// offerNewest hands the refresher the newest SVID any of its pods holds, or nil (identity withdrawn)
// when none holds one any more. The caller holds s.mu.
func (ss *session) offerNewest() {
	var newest *svid.SVID
	for p := range ss.pods {
		if v := p.svid; v != nil && v.ID.String() == ss.spec.SpiffeID && (newest == nil || v.ExpiresAt().After(newest.ExpiresAt())) {
			newest = v
		}
	}
	if newest == nil {
		if ss.last != nil {
			ss.last = nil
			ss.push(nil)
		}
		return
	}
	// When the pod that held a newer SVID went, the refresher keeps signing with that one (the same
	// identity, still issued to the remaining pods) until a newer one arrives: offer ignores older ones.
	ss.offer(newest)
}

func (ss *session) podCount() int {
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	return len(ss.pods)
}

// stop ends the refresher and the forwarder and waits for them.
func (ss *session) stop() {
	ss.stopped.Do(func() {
		ss.cancel()
		<-ss.done
		_ = ss.sink.Clear(context.Background())
	})
}

// memorySink holds a session's current credentials for the HTTP handler.
type memorySink struct {
	clock   func() time.Time
	notify  func()
	current atomic.Pointer[creds.Credentials]
}

func (m *memorySink) Name() string { return "pod_identity" }

func (m *memorySink) Put(_ context.Context, c creds.Credentials) error {
	m.current.Store(&c)
	m.notify()
	return nil
}

func (m *memorySink) Clear(context.Context) error {
	m.current.Store(nil)
	m.notify()
	return nil
}

// valid returns the credentials if they are valid now: expired ones are never served.
func (m *memorySink) valid() (creds.Credentials, bool) {
	c := m.current.Load()
	if c == nil || !c.ValidAt(m.clock()) {
		return creds.Credentials{}, false
	}
	return *c, true
}
