// Package endpoint serves a profile's credentials over the two local HTTP protocols AWS SDKs read
// without any extra configuration file: an IMDSv2-compatible instance metadata endpoint
// (AWS_EC2_METADATA_SERVICE_ENDPOINT) and a container credentials endpoint
// (AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE).
//
// A Server is a bridge sink: Put stores fresh credentials, Clear withdraws them. Credentials are kept
// behind an atomic pointer, so requests never wait on a refresh. A Server only ever hands out
// credentials that are valid at the time of the request; otherwise it answers HTTP 500 with a
// NoCredentials error, which SDKs surface loudly instead of using stale keys.
//
// Both servers bind to loopback addresses unless explicitly allowed otherwise, refuse requests from web
// pages and Hosts that do not name them (DNS rebinding; netutil.Guard), refuse any request carrying
// X-Forwarded-For (a sign the request came through a proxy), and never log the secret access key, the
// session token or an authorization token.
package endpoint

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/netutil"
)

const (
	nameIMDS      = "imds"
	nameContainer = "container_endpoint"
)

// stored is one set of credentials with the time they were handed to Put.
type stored struct {
	creds   creds.Credentials
	updated time.Time
}

// connKey is the context key under which the accepted net.Conn is stashed (see http.Server.ConnContext).
type connKey struct{}

// Server is a local credentials endpoint: IMDSv2 (NewIMDS) or container credentials (NewContainer).
// It implements the bridge Sink method set (Name, Put, Clear). Create it with NewIMDS or NewContainer,
// then call Start; Close stops it.
type Server struct {
	name      string
	addr      string // configured host:port
	remote    bool   // bound to a non-loopback host (AllowRemote was set)
	path      string // container credentials path; "" for IMDS
	tokenFile string // container authorization token file; "" for IMDS
	log       hclog.Logger
	clock     func() time.Time
	onRequest func(status int)
	inner     http.Handler // the protocol handler with the X-Forwarded-For refusal; set by NewIMDS/NewContainer

	current atomic.Pointer[stored]

	srv *netutil.Server
}

// common is what both kinds of server are configured with.
type common struct {
	name         string
	addr         string
	allowRemote  bool
	allowedHosts []string
	logger       hclog.Logger
	clock        func() time.Time
	onRequest    func(int)
	conns        *netutil.ConnLimit
}

// newServer validates the bind address and fills the fields common to both kinds of server.
func newServer(c common) (*Server, error) {
	name, addr, logger, clock := c.name, c.addr, c.logger, c.clock
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%s: invalid bind address %q: %w", name, addr, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return nil, fmt.Errorf("%s: invalid port in bind address %q", name, addr)
	}
	remote, err := netutil.CheckBind(addr, c.allowRemote)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (credentials would be served beyond this host)", name, err)
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	if clock == nil {
		clock = time.Now
	}
	s := &Server{
		name:      name,
		addr:      addr,
		remote:    remote,
		log:       logger,
		clock:     clock,
		onRequest: c.onRequest,
	}
	// s.inner is set by NewIMDS/NewContainer once the server exists.
	serve := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.inner.ServeHTTP(w, r) })
	srv, err := netutil.NewServer(netutil.ServerOptions{
		Name:         name,
		Addr:         addr,
		Handler:      serve,
		Logger:       logger,
		AllowedHosts: c.allowedHosts,
		Observe:      s.observe,
		Conns:        c.conns,
		Configure: func(hs *http.Server) {
			// The IMDS token handler needs the connection to set its hop limit.
			hs.ConnContext = func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) }
		},
	})
	if err != nil {
		return nil, err
	}
	s.srv = srv
	return s, nil
}

// Name identifies the sink in logs and metrics: "imds" or "container_endpoint".
func (s *Server) Name() string { return s.name }

