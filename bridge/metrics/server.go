package metrics

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/netutil"
)

// MetricsPath is the path NewServer serves the metrics on.
const MetricsPath = "/metrics"

// Server serves a Metrics' registry on MetricsPath.
type Server struct {
	addr    string
	handler http.Handler
	log     hclog.Logger

	mu       sync.Mutex
	srv      *http.Server
	listener net.Listener
	done     chan struct{}
	closed   bool
}

// NewServer returns a Server, not listening yet, that will serve m on addr (host:port, port 0 for an
// ephemeral port) at MetricsPath. It refuses a non-loopback address unless allowRemote is set. A nil
// logger discards logs.
func NewServer(addr string, allowRemote bool, m *Metrics, logger hclog.Logger) (*Server, error) {
	if m == nil {
		return nil, errors.New("metrics: nil Metrics")
	}
	if _, err := netutil.CheckBind(addr, allowRemote); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	mux := http.NewServeMux()
	mux.Handle(MetricsPath, m.Handler())
	return &Server{addr: addr, handler: mux, log: logger}, nil
}

// Start listens on the configured address and serves in the background. It fails if the address
// cannot be bound or the server was already started or closed.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("metrics: server closed")
	}
	if s.srv != nil {
		return errors.New("metrics: server already started")
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("metrics: listen on %s: %w", s.addr, err)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          s.log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	s.srv, s.listener, s.done = srv, ln, make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics server stopped", "error", err)
		}
	}(s.done)
	s.log.Debug("metrics server listening", "address", ln.Addr().String())
	return nil
}

// Addr returns the address the server listens on once started (with the actual port when port 0 was
// asked for), and the configured address before.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener != nil {
		return s.listener.Addr().String()
	}
	return s.addr
}

// Close stops the server, waiting up to a few seconds for in-flight scrapes. It is safe to call more
// than once, and before Start.
func (s *Server) Close() error {
	s.mu.Lock()
	srv, done := s.srv, s.done
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if srv == nil || already {
		return nil
	}
	err := netutil.Close(srv)
	<-done
	return err
}
