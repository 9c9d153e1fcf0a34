package health

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeState is a concurrency-safe injected clock and profile list.
type fakeState struct {
	mu       sync.Mutex
	now      time.Time
	profiles []ProfileStatus
}

func (f *fakeState) Clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeState) Profiles() []ProfileStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ProfileStatus(nil), f.profiles...)
}

func (f *fakeState) set(now time.Time, profiles ...ProfileStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now, f.profiles = now, profiles
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func startServer(t *testing.T, o Options) *Server {
	t.Helper()
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	s, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func get(t *testing.T, method, url string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

func decode(t *testing.T, body []byte) Report {
	t.Helper()
	var r Report
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	return r
}

func TestReadyTransitions(t *testing.T) {
	st := &fakeState{}
	st.set(t0, ProfileStatus{Profile: "app", SpiffeID: "spiffe://example.org/app", RoleARN: "arn:aws:iam::123456789012:role/app"})
	s := startServer(t, Options{Profiles: st.Profiles, Clock: st.Clock,
		WorkloadAPI: func() (string, string) { return "connected", "" }})
	base := "http://" + s.Addr()

	// No credentials yet: live but not ready.
	code, hdr, body := get(t, http.MethodGet, base+"/ready")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("ready without credentials: got %d, want 503: %s", code, body)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	r := decode(t, body)
	if r.Ready || !r.Live || len(r.Profiles) != 1 || r.Profiles[0].Reason != "no credentials yet" || r.Profiles[0].Remaining != "" {
		t.Errorf("report without credentials: %+v", r)
	}
	code, _, body = get(t, http.MethodGet, base+"/live")
	if code != http.StatusOK || !decode(t, body).Live {
		t.Errorf("live: got %d %s", code, body)
	}

	// Fresh credentials: ready.
	exp := t0.Add(time.Hour)
	p := ProfileStatus{Profile: "app", Expiration: exp, LastSuccess: t0, Refreshes: 1}
	st.set(t0, p)
	code, _, body = get(t, http.MethodGet, base+"/ready")
	if code != http.StatusOK {
		t.Fatalf("ready with 1h left: got %d: %s", code, body)
	}
	r = decode(t, body)
	if !r.Ready || !r.Profiles[0].Ready || r.Profiles[0].Remaining != "1h0m0s" || r.Profiles[0].Reason != "" {
		t.Errorf("ready report: %+v", r)
	}

	// Exactly MinRemaining left: still ready.
	st.set(exp.Add(-DefaultMinRemaining), p)
	if code, _, body = get(t, http.MethodGet, base+"/ready"); code != http.StatusOK {
		t.Errorf("ready with exactly 15m left: got %d: %s", code, body)
	}

	// Less than MinRemaining left: not ready, with a reason.
	st.set(exp.Add(-(9*time.Minute + 59*time.Second + 500*time.Millisecond)), p)
	code, _, body = get(t, http.MethodGet, base+"/ready")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("ready with 9m59s left: got %d: %s", code, body)
	}
	r = decode(t, body)
	if want := "credentials expire in 9m59s (< 15m0s)"; r.Profiles[0].Reason != want {
		t.Errorf("reason = %q, want %q", r.Profiles[0].Reason, want)
	}
	if r.Profiles[0].Remaining != "9m59s" {
		t.Errorf("remaining = %q", r.Profiles[0].Remaining)
	}
	// Live stays 200 regardless.
	if code, _, _ = get(t, http.MethodGet, base+"/live"); code != http.StatusOK {
		t.Errorf("live while not ready: %d", code)
	}

	// Expired.
	st.set(exp.Add(time.Minute), p)
	code, _, body = get(t, http.MethodGet, base+"/ready")
	r = decode(t, body)
	if code != http.StatusServiceUnavailable || r.Profiles[0].Reason != "credentials expired 1m0s ago" {
		t.Errorf("expired: %d %+v", code, r)
	}

	// Refreshed again: ready.
	p.Expiration = exp.Add(2 * time.Hour)
	st.set(exp.Add(time.Minute), p)
	if code, _, body = get(t, http.MethodGet, base+"/ready"); code != http.StatusOK {
		t.Errorf("after refresh: %d %s", code, body)
	}
}

func TestReadyNeedsAllProfiles(t *testing.T) {
	st := &fakeState{}
	good := ProfileStatus{Profile: "a", Expiration: t0.Add(time.Hour)}
	bad := ProfileStatus{Profile: "b", Expiration: t0.Add(5 * time.Minute)}
	st.set(t0, good, bad)
	s, err := New(Options{Addr: "127.0.0.1:0", Profiles: st.Profiles, Clock: st.Clock, MinRemaining: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	r := s.Report()
	if r.Ready || !r.Profiles[0].Ready || r.Profiles[1].Ready {
		t.Errorf("one bad profile: %+v", r)
	}
	if want := "credentials expire in 5m0s (< 10m0s)"; r.Profiles[1].Reason != want {
		t.Errorf("reason = %q, want %q", r.Profiles[1].Reason, want)
	}
	bad.Expiration = t0.Add(10 * time.Minute)
	st.set(t0, good, bad)
	if r := s.Report(); !r.Ready {
		t.Errorf("both ready with custom MinRemaining: %+v", r)
	}
}

func TestZeroProfilesReady(t *testing.T) {
	for name, profiles := range map[string]func() []ProfileStatus{
		"nil func":   nil,
		"empty list": func() []ProfileStatus { return nil },
	} {
		t.Run(name, func(t *testing.T) {
			s, err := New(Options{Addr: "127.0.0.1:0", Profiles: profiles})
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, newRequest(s, "/ready"))
			if rec.Code != http.StatusOK {
				t.Errorf("code %d", rec.Code)
			}
			// profiles is an empty array, not null; workload_api defaults to unknown.
			if body := rec.Body.String(); !strings.Contains(body, `"profiles":[]`) ||
				!strings.Contains(body, `"workload_api":{"status":"unknown"}`) || !strings.Contains(body, `"ready":true`) {
				t.Errorf("body %s", body)
			}
		})
	}
}

func TestBodyFields(t *testing.T) {
	st := &fakeState{}
	st.set(t0, ProfileStatus{
		Profile: "app", SpiffeID: "spiffe://example.org/app", RoleARN: "arn:aws:iam::123456789012:role/app",
		LastSuccess: t0.Add(-time.Minute), Expiration: t0.Add(59 * time.Minute),
		SVIDExpiry: t0.Add(30 * time.Minute), NextRefresh: t0.Add(20 * time.Minute),
		LastErrorAt: t0.Add(-2 * time.Minute), LastErrorType: "ThrottlingException", LastError: "rate exceeded",
		ConsecutiveFailures: 0, Refreshes: 3, FailingSinks: []string{"file:/tmp/creds"},
	})
	s := startServer(t, Options{Profiles: st.Profiles, Clock: st.Clock,
		WorkloadAPI: func() (string, string) { return "error", "connection refused" }})
	code, _, body := get(t, http.MethodGet, "http://"+s.Addr()+"/live")
	if code != http.StatusOK {
		t.Fatalf("live: %d", code)
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["live"] != true || raw["ready"] != true {
		t.Errorf("live/ready: %s", body)
	}
	wl := raw["workload_api"].(map[string]any)
	if wl["status"] != "error" || wl["reason"] != "connection refused" {
		t.Errorf("workload_api: %v", wl)
	}
	p := raw["profiles"].([]any)[0].(map[string]any)
	want := map[string]any{
		"profile":              "app",
		"spiffe_id":            "spiffe://example.org/app",
		"role_arn":             "arn:aws:iam::123456789012:role/app",
		"last_success":         "2026-03-01T11:59:00Z",
		"expiration":           "2026-03-01T12:59:00Z",
		"svid_expiry":          "2026-03-01T12:30:00Z",
		"next_refresh":         "2026-03-01T12:20:00Z",
		"last_error_at":        "2026-03-01T11:58:00Z",
		"last_error_type":      "ThrottlingException",
		"last_error":           "rate exceeded",
		"consecutive_failures": 0.0,
		"refreshes":            3.0,
		"failing_sinks":        []any{"file:/tmp/creds"},
		"sink_failures":        0.0,
		// A failing sink makes the profile degraded, no longer ready (it still answers 200: see
		// TestReadinessFollowsDelivery).
		"ready":     false,
		"status":    "degraded",
		"reason":    "failing sinks: file:/tmp/creds",
		"remaining": "59m0s",
	}
	for k, v := range want {
		got, ok := p[k]
		if !ok {
			t.Errorf("field %q missing from %s", k, body)
			continue
		}
		if gj, _ := json.Marshal(got); string(gj) != mustJSON(t, v) {
			t.Errorf("%s = %s, want %s", k, gj, mustJSON(t, v))
		}
	}
	for k := range p {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected field %q", k)
		}
	}
}

func TestZeroTimesOmitted(t *testing.T) {
	s, err := New(Options{Addr: "127.0.0.1:0", Profiles: func() []ProfileStatus { return []ProfileStatus{{Profile: "new"}} }})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, newRequest(s, "/live"))
	body := rec.Body.String()
	for _, k := range []string{"last_success", "expiration", "svid_expiry", "next_refresh", "last_error_at", "remaining", "failing_sinks"} {
		if strings.Contains(body, `"`+k+`"`) {
			t.Errorf("zero %s present in %s", k, body)
		}
	}
	if !strings.Contains(body, `"reason":"no credentials yet"`) {
		t.Errorf("body %s", body)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	s := startServer(t, Options{LivePath: "/healthz/live", ReadyPath: "/healthz/ready"})
	base := "http://" + s.Addr()
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/healthz/live", http.StatusOK},
		{http.MethodGet, "/healthz/ready", http.StatusOK},
		{http.MethodHead, "/healthz/ready", http.StatusOK},
		{http.MethodGet, "/live", http.StatusNotFound},
		{http.MethodGet, "/", http.StatusNotFound},
		{http.MethodGet, "/healthz/ready/x", http.StatusNotFound},
		{http.MethodPost, "/healthz/live", http.StatusMethodNotAllowed},
		{http.MethodPut, "/healthz/ready", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/healthz/ready", http.StatusMethodNotAllowed},
		{http.MethodPost, "/nope", http.StatusNotFound},
	} {
		code, hdr, body := get(t, tc.method, base+tc.path)
		if code != tc.want {
			t.Errorf("%s %s: got %d, want %d", tc.method, tc.path, code, tc.want)
		}
		if code == http.StatusMethodNotAllowed && hdr.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow = %q", tc.method, tc.path, hdr.Get("Allow"))
		}
		if tc.method == http.MethodHead && len(body) != 0 {
			t.Errorf("HEAD returned a body: %q", body)
		}
	}
}

func TestDefaultPaths(t *testing.T) {
	s, err := New(Options{Addr: "localhost:0"})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int{"/live": 200, "/ready": 200, "/other": 404} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, newRequest(s, path))
		if rec.Code != want {
			t.Errorf("%s: %d, want %d", path, rec.Code, want)
		}
	}
}

