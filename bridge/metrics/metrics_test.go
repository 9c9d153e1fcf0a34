package metrics

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/health"
)

const ns = DefaultNamespace + "_"

// fakeState is a concurrency-safe injected clock, profile list and Workload API state.
type fakeState struct {
	mu       sync.Mutex
	now      time.Time
	profiles []health.ProfileStatus
	wl       string
}

func (f *fakeState) Clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeState) Profiles() []health.ProfileStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]health.ProfileStatus(nil), f.profiles...)
}

func (f *fakeState) WorkloadAPI() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.wl
}

func (f *fakeState) set(now time.Time, wl string, profiles ...health.ProfileStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now, f.wl, f.profiles = now, wl, profiles
}

func baseTime() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }

func TestObserveAttempt(t *testing.T) {
	m := New(Options{})
	m.ObserveAttempt(Attempt{Profile: "app", Result: ResultSuccess, Latency: 120 * time.Millisecond})
	m.ObserveAttempt(Attempt{Profile: "app", Result: ResultSuccess, Latency: 80 * time.Millisecond})
	m.ObserveAttempt(Attempt{Profile: "app", Result: ResultFailure, ErrorType: "ThrottlingException", Hop: "rolesanywhere", Latency: time.Second})
	m.ObserveAttempt(Attempt{Profile: "app", Result: ResultFailure, ErrorType: "network", Hop: "assume_role[1]"})
	m.ObserveAttempt(Attempt{Profile: "other", Result: "bogus"})
	m.ObserveAttempt(Attempt{Profile: "app", Result: ResultFailure, ErrorType: "Injected{le=\"x\"}", Hop: "arn:aws:iam::1:role/x"}) // a server's own string

	checks := []struct {
		got  float64
		want float64
		what string
	}{
		{testutil.ToFloat64(m.refreshes.WithLabelValues("app", "success")), 2, "app success"},
		{testutil.ToFloat64(m.refreshes.WithLabelValues("app", "failure")), 3, "app failure"},
		{testutil.ToFloat64(m.refreshes.WithLabelValues("other", "failure")), 1, "other failure (bogus result)"},
		{testutil.ToFloat64(m.refreshErrors.WithLabelValues("app", "ThrottlingException", "rolesanywhere")), 1, "app throttling error at the Roles Anywhere hop"},
		{testutil.ToFloat64(m.refreshErrors.WithLabelValues("app", "network", "assume_role[1]")), 1, "app network error at a chained hop"},
		{testutil.ToFloat64(m.refreshErrors.WithLabelValues("other", "other", "")), 1, "other profile: empty error type"},
		{testutil.ToFloat64(m.refreshErrors.WithLabelValues("app", "other", "other")), 1, "app: undocumented error type labelled other, a malformed hop too"},
		{testutil.ToFloat64(m.throttles.WithLabelValues("app")), 1, "app throttles"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	// Only the fixed set of labels (package errtype) ever appears: app has network, throttling, other.
	if n := testutil.CollectAndCount(m.refreshErrors); n != 4 {
		t.Errorf("refresh_errors_total series = %d, want 4 (ThrottlingException, network, other ×2 profiles)", n)
	}
	// No throttle series for a profile never throttled; one histogram series (app), 3 observations.
	if n := testutil.CollectAndCount(m.throttles); n != 1 {
		t.Errorf("throttles series = %d, want 1", n)
	}
	if n := testutil.CollectAndCount(m.sessionDuration); n != 1 {
		t.Errorf("histogram series = %d, want 1", n)
	}
	want := `
# HELP spiffe_aws_bridge_create_session_duration_seconds Duration of credential refresh attempts (CreateSession calls), by profile.
# TYPE spiffe_aws_bridge_create_session_duration_seconds histogram
spiffe_aws_bridge_create_session_duration_seconds_bucket{profile="app",le="0.05"} 0
spiffe_aws_bridge_create_session_duration_seconds_bucket{profile="app",le="0.1"} 1
spiffe_aws_bridge_create_session_duration_seconds_bucket{profile="app",le="0.25"} 2
spiffe_aws_bridge_create_session_duration_seconds_bucket{profile="app",le="0.5"} 2
spiffe_aws_bridge_create_session_duration_seconds_bucket{profile="app",le="1"} 3
spiffe_aws_bridge_create_session_duration_seconds_bucket{profile="app",le="2.5"} 3
spiffe_aws_bridge_create_session_duration_seconds_bucket{profile="app",le="5"} 3
spiffe_aws_bridge_create_session_duration_seconds_bucket{profile="app",le="10"} 3
spiffe_aws_bridge_create_session_duration_seconds_bucket{profile="app",le="30"} 3
spiffe_aws_bridge_create_session_duration_seconds_bucket{profile="app",le="+Inf"} 3
spiffe_aws_bridge_create_session_duration_seconds_sum{profile="app"} 1.2
spiffe_aws_bridge_create_session_duration_seconds_count{profile="app"} 3
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), ns+"create_session_duration_seconds"); err != nil {
		t.Error(err)
	}
}

func TestObserveSinkAndEndpoint(t *testing.T) {
	m := New(Options{})
	m.ObserveSink("app", "file", nil)
	m.ObserveSink("app", "file", nil)
	m.ObserveSink("app", "file", errors.New("disk full"))
	m.ObserveEndpointRequest("imds", "app", 200)
	m.ObserveEndpointRequest("imds", "app", 200)
	m.ObserveEndpointRequest("ecs", "app", 401)

	want := `
# HELP spiffe_aws_bridge_sink_writes_total Credential writes to sinks, by profile, sink and result.
# TYPE spiffe_aws_bridge_sink_writes_total counter
spiffe_aws_bridge_sink_writes_total{profile="app",result="failure",sink="file"} 1
spiffe_aws_bridge_sink_writes_total{profile="app",result="success",sink="file"} 2
# HELP spiffe_aws_bridge_endpoint_requests_total Requests to the credential endpoints, by endpoint, profile and HTTP status code.
# TYPE spiffe_aws_bridge_endpoint_requests_total counter
spiffe_aws_bridge_endpoint_requests_total{code="200",endpoint="imds",profile="app"} 2
spiffe_aws_bridge_endpoint_requests_total{code="401",endpoint="ecs",profile="app"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		ns+"sink_writes_total", ns+"endpoint_requests_total"); err != nil {
		t.Error(err)
	}
}

func TestStateGauges(t *testing.T) {
	now := baseTime()
	st := &fakeState{}
	m := New(Options{Profiles: st.Profiles, WorkloadAPI: st.WorkloadAPI, Clock: st.Clock, Version: "1.2.3"})

	st.set(now, "connecting",
		health.ProfileStatus{Profile: "new", SpiffeID: "spiffe://example.org/new", RoleARN: "arn:aws:iam::1:role/r"},
		health.ProfileStatus{
			Profile: "app", SpiffeID: "spiffe://example.org/app", RoleARN: "arn:aws:iam::1:role/r",
			Expiration: now.Add(time.Hour), SVIDExpiry: now.Add(30 * time.Minute),
			LastSuccess: now.Add(-time.Minute), ConsecutiveFailures: 2, LastError: "secret-looking error text",
		},
		health.ProfileStatus{Profile: "app", Expiration: now}, // duplicate: ignored
		health.ProfileStatus{Profile: ""},                     // nameless: ignored
	)
	u := now.Unix()
	want := fmt.Sprintf(`
# HELP spiffe_aws_bridge_build_info Always 1; the version label is the bridge's version.
# TYPE spiffe_aws_bridge_build_info gauge
spiffe_aws_bridge_build_info{version="1.2.3"} 1
# HELP spiffe_aws_bridge_consecutive_failures Refresh failures since the profile's last success.
# TYPE spiffe_aws_bridge_consecutive_failures gauge
spiffe_aws_bridge_consecutive_failures{profile="app"} 2
spiffe_aws_bridge_consecutive_failures{profile="new"} 0
# HELP spiffe_aws_bridge_credentials_expiry_timestamp_seconds When the profile's current AWS credentials expire, in Unix seconds.
# TYPE spiffe_aws_bridge_credentials_expiry_timestamp_seconds gauge
spiffe_aws_bridge_credentials_expiry_timestamp_seconds{profile="app"} %d
# HELP spiffe_aws_bridge_last_success_timestamp_seconds When the profile last obtained credentials, in Unix seconds.
# TYPE spiffe_aws_bridge_last_success_timestamp_seconds gauge
spiffe_aws_bridge_last_success_timestamp_seconds{profile="app"} %d
# HELP spiffe_aws_bridge_profile_ready 1 if the profile is ready: its credentials have at least 15m0s left (half the session for shorter sessions) and every one of its sinks holds them, else 0.
# TYPE spiffe_aws_bridge_profile_ready gauge
spiffe_aws_bridge_profile_ready{profile="app"} 1
spiffe_aws_bridge_profile_ready{profile="new"} 0
# HELP spiffe_aws_bridge_svid_expiry_timestamp_seconds When the profile's current X.509-SVID expires, in Unix seconds.
# TYPE spiffe_aws_bridge_svid_expiry_timestamp_seconds gauge
spiffe_aws_bridge_svid_expiry_timestamp_seconds{profile="app"} %d
# HELP spiffe_aws_bridge_workload_api_connected 1 if the Workload API connection is up, else 0.
# TYPE spiffe_aws_bridge_workload_api_connected gauge
spiffe_aws_bridge_workload_api_connected 0
# HELP spiffe_aws_bridge_workload_api_state 1 for the Workload API connection's current state, 0 for the others.
# TYPE spiffe_aws_bridge_workload_api_state gauge
spiffe_aws_bridge_workload_api_state{state="connected"} 0
spiffe_aws_bridge_workload_api_state{state="connecting"} 1
spiffe_aws_bridge_workload_api_state{state="error"} 0
spiffe_aws_bridge_workload_api_state{state="no_identity"} 0
`, u+3600, u-60, u+1800)
	names := []string{"build_info", "consecutive_failures", "credentials_expiry_timestamp_seconds",
		"last_success_timestamp_seconds", "profile_ready", "svid_expiry_timestamp_seconds",
		"workload_api_connected", "workload_api_state"}
	for i := range names {
		names[i] = ns + names[i]
	}
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}

	// Time passes: app drops under 15 minutes; the Workload API connects.
	st.set(now.Add(45*time.Minute+time.Second), "connected", st.Profiles()[:2]...)
	got := scrapeRegistry(t, m)
	for series, v := range map[string]float64{
		ns + `profile_ready{profile="app"}`:                        0,
		ns + `workload_api_connected`:                              1,
		ns + `workload_api_state{state="connected"}`:               1,
		ns + `workload_api_state{state="connecting"}`:              0,
		ns + `credentials_expiry_timestamp_seconds{profile="app"}`: float64(u + 3600),
	} {
		if got[series] != v {
			t.Errorf("%s = %v, want %v", series, got[series], v)
		}
	}
	// Exactly 15 minutes left: ready.
	st.set(now.Add(45*time.Minute), "connected", st.Profiles()...)
	if got := scrapeRegistry(t, m)[ns+`profile_ready{profile="app"}`]; got != 1 {
		t.Errorf("profile_ready with exactly 15m left = %v", got)
	}
	// An unknown Workload API state reports 0 everywhere and adds no label value.
	st.set(now, "weird", st.Profiles()...)
	got = scrapeRegistry(t, m)
	if got[ns+"workload_api_connected"] != 0 {
		t.Error("connected with unknown state")
	}
	for series := range got {
		if strings.Contains(series, "weird") {
			t.Errorf("unknown state leaked into %s", series)
		}
	}
	// Profiles removed: their gauges go away.
	st.set(now, "connected")
	if n := testutil.CollectAndCount(m.Registry(), ns+"profile_ready"); n != 0 {
		t.Errorf("profile_ready series after removing profiles = %d", n)
	}
}

func TestNilCallbacks(t *testing.T) {
	m := New(Options{Namespace: "custom"})
	for _, name := range []string{"custom_profile_ready", "custom_workload_api_connected", "custom_workload_api_state"} {
		if n := testutil.CollectAndCount(m.Registry(), name); n != 0 {
			t.Errorf("%s: %d series with nil callbacks", name, n)
		}
	}
	if n := testutil.CollectAndCount(m.Registry(), "custom_build_info"); n != 1 {
		t.Errorf("custom_build_info: %d series", n)
	}
	if got := scrapeRegistry(t, m)[`custom_build_info{version="dev"}`]; got != 1 {
		t.Errorf("default version build_info = %v", got)
	}
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(""), ns+"build_info"); err != nil {
		t.Errorf("default namespace used despite Namespace option: %v", err)
	}
}

