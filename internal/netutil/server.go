package netutil

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Server is the lifecycle every local HTTP server of the bridge shares (credential endpoints, health,
// metrics, the emulator): Start binds and serves in the background, Addr reports the bound address, Close
// shuts down promptly. Every request first passes Guard's checks against browsers and DNS rebinding,
// for the address actually bound.
//
// Every Server holds its clients to the same bounds, so that no local user can starve the process: a
// request's line and headers are at most MaxHeaderBytes, they must arrive within ReadHeaderTimeout, a
// keep-alive connection is closed after IdleTimeout without a request, and the accepted connections count
// against a ConnLimit (ServerOptions.Conns: shared by every server of the daemon) that keeps file
// descriptors for the credentials files. It is safe for concurrent use; a Server starts once.
type Server struct {
	name    string
	addr    string
	srv     *http.Server
	log     hclog.Logger
	guard   *guard
	handler http.Handler
	conns   *ConnLimit

	mu      sync.Mutex
	ln      net.Listener
	started bool
	closed  bool
	done    chan struct{}
}

// ServerOptions configures NewServer.
type ServerOptions struct {
	// Name names the server in errors, logs and refusals, e.g. "imds".
	Name string
	// Addr is the host:port to listen on; port 0 picks one. The caller checks it with CheckBind first.
	Addr string
	// Handler serves the requests that pass the guard.
	Handler http.Handler
	// Logger receives the server's errors and the guard's warnings; default: discard.
	Logger hclog.Logger
	// AllowedHosts are Host values accepted besides the bound address (see GuardOptions.AllowedHosts and
	// ValidateAllowedHosts); the single entry AnyHost turns the Host check off.
	AllowedHosts []string
	// Observe, if set, is called after every request, those the guard refused included, with the
	// response status (for request logs and metrics). It must not log header values.
	Observe func(r *http.Request, status int)
	// Configure, if set, adjusts the http.Server before it starts (e.g. ConnContext). The limits set
	// here (MaxHeaderBytes, timeouts, ConnState reporting to Conns, and Conns' ConnContext and Handler,
	// wrapped around those it sets) are re-applied after it.
	Configure func(*http.Server)
	// Conns is the connection budget the server's connections count against; servers of one process
	// share one (the daemon's), so that together they stay within the descriptor limit. Default: a
	// budget of the server's own, NewConnLimit with default options.
	Conns *ConnLimit
}

// The timeouts of every Server. A client gets ReadHeaderTimeout to send a request's line and headers
// (from the connection's start, or from its first byte after an idle keep-alive wait), ReadTimeout for
// the whole request and WriteTimeout for the answer; a keep-alive connection is closed after
// IdleTimeout without a request.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 60 * time.Second
)

// NewServer prepares a server (not listening yet) that serves o.Handler on o.Addr behind the guard.
// It fails on an invalid address or AllowedHosts entry.
func NewServer(o ServerOptions) (*Server, error) {
	log := o.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("%s: invalid listen address %q: %w", o.Name, o.Addr, err)
	}
	g, err := newGuard(o.Handler, o.Name, host, o.AllowedHosts, log)
	if err != nil {
		return nil, err
	}
	// Until Start, the guard accepts the configured address (port 0 matches no request).
	if b, err := parseBind(o.Addr); err == nil {
		g.bind(b)
	} else {
		return nil, fmt.Errorf("%s: %w", o.Name, err)
	}
	var h http.Handler = g
	if o.Observe != nil {
		h = observe(g, o.Observe)
	}
	conns := o.Conns
	if conns == nil {
		conns = NewConnLimit(ConnLimitOptions{Logger: log})
	}
	srv := &http.Server{
		Handler:  h,
		ErrorLog: log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	if o.Configure != nil {
		o.Configure(srv)
	}
	srv.MaxHeaderBytes = MaxHeaderBytes
	srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout = ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout
	if prev := srv.ConnState; prev != nil {
		srv.ConnState = func(c net.Conn, st http.ConnState) { conns.ConnState(c, st); prev(c, st) }
	} else {
		srv.ConnState = conns.ConnState
	}
	// A connection counts as busy for the budget only while the handler runs (ConnLimit.Handler): once
	// it returns, a connection net/http keeps to discard a declared body that never comes, or to flush
	// an answer its client does not read, may be closed to make room for a new one. Chosen over having
	// the guard answer body-declaring requests with "Connection: close" and drop the body: that covers
	// only the unsent body, needs every server to read no body (the emulator reads them), and this
	// covers every way a client can hold a connection after the handler.
	if prev := srv.ConnContext; prev != nil {
		srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context { return prev(conns.ConnContext(ctx, c), c) }
	} else {
		srv.ConnContext = conns.ConnContext
	}
	srv.Handler = conns.Handler(srv.Handler)
	return &Server{name: o.Name, addr: o.Addr, srv: srv, log: log, guard: g, handler: h, conns: conns}, nil
}

