package endpoint

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"go.uber.org/goleak"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/logtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testAccessKey = "ASIATESTACCESSKEY"
	testSecret    = "s3cr3t-SECRET-access-key-value"
	testSession   = "sess10n-TOKEN-value-xyz"
	testRoleARN   = "arn:aws:sts::123456789012:assumed-role/demo/session"
	testRole      = "demo-profile"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func testCreds(now time.Time) creds.Credentials {
	return creds.Credentials{
		AccessKeyID:     testAccessKey,
		SecretAccessKey: testSecret,
		SessionToken:    testSession,
		Expiration:      now.Add(time.Hour),
		AssumedRoleARN:  testRoleARN,
	}
}

// assertNoSecrets fails if any of the secrets appears in s.
func assertNoSecrets(t *testing.T, what, s string, secrets ...string) {
	t.Helper()
	for _, sec := range append([]string{testSecret, testSession}, secrets...) {
		if sec != "" && strings.Contains(s, sec) {
			t.Errorf("%s contains secret %q:\n%s", what, sec, s)
		}
	}
}

// client is an HTTP client without keep-alives, so no connection outlives a test.
func client() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
}

type response struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}

func startIMDS(t *testing.T, clock *fakeClock, o IMDSOptions) (*Server, *logtest.Buffer) {
	t.Helper()
	log, buf := logtest.New()
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	o.RoleName, o.Logger, o.Clock = testRole, log, clock.Now
	s, err := NewIMDS(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, buf
}

func imdsToken(t *testing.T, s *Server, ttl string) string {
	t.Helper()
	r := do(t, http.MethodPut, s.URL()+"/latest/api/token", map[string]string{imdsTTLHeader: ttl})
	if r.status != http.StatusOK {
		t.Fatalf("token: status %d: %s", r.status, r.body)
	}
	if got := r.header.Get(imdsTTLHeader); got != ttl {
		t.Errorf("token TTL header = %q, want %q", got, ttl)
	}
	if r.body == "" {
		t.Fatal("empty token")
	}
	return r.body
}

const credsPath = "/latest/meta-data/iam/security-credentials/"

func TestIMDSTokenFlowAndCredentials(t *testing.T) {
	clock := newClock()
	s, logs := startIMDS(t, clock, IMDSOptions{})
	if s.Name() != "imds" {
		t.Errorf("Name = %q", s.Name())
	}
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || strings.HasSuffix(s.Addr(), ":0") {
		t.Errorf("URL = %q, Addr = %q", s.URL(), s.Addr())
	}
	c := testCreds(clock.Now())
	if err := s.Put(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	putTime := clock.Now()
	clock.Advance(time.Minute)

	tok := imdsToken(t, s, "60")
	h := map[string]string{imdsTokenHeader: tok}

	for _, p := range []string{credsPath, strings.TrimSuffix(credsPath, "/")} {
		r := do(t, http.MethodGet, s.URL()+p, h)
		if r.status != http.StatusOK || r.body != testRole {
			t.Errorf("GET %s = %d %q, want 200 %q", p, r.status, r.body, testRole)
		}
	}

	r := do(t, http.MethodGet, s.URL()+credsPath+testRole, h)
	if r.status != http.StatusOK {
		t.Fatalf("creds: %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var doc map[string]string
	if err := json.Unmarshal([]byte(r.body), &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Code":            "Success",
		"LastUpdated":     putTime.UTC().Format(time.RFC3339),
		"Type":            "AWS-HMAC",
		"AccessKeyId":     testAccessKey,
		"SecretAccessKey": testSecret,
		"Token":           testSession,
		"Expiration":      c.Expiration.UTC().Format(time.RFC3339),
	}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %q, want %q", k, doc[k], v)
		}
	}
	if len(doc) != len(want) {
		t.Errorf("document has extra fields: %v", doc)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, "status=200") || !strings.Contains(out, "path="+credsPath+testRole) {
		t.Errorf("expected a debug line per request, got:\n%s", out)
	}
	assertNoSecrets(t, "log", out, tok)
}

func TestIMDSUnauthorized(t *testing.T) {
	clock := newClock()
	s, logs := startIMDS(t, clock, IMDSOptions{})
	if err := s.Put(context.Background(), testCreds(clock.Now())); err != nil {
		t.Fatal(err)
	}
	url := s.URL() + credsPath + testRole
	if r := do(t, http.MethodGet, url, nil); r.status != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", r.status)
	}
	if r := do(t, http.MethodGet, url, map[string]string{imdsTokenHeader: "not-a-token"}); r.status != http.StatusUnauthorized {
		t.Errorf("unknown token: %d, want 401", r.status)
	}
	tok := imdsToken(t, s, "60")
	h := map[string]string{imdsTokenHeader: tok}
	clock.Advance(59 * time.Second)
	if r := do(t, http.MethodGet, url, h); r.status != http.StatusOK {
		t.Errorf("live token: %d, want 200", r.status)
	}
	clock.Advance(time.Second)
	if r := do(t, http.MethodGet, url, h); r.status != http.StatusUnauthorized {
		t.Errorf("expired token: %d, want 401", r.status)
	}
	if r := do(t, http.MethodGet, s.URL()+credsPath, h); r.status != http.StatusUnauthorized {
		t.Errorf("expired token on list: %d, want 401", r.status)
	}
	s.Close()
	assertNoSecrets(t, "log", logs.String(), tok)
}

func TestIMDSTokenTTLBounds(t *testing.T) {
	s, _ := startIMDS(t, newClock(), IMDSOptions{})
	for _, ttl := range []string{"0", "21601", "-1", "abc", "1.5", ""} {
		h := map[string]string{}
		if ttl != "" {
			h[imdsTTLHeader] = ttl
		}
		if r := do(t, http.MethodPut, s.URL()+"/latest/api/token", h); r.status != http.StatusBadRequest {
			t.Errorf("ttl %q: %d, want 400", ttl, r.status)
		}
	}
	for _, ttl := range []string{"1", "21600"} {
		imdsToken(t, s, ttl)
	}
	if r := do(t, http.MethodGet, s.URL()+"/latest/api/token", map[string]string{imdsTTLHeader: "60"}); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET token: %d, want 405", r.status)
	}
}

