// Package health serves SPIRE-style liveness and readiness checks for the bridge daemon.
//
// The live path answers 200 for as long as the process serves HTTP. The ready path answers 200 when no
// profile is StateNotReady, and 503 otherwise. A profile is StateReady when it holds credentials with at
// least Options.MinRemaining left and every one of its sinks holds them; StateDegraded when some of its
// sinks hold them and others fail (it still delivers to some workloads, so the ready path still answers
// 200, with "status": "degraded"); StateNotReady when it has no usable credentials or none of its sinks
// delivers them. Both paths return the same JSON Report, which describes each profile's state. The
// report never contains secrets: ProfileStatus carries names, identifiers, timestamps and error
// summaries only.
//
// The package is a leaf: it does not import package bridge, the daemon adapts its state into
// ProfileStatus values.
package health

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/netutil"
)

// Defaults for Options.
const (
	// DefaultLivePath is the liveness path when Options.LivePath is empty.
	DefaultLivePath = "/live"
	// DefaultReadyPath is the readiness path when Options.ReadyPath is empty.
	DefaultReadyPath = "/ready"
	// DefaultMinRemaining is the credential lifetime a profile needs left to be ready when
	// Options.MinRemaining is zero (design.md §4: SDKs refresh 5–15 minutes before expiry).
	DefaultMinRemaining = 15 * time.Minute
)

// ProfileStatus is one profile's state, as reported by the daemon. It never holds secrets.
type ProfileStatus struct {
	// Profile is the bridge profile's name.
	Profile string `json:"profile"`
	// SpiffeID is the SPIFFE ID of the profile's current X.509-SVID, if any.
	SpiffeID string `json:"spiffe_id,omitempty"`
	// RoleARN is the IAM role the profile assumes.
	RoleARN string `json:"role_arn,omitempty"`
	// LastSuccess is when credentials were last obtained.
	LastSuccess time.Time `json:"last_success,omitzero"`
	// Expiration is when the current credentials expire (zero: no credentials yet).
	Expiration time.Time `json:"expiration,omitzero"`
	// SVIDExpiry is when the current X.509-SVID expires.
	SVIDExpiry time.Time `json:"svid_expiry,omitzero"`
	// Identity is empty while the profile has a usable X.509-SVID, else why it has none: "no_identity"
	// (the Workload API no longer issues it: registration entry deleted, PermissionDenied) or
	// "svid_expired" (past NotAfter). Such a profile calls no CreateSession and is not ready.
	Identity string `json:"identity,omitempty"`
	// NextRefresh is when the next refresh is scheduled.
	NextRefresh time.Time `json:"next_refresh,omitzero"`
	// LastErrorAt is when the last refresh failed.
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// LastErrorType classifies the last error, e.g. "ThrottlingException" or "network".
	LastErrorType string `json:"last_error_type,omitempty"`
	// LastError is the last error's message.
	LastError string `json:"last_error,omitempty"`
	// LastErrorHop is the role of the step that failed last: the Roles Anywhere role for CreateSession,
	// an assume_role hop's role for a role-chaining failure.
	LastErrorHop string `json:"last_error_hop,omitempty"`
	// AssumeRoleARNs are the profile's role-chaining hops, in order; the credentials are the last one's.
	AssumeRoleARNs []string `json:"assume_role_arns,omitempty"`
	// ConsecutiveFailures counts refresh failures since the last success.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// Refreshes counts successful refreshes since the daemon started.
	Refreshes int `json:"refreshes"`
	// FailingSinks names the sinks whose last write failed.
	FailingSinks []string `json:"failing_sinks,omitempty"`
	// Sinks is each sink's delivery state, in the profile's order; readiness follows it (see Readiness).
	Sinks []SinkStatus `json:"sinks,omitempty"`
	// SinkFailures counts the failed sink writes (every sink, every attempt) since the profile started.
	SinkFailures int `json:"sink_failures"`
	// WorkloadSelectors are a node-mode profile's workload selectors (absent for the bridge's own
	// identity).
	WorkloadSelectors []string `json:"workload_selectors,omitempty"`
	// DelegatedIdentity is a node-mode profile's Delegated Identity API stream status: "connecting",
	// "connected", "no_matching_entry", "denied" or "error".
	DelegatedIdentity string `json:"delegated_identity,omitempty"`
	// DelegatedIdentityError says why the stream gives the profile no SVID, with the fix.
	DelegatedIdentityError string `json:"delegated_identity_error,omitempty"`
	// Pods is how many pods use a pod identity session (absent for profiles).
	Pods int `json:"pods,omitempty"`
}

