// Package metrics exposes the bridge daemon's Prometheus metrics.
//
// Each Metrics owns a private prometheus.Registry; nothing is registered with the default registry.
// Counters and the CreateSession latency histogram are fed by the Observe methods; per-profile gauges
// and the Workload API state are computed at scrape time from the Options callbacks. Label values are
// limited to profile names, sink names, endpoint names, result and error classes and HTTP status codes
// supplied by the daemon: never SPIFFE IDs, role ARNs, error messages or credentials.
//
// The package is a leaf: it does not import package bridge.
package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/health"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/errtype"
)

// Defaults for Options.
const (
	// DefaultNamespace prefixes every metric name when Options.Namespace is empty.
	DefaultNamespace = "spiffe_aws_bridge"
	// DefaultVersion is the build_info version label when Options.Version is empty.
	DefaultVersion = "dev"
	// DefaultMinRemaining is the credential lifetime a profile needs left for profile_ready to be 1
	// when Options.MinRemaining is zero: the same as for /ready.
	DefaultMinRemaining = health.DefaultMinRemaining
)

// Attempt results.
const (
	// ResultSuccess is the result label of a successful attempt or sink write.
	ResultSuccess = "success"
	// ResultFailure is the result label of a failed attempt or sink write.
	ResultFailure = "failure"
)

// IdentityOK is the profile_identity state of a profile with a usable X.509-SVID.
const IdentityOK = "ok"

// IdentityStates are the profile_identity states: IdentityOK, then the health.ProfileStatus.Identity
// values.
var IdentityStates = []string{IdentityOK, errtype.NoIdentity, errtype.SVIDExpired}

// ThrottlingErrorType is the error type counted by throttles_total.
const ThrottlingErrorType = "ThrottlingException"

// Options configures a Metrics.
type Options struct {
	// Namespace prefixes every metric name (default DefaultNamespace).
	Namespace string
	// Version is the build_info version label (default DefaultVersion).
	Version string
	// Profiles returns every profile's state; it is called at scrape time and must be safe for
	// concurrent use. Nil means no per-profile gauges.
	Profiles func() []health.ProfileStatus
	// WorkloadAPI returns the Workload API connection's state: "connected", "connecting",
	// "no_identity" or "error". It is called at scrape time. Nil omits the Workload API gauges.
	WorkloadAPI func() string
	// Reload reports whether the last config reload was applied (true before any); nil: not exported.
	Reload func() bool
	// MinRemaining is the credential lifetime a profile needs left for profile_ready to be 1
	// (default DefaultMinRemaining).
	MinRemaining time.Duration
	// Clock returns the current time, for profile_ready (default time.Now).
	Clock func() time.Time
}

// Attempt describes one credential refresh attempt (one CreateSession call).
type Attempt struct {
	// Profile is the bridge profile's name.
	Profile string
	// Result is ResultSuccess or ResultFailure; anything other than ResultSuccess counts as a failure.
	Result string
	// ErrorType classifies a failure, e.g. "ThrottlingException" or "network"; ignored on success.
	ErrorType string
	// Hop names the step that failed: "rolesanywhere" or "assume_role[i]" (never an ARN); ignored on
	// success.
	Hop string
	// Latency is how long the attempt took; zero or negative records no latency.
	Latency time.Duration
}

// Metrics holds the bridge's Prometheus metrics and their registry. Its methods are safe for
// concurrent use.
type Metrics struct {
	registry *prometheus.Registry
	handler  http.Handler

	refreshes        *prometheus.CounterVec
	refreshErrors    *prometheus.CounterVec
	throttles        *prometheus.CounterVec
	sessionDuration  *prometheus.HistogramVec
	sinkWrites       *prometheus.CounterVec
	endpointRequests *prometheus.CounterVec
}

