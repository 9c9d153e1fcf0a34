package netutil

import (
	"container/list"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// MaxHeaderBytes bounds a request's line and headers on every server (http.Server.MaxHeaderBytes; Go
// reads at most 4 KiB beyond it). AWS SDKs, the aws CLI, kubelet probes and Prometheus send well under
// 2 KiB; a larger header is answered 431 and its connection closed, so a client sending an endless header
// costs the bridge about 20 KiB, not the megabyte net/http allows by default.
const MaxHeaderBytes = 16 << 10

// MaxConnections is the most connections a ConnLimit admits at once, whatever the descriptor limit: about
// 20 MiB of memory when every one of them is held (net/http keeps two 4 KiB buffers and a goroutine per
// connection), and far more than the clients of one host keep open.
const MaxConnections = 1024

// ReservedDescriptors is how many file descriptors a ConnLimit keeps out of the connection budget (at most
// half of the descriptor limit): what the daemon opens besides its listeners and accepted connections,
// most of it while refreshing — the directories, lock and temporary file of each credentials-file write,
// the HTTPS connections to Roles Anywhere and STS, the Workload API stream, hook processes' pipes.
const ReservedDescriptors = 512

// MinConnections is the smallest budget a ConnLimit gives, even when the descriptor limit is too low to
// leave that many beside the reserve and the listeners (it then logs how to raise the limit).
const MinConnections = 8

// ConnLimitOptions configures NewConnLimit.
type ConnLimitOptions struct {
	// Descriptors is the process's file descriptor limit; default: RLIMIT_NOFILE's soft limit
	// (getrlimit(2); Go raises it to the hard limit at start).
	Descriptors int
	// Reserve is how many descriptors to keep out of the connection budget; default
	// min(ReservedDescriptors, Descriptors/2).
	Reserve int
	// Max caps the budget whatever the descriptor limit; default MaxConnections.
	Max int
	// Logger receives the (rate-limited) warnings about connections closed or refused at the limit;
	// default: discard.
	Logger hclog.Logger
	// Clock is the time source for rate-limiting warnings; default time.Now.
	Clock func() time.Time
}

// ConnLimit is a budget of accepted connections shared by every server given it (ServerOptions.Conns):
// at most Cap connections are open at once across them, so a local user who opens connections cannot
// use up the process's file descriptors and make its credentials-file writes fail, nor its memory.
//
// When a connection arrives at the cap, the least recently used connection that is not serving a
// request — a keep-alive connection between requests, one that has not sent a whole request header
// yet, or one whose handler has returned, whichever server it belongs to — is closed to make room, and
// the new one is served. A connection counts as serving a request only while a handler runs for it
// (Handler), not until net/http is done with the request: after the handler, net/http reads and discards
// up to 256 KiB of unread request body before reusing the connection, and flushes the answer, both of
// which a client can stall until ReadTimeout or WriteTimeout (declare a body and never send it, or never
// read the answer). Counting those connections busy would let a client hold every slot with requests
// that are answered at once, and have every new connection closed at the cap; closing one instead only
// costs its sender the answer it is not reading. A client
// holding every slot therefore cannot keep a legitimate client out: the newcomer takes the slot of the
// connection that has waited longest, and a client whose request is being served is never cut off. Only
// when every connection is serving a request is the new one closed at once (refused fast: Accept never
// blocks, so the servers never stop accepting). Closing a keep-alive connection is harmless to HTTP
// clients: they open a new one.
//
// A ConnLimit is safe for concurrent use.
type ConnLimit struct {
	descriptors, reserve, max int
	log                       hclog.Logger
	clock                     func() time.Time

	mu        sync.Mutex
	conns     list.List // of *limitedConn, least recently used first
	listeners int
	lowWarned bool
	// evicted and refused count the connections closed at the cap since the last warning.
	evicted, refused int
	lastWarn         time.Time
}

// NewConnLimit returns a connection budget derived from the descriptor limit: min(Max, Descriptors -
// Reserve - listening sockets), the latter at least MinConnections.
func NewConnLimit(o ConnLimitOptions) *ConnLimit {
	if o.Descriptors <= 0 {
		o.Descriptors = DescriptorLimit()
	}
	if o.Reserve <= 0 {
		o.Reserve = min(ReservedDescriptors, o.Descriptors/2)
	}
	if o.Max <= 0 {
		o.Max = MaxConnections
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return &ConnLimit{descriptors: o.Descriptors, reserve: o.Reserve, max: o.Max, log: o.Logger, clock: o.Clock}
}

// DescriptorLimit is the process's RLIMIT_NOFILE soft limit (the most descriptors it may hold open);
// 1024, the usual default, when it cannot be read or is unlimited.
func DescriptorLimit() int {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil || r.Cur == unix.RLIM_INFINITY || r.Cur > 1<<30 {
		return 1024
	}
	return int(r.Cur)
}

// Cap is how many connections the budget admits now: min(Max, Descriptors - Reserve - listening
// sockets), the latter at least MinConnections.
func (l *ConnLimit) Cap() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.capLocked()
}

func (l *ConnLimit) capLocked() int {
	return min(l.max, max(MinConnections, l.descriptors-l.reserve-l.listeners))
}

// Descriptors is the descriptor limit the budget was derived from.
func (l *ConnLimit) Descriptors() int { return l.descriptors }

// Reserved is how many descriptors the budget keeps for everything but connections and listeners.
func (l *ConnLimit) Reserved() int { return l.reserve }

// Open is how many accepted connections are open now.
func (l *ConnLimit) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns.Len()
}