// SinkStatus is one sink's delivery state. It never holds secrets: a sink's name is its kind and path or
// address, and its error names a path, never file contents.
type SinkStatus struct {
	// Name identifies the sink, as in logs and metrics, e.g. `credentials_file "/home/app/.aws/credentials" [app]`.
	Name string `json:"name"`
	// Hook is true for a sink that tells something else about a refresh and delivers no credentials
	// itself (on_refresh, signal). A failing hook makes its profile degraded, but hooks alone never
	// count as delivering: a profile whose credentials-delivering sinks all fail is not ready.
	Hook bool `json:"hook,omitempty"`
	// OK is true when the sink's last write succeeded: it holds the profile's current credentials (a
	// hook: it ran for them). While a refresh writes, a sink keeps the previous, still valid ones.
	OK bool `json:"ok"`
	// LastError is why the last failed write failed, with the path or address; empty after a success.
	LastError string `json:"last_error,omitempty"`
	// LastErrorAt is when a write of this sink last failed.
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Failures counts this sink's failed writes since the profile started.
	Failures int `json:"failures"`
}

// Profile and report states.
const (
	// StateReady is a profile whose every sink holds credentials with enough life left.
	StateReady = "ready"
	// StateDegraded is a profile with valid credentials that some of its sinks hold while others fail
	// (a hook failing included): it still delivers to some workloads. The ready path answers 200.
	StateDegraded = "degraded"
	// StateNotReady is a profile that delivers to no workload: no credentials, credentials too close to
	// expiry, no identity, or none of its credentials-delivering sinks holds them. The ready path
	// answers 503.
	StateNotReady = "not_ready"
)

// States are the profile states, in order of health: StateReady, StateDegraded, StateNotReady.
var States = []string{StateReady, StateDegraded, StateNotReady}

// Options configures a Server.
type Options struct {
	// Addr is the host:port to listen on; port 0 picks an ephemeral port.
	Addr string
	// LivePath is the liveness path (default DefaultLivePath).
	LivePath string
	// ReadyPath is the readiness path (default DefaultReadyPath).
	ReadyPath string
	// Profiles returns the current state of every configured profile. It is called on each request and
	// must be safe for concurrent use. Nil means no profiles.
	Profiles func() []ProfileStatus
	// WorkloadAPI returns the Workload API connection's status and, if it is not healthy, why: for
	// example ("connected", "") or ("error", "connection refused"). It is informational and does not
	// affect readiness. May be nil.
	WorkloadAPI func() (status, reason string)
	// Reload returns the outcome of the last config reload; nil means reloads are not reported.
	Reload func() ReloadReport
	// MinRemaining is the credential lifetime each profile needs left to be ready (default
	// DefaultMinRemaining).
	MinRemaining time.Duration
	// Clock returns the current time (default time.Now).
	Clock func() time.Time
	// Logger receives the server's logs (default: discard).
	Logger hclog.Logger
	// AllowRemote permits binding a non-loopback address.
	AllowRemote bool
	// AllowedHosts are Host values accepted besides the bound address (netutil.ServerOptions.AllowedHosts):
	// requests naming any other host, and requests from web pages, are refused with 403.
	AllowedHosts []string
	// Conns is the connection budget shared with the process's other servers (netutil.ServerOptions.Conns);
	// default: one of the server's own.
	Conns *netutil.ConnLimit
}

// WorkloadAPIReport is the Workload API connection's state in a Report.
type WorkloadAPIReport struct {
	// Status is e.g. "connected", "connecting", "no_identity" or "error"; "unknown" when the server
	// has no way to tell.
	Status string `json:"status"`
	// Reason explains a status other than "connected".
	Reason string `json:"reason,omitempty"`
}

// ReloadReport is the outcome of the last config reload. A failed reload changes nothing that runs,
// so it does not make the bridge unready: it is reported for operators (and in metrics) until a reload
// succeeds.
type ReloadReport struct {
	// Status is "ok" (no reload yet, or the last one applied) or "failed".
	Status string `json:"status"`
	// Error says why the last reload was refused: the file:line and what failed.
	Error string `json:"error,omitempty"`
	// At is when the last reload was asked for.
	At time.Time `json:"at,omitzero"`
}

