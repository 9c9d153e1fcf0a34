package netutil

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/logtest"
)

const secret = "the-secret-body"

var secretHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, secret) })

func mustGuard(t *testing.T, o GuardOptions) http.Handler {
	t.Helper()
	g, err := Guard(secretHandler, o)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// serve drives h with a request for host carrying the given headers (name, value pairs).
func serve(h http.Handler, host string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	req.Host = host
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestGuardHostMatching(t *testing.T) {
	for _, tc := range []struct {
		name    string
		addr    string
		bind    string
		allowed []string
		host    string
		ok      bool
	}{
		{"bound IPv4 literal with the bound port passes", "127.0.0.1:9911", "", nil, "127.0.0.1:9911", true},
		{"IP literal with wrong port is refused", "127.0.0.1:9911", "", nil, "127.0.0.1:9912", false},
		{"another loopback IP is refused", "127.0.0.1:9911", "", nil, "127.0.0.2:9911", false},
		{"localhost with the bound port passes on a loopback bind", "127.0.0.1:9911", "", nil, "localhost:9911", true},
		{"localhost is case-insensitive and may end with a dot", "127.0.0.1:9911", "", nil, "LocalHost.:9911", true},
		{"localhost with another port is refused", "127.0.0.1:9911", "", nil, "localhost:80", false},
		{"a DNS name is refused", "127.0.0.1:9911", "", nil, "evil.example:9911", false},
		{"a DNS name resolving to loopback is refused", "127.0.0.1:9911", "", nil, "localtest.me:9911", false},
		{"a missing port is refused unless the bound port is 80", "127.0.0.1:9911", "", nil, "127.0.0.1", false},
		{"a missing port means 80", "127.0.0.1:80", "", nil, "127.0.0.1", true},
		{"localhost without a port passes on port 80", "127.0.0.1:80", "", nil, "localhost", true},
		{"port 80 given explicitly passes", "127.0.0.1:80", "", nil, "localhost:80", true},
		{"an empty Host is refused", "127.0.0.1:80", "", nil, "", false},
		{"bound IPv6 literal in brackets passes", "[::1]:9911", "", nil, "[::1]:9911", true},
		{"bound IPv6 literal in another spelling passes", "[::1]:9911", "", nil, "[0:0::1]:9911", true},
		{"localhost passes on an IPv6 loopback bind", "[::1]:9911", "", nil, "localhost:9911", true},
		{"an unbracketed IPv6 Host is refused", "[::1]:9911", "", nil, "::1:9911", false},
		{"the IPv4-mapped form of the bound IP passes", "127.0.0.1:9911", "", nil, "[::ffff:127.0.0.1]:9911", true},
		{"the configured bind host name passes with the bound port", "127.0.0.1:8080", "bridge.lan", nil, "BRIDGE.LAN:8080", true},
		{"the configured bind host name with another port is refused", "127.0.0.1:8080", "bridge.lan", nil, "bridge.lan:8081", false},
		{"localhost is refused on a non-loopback bind", "10.1.2.3:8080", "", nil, "localhost:8080", false},
		{"wildcard bind accepts any IP literal with the bound port", "0.0.0.0:8080", "", nil, "10.9.8.7:8080", true},
		{"wildcard bind accepts an IPv6 literal", "[::]:8080", "", nil, "[fd00::5]:8080", true},
		{"wildcard bind accepts localhost", "0.0.0.0:8080", "", nil, "localhost:8080", true},
		{"wildcard bind refuses an IP literal with another port", "0.0.0.0:8080", "", nil, "10.9.8.7:8081", false},
		{"wildcard bind refuses a DNS name", "0.0.0.0:8080", "", nil, "evil.example:8080", false},
		{"empty host is a wildcard bind", ":8080", "", nil, "192.168.1.1:8080", true},
		{"allowed name passes with any port", "127.0.0.1:8080", "", []string{"bridge.internal"}, "bridge.internal:1234", true},
		{"allowed name passes without a port", "127.0.0.1:8080", "", []string{"bridge.internal"}, "Bridge.Internal.", true},
		{"allowed name:port passes with that port", "127.0.0.1:8080", "", []string{"emulator:8443"}, "emulator:8443", true},
		{"allowed name:port refuses another port", "127.0.0.1:8080", "", []string{"emulator:8443"}, "emulator:8080", false},
		{"allowed IPv6 with port passes", "127.0.0.1:8080", "", []string{"[fd00::1]:80"}, "[fd00::1]:80", true},
		{"allowed bare IPv6 passes with any port", "127.0.0.1:8080", "", []string{"fd00::1"}, "[fd00::1]:9", true},
		{"a name not in allowed_hosts is refused", "127.0.0.1:8080", "", []string{"bridge.internal"}, "evil.example:8080", false},
		{"a suffix of an allowed name is refused", "127.0.0.1:8080", "", []string{"bridge.internal"}, "evil.bridge.internal:8080", false},
		{"allowed_hosts * accepts any Host", "127.0.0.1:8080", "", []string{"*"}, "evil.example:8080", true},
		{"a Host with a user part is refused", "127.0.0.1:8080", "", nil, "x@127.0.0.1:8080", false},
		{"a non-numeric port is refused", "127.0.0.1:8080", "", nil, "127.0.0.1:http", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := mustGuard(t, GuardOptions{Name: "test", Addr: tc.addr, BindHost: tc.bind, AllowedHosts: tc.allowed})
			w := serve(h, tc.host)
			if ok := w.Code == http.StatusOK; ok != tc.ok {
				t.Fatalf("Host %q on %s: status %d, want ok=%v; body %q", tc.host, tc.addr, w.Code, tc.ok, w.Body)
			}
			if !tc.ok && strings.Contains(w.Body.String(), secret) {
				t.Fatal("refused request got the handler's body")
			}
		})
	}
}

func TestSecurityGuardRefusesBrowsers(t *testing.T) {
	h := mustGuard(t, GuardOptions{Name: "test", Addr: "127.0.0.1:9911"})
	for _, tc := range []struct {
		name    string
		headers []string
		ok      bool
		body    string
	}{
		{"no browser headers pass", nil, true, secret},
		{"an Origin header is refused", []string{"Origin", "http://evil.example"}, false, "requests from web pages (Origin header) are not accepted"},
		{"Origin null is refused", []string{"Origin", "null"}, false, "(Origin header)"},
		{"an empty Origin is refused", []string{"Origin", ""}, false, "(Origin header)"},
		{"a same-origin Origin is refused too", []string{"Origin", "http://127.0.0.1:9911"}, false, "(Origin header)"},
		{"Sec-Fetch-Site cross-site is refused", []string{"Sec-Fetch-Site", "cross-site"}, false, "(Sec-Fetch-Site: cross-site)"},
		{"Sec-Fetch-Site same-site is refused", []string{"Sec-Fetch-Site", "same-site"}, false, "(Sec-Fetch-Site: same-site)"},
		{"Sec-Fetch-Site is case-insensitive", []string{"Sec-Fetch-Site", "Cross-Site"}, false, "cross-site"},
		{"Sec-Fetch-Site same-origin passes", []string{"Sec-Fetch-Site", "same-origin"}, true, secret},
		{"Sec-Fetch-Site none passes", []string{"Sec-Fetch-Site", "none"}, true, secret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(h, "127.0.0.1:9911", tc.headers...)
			if ok := w.Code == http.StatusOK; ok != tc.ok {
				t.Fatalf("status %d, want ok=%v", w.Code, tc.ok)
			}
			if !strings.Contains(w.Body.String(), tc.body) {
				t.Fatalf("body %q, want it to contain %q", w.Body, tc.body)
			}
			if !tc.ok {
				checkRefusal(t, w.Result().Header, w.Body.String())
			}
		})
	}
}