// New returns a Metrics with its own registry, holding the bridge's metrics plus the standard Go
// runtime and process collectors.
func New(o Options) *Metrics {
	ns := o.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	version := o.Version
	if version == "" {
		version = DefaultVersion
	}
	minRemaining := o.MinRemaining
	if minRemaining <= 0 {
		minRemaining = DefaultMinRemaining
	}
	clock := o.Clock
	if clock == nil {
		clock = time.Now
	}

	m := &Metrics{
		registry: prometheus.NewRegistry(),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "refreshes_total",
			Help: "Credential refresh attempts (CreateSession calls), by profile and result.",
		}, []string{"profile", "result"}),
		refreshErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "refresh_errors_total",
			Help: "Failed credential refresh attempts, by profile, error type and hop (rolesanywhere, or assume_role[i] for the profile's i-th role-chaining hop).",
		}, []string{"profile", "error_type", "hop"}),
		throttles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "throttles_total",
			Help: "Refresh attempts rejected with ThrottlingException, by profile.",
		}, []string{"profile"}),
		sessionDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "create_session_duration_seconds",
			Help:    "Duration of credential refresh attempts (CreateSession calls), by profile.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"profile"}),
		sinkWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "sink_writes_total",
			Help: "Credential writes to sinks, by profile, sink and result.",
		}, []string{"profile", "sink", "result"}),
		endpointRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "endpoint_requests_total",
			Help: "Requests to the credential endpoints, by endpoint, profile and HTTP status code.",
		}, []string{"endpoint", "profile", "code"}),
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: ns, Name: "build_info",
		Help:        "Always 1; the version label is the bridge's version.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	buildInfo.Set(1)
	if o.Reload != nil {
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Name: "config_last_reload_successful",
			Help: "1 if the last config reload was applied (or none was asked for), 0 if it was refused: every profile then runs its previous config.",
		}, func() float64 { return boolValue(o.Reload()) }))
	}

	m.registry.MustRegister(
		m.refreshes, m.refreshErrors, m.throttles, m.sessionDuration, m.sinkWrites, m.endpointRequests,
		buildInfo,
		newStateCollector(ns, o.Profiles, o.WorkloadAPI, minRemaining, clock),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.handler = promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.registry,
	})
	return m
}

// ObserveAttempt records one credential refresh attempt.
func (m *Metrics) ObserveAttempt(a Attempt) {
	result := ResultSuccess
	if a.Result != ResultSuccess {
		result = ResultFailure
	}
	m.refreshes.WithLabelValues(a.Profile, result).Inc()
	if result == ResultFailure {
		errType := errtype.Label(a.ErrorType) // a fixed set: never a server's own string
		m.refreshErrors.WithLabelValues(a.Profile, errType, hopLabel(a.Hop)).Inc()
		if errType == ThrottlingErrorType {
			m.throttles.WithLabelValues(a.Profile).Inc()
		}
	}
	if a.Latency > 0 {
		m.sessionDuration.WithLabelValues(a.Profile).Observe(a.Latency.Seconds())
	}
}

// hopLabel keeps the hop label to its forms: "", "rolesanywhere" or "assume_role[i]"; anything else is
// "other".
func hopLabel(h string) string {
	if h == "" || h == "rolesanywhere" {
		return h
	}
	if i, ok := strings.CutPrefix(h, "assume_role["); ok && strings.HasSuffix(i, "]") && len(i) > 1 && len(i) <= 4 &&
		strings.Trim(i[:len(i)-1], "0123456789") == "" {
		return h
	}
	return "other"
}

// ObserveSink records one credential write of profile to sink; a nil err is a success.
func (m *Metrics) ObserveSink(profile, sink string, err error) {
	result := ResultSuccess
	if err != nil {
		result = ResultFailure
	}
	m.sinkWrites.WithLabelValues(profile, sink, result).Inc()
}

// ObserveEndpointRequest records one request to a credential endpoint serving profile, answered with
// the HTTP status code status.
func (m *Metrics) ObserveEndpointRequest(endpoint, profile string, status int) {
	m.endpointRequests.WithLabelValues(endpoint, profile, strconv.Itoa(status)).Inc()
}

// Registry returns the private registry holding every metric.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Handler returns an HTTP handler serving the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler { return m.handler }

// stateCollector computes the per-profile and Workload API gauges at scrape time.
type stateCollector struct {
	profiles     func() []health.ProfileStatus
	workloadAPI  func() string
	minRemaining time.Duration
	clock        func() time.Time

	credsExpiry, svidExpiry, lastSuccess, failures, ready, identity *prometheus.Desc
	state, sinkOK, sinkFailures                                     *prometheus.Desc
	wlConnected, wlState                                            *prometheus.Desc
}