// Report is what the live and ready handlers serve.
type Report struct {
	// Ready is true when the ready path answers 200: no profile is StateNotReady (or there are none).
	// Status tells ready from degraded.
	Ready bool `json:"ready"`
	// Status is the worst profile state: StateReady, StateDegraded or StateNotReady.
	Status string `json:"status"`
	// Live is true whenever the server answers.
	Live bool `json:"live"`
	// WorkloadAPI is the Workload API connection's state.
	WorkloadAPI WorkloadAPIReport `json:"workload_api"`
	// ConfigReload is the outcome of the last config reload (absent when not reported).
	ConfigReload *ReloadReport `json:"config_reload,omitempty"`
	// Profiles holds each profile's state and readiness, in the order Options.Profiles returned them.
	Profiles []ProfileReport `json:"profiles"`
}

// ProfileReport is one profile's state and readiness.
type ProfileReport struct {
	ProfileStatus
	// Ready is true when the profile is StateReady: its credentials have at least MinRemaining left and
	// every one of its sinks holds them.
	Ready bool `json:"ready"`
	// Status is the profile's state: StateReady, StateDegraded or StateNotReady.
	Status string `json:"status"`
	// Remaining is how long the credentials have left, e.g. "42m10s"; empty without credentials.
	Remaining string `json:"remaining,omitempty"`
	// Reason explains why the profile is not ready, e.g. "no credentials yet",
	// "credentials expire in 9m59s (< 15m0s)" or which sinks fail and why.
	Reason string `json:"reason,omitempty"`
}

// Server serves the liveness and readiness checks.
type Server struct {
	addr         string
	livePath     string
	readyPath    string
	profiles     func() []ProfileStatus
	workloadAPI  func() (string, string)
	reload       func() ReloadReport
	minRemaining time.Duration
	clock        func() time.Time
	log          hclog.Logger

	srv *netutil.Server
}

// New validates o and returns a Server that is not listening yet; call Start. It refuses a
// non-loopback address unless o.AllowRemote is set.
func New(o Options) (*Server, error) {
	if _, err := netutil.CheckBind(o.Addr, o.AllowRemote); err != nil {
		return nil, fmt.Errorf("health: %w", err)
	}
	s := &Server{
		addr:         o.Addr,
		livePath:     o.LivePath,
		readyPath:    o.ReadyPath,
		profiles:     o.Profiles,
		workloadAPI:  o.WorkloadAPI,
		reload:       o.Reload,
		minRemaining: o.MinRemaining,
		clock:        o.Clock,
		log:          o.Logger,
	}
	if s.livePath == "" {
		s.livePath = DefaultLivePath
	}
	if s.readyPath == "" {
		s.readyPath = DefaultReadyPath
	}
	for _, p := range []string{s.livePath, s.readyPath} {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("health: path %q must start with \"/\"", p)
		}
	}
	if s.livePath == s.readyPath {
		return nil, fmt.Errorf("health: live and ready paths are both %q", s.livePath)
	}
	if s.minRemaining <= 0 {
		s.minRemaining = DefaultMinRemaining
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.log == nil {
		s.log = hclog.NewNullLogger()
	}
	srv, err := netutil.NewServer(netutil.ServerOptions{
		Name: "health", Addr: o.Addr, Handler: http.HandlerFunc(s.serveHTTP), Logger: s.log, AllowedHosts: o.AllowedHosts,
		Conns: o.Conns,
	})
	if err != nil {
		return nil, err
	}
	s.srv = srv
	return s, nil
}

// Handler returns the HTTP handler serving the live and ready paths behind the checks against browsers
// and DNS rebinding (netutil.Guard), for use without Start: requests must name Addr as their Host.
func (s *Server) Handler() http.Handler { return s.srv.Handler() }

// Start listens on the configured address and serves in the background. It fails if the address
// cannot be bound or the server was already started or closed.
func (s *Server) Start() error { return s.srv.Start() }

// Addr returns the address the server listens on once started (with the actual port when Options.Addr
// asked for port 0), and the configured address before.
func (s *Server) Addr() string { return s.srv.Addr() }

// Close stops the server (in-flight requests get netutil.ShutdownGrace). It is safe to call more than
// once, and before Start.
func (s *Server) Close() error { return s.srv.Close() }