func TestIMDSNotFoundAndMethods(t *testing.T) {
	clock := newClock()
	s, _ := startIMDS(t, clock, IMDSOptions{})
	if err := s.Put(context.Background(), testCreds(clock.Now())); err != nil {
		t.Fatal(err)
	}
	h := map[string]string{imdsTokenHeader: imdsToken(t, s, "60")}
	for _, p := range []string{"/", "/latest/meta-data/", "/latest/meta-data/iam/info", credsPath + "other-role", credsPath + testRole + "/x", "/latest/user-data"} {
		if r := do(t, http.MethodGet, s.URL()+p, h); r.status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, r.status)
		}
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		if r := do(t, m, s.URL()+credsPath+testRole, h); r.status != http.StatusMethodNotAllowed {
			t.Errorf("%s creds: %d, want 405", m, r.status)
		}
	}
	if r := do(t, http.MethodPost, s.URL()+"/latest/api/token", map[string]string{imdsTTLHeader: "60"}); r.status != http.StatusMethodNotAllowed {
		t.Errorf("POST token: %d, want 405", r.status)
	}
}

func TestForwardedForRefused(t *testing.T) {
	clock := newClock()
	s, _ := startIMDS(t, clock, IMDSOptions{})
	if err := s.Put(context.Background(), testCreds(clock.Now())); err != nil {
		t.Fatal(err)
	}
	xff := map[string]string{"X-Forwarded-For": "10.0.0.1", imdsTTLHeader: "60"}
	if r := do(t, http.MethodPut, s.URL()+"/latest/api/token", xff); r.status != http.StatusForbidden {
		t.Errorf("IMDS token with X-Forwarded-For: %d, want 403", r.status)
	}
	xff[imdsTokenHeader] = imdsToken(t, s, "60")
	if r := do(t, http.MethodGet, s.URL()+credsPath+testRole, xff); r.status != http.StatusForbidden || strings.Contains(r.body, testSecret) {
		t.Errorf("IMDS creds with X-Forwarded-For: %d, want 403", r.status)
	}

	c, tok, _ := startContainer(t, clock, ContainerOptions{})
	if err := c.Put(context.Background(), testCreds(clock.Now())); err != nil {
		t.Fatal(err)
	}
	r := do(t, http.MethodGet, c.URL(), map[string]string{"Authorization": tok, "X-Forwarded-For": "10.0.0.1"})
	if r.status != http.StatusForbidden || strings.Contains(r.body, testSecret) {
		t.Errorf("container with X-Forwarded-For: %d, want 403", r.status)
	}
}