func TestBindAddress(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":8080", "10.1.2.3:80", "[::]:0", "example.com:80"} {
		_, err := New(Options{Addr: addr})
		if err == nil {
			t.Errorf("%s: no error without AllowRemote", addr)
			continue
		}
		if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "set allow_remote = true") {
			t.Errorf("%s: error %q should name the address and say set allow_remote = true", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "127.9.8.7:0", "[::1]:0", "localhost:0", "LOCALHOST:0"} {
		if _, err := New(Options{Addr: addr}); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
	for _, addr := range []string{"", "127.0.0.1", "nohostport"} {
		if _, err := New(Options{Addr: addr, AllowRemote: true}); err == nil {
			t.Errorf("%q: invalid address accepted", addr)
		}
	}

	// AllowRemote binds every interface.
	s := startServer(t, Options{Addr: "0.0.0.0:0", AllowRemote: true})
	addr := s.Addr()
	if !strings.HasPrefix(addr, "0.0.0.0:") && !strings.HasPrefix(addr, "[::]:") {
		t.Errorf("Addr() = %q", addr)
	}
	port := addr[strings.LastIndex(addr, ":")+1:]
	if code, _, _ := get(t, http.MethodGet, "http://127.0.0.1:"+port+"/live"); code != http.StatusOK {
		t.Errorf("live via remote bind: %d", code)
	}
}

func TestInvalidPaths(t *testing.T) {
	for _, o := range []Options{
		{Addr: "127.0.0.1:0", LivePath: "live"},
		{Addr: "127.0.0.1:0", LivePath: "/x", ReadyPath: "/x"},
		{Addr: "127.0.0.1:0", ReadyPath: "/live"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%+v: accepted", o)
		}
	}
}

func TestLifecycle(t *testing.T) {
	s, err := New(Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr() != "127.0.0.1:0" {
		t.Errorf("Addr before Start = %q", s.Addr())
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close before Start: %v", err)
	}
	if err := s.Start(); err == nil {
		t.Error("Start after Close succeeded")
	}

	s, err = New(Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	addr := s.Addr()
	if strings.HasSuffix(addr, ":0") {
		t.Errorf("Addr after Start = %q", addr)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := http.Get("http://" + addr + "/live"); err == nil {
		t.Error("server still answering after Close")
	}

	// Port in use.
	a := startServer(t, Options{})
	b, err := New(Options{Addr: a.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err == nil {
		b.Close()
		t.Error("Start on a port in use succeeded")
	}
}

func TestConcurrentRequests(t *testing.T) {
	st := &fakeState{}
	st.set(t0, ProfileStatus{Profile: "a", Expiration: t0.Add(time.Hour)})
	s := startServer(t, Options{Profiles: st.Profiles, Clock: st.Clock})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				st.set(t0.Add(time.Duration(i*j)*time.Minute), ProfileStatus{Profile: "a", Expiration: t0.Add(time.Hour)})
				resp, err := http.Get("http://" + s.Addr() + "/ready")
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
}

// TestShortSessionsReadyAtHalfLife: a 15-minute session can never keep 15 minutes; it counts as ready
// while at least half its lifetime remains (the refresher renews it half-way).
func TestShortSessionsReadyAtHalfLife(t *testing.T) {
	issued := t0
	p := ProfileStatus{Profile: "short", LastSuccess: issued, Expiration: issued.Add(15 * time.Minute)}
	if got := p.ReadyThreshold(15 * time.Minute); got != 7*time.Minute+30*time.Second {
		t.Fatalf("threshold %s, want 7m30s", got)
	}
	long := ProfileStatus{LastSuccess: issued, Expiration: issued.Add(time.Hour)}
	if got := long.ReadyThreshold(15 * time.Minute); got != 15*time.Minute {
		t.Fatalf("threshold %s, want 15m", got)
	}
	st := &fakeState{}
	st.set(issued.Add(7*time.Minute), p)
	s := startServer(t, Options{Profiles: st.Profiles, Clock: st.Clock})
	if code := httpStatusOf(t, "http://"+s.Addr()+"/ready"); code != 200 {
		t.Fatalf("8m left of a 15m session: %d, want 200", code)
	}
	st.set(issued.Add(8*time.Minute), p)
	if code := httpStatusOf(t, "http://"+s.Addr()+"/ready"); code != 503 {
		t.Fatalf("7m left of a 15m session: %d, want 503", code)
	}
}

func httpStatusOf(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// newRequest is a GET for path naming s's address as its Host, as the guard requires.
func newRequest(s *Server, path string) *http.Request {
	return httptest.NewRequest(http.MethodGet, "http://"+s.Addr()+path, nil)
}

// A profile without an identity is not ready, whatever its credentials; a refused reload is reported but
// does not change readiness.
func TestIdentityLossIsNotReadyAndReloadIsReported(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	profiles := []ProfileStatus{
		{Profile: "fresh", LastSuccess: now, Expiration: now.Add(time.Hour)},
		{Profile: "revoked", SpiffeID: "spiffe://example.org/app", Identity: "no_identity", LastError: "entry deleted",
			LastSuccess: now, Expiration: now.Add(time.Hour)},
	}
	reload := ReloadReport{Status: "failed", Error: `profile "app" (bridge.hcl:4): imds: listen on 127.0.0.1:1: in use`, At: now}
	s, err := New(Options{Addr: "127.0.0.1:0", Clock: func() time.Time { return now },
		Profiles: func() []ProfileStatus { return profiles }, Reload: func() ReloadReport { return reload }})
	if err != nil {
		t.Fatal(err)
	}
	r := s.Report()
	if r.Ready || !r.Profiles[0].Ready || r.Profiles[1].Ready {
		t.Fatalf("ready = %v, profiles %+v", r.Ready, r.Profiles)
	}
	if got := r.Profiles[1].Reason; !strings.Contains(got, "no_identity") || !strings.Contains(got, "spiffe://example.org/app") {
		t.Errorf("reason %q does not say no_identity for the SPIFFE ID", got)
	}
	if r.ConfigReload == nil || *r.ConfigReload != reload {
		t.Errorf("config_reload = %+v", r.ConfigReload)
	}
	profiles = profiles[:1]
	if r := s.Report(); !r.Ready {
		t.Error("a refused reload made the bridge unready")
	}
}

// TestReadinessFollowsDelivery: a profile is ready only when every one of its sinks holds its current
// credentials; some failing makes it degraded (200, "status": "degraded"); none delivering makes /ready
// fail (503). A hook's failure degrades, a hook's success delivers nothing.
func TestReadinessFollowsDelivery(t *testing.T) {
	file := func(ok bool) SinkStatus {
		s := SinkStatus{Name: `credentials_file "/ro/credentials" [app]`, OK: ok}
		if !ok {
			s.LastError = "credfile: writing /ro/credentials: read-only file system"
		}
		return s
	}
	imds := SinkStatus{Name: "imds", OK: true}
	hook := func(ok bool) SinkStatus {
		s := SinkStatus{Name: "on_refresh", Hook: true, OK: ok}
		if !ok {
			s.LastError = `on_refresh: command "/bin/reload" failed: exit status 1`
		}
		return s
	}
	for _, tc := range []struct {
		name       string
		sinks      []SinkStatus
		code       int
		status     string
		reasonHas  string
		topStatus  string
		profileSet bool
	}{
		{"every sink holds the credentials: ready", []SinkStatus{file(true), imds, hook(true)}, 200, StateReady, "", StateReady, true},
		{"the only sink fails: not ready, naming the path", []SinkStatus{file(false)}, 503, StateNotReady, "/ro/credentials: read-only file system", StateNotReady, false},
		{"one of two sinks fails: degraded", []SinkStatus{file(false), imds}, 200, StateDegraded, "1 of 2 sinks fail: credentials_file", StateDegraded, false},
		{"the file fails, the hook runs: not ready (a hook delivers nothing)", []SinkStatus{file(false), hook(true)}, 503, StateNotReady, "no sink delivers", StateNotReady, false},
		{"the file is written, the hook fails: degraded", []SinkStatus{file(true), hook(false)}, 200, StateDegraded, "exit status 1", StateDegraded, false},
		{"hooks only, failing: not ready", []SinkStatus{hook(false)}, 503, StateNotReady, "no sink delivers", StateNotReady, false},
		{"hooks only, running: ready", []SinkStatus{hook(true)}, 200, StateReady, "", StateReady, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &fakeState{}
			st.set(t0, ProfileStatus{Profile: "app", LastSuccess: t0, Expiration: t0.Add(time.Hour), Sinks: tc.sinks})
			s := startServer(t, Options{Profiles: st.Profiles, Clock: st.Clock})
			code, _, body := get(t, http.MethodGet, "http://"+s.Addr()+"/ready")
			r := decode(t, body)
			if code != tc.code || r.Status != tc.topStatus || r.Ready != (tc.code == 200) {
				t.Errorf("/ready = %d status %q ready %v, want %d %q: %s", code, r.Status, r.Ready, tc.code, tc.topStatus, body)
			}
			p := r.Profiles[0]
			if p.Status != tc.status || p.Ready != tc.profileSet || !strings.Contains(p.Reason, tc.reasonHas) || (tc.reasonHas == "") != (p.Reason == "") {
				t.Errorf("profile status %q ready %v reason %q; want %q, reason with %q", p.Status, p.Ready, p.Reason, tc.status, tc.reasonHas)
			}
		})
	}

	// One profile degraded, another not ready: the report is not ready; both degraded: degraded.
	st := &fakeState{}
	good := ProfileStatus{Profile: "a", LastSuccess: t0, Expiration: t0.Add(time.Hour), Sinks: []SinkStatus{file(false), imds}}
	bad := ProfileStatus{Profile: "b", LastSuccess: t0, Expiration: t0.Add(time.Hour), Sinks: []SinkStatus{file(false)}}
	st.set(t0, good, bad)
	s := startServer(t, Options{Profiles: st.Profiles, Clock: st.Clock})
	if r := s.Report(); r.Ready || r.Status != StateNotReady {
		t.Errorf("degraded + not ready = %v %q, want not_ready", r.Ready, r.Status)
	}
	st.set(t0, good, ProfileStatus{Profile: "c", LastSuccess: t0, Expiration: t0.Add(time.Hour)})
	if r := s.Report(); !r.Ready || r.Status != StateDegraded {
		t.Errorf("degraded + ready = %v %q, want ready=true status degraded", r.Ready, r.Status)
	}
	// Expiring credentials make even a fully delivering profile not ready.
	st.set(t0.Add(50*time.Minute), ProfileStatus{Profile: "a", LastSuccess: t0, Expiration: t0.Add(time.Hour), Sinks: []SinkStatus{file(true)}})
	if r := s.Report(); r.Ready || r.Profiles[0].Status != StateNotReady {
		t.Errorf("10m left, every sink ok: %+v", r)
	}
}