// Put stores c as the credentials to serve. It refuses (and keeps serving nothing new) credentials
// that are incomplete or already expired according to the server's clock.
func (s *Server) Put(_ context.Context, c creds.Credentials) error {
	now := s.clock()
	if !c.ValidAt(now) {
		return fmt.Errorf("%s: refusing to serve incomplete or expired credentials (access key id %q, expiration %s)",
			s.name, c.AccessKeyID, c.Expiration.UTC().Format(time.RFC3339))
	}
	s.current.Store(&stored{creds: c, updated: now})
	return nil
}

// Clear withdraws the stored credentials: from then on credential requests get HTTP 500 NoCredentials.
func (s *Server) Clear(context.Context) error {
	s.current.Store(nil)
	return nil
}

// valid returns the stored credentials if they are valid now.
func (s *Server) valid() (stored, bool) {
	p := s.current.Load()
	if p == nil || !p.creds.ValidAt(s.clock()) {
		return stored{}, false
	}
	return *p, true
}

// Handler is the server's full HTTP chain: request logging and the OnRequest callback around the checks
// against browsers and DNS rebinding (netutil.Guard), the X-Forwarded-For refusal and the protocol.
// Start serves it; it is exposed for embedding, tests and fuzzers. Requests must name the server's
// address (Addr) as their Host.
func (s *Server) Handler() http.Handler { return s.srv.Handler() }

// Start listens on the configured address and serves in a background goroutine. It returns once the
// listener is bound, so Addr and URL report the actual address. A Server can be started once.
func (s *Server) Start() error { return s.StartOn(nil) }

// StartOn is Start on ln, a listener already bound to the configured address (from Listener of the
// server this one replaces on a config reload); nil binds as Start does.
func (s *Server) StartOn(ln net.Listener) error {
	var err error
	if ln != nil {
		err = s.srv.StartOn(ln)
	} else {
		err = s.srv.Start()
	}
	if err != nil {
		return err
	}
	if s.remote {
		s.log.Warn("credentials endpoint bound to a non-loopback address: credentials are reachable from the network",
			"address", s.srv.Addr())
	}
	return nil
}

// Listener duplicates the bound listener for StartOn of a replacing server (netutil.Server.Listener).
func (s *Server) Listener() (net.Listener, error) { return s.srv.Listener() }

// Addr is the host:port the server listens on: the actual address after Start (with the ephemeral
// port resolved), the configured one before.
func (s *Server) Addr() string { return s.srv.Addr() }

// URL is the address SDKs are pointed at: "http://host:port" for IMDS
// (AWS_EC2_METADATA_SERVICE_ENDPOINT) and "http://host:port/path" for the container endpoint
// (AWS_CONTAINER_CREDENTIALS_FULL_URI).
func (s *Server) URL() string { return "http://" + s.Addr() + s.path }

// Close shuts the server down (in-flight requests get netutil.ShutdownGrace) and waits for the serving
// goroutine to exit. Closing a server that was never started, or twice, is a no-op.
func (s *Server) Close() error { return s.srv.Close() }

// wrap adds the check common to both servers around next; it runs after netutil.Guard's.
func (s *Server) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if _, ok := r.Header["X-Forwarded-For"]; ok {
			http.Error(w, "forwarded requests are not accepted", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// observe logs and counts every request, those netutil.Guard refused included.
func (s *Server) observe(r *http.Request, status int) {
	// Only the method, path, status and peer: never headers (tokens) or bodies (credentials).
	s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", status, "remote", r.RemoteAddr)
	if s.onRequest != nil {
		s.onRequest(status)
	}
}

// errorDoc is the JSON error body SDKs parse from a credentials endpoint.
type errorDoc struct {
	Code    string
	Message string
}

// writeJSON writes v as a JSON response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeNoCredentials answers 500 NoCredentials.
func writeNoCredentials(w http.ResponseWriter) {
	writeJSON(w, http.StatusInternalServerError, errorDoc{
		Code:    "NoCredentials",
		Message: "no valid credentials are available; the bridge has not obtained them yet or they expired",
	})
}

// methodNotAllowed answers 405 with the Allow header.
func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
}