func newStateCollector(ns string, profiles func() []health.ProfileStatus, workloadAPI func() string,
	minRemaining time.Duration, clock func() time.Time) *stateCollector {
	name := func(n string) string { return prometheus.BuildFQName(ns, "", n) }
	profile := []string{"profile"}
	return &stateCollector{
		profiles:     profiles,
		workloadAPI:  workloadAPI,
		minRemaining: minRemaining,
		clock:        clock,
		credsExpiry: prometheus.NewDesc(name("credentials_expiry_timestamp_seconds"),
			"When the profile's current AWS credentials expire, in Unix seconds.", profile, nil),
		svidExpiry: prometheus.NewDesc(name("svid_expiry_timestamp_seconds"),
			"When the profile's current X.509-SVID expires, in Unix seconds.", profile, nil),
		lastSuccess: prometheus.NewDesc(name("last_success_timestamp_seconds"),
			"When the profile last obtained credentials, in Unix seconds.", profile, nil),
		failures: prometheus.NewDesc(name("consecutive_failures"),
			"Refresh failures since the profile's last success.", profile, nil),
		ready: prometheus.NewDesc(name("profile_ready"),
			"1 if the profile is ready: its credentials have at least "+minRemaining.String()+" left (half the session for shorter sessions) and every one of its sinks holds them, else 0.", profile, nil),
		state: prometheus.NewDesc(name("profile_state"),
			"1 for the profile's state, 0 for the others: ready (every sink holds fresh credentials), degraded (some sinks hold them, others fail: /ready still answers 200) or not_ready (it delivers to no workload: /ready answers 503).", []string{"profile", "state"}, nil),
		sinkOK: prometheus.NewDesc(name("sink_ok"),
			"1 if the sink's last write succeeded (it holds the profile's current credentials; a hook ran for them), else 0.", []string{"profile", "sink"}, nil),
		sinkFailures: prometheus.NewDesc(name("sink_failures"),
			"Failed writes to the profile's sinks since the profile started (every sink, every attempt; sink_writes_total has them by sink).", profile, nil),
		identity: prometheus.NewDesc(name("profile_identity"),
			"1 for the profile's identity state, 0 for the others: ok (a usable X.509-SVID), no_identity (the Workload API no longer issues it) or svid_expired (past NotAfter). Only ok mints credentials.", []string{"profile", "state"}, nil),
		wlConnected: prometheus.NewDesc(name("workload_api_connected"),
			"1 if the Workload API connection is up, else 0.", nil, nil),
		wlState: prometheus.NewDesc(name("workload_api_state"),
			"1 for the Workload API connection's current state, 0 for the others.", []string{"state"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.credsExpiry, c.svidExpiry, c.lastSuccess, c.failures, c.ready, c.identity, c.state, c.sinkOK, c.sinkFailures, c.wlConnected, c.wlState} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if c.workloadAPI != nil {
		state := c.workloadAPI()
		ch <- prometheus.MustNewConstMetric(c.wlConnected, prometheus.GaugeValue, boolValue(state == "connected"))
		for _, s := range [...]string{"connecting", "connected", "no_identity", "error"} {
			ch <- prometheus.MustNewConstMetric(c.wlState, prometheus.GaugeValue, boolValue(s == state), s)
		}
	}
	if c.profiles == nil {
		return
	}
	now := c.clock()
	seen := map[string]bool{}
	for _, p := range c.profiles() {
		// A profile reported twice would make the whole scrape fail; keep the first.
		if p.Profile == "" || seen[p.Profile] {
			continue
		}
		seen[p.Profile] = true
		timestamp := func(d *prometheus.Desc, t time.Time) {
			if !t.IsZero() {
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, unixSeconds(t), p.Profile)
			}
		}
		timestamp(c.credsExpiry, p.Expiration)
		timestamp(c.svidExpiry, p.SVIDExpiry)
		timestamp(c.lastSuccess, p.LastSuccess)
		ch <- prometheus.MustNewConstMetric(c.failures, prometheus.GaugeValue, float64(p.ConsecutiveFailures), p.Profile)
		state, _ := p.Readiness(now, c.minRemaining)
		ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, boolValue(state == health.StateReady), p.Profile)
		for _, st := range health.States {
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, boolValue(st == state), p.Profile, st)
		}
		ch <- prometheus.MustNewConstMetric(c.sinkFailures, prometheus.GaugeValue, float64(p.SinkFailures), p.Profile)
		sinks := map[string]bool{}
		for _, sk := range p.Sinks {
			if !sinks[sk.Name] { // a sink named twice would make the whole scrape fail; keep the first
				sinks[sk.Name] = true
				ch <- prometheus.MustNewConstMetric(c.sinkOK, prometheus.GaugeValue, boolValue(sk.OK), p.Profile, sk.Name)
			}
		}
		for _, st := range IdentityStates {
			cur := p.Identity
			if cur == "" {
				cur = IdentityOK
			}
			ch <- prometheus.MustNewConstMetric(c.identity, prometheus.GaugeValue, boolValue(st == cur), p.Profile, st)
		}
	}
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