// Report computes the current report, as the handlers serve it.
func (s *Server) Report() Report {
	now := s.clock()
	r := Report{Ready: true, Status: StateReady, Live: true, WorkloadAPI: WorkloadAPIReport{Status: "unknown"}, Profiles: []ProfileReport{}}
	if s.workloadAPI != nil {
		r.WorkloadAPI.Status, r.WorkloadAPI.Reason = s.workloadAPI()
	}
	if s.reload != nil {
		rr := s.reload()
		r.ConfigReload = &rr
	}
	if s.profiles == nil {
		return r
	}
	for _, p := range s.profiles() {
		pr := s.profileReport(p, now)
		switch pr.Status {
		case StateNotReady:
			r.Ready, r.Status = false, StateNotReady
		case StateDegraded:
			if r.Status == StateReady {
				r.Status = StateDegraded
			}
		}
		r.Profiles = append(r.Profiles, pr)
	}
	return r
}

// ReadyThreshold is how much life p's credentials need left for p to be ready: minRemaining, or half the
// session's lifetime (Expiration − LastSuccess) when that is shorter — a 15-minute session can never
// keep 15 minutes, and the refresher renews such sessions half-way (bridge/schedule).
func (p ProfileStatus) ReadyThreshold(minRemaining time.Duration) time.Duration {
	if !p.LastSuccess.IsZero() && p.Expiration.After(p.LastSuccess) {
		return min(minRemaining, p.Expiration.Sub(p.LastSuccess)/2)
	}
	return minRemaining
}

func (s *Server) profileReport(p ProfileStatus, now time.Time) ProfileReport {
	if p.FailingSinks != nil {
		p.FailingSinks = append([]string(nil), p.FailingSinks...)
	}
	if p.Sinks != nil {
		p.Sinks = append([]SinkStatus(nil), p.Sinks...)
	}
	pr := ProfileReport{ProfileStatus: p}
	if p.Expiration.After(now) {
		pr.Remaining = p.Expiration.Sub(now).Truncate(time.Second).String()
	}
	pr.Status, pr.Reason = p.Readiness(now, s.minRemaining)
	pr.Ready = pr.Status == StateReady
	return pr
}

// Readiness is p's state at now, and why it is not StateReady ("" when it is): StateNotReady without an
// identity, without credentials, with credentials that have less than ReadyThreshold(minRemaining)
// left, or when none of its sinks that deliver credentials holds them (hooks deliver none: a profile
// with hooks only counts them); StateDegraded when some sinks hold them and others (a hook among them)
// fail; else StateReady. Without Sinks, FailingSinks decides: any makes the profile degraded.
func (p ProfileStatus) Readiness(now time.Time, minRemaining time.Duration) (state, reason string) {
	if p.Identity != "" {
		return StateNotReady, fmt.Sprintf("%s: no new AWS sessions for %s (%s)", p.Identity, p.SpiffeID, p.LastError)
	}
	if p.Expiration.IsZero() {
		return StateNotReady, "no credentials yet"
	}
	remaining := p.Expiration.Sub(now)
	switch {
	case remaining <= 0:
		return StateNotReady, fmt.Sprintf("credentials expired %s ago", (-remaining).Truncate(time.Second))
	case remaining < p.ReadyThreshold(minRemaining):
		return StateNotReady, fmt.Sprintf("credentials expire in %s (< %s)", remaining.Truncate(time.Second), p.ReadyThreshold(minRemaining))
	}
	if len(p.Sinks) == 0 {
		if len(p.FailingSinks) > 0 {
			return StateDegraded, "failing sinks: " + strings.Join(p.FailingSinks, ", ")
		}
		return StateReady, ""
	}
	hooksOnly := true
	for _, sk := range p.Sinks {
		if !sk.Hook {
			hooksOnly = false
		}
	}
	delivering := 0
	var failing []string
	for _, sk := range p.Sinks {
		if sk.OK {
			if !sk.Hook || hooksOnly {
				delivering++
			}
			continue
		}
		msg := sk.Name
		if sk.LastError != "" {
			msg += ": " + sk.LastError
		}
		failing = append(failing, msg)
	}
	switch {
	case len(failing) == 0:
		return StateReady, ""
	case delivering == 0:
		return StateNotReady, "no sink delivers the credentials: " + strings.Join(failing, "; ")
	default:
		return StateDegraded, fmt.Sprintf("%d of %d sinks fail: %s", len(failing), len(p.Sinks), strings.Join(failing, "; "))
	}
}

func (s *Server) serveHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != s.livePath && req.URL.Path != s.readyPath {
		http.NotFound(w, req)
		return
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	r := s.Report()
	code := http.StatusOK
	if req.URL.Path == s.readyPath && !r.Ready {
		code = http.StatusServiceUnavailable
	}
	body, err := json.Marshal(r)
	if err != nil {
		s.log.Error("encoding health report", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	body = append(body, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if req.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}