func decodeError(t *testing.T, body string) errorDoc {
	t.Helper()
	var e errorDoc
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e
}

func TestIMDSNoCredentials(t *testing.T) {
	clock := newClock()
	s, _ := startIMDS(t, clock, IMDSOptions{})
	h := map[string]string{imdsTokenHeader: imdsToken(t, s, "21600")}
	url := s.URL() + credsPath + testRole
	check := func(when string, want int) {
		t.Helper()
		r := do(t, http.MethodGet, url, h)
		if r.status != want {
			t.Fatalf("%s: %d %s, want %d", when, r.status, r.body, want)
		}
		if want == http.StatusInternalServerError {
			if e := decodeError(t, r.body); e.Code != "NoCredentials" || e.Message == "" {
				t.Errorf("%s: error %+v", when, e)
			}
			assertNoSecrets(t, when, r.body)
		}
	}
	check("before Put", http.StatusInternalServerError)
	if err := s.Put(context.Background(), testCreds(clock.Now())); err != nil {
		t.Fatal(err)
	}
	check("after Put", http.StatusOK)
	if err := s.Clear(context.Background()); err != nil {
		t.Fatal(err)
	}
	check("after Clear", http.StatusInternalServerError)
	if err := s.Put(context.Background(), testCreds(clock.Now())); err != nil {
		t.Fatal(err)
	}
	check("after second Put", http.StatusOK)
	clock.Advance(time.Hour)
	check("at expiration", http.StatusInternalServerError)
}

func TestPutRejectsInvalidCredentials(t *testing.T) {
	clock := newClock()
	s, _ := startIMDS(t, clock, IMDSOptions{})
	now := clock.Now()
	good := testCreds(now)
	if err := s.Put(context.Background(), good); err != nil {
		t.Fatal(err)
	}
	expired := testCreds(now)
	expired.Expiration = now.Add(-time.Second)
	noToken := testCreds(now)
	noToken.SessionToken = ""
	for name, c := range map[string]creds.Credentials{"expired": expired, "no token": noToken, "zero": {}} {
		err := s.Put(context.Background(), c)
		if err == nil {
			t.Errorf("%s: Put accepted invalid credentials", name)
			continue
		}
		assertNoSecrets(t, name+" error", err.Error())
	}
	// The invalid Puts did not replace the good credentials.
	h := map[string]string{imdsTokenHeader: imdsToken(t, s, "60")}
	if r := do(t, http.MethodGet, s.URL()+credsPath+testRole, h); r.status != http.StatusOK {
		t.Errorf("after rejected Puts: %d, want 200", r.status)
	}
}