// addListener counts a listening socket against the budget (each is a descriptor).
func (l *ConnLimit) addListener(server string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.listeners++
	if avail := l.descriptors - l.reserve - l.listeners; avail < MinConnections && !l.lowWarned {
		l.lowWarned = true
		l.log.Warn("the file descriptor limit leaves almost no room for connections beside the listeners and the reserve for credentials files; raise it (systemd: LimitNOFILE=8192; shell: ulimit -n 8192)",
			"server", server, "descriptor_limit", l.descriptors, "reserved", l.reserve, "listeners", l.listeners, "connections", MinConnections)
	}
}

// removeListener undoes addListener.
func (l *ConnLimit) removeListener() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.listeners--
}

// Listener wraps ln so that the connections it accepts count against the budget (see ConnLimit). The
// server serving it should report connection states with ConnState, set ConnContext and wrap its handler
// with Handler (NewServer does all three), so that connections serving a request are never closed to
// make room, and those whose handler has returned are; without ConnState every connection counts as
// idle, without Handler a connection counts as busy until net/http is done with its request.
func (l *ConnLimit) Listener(ln net.Listener, server string) net.Listener {
	return &limitListener{Listener: ln, l: l, server: server}
}

// ConnState records a connection's http.ConnState (set it as, or call it from, http.Server.ConnState).
// A connection in http.StateActive is serving a request, and never closed to make room, until the
// handler wrapped by Handler returns; new and idle ones are closed to make room, least recently used
// first.
func (l *ConnLimit) ConnState(c net.Conn, st http.ConnState) {
	lc := l.own(c)
	if lc == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if lc.elem == nil {
		return
	}
	switch st {
	case http.StateNew, http.StateIdle:
		lc.active = false
		l.conns.MoveToBack(lc.elem)
	case http.StateActive:
		lc.active = true
		l.conns.MoveToBack(lc.elem)
	}
}

// own is c's *limitedConn when l admitted it (c may be a TLS connection over it), else nil.
func (l *ConnLimit) own(c net.Conn) *limitedConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if lc, ok := c.(*limitedConn); ok && lc.l == l {
		return lc
	}
	return nil
}

// connKey is the context key under which ConnContext records a request's *limitedConn.
type connKey struct{}

// ConnContext records in ctx the connection c, when the budget admitted it, for Handler (set it as, or
// call it from, http.Server.ConnContext).
func (l *ConnLimit) ConnContext(ctx context.Context, c net.Conn) context.Context {
	if lc := l.own(c); lc != nil {
		return context.WithValue(ctx, connKey{}, lc)
	}
	return ctx
}

