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

// ServerOptions configures NewServer.
type ServerOptions struct {
	// Addr is the host:port to listen on; port 0 picks an ephemeral port.
	Addr string
	// AllowRemote permits a non-loopback Addr.
	AllowRemote bool
	// AllowedHosts are Host values accepted besides the bound address (netutil.ServerOptions.AllowedHosts):
	// requests naming any other host, and requests from web pages, are refused with 403.
	AllowedHosts []string
	// Logger receives the server's logs; default: discard.
	Logger hclog.Logger
	// Conns is the connection budget shared with the process's other servers (netutil.ServerOptions.Conns);
	// default: one of the server's own.
	Conns *netutil.ConnLimit
}

// NewServer returns a Server, not listening yet, that will serve m on o.Addr at MetricsPath. It refuses
// a non-loopback address unless o.AllowRemote is set.
func NewServer(m *Metrics, o ServerOptions) (*Server, error) {
	if m == nil {
		return nil, errors.New("metrics: nil Metrics")
	}
	if _, err := netutil.CheckBind(o.Addr, o.AllowRemote); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(MetricsPath, m.Handler())
	srv, err := netutil.NewServer(netutil.ServerOptions{
		Name: "metrics", Addr: o.Addr, Handler: mux, Logger: o.Logger, AllowedHosts: o.AllowedHosts, Conns: o.Conns,
	})
	if err != nil {
		return nil, err
	}
	return &Server{srv: srv}, nil
}

// Handler is the server's handler behind the checks against browsers and DNS rebinding (netutil.Guard).
func (s *Server) Handler() http.Handler { return s.srv.Handler() }

// Start listens on the configured address and serves in the background. It fails if the address
// cannot be bound or the server was already started or closed.
func (s *Server) Start() error { return s.srv.Start() }

// Addr returns the address the server listens on once started (with the actual port when port 0 was
// asked for), and the configured address before.
func (s *Server) Addr() string { return s.srv.Addr() }

// Close stops the server (in-flight scrapes get netutil.ShutdownGrace). It is safe to call more than
// once, and before Start.
func (s *Server) Close() error { return s.srv.Close() }