func TestBindAddress(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:0", true},
		{"127.0.0.2:9911", true},
		{"localhost:0", true},
		{"[::1]:0", true},
		{"0.0.0.0:0", false},
		{":0", false},
		{"[::]:0", false},
		{"192.168.1.10:9911", false},
		{"127.0.0.1", false},
		{"127.0.0.1:99999", false},
	} {
		_, err := NewIMDS(IMDSOptions{Addr: tc.addr, RoleName: testRole})
		if (err == nil) != tc.ok {
			t.Errorf("IMDS %q: err = %v, want ok=%v", tc.addr, err, tc.ok)
		}
		_, err = NewContainer(ContainerOptions{Addr: tc.addr, AuthTokenFile: filepath.Join(t.TempDir(), "tok")})
		if (err == nil) != tc.ok {
			t.Errorf("container %q: err = %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
	_, err := NewIMDS(IMDSOptions{Addr: "0.0.0.0:0", RoleName: testRole})
	if err == nil || !strings.Contains(err.Error(), "0.0.0.0:0") || !strings.Contains(err.Error(), "set allow_remote = true") {
		t.Errorf("remote bind error = %v", err)
	}

	_, err = NewIMDS(IMDSOptions{Addr: "0.0.0.0:0", AllowRemote: true, RoleName: testRole})
	if err == nil || !strings.Contains(err.Error(), "0.0.0.0:0") || !strings.Contains(err.Error(), "needs allowed_clients") {
		t.Errorf("remote bind without allowed_clients: error = %v", err)
	}

	clock := newClock()
	s, logs := startIMDS(t, clock, IMDSOptions{Addr: "0.0.0.0:0", AllowRemote: true, AllowedClients: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}})
	if !strings.Contains(logs.String(), "[WARN]") {
		t.Errorf("no warning for a remote bind:\n%s", logs.String())
	}
	_, port, _ := net.SplitHostPort(s.Addr())
	r := do(t, http.MethodPut, "http://127.0.0.1:"+port+"/latest/api/token", map[string]string{imdsTTLHeader: "10"})
	if r.status != http.StatusOK {
		t.Errorf("remote-bound server: %d", r.status)
	}
}

func TestNewIMDSRoleName(t *testing.T) {
	for _, role := range []string{"", "a/b"} {
		if _, err := NewIMDS(IMDSOptions{Addr: "127.0.0.1:0", RoleName: role}); err == nil {
			t.Errorf("role %q accepted", role)
		}
	}
}

func TestLifecycle(t *testing.T) {
	s, err := NewIMDS(IMDSOptions{Addr: "127.0.0.1:0", RoleName: testRole})
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr() != "127.0.0.1:0" {
		t.Errorf("Addr before Start = %q", s.Addr())
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Start(); err == nil {
		t.Error("Start after Close succeeded")
	}
	never, err := NewIMDS(IMDSOptions{Addr: "127.0.0.1:0", RoleName: testRole})
	if err != nil {
		t.Fatal(err)
	}
	if err := never.Close(); err != nil {
		t.Errorf("Close of an unstarted server: %v", err)
	}
}

func TestOnRequest(t *testing.T) {
	var mu sync.Mutex
	var statuses []int
	s, _ := startIMDS(t, newClock(), IMDSOptions{OnRequest: func(st int) {
		mu.Lock()
		defer mu.Unlock()
		statuses = append(statuses, st)
	}})
	imdsToken(t, s, "60")
	do(t, http.MethodGet, s.URL()+credsPath, nil)
	s.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(statuses) != 2 || statuses[0] != 200 || statuses[1] != 401 {
		t.Errorf("statuses = %v, want [200 401]", statuses)
	}
}

// TestIMDSTokenRules: a token is valid, for its own scope and key, from its issue until its expiry;
// anything else — a changed byte, another role, another key, a clock moved back before its issue — is not.
func TestIMDSTokenRules(t *testing.T) {
	key, err := NewTokenKey()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewTokenKey()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tokens := imdsTokens{key: key, scope: "app"}
	tok := tokens.issue(now, 60)
	tampered := []byte(tok)
	tampered[len(tampered)/2] ^= 'A' ^ 'B'
	for _, c := range []struct {
		name   string
		tokens imdsTokens
		tok    string
		at     time.Time
		want   bool
	}{
		{"valid at issue", tokens, tok, now, true},
		{"valid just before expiry", tokens, tok, now.Add(60*time.Second - time.Nanosecond), true},
		{"expired at expiry", tokens, tok, now.Add(60 * time.Second), false},
		{"clock moved back before the issue", tokens, tok, now.Add(-time.Second), false},
		{"a changed byte", tokens, string(tampered), now, false},
		{"another role's endpoint", imdsTokens{key: key, scope: "other"}, tok, now, false},
		{"another key", imdsTokens{key: other, scope: "app"}, tok, now, false},
		{"empty", tokens, "", now, false},
		{"truncated", tokens, tok[:len(tok)-1], now, false},
		{"extended", tokens, tok + "A", now, false},
	} {
		if got := c.tokens.valid(c.tok, c.at); got != c.want {
			t.Errorf("%s: valid = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSetHopLimit(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if err := setHopLimit(sc, 1); err != nil {
		t.Fatal(err)
	}
	raw, err := sc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ttl int
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		ttl, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_TTL)
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil || ttl != 1 {
		t.Errorf("IP_TTL = %d (%v), want 1", ttl, gerr)
	}
}

func TestIMDSWithAWSSDK(t *testing.T) {
	clock := newClock()
	s, logs := startIMDS(t, clock, IMDSOptions{})
	c := testCreds(clock.Now())
	if err := s.Put(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	client := imds.New(imds.Options{Endpoint: s.URL()})
	p := ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = client })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, err := p.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessKeyID != testAccessKey || got.SecretAccessKey != testSecret || got.SessionToken != testSession || !got.CanExpire {
		t.Errorf("SDK got %+v", got)
	}
	s.Close()
	assertNoSecrets(t, "log", logs.String())
}

// sink mirrors bridge.Sink, which this package must satisfy without importing it.
type sink interface {
	Name() string
	Put(ctx context.Context, c creds.Credentials) error
	Clear(ctx context.Context) error
}

var _ sink = (*Server)(nil)

// TestSecurityGuardRefusalsAreLoggedAndCounted: the guard runs before the X-Forwarded-For check, and
// the per-request log line and OnRequest (metrics) see its 403s.
func TestSecurityGuardRefusalsAreLoggedAndCounted(t *testing.T) {
	var mu sync.Mutex
	var statuses []int
	s, logs := startIMDS(t, newClock(), IMDSOptions{OnRequest: func(st int) {
		mu.Lock()
		defer mu.Unlock()
		statuses = append(statuses, st)
	}})
	r := do(t, http.MethodPut, s.URL()+"/latest/api/token",
		map[string]string{imdsTTLHeader: "60", "Origin": "http://evil.example", "X-Forwarded-For": "1.2.3.4"})
	if r.status != http.StatusForbidden || !strings.Contains(r.body, "(Origin header)") {
		t.Fatalf("Origin with X-Forwarded-For: %d %q, want the guard's refusal", r.status, r.body)
	}
	s.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(statuses) != 1 || statuses[0] != 403 {
		t.Errorf("OnRequest saw %v, want [403]", statuses)
	}
	for _, want := range []string{"[DEBUG] request: method=PUT path=/latest/api/token status=403", `[WARN]  refused a request that may come from a web page`, "origin=http://evil.example"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

// TestSecurityIMDSWildcardBind: bound to 0.0.0.0 (allow_remote), IMDS accepts any IP literal with its
// port (a Kubernetes probe sends podIP:port) and allowed names, and refuses other DNS names.
func TestSecurityIMDSWildcardBind(t *testing.T) {
	s, _ := startIMDS(t, newClock(), IMDSOptions{Addr: "0.0.0.0:0", AllowRemote: true, AllowedHosts: []string{"bridge.internal"},
		AllowedClients: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}})
	_, port, _ := net.SplitHostPort(s.Addr())
	hosts := map[string]int{
		"127.0.0.1:" + port:       200,
		"localhost:" + port:       200,
		"bridge.internal:" + port: 200,
		"evil.example:" + port:    403,
	}
	if ip := nonLoopbackIPv4(); ip != "" {
		hosts[ip+":"+port] = 200
	} else {
		t.Log("no non-loopback IPv4 address on this machine: the podIP case is skipped")
	}
	for host, want := range hosts {
		req, _ := http.NewRequest(http.MethodPut, "http://127.0.0.1:"+port+"/latest/api/token", nil)
		req.Host = host
		req.Header.Set(imdsTTLHeader, "60")
		resp, err := client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %q: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

// nonLoopbackIPv4 is an IPv4 address of this machine other than loopback, or "".
func nonLoopbackIPv4() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	return ""
}