func checkRefusal(t *testing.T, h http.Header, body string) {
	t.Helper()
	for k, v := range map[string]string{
		"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
	} {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if !strings.HasPrefix(body, "spiffe-aws-bridge: refused: ") {
		t.Errorf("body %q does not say it was refused", body)
	}
	if strings.Contains(body, secret) {
		t.Error("refused request got the handler's body")
	}
}

func TestGuardHostRefusalSaysWhatIsAccepted(t *testing.T) {
	h := mustGuard(t, GuardOptions{Name: "imds", Addr: "127.0.0.1:9911", AllowedHosts: []string{"bridge.internal"}})
	w := serve(h, "evil.example:9911")
	body := w.Body.String()
	for _, want := range []string{`Host "evil.example:9911"`, "imds accepts 127.0.0.1:9911; localhost:9911; allowed_hosts bridge.internal", "add it to allowed_hosts"} {
		if !strings.Contains(body, want) {
			t.Errorf("body %q does not contain %q", body, want)
		}
	}
	checkRefusal(t, w.Result().Header, body)

	long := strings.Repeat("a", 500) + ".example"
	if body := serve(h, long).Body.String(); strings.Contains(body, long[:150]) || !strings.Contains(body, `"`+long[:100]+`"…`) {
		t.Errorf("long Host not truncated to 100 bytes: %q", body)
	}
	if body := serve(h, "").Body.String(); !strings.Contains(body, "without a Host header") {
		t.Errorf("missing Host: %q", body)
	}
}

func TestValidateAllowedHosts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		hosts []string
		err   string
	}{
		{"names, name:port and IP addresses are valid", []string{"bridge.internal", "emulator:8443", "10.0.0.5", "fd00::1", "[fd00::1]:8080", "[fd00::2]", "host."}, ""},
		{"the single entry * is valid", []string{"*"}, ""},
		{"nothing is valid", nil, ""},
		{"* with other entries is refused", []string{"a", "*"}, `allowed_hosts entry "*" must be the only entry`},
		{"a scheme is refused", []string{"http://bridge.internal"}, `allowed_hosts entry "http://bridge.internal": has a scheme`},
		{"a path is refused", []string{"bridge.internal/x"}, `allowed_hosts entry "bridge.internal/x": has a path`},
		{"a space is refused", []string{"bridge internal"}, `allowed_hosts entry "bridge internal": has spaces`},
		{"an empty entry is refused", []string{""}, `allowed_hosts entry "": empty`},
		{"a user part is refused", []string{"u@host"}, `allowed_hosts entry "u@host": has a user`},
		{"a partial wildcard is refused", []string{"*.example.com"}, `allowed_hosts entry "*.example.com": wildcards are not supported`},
		{"IPv6 with a port needs brackets", []string{"fd00::1:8080:x"}, `"fd00::1:8080:x": not an IPv6 address (an IPv6 address with a port goes in brackets`},
		{"a bad port is refused", []string{"host:99999"}, `allowed_hosts entry "host:99999": not a host name`},
		{"an empty port is refused", []string{"host:"}, `allowed_hosts entry "host:": not a host name`},
		{"an IPv4 address in brackets is refused", []string{"[10.0.0.1]:80"}, `"[10.0.0.1]:80": not a host name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateAllowedHosts(tc.hosts)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("ValidateAllowedHosts(%q) = %v, want %q", tc.hosts, err, tc.err)
			}
		})
	}
	if _, err := NewServer(ServerOptions{Name: "health", Addr: "127.0.0.1:0", AllowedHosts: []string{"http://x"}}); err == nil ||
		!strings.Contains(err.Error(), `health: allowed_hosts entry "http://x"`) {
		t.Fatalf("NewServer with a bad allowed_hosts entry: %v", err)
	}
}

func TestGuardRefusalLogIsRateLimited(t *testing.T) {
	log, buf := logtest.New()
	h, err := Guard(secretHandler, GuardOptions{Name: "imds", Addr: "127.0.0.1:9911", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	g := h.(*guard)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	g.now = func() time.Time { return now }
	serve(h, "evil.example:9911", "X-aws-ec2-metadata-token", "tok-secret")
	for range 5 {
		serve(h, "127.0.0.1:9911", "Origin", "http://evil.example")
	}
	lines := strings.Count(buf.String(), "[WARN]")
	if lines != 1 {
		t.Fatalf("%d warnings for 6 refusals within a minute, want 1:\n%s", lines, buf)
	}
	for _, want := range []string{"server=imds", "remote=192.0.2.1:1234", `reason="Host not accepted"`, "host=evil.example:9911"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, buf)
		}
	}
	now = now.Add(RefusalLogInterval)
	serve(h, "127.0.0.1:9911", "Sec-Fetch-Site", "cross-site")
	if !strings.Contains(buf.String(), "refused_since_last_log=5") || strings.Count(buf.String(), "[WARN]") != 2 {
		t.Fatalf("second warning after a minute should count the 5 not logged:\n%s", buf)
	}
	if strings.Contains(buf.String(), "tok-secret") {
		t.Fatal("a header value other than Host/Origin was logged")
	}
	if serve(h, "127.0.0.1:9911").Code != 200 || strings.Count(buf.String(), "[WARN]") != 2 {
		t.Fatal("an accepted request was logged as refused")
	}
}

// startServer starts a Server with the secret handler and returns it and its port.
func startServer(t *testing.T, o ServerOptions) (*Server, string) {
	t.Helper()
	o.Name, o.Handler = "test", secretHandler
	s, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	_, port, _ := net.SplitHostPort(s.Addr())
	return s, port
}

// get sends a GET over a real connection to addr with the given Host and headers.
func get(t *testing.T, addr, host string, headers ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	// A connection of its own each time: a kept-alive one from an earlier test's server (a port number
	// used again) would be closed under the request by a server that never saw it.
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestSecurityServerChecksTheBoundPort: the accepted set is computed from the listener at Start (port 0).
func TestSecurityServerChecksTheBoundPort(t *testing.T) {
	var (
		mu       sync.Mutex
		statuses []int
	)
	s, port := startServer(t, ServerOptions{Addr: "127.0.0.1:0", Observe: func(_ *http.Request, st int) {
		mu.Lock()
		defer mu.Unlock()
		statuses = append(statuses, st)
	}})
	for _, tc := range []struct {
		host    string
		headers []string
		want    int
	}{
		{"127.0.0.1:" + port, nil, 200},
		{"localhost:" + port, nil, 200},
		{"127.0.0.1:0", nil, 403},
		{"evil.example:" + port, nil, 403},
		{"127.0.0.1:" + port, []string{"Origin", "http://evil.example"}, 403},
		{"127.0.0.1:" + port, []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"127.0.0.1:" + port, []string{"Sec-Fetch-Site", "same-site"}, 403},
		{"127.0.0.1:" + port, []string{"Sec-Fetch-Site", "same-origin"}, 200},
		{"127.0.0.1:" + port, []string{"Sec-Fetch-Site", "none"}, 200},
	} {
		code, body := get(t, s.Addr(), tc.host, tc.headers...)
		if code != tc.want || code == 403 && strings.Contains(body, secret) {
			t.Errorf("Host %q %q: %d %q, want %d", tc.host, tc.headers, code, body, tc.want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(statuses) != 9 || statuses[2] != 403 {
		t.Errorf("Observe saw %v, want every request with the guard's 403s", statuses)
	}
}

// TestSecurityDNSRebinding does what a browser does after its page's name rebinds to 127.0.0.1: it
// connects to the loopback server with a URL (and so a Host) naming the page's site.
func TestSecurityDNSRebinding(t *testing.T) {
	s, port := startServer(t, ServerOptions{Addr: "127.0.0.1:0"})
	client := rebindingClient(s.Addr())
	resp, err := client.Get("http://evil.example:" + port + "/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || strings.Contains(string(b), secret) || !strings.Contains(string(b), `Host "evil.example:`+port+`"`) {
		t.Fatalf("rebound request: %d %q", resp.StatusCode, b)
	}
}

// rebindingClient connects every request to addr, whatever its URL says.
func rebindingClient(addr string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}}
}

// TestSecurityWildcardBind: on 0.0.0.0 any IP literal with the bound port passes (kubelet probes and
// Prometheus send podIP:port), a DNS name does not unless allowed.
func TestSecurityWildcardBind(t *testing.T) {
	s, port := startServer(t, ServerOptions{Addr: "0.0.0.0:0", AllowedHosts: []string{"bridge.internal"}})
	loop := "127.0.0.1:" + port
	for _, tc := range []struct {
		host string
		want int
	}{
		{"127.0.0.1:" + port, 200},
		{"localhost:" + port, 200},
		{"evil.example:" + port, 403},
		{"bridge.internal:" + port, 200},
		{"127.0.0.1:1", 403},
	} {
		if code, _ := get(t, loop, tc.host); code != tc.want {
			t.Errorf("Host %q: %d, want %d", tc.host, code, tc.want)
		}
	}
	ip := nonLoopbackIP(t)
	if ip == "" {
		t.Log("no non-loopback address on this machine: skipping the podIP case")
		return
	}
	addr := net.JoinHostPort(ip, port)
	if code, body := get(t, addr, addr); code != 200 {
		t.Errorf("Host %q over %s: %d %q", addr, addr, code, body)
	}
	if code, _ := get(t, addr, "evil.example:"+port, "Origin", "http://evil.example"); code != 403 {
		t.Errorf("rebinding over %s: %d", addr, code)
	}
	_ = s
}

// nonLoopbackIP is an IPv4 address of this machine other than loopback, or "".
func nonLoopbackIP(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Logf("interface addresses: %v", err)
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	return ""
}

func TestServerAnyHostWarnsAtStart(t *testing.T) {
	log, buf := logtest.New()
	s, port := startServer(t, ServerOptions{Addr: "127.0.0.1:0", AllowedHosts: []string{AnyHost}, Logger: log})
	if !strings.Contains(buf.String(), "[WARN]") || !strings.Contains(buf.String(), "DNS rebinding") {
		t.Fatalf("no warning for allowed_hosts = [\"*\"]:\n%s", buf)
	}
	if code, _ := get(t, s.Addr(), "evil.example:"+port); code != 200 {
		t.Errorf("Host check still on with *: %d", code)
	}
	if code, _ := get(t, s.Addr(), "127.0.0.1:"+port, "Origin", "http://evil.example"); code != 403 {
		t.Errorf("* turned the Origin check off: %d", code)
	}
}