// Handler wraps next so that a connection counts as serving a request (never closed to make room) only
// while next runs for it. When next returns, the connection counts as idle again, most recently used:
// what net/http still does with the request — discard a request body the handler left unread (it waits
// up to ReadTimeout for a body that was declared and never sent), flush the answer to a client that may
// not read it — no longer keeps it from being closed to make room (see ConnLimit). The server must set
// ConnContext; requests on connections the budget did not admit pass through unchanged.
func (l *ConnLimit) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lc, _ := r.Context().Value(connKey{}).(*limitedConn)
		if lc == nil || lc.l != l {
			next.ServeHTTP(w, r)
			return
		}
		l.serving(lc, true)
		defer l.serving(lc, false)
		next.ServeHTTP(w, r)
	})
}

// serving counts a handler starting (start) or returning for lc. A connection is busy while a handler
// runs for it (HTTP/2 runs several at once); when the last returns it is idle, and most recently used.
func (l *ConnLimit) serving(lc *limitedConn, start bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if start {
		lc.handlers++
	} else if lc.handlers--; lc.handlers == 0 {
		lc.active = false
	}
	if lc.elem != nil {
		l.conns.MoveToBack(lc.elem)
	}
}

// admit counts c against the budget, closing the least recently used idle connection when at the cap;
// it returns nil (having closed c) when every connection is serving a request.
func (l *ConnLimit) admit(c net.Conn, server string) net.Conn {
	lc := &limitedConn{Conn: c, l: l}
	l.mu.Lock()
	var victim *limitedConn
	if l.conns.Len() >= l.capLocked() {
		for e := l.conns.Front(); e != nil; e = e.Next() {
			if v := e.Value.(*limitedConn); !v.busy() {
				victim = v
				break
			}
		}
		if victim == nil {
			l.refused++
			l.warnLocked(server)
			l.mu.Unlock()
			_ = c.Close()
			return nil
		}
		l.conns.Remove(victim.elem)
		victim.elem = nil
		l.evicted++
		l.warnLocked(server)
	}
	lc.elem = l.conns.PushBack(lc)
	l.mu.Unlock()
	if victim != nil {
		_ = victim.Conn.Close()
	}
	return lc
}

// warnLocked logs the connections closed at the cap: the first at once, then at most once per
// RefusalLogInterval with the counts since the last line.
func (l *ConnLimit) warnLocked(server string) {
	now := l.clock()
	if !l.lastWarn.IsZero() && now.Sub(l.lastWarn) < RefusalLogInterval {
		return
	}
	l.log.Warn("connection limit reached: closing the least recently used idle connections to serve new ones (a client may be holding connections open)",
		"server", server, "limit", l.capLocked(), "idle_closed", l.evicted, "refused_all_busy", l.refused,
		"descriptor_limit", l.descriptors, "reserved", l.reserve)
	l.lastWarn, l.evicted, l.refused = now, 0, 0
}

// release takes a closed connection out of the budget.
func (l *ConnLimit) release(c *limitedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.elem != nil {
		l.conns.Remove(c.elem)
		c.elem = nil
	}
}

// limitListener is a listener whose connections count against a ConnLimit.
type limitListener struct {
	net.Listener
	l      *ConnLimit
	server string
}

// Accept returns the next connection admitted by the budget; it never waits for a slot.
func (ln *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc := ln.l.admit(c, ln.server); lc != nil {
			return lc, nil
		}
	}
}

// limitedConn is a connection counted by a ConnLimit until it is closed.
type limitedConn struct {
	net.Conn
	l        *ConnLimit
	elem     *list.Element // nil once out of the budget; under l.mu
	active   bool          // http.StateActive, until its handler returns; under l.mu
	handlers int           // handlers running for it (ConnLimit.Handler); under l.mu
	once     sync.Once
}

// busy reports whether c is serving a request: it has sent a whole request header (http.StateActive)
// and the handler has not returned yet, or a handler runs for it. Under c.l.mu.
func (c *limitedConn) busy() bool { return c.active || c.handlers > 0 }

// Close closes the connection and frees its slot.
func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c) })
	return err
}

// NetConn is the accepted connection itself.
func (c *limitedConn) NetConn() net.Conn { return c.Conn }

// CloseWrite shuts down the writing side of a TCP connection (net/http does before closing a connection
// it answered with an error, so the client reads the answer).
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// SyscallConn gives access to the socket (e.g. to set its IP TTL).
func (c *limitedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, fmt.Errorf("connection %T has no socket", c.Conn)
}