// Handler is the full chain the server serves (Observe, the guard, then the handler), for tests and
// fuzzers. Before Start the guard accepts the configured address, after Start the bound one.
func (s *Server) Handler() http.Handler { return s.handler }

// statusRecorder captures the status code a handler writes.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// observe calls fn with each request's status after next has served it.
func observe(next http.Handler, fn func(*http.Request, int)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		fn(r, rec.status)
	})
}

// Start binds the address and serves in a background goroutine; it returns once the listener is bound.
func (s *Server) Start() error { return s.start(nil) }

// StartOn serves on ln, a listener already bound to the server's address (Listener of a server being
// replaced), instead of binding: a config reload hands a port over without ever leaving it unbound, and
// without failing because the old server still holds it. The server owns ln from then on.
func (s *Server) StartOn(ln net.Listener) error {
	if ln == nil {
		return fmt.Errorf("%s: no listener", s.name)
	}
	return s.start(ln)
}

func (s *Server) start(ln net.Listener) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%s: server closed", s.name)
	}
	if s.started {
		return fmt.Errorf("%s: server already started", s.name)
	}
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.addr); err != nil {
			// Not prefixed with s.name: callers prefix the setting the address came from ("imds: …").
			return fmt.Errorf("listen on %s: %w%s", s.addr, err, listenHint(s.addr, err))
		}
	}
	b, err := parseBind(ln.Addr().String())
	if err != nil {
		ln.Close()
		return fmt.Errorf("%s: %w", s.name, err)
	}
	s.guard.bind(b)
	if s.guard.any {
		s.log.Warn(`allowed_hosts = ["*"]: the Host check is off; web pages can reach this server through DNS rebinding`,
			"server", s.name, "address", ln.Addr().String())
	}
	s.ln, s.started, s.done = ln, true, make(chan struct{})
	s.conns.addListener(s.name)
	go func(done chan struct{}) {
		defer close(done)
		defer s.conns.removeListener()
		if err := s.srv.Serve(s.conns.Listener(ln, s.name)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("server stopped", "server", s.name, "error", err)
		}
	}(s.done)
	s.log.Debug("listening", "server", s.name, "address", ln.Addr().String())
	return nil
}

// Listener returns a new listener on the same bound socket (a duplicate of its file descriptor), for
// StartOn of the server that replaces this one. Until this server closes, both accept connections; the
// socket stays bound until both are closed.
func (s *Server) Listener() (net.Listener, error) {
	s.mu.Lock()
	ln, closed := s.ln, s.closed
	s.mu.Unlock()
	tl, ok := ln.(*net.TCPListener)
	if !ok || closed {
		return nil, fmt.Errorf("%s: not listening", s.name)
	}
	f, err := tl.File()
	if err != nil {
		return nil, fmt.Errorf("%s: duplicating the listener: %w", s.name, err)
	}
	defer f.Close()
	dup, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("%s: duplicating the listener: %w", s.name, err)
	}
	return dup, nil
}

// Addr is the bound host:port after Start (with an ephemeral port resolved), the configured one before.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return s.ln.Addr().String()
	}
	return s.addr
}

// Close shuts the server down (requests in flight get ShutdownGrace) and waits for the serving
// goroutine. Closing twice, or before Start, is a no-op.
func (s *Server) Close() error {
	s.mu.Lock()
	already, started, done := s.closed, s.started, s.done
	s.closed = true
	s.mu.Unlock()
	if already || !started {
		return nil
	}
	err := Close(s.srv)
	<-done
	return err
}

// listenHint explains a listen failure a user can fix: a port below 1024 without the privilege to bind
// it (health_checks' default port is 80), or a port already in use.
func listenHint(addr string, err error) string {
	_, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	switch {
	case errors.Is(err, syscall.EACCES) && n > 0 && n < 1024:
		return fmt.Sprintf(" (ports below 1024 need root or CAP_NET_BIND_SERVICE: configure a port above 1023, e.g. bind_port = 8080, instead of %d)", n)
	case errors.Is(err, syscall.EADDRINUSE):
		return " (another process listens there: stop it or configure another port)"
	}
	return ""
}