// scrapeRegistry serves m.Handler() through a server and parses the text exposition.
func scrapeRegistry(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	s, err := NewServer(m, ServerOptions{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	return scrape(t, "http://"+s.Addr()+MetricsPath)
}

// scrape fetches url and parses its text exposition into series → value (labels as exposed).
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q", ct)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for line := range strings.SplitSeq(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad value in %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func TestHTTPScrape(t *testing.T) {
	now := baseTime()
	st := &fakeState{}
	st.set(now, "connected", health.ProfileStatus{
		Profile: "web", SpiffeID: "spiffe://example.org/web", RoleARN: "arn:aws:iam::123456789012:role/web",
		Expiration: now.Add(10 * time.Minute), LastError: "AccessDenied: not authorized for arn:aws:iam::123456789012:role/web",
		LastErrorType: "AccessDeniedException", FailingSinks: []string{"/home/me/.aws/credentials"},
	})
	m := New(Options{Profiles: st.Profiles, WorkloadAPI: st.WorkloadAPI, Clock: st.Clock})
	s, err := NewServer(m, ServerOptions{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	url := "http://" + s.Addr() + MetricsPath

	before := scrape(t, url)
	if _, ok := before[ns+`refreshes_total{profile="web",result="success"}`]; ok {
		t.Error("refreshes_total present before any attempt")
	}
	if before[ns+`profile_ready{profile="web"}`] != 0 {
		t.Error("web ready with 10m left")
	}
	if before[ns+"workload_api_connected"] != 1 {
		t.Error("workload_api_connected != 1")
	}
	if _, ok := before["go_goroutines"]; !ok {
		t.Error("go runtime metrics missing")
	}

	m.ObserveAttempt(Attempt{Profile: "web", Result: ResultSuccess, Latency: 300 * time.Millisecond})
	m.ObserveAttempt(Attempt{Profile: "web", Result: ResultFailure, ErrorType: "ThrottlingException", Hop: "assume_role[0]", Latency: 2 * time.Second})
	m.ObserveSink("web", "file", errors.New("permission denied"))
	m.ObserveEndpointRequest("imds", "web", 200)
	st.set(now, "error", health.ProfileStatus{Profile: "web", Expiration: now.Add(time.Hour), ConsecutiveFailures: 1})

	after := scrape(t, url)
	for series, v := range map[string]float64{
		ns + `refreshes_total{profile="web",result="success"}`:                                           1,
		ns + `refreshes_total{profile="web",result="failure"}`:                                           1,
		ns + `refresh_errors_total{error_type="ThrottlingException",hop="assume_role[0]",profile="web"}`: 1,
		ns + `throttles_total{profile="web"}`:                                                            1,
		ns + `create_session_duration_seconds_count{profile="web"}`:                                      2,
		ns + `create_session_duration_seconds_sum{profile="web"}`:                                        2.3,
		ns + `sink_writes_total{profile="web",result="failure",sink="file"}`:                             1,
		ns + `endpoint_requests_total{code="200",endpoint="imds",profile="web"}`:                         1,
		ns + `profile_ready{profile="web"}`:                                                              1,
		ns + `consecutive_failures{profile="web"}`:                                                       1,
		ns + `workload_api_connected`:                                                                    0,
		ns + `workload_api_state{state="error"}`:                                                         1,
		ns + `build_info{version="dev"}`:                                                                 1,
	} {
		got, ok := after[series]
		if !ok {
			t.Errorf("%s missing", series)
		} else if got != v {
			t.Errorf("%s = %v, want %v", series, got, v)
		}
	}

	// Only given profile names appear as profile label values; nothing from SPIFFE IDs, ARNs, errors
	// or sink paths leaks into any series.
	for _, body := range []map[string]float64{before, after} {
		for series := range body {
			if i := strings.Index(series, `profile="`); i >= 0 {
				rest := series[i+len(`profile="`):]
				if name := rest[:strings.IndexByte(rest, '"')]; name != "web" {
					t.Errorf("%s: profile label %q", series, name)
				}
			}
			for _, secret := range []string{"spiffe://", "arn:aws", "AccessDenied", "not authorized", ".aws", "permission denied"} {
				if strings.Contains(series, secret) {
					t.Errorf("%s contains %q", series, secret)
				}
			}
		}
	}

	// Other paths are not served.
	resp, err := http.Get("http://" + s.Addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /: %d", resp.StatusCode)
	}
}

func TestServerBind(t *testing.T) {
	m := New(Options{})
	for _, addr := range []string{"0.0.0.0:9090", ":9090", "192.168.1.10:0", "[::]:0"} {
		_, err := NewServer(m, ServerOptions{Addr: addr})
		if err == nil {
			t.Errorf("%s accepted without allowRemote", addr)
			continue
		}
		if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "set allow_remote = true") {
			t.Errorf("%s: error %q should name the address and say set allow_remote = true", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0", "localhost:0"} {
		if _, err := NewServer(m, ServerOptions{Addr: addr}); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
	if _, err := NewServer(nil, ServerOptions{Addr: "127.0.0.1:0"}); err == nil {
		t.Error("nil Metrics accepted")
	}

	s, err := NewServer(m, ServerOptions{Addr: "0.0.0.0:0", AllowRemote: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	addr := s.Addr()
	port := addr[strings.LastIndex(addr, ":")+1:]
	if got := scrape(t, "http://127.0.0.1:"+port+MetricsPath)[ns+`build_info{version="dev"}`]; got != 1 {
		t.Errorf("build_info via remote bind = %v", got)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Start(); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func TestConcurrentUse(t *testing.T) {
	now := baseTime()
	st := &fakeState{}
	st.set(now, "connected", health.ProfileStatus{Profile: "a", Expiration: now.Add(time.Hour)})
	m := New(Options{Profiles: st.Profiles, WorkloadAPI: st.WorkloadAPI, Clock: st.Clock})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 50 {
				m.ObserveAttempt(Attempt{Profile: "a", Result: ResultSuccess, Latency: time.Millisecond})
				m.ObserveSink("a", "file", nil)
				m.ObserveEndpointRequest("imds", "a", 200+i)
			}
		}()
		go func() {
			defer wg.Done()
			for range 10 {
				if _, err := m.Registry().Gather(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if got := testutil.ToFloat64(m.refreshes.WithLabelValues("a", "success")); got != 200 {
		t.Errorf("refreshes = %v, want 200", got)
	}
}

// TestProfileStateAndSinkGauges: profile_state tells ready, degraded and not_ready apart, as /ready does;
// sink_ok has one series per sink; sink_failures counts failed writes.
func TestProfileStateAndSinkGauges(t *testing.T) {
	now := baseTime()
	st := &fakeState{}
	m := New(Options{Profiles: st.Profiles, Clock: st.Clock})
	file := `credentials_file "/ro/credentials" [app]`
	profile := func(name string, sinks ...health.SinkStatus) health.ProfileStatus {
		failures := 0
		for _, s := range sinks {
			failures += s.Failures
		}
		return health.ProfileStatus{Profile: name, LastSuccess: now, Expiration: now.Add(time.Hour), Sinks: sinks, SinkFailures: failures}
	}
	st.set(now, "connected",
		profile("good", health.SinkStatus{Name: file, OK: true}),
		profile("some", health.SinkStatus{Name: file, Failures: 3, LastError: "read-only file system"}, health.SinkStatus{Name: "imds", OK: true}),
		profile("none", health.SinkStatus{Name: file, Failures: 1, LastError: "read-only file system"}),
	)
	got := scrapeRegistry(t, m)
	for series, v := range map[string]float64{
		ns + `profile_state{profile="good",state="ready"}`:                                1,
		ns + `profile_state{profile="good",state="degraded"}`:                             0,
		ns + `profile_state{profile="some",state="degraded"}`:                             1,
		ns + `profile_state{profile="some",state="ready"}`:                                0,
		ns + `profile_state{profile="none",state="not_ready"}`:                            1,
		ns + `profile_state{profile="none",state="degraded"}`:                             0,
		ns + `profile_ready{profile="good"}`:                                              1,
		ns + `profile_ready{profile="some"}`:                                              0,
		ns + `profile_ready{profile="none"}`:                                              0,
		ns + `sink_ok{profile="good",sink="` + strings.ReplaceAll(file, `"`, `\"`) + `"}`: 1,
		ns + `sink_ok{profile="some",sink="imds"}`:                                        1,
		ns + `sink_ok{profile="none",sink="` + strings.ReplaceAll(file, `"`, `\"`) + `"}`: 0,
		ns + `sink_failures{profile="some"}`:                                              3,
		ns + `sink_failures{profile="good"}`:                                              0,
	} {
		if g, ok := got[series]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", series, g, ok, v)
		}
	}
	if n := testutil.CollectAndCount(m.Registry(), ns+"profile_state"); n != 9 {
		t.Errorf("profile_state has %d series, want 3 per profile", n)
	}
	for series := range got {
		if strings.Contains(series, "read-only") {
			t.Errorf("an error message leaked into %s", series)
		}
	}
}
