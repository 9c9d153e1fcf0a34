package netutil

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Server is the lifecycle every local HTTP server of the bridge shares (credential endpoints, health,
// metrics): Start binds and serves in the background, Addr reports the bound address, Close shuts down
// promptly. It is safe for concurrent use; a Server starts once.
type Server struct {
	name string
	addr string
	srv  *http.Server
	log  hclog.Logger

	mu      sync.Mutex
	ln      net.Listener
	started bool
	closed  bool
	done    chan struct{}
}

// NewServer prepares a server named name (for errors and logs) that will serve h on addr (host:port;
// port 0 picks one). configure, if set, adjusts the http.Server before it starts (e.g. ConnContext).
// The caller checks addr with CheckBind first.
func NewServer(name, addr string, h http.Handler, log hclog.Logger, configure func(*http.Server)) *Server {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	if configure != nil {
		configure(srv)
	}
	return &Server{name: name, addr: addr, srv: srv, log: log}
}

// Start binds the address and serves in a background goroutine; it returns once the listener is bound.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%s: server closed", s.name)
	}
	if s.started {
		return fmt.Errorf("%s: server already started", s.name)
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("%s: listen on %s: %w", s.name, s.addr, err)
	}
	s.ln, s.started, s.done = ln, true, make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("server stopped", "server", s.name, "error", err)
		}
	}(s.done)
	s.log.Debug("listening", "server", s.name, "address", ln.Addr().String())
	return nil
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
