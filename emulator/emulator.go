// Package emulator is a local AWS IAM Roles Anywhere and STS: a real HTTP server that verifies
// CreateSession requests exactly as AWS does (design.md §3) and issues credentials that work against its
// own STS endpoint (GetCallerIdentity with standard SigV4, AssumeRoleWithWebIdentity with a JWT).
//
// It is a test oracle: its canonicalization is written from the protocol description, independently of
// package signer, so that a mistake in one is caught by the other. It also offers what tests need and
// AWS does not: a settable clock, fault injection and added latency.
package emulator

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/netutil"
)

// Options configures an Emulator.
type Options struct {
	// Config is the emulated account (required).
	Config *Config
	// Clock is the server's time (signature skew, certificate validity, credential expiry); default
	// time.Now. Change it later with SetClock.
	Clock func() time.Time
	// Logger gets one line per decision, never a secret; default discard.
	Logger hclog.Logger
	// Addr is where NewServer listens; default 127.0.0.1:0.
	Addr string
	// AllowRemote permits a non-loopback Addr.
	AllowRemote bool
	// AllowedHosts are Host values NewServer accepts besides its bound address, e.g. "emulator" for a
	// compose service name (netutil.ServerOptions.AllowedHosts). Other hosts, and requests from web
	// pages, are refused with 403.
	AllowedHosts []string
}

// Stats counts what the emulator answered.
type Stats struct {
	CreateSession, CreateSessionOK, Throttled, Injected int
	STS, STSOK                                          int
}

// Emulator is the http.Handler of the emulated services. Create it with New.
type Emulator struct {
	cfg *Config
	log hclog.Logger

	mu         sync.Mutex
	clock      func() time.Time
	failN      int
	failStatus int
	failType   string
	latency    time.Duration
	lifetime   time.Duration       // SetSessionLifetime
	sessions   map[string]*session // by access key id
	buckets    map[string]*bucket  // CreateSession quota per region
	stats      Stats
}

type session struct {
	secret, token  string
	expires        time.Time
	assumedRoleARN string
	assumedRoleID  string

	account        string // the role's account
	roleARN        string // the IAM role ARN the session acts as
	sessionName    string
	issuedBy       string // "CreateSession", "AssumeRole" or "AssumeRoleWithWebIdentity"
	sourceIdentity string
	tags           map[string]string // session tags, by key as sent
	transitive     []string          // keys of tags that pass to the next hop
	chained        bool              // issued by AssumeRole to a role session (capped at 1 h)

	origin          *OriginIdentity // trusted identity propagation; carried unchanged across AssumeRole
	sessionPolicies []*Policy       // the session policies that narrow this session
	chain           []string        // the assumed-role ARNs of the sessions this one was chained from, first the Roles Anywhere one
	profileARN      string          // the Roles Anywhere profile of the chain's first session
}

// New checks cfg and returns the emulator's handler.
func New(o Options) (*Emulator, error) {
	if o.Config == nil {
		return nil, errors.New("emulator: Config is required")
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.Config.QuotaPerSecond == 0 {
		o.Config.QuotaPerSecond = 10
	}
	if err := o.Config.compile(); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	return &Emulator{
		cfg: o.Config, log: o.Logger, clock: o.Clock,
		sessions: map[string]*session{}, buckets: map[string]*bucket{},
	}, nil
}

// SetClock changes the server's notion of now (e.g. to replay a recorded request).
func (e *Emulator) SetClock(now func() time.Time) {
	e.mu.Lock()
	e.clock = now
	e.mu.Unlock()
}

func (e *Emulator) now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.clock()
}

// FailNext makes the next n CreateSession requests fail with status and error type (e.g. 500
// "InternalServerException", 429 "ThrottlingException") before any verification.
func (e *Emulator) FailNext(n, status int, errType string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failN, e.failStatus, e.failType = n, status, errType
}

// SetLatency adds d before every answer.
func (e *Emulator) SetLatency(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.latency = d
}

// SetSessionLifetime makes CreateSession issue credentials that expire d after issue, whatever
// durationSeconds asked (AWS's minimum is 15 minutes): a test knob, to watch clients across several
// expiries in seconds. Zero restores the requested duration.
func (e *Emulator) SetSessionLifetime(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lifetime = d
}

// Stats returns the counters.
func (e *Emulator) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

// ServeHTTP routes: POST /sessions (Roles Anywhere), POST / (STS), /_emulator/* (admin).
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	lat := e.latency
	e.mu.Unlock()
	if lat > 0 {
		select {
		case <-time.After(lat):
		case <-r.Context().Done():
			return
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	switch {
	case r.URL.Path == "/sessions":
		e.createSession(w, r)
	case r.URL.Path == "/" && r.Method == http.MethodPost:
		e.sts(w, r)
	case strings.HasPrefix(r.URL.Path, "/_emulator/"):
		e.admin(w, r)
	default:
		writeError(w, &apiError{http.StatusNotFound, "UnknownOperationException", fmt.Sprintf("no operation at %s %s", r.Method, r.URL.Path)})
	}
}

// Server is an Emulator listening on a real socket.
type Server struct {
	*Emulator
	// URL is the base URL, e.g. http://127.0.0.1:41234; use it as the Roles Anywhere endpoint and the
	// STS endpoint.
	URL string
	srv *netutil.Server
}

// NewServer starts an Emulator on o.Addr (default 127.0.0.1:0, loopback only unless AllowRemote). Like
// every server of the bridge it refuses requests from web pages and Hosts that do not name it
// (netutil.Guard; see Options.AllowedHosts).
func NewServer(o Options) (*Server, error) {
	e, err := New(o)
	if err != nil {
		return nil, err
	}
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if _, err := netutil.CheckBind(addr, o.AllowRemote); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	srv, err := netutil.NewServer(netutil.ServerOptions{
		Name: "emulator", Addr: addr, Handler: e, Logger: e.log, AllowedHosts: o.AllowedHosts,
	})
	if err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	s := &Server{Emulator: e, URL: "http://" + srv.Addr(), srv: srv}
	e.log.Info("Roles Anywhere and STS emulator listening", "url", s.URL)
	return s, nil
}

// Close shuts the server down (requests in flight get netutil.ShutdownGrace).
func (s *Server) Close() error { return s.srv.Close() }

// bucket is a token bucket refilled at rate per second, holding at most rate tokens.
type bucket struct {
	tokens float64
	last   time.Time
}

func (e *Emulator) take(region string, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	rate := float64(e.cfg.QuotaPerSecond)
	if rate < 0 {
		return true
	}
	b := e.buckets[region]
	if b == nil {
		b = &bucket{tokens: rate, last: now}
		e.buckets[region] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(rate, b.tokens+el*rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func randomString(alphabet string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func requestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func newToken() string {
	b := make([]byte, 192)
	_, _ = rand.Read(b)
	return "IQoJb3JpZ2luX2VtdQ" + base64.StdEncoding.EncodeToString(b)
}

// SetQuota changes the CreateSession quota per region and second (-1: unlimited).
func (e *Emulator) SetQuota(perSecond int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cfg.QuotaPerSecond = perSecond
	e.buckets = map[string]*bucket{}
}
