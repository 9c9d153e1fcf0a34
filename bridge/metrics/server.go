package metrics

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/hashicorp/go-hclog"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/netutil"
)

// MetricsPath is the path NewServer serves the metrics on.
const MetricsPath = "/metrics"

// Server serves a Metrics' registry on MetricsPath.
type Server struct {
	srv *netutil.Server
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
	mux := http.NewServeMux()
	mux.Handle(MetricsPath, m.Handler())
	return &Server{srv: netutil.NewServer("metrics", addr, mux, logger, nil)}, nil
}

// Start listens on the configured address and serves in the background. It fails if the address
// cannot be bound or the server was already started or closed.
func (s *Server) Start() error { return s.srv.Start() }

// Addr returns the address the server listens on once started (with the actual port when port 0 was
// asked for), and the configured address before.
func (s *Server) Addr() string { return s.srv.Addr() }

// Close stops the server (in-flight scrapes get netutil.ShutdownGrace). It is safe to call more than
// once, and before Start.
func (s *Server) Close() error { return s.srv.Close() }
