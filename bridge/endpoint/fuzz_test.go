package endpoint

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
)

var fuzzCreds = creds.Credentials{AccessKeyID: "ASIAFUZZFUZZFUZZFUZZ", SecretAccessKey: "fuzz-secret-fuzz-secret-fuzz-secret-fuzz",
	SessionToken: "fuzz-session-token", Expiration: time.Now().Add(time.Hour)}

// startFuzzServer starts s for real, so that its guard knows the bound port, and stops it with f.
func startFuzzServer(f *testing.F, s *Server) {
	f.Helper()
	if err := s.Put(context.Background(), fuzzCreds); err != nil {
		f.Fatal(err)
	}
	if err := s.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
}

// fuzzRequest builds the fuzzed request, from a loopback client: host "" stands for the server's own
// address (so that the fuzzer reaches the handlers), any other value is sent as the Host as is. Empty header values are left
// out. It returns nil for what no client could send.
func fuzzRequest(s *Server, method, path, host string, headers map[string]string) *http.Request {
	req, err := http.NewRequest(method, "http://127.0.0.1"+path, nil)
	if err != nil {
		return nil
	}
	req.Host = s.Addr()
	req.RemoteAddr = "127.0.0.1:40000" // a local client, as the server's own connections report it
	if host != "" {
		req.Host = host
	}
	for k, v := range headers {
		if v != "" {
			req.Header[k] = []string{v}
		}
	}
	return req
}

// mustRefuseBrowser reports why the guard must refuse req ("" if it may pass): an Origin header, a
// cross-site or same-site Sec-Fetch-Site, or a Host that does not name the loopback server bound at
// addr. The Host oracle is deliberately loose (loopback IP or localhost, any spelling, with the bound
// port): whatever it rejects must be refused, and no DNS name other than localhost ever passes.
func mustRefuseBrowser(req *http.Request, addr string) string {
	if _, ok := req.Header["Origin"]; ok {
		return "Origin"
	}
	switch strings.ToLower(strings.TrimSpace(req.Header.Get("Sec-Fetch-Site"))) {
	case "cross-site", "same-site":
		return "Sec-Fetch-Site"
	}
	_, boundPort, _ := net.SplitHostPort(addr)
	h, p, err := net.SplitHostPort(req.Host)
	if err != nil {
		return "Host without a port"
	}
	if pn, err := strconv.Atoi(p); err != nil || strconv.Itoa(pn) != boundPort {
		return "Host with another port"
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if h == "localhost" {
		return ""
	}
	if ip, err := netip.ParseAddr(h); err == nil && ip.Unmap().IsLoopback() {
		return ""
	}
	return "Host " + strconv.Quote(req.Host)
}

// checkGuard fails t if req had to be refused by the guard but was not.
func checkGuard(t *testing.T, req *http.Request, addr string, w *httptest.ResponseRecorder) {
	t.Helper()
	if why := mustRefuseBrowser(req, addr); why != "" {
		if w.Code != http.StatusForbidden || !strings.HasPrefix(w.Body.String(), "spiffe-aws-bridge: refused: ") {
			t.Fatalf("%s %q (%s): status %d %q, want the guard's 403", req.Method, req.URL.Path, why, w.Code, w.Body)
		}
	}
}

// FuzzIMDS: arbitrary requests never panic, never get credentials without a token the server issued,
// get only the statuses IMDSv2 uses, and are refused (403, no secret) when they carry Origin or a
// cross-site/same-site Sec-Fetch-Site, or name a Host other than the bound address.
func FuzzIMDS(f *testing.F) {
	f.Add("GET", "/latest/meta-data/iam/security-credentials/app", "", "", "", "", "", "")
	f.Add("PUT", "/latest/api/token", "21600", "", "", "", "", "")
	f.Add("GET", "/latest/meta-data/iam/security-credentials/", "", "token", "1.2.3.4", "", "", "")
	f.Add("POST", "/%zz", "-1", "\x00", "", "", "", "")
	f.Add("PUT", "/latest/api/token", "21600", "", "", "evil.example", "", "")
	f.Add("PUT", "/latest/api/token", "21600", "", "", "evil.example:9911", "http://evil.example", "")
	f.Add("PUT", "/latest/api/token", "21600", "", "", "", "http://evil.example", "")
	f.Add("PUT", "/latest/api/token", "21600", "", "", "", "null", "")
	f.Add("PUT", "/latest/api/token", "21600", "", "", "", "", "cross-site")
	f.Add("GET", "/latest/meta-data/iam/security-credentials/app", "", "token", "", "", "", "same-site")
	f.Add("PUT", "/latest/api/token", "21600", "", "", "", "", "same-origin")
	f.Add("PUT", "/latest/api/token", "21600", "", "", "LOCALHOST.:1", "", "none")
	f.Add("PUT", "/latest/api/token", "21600", "", "", "127.0.0.1", "", "")
	s, err := NewIMDS(IMDSOptions{Addr: "127.0.0.1:0", RoleName: "app"})
	if err != nil {
		f.Fatal(err)
	}
	startFuzzServer(f, s)
	h := s.Handler()
	f.Fuzz(func(t *testing.T, method, path, ttl, token, xff, host, origin, secFetchSite string) {
		req := fuzzRequest(s, method, path, host, map[string]string{
			"X-aws-ec2-metadata-token-ttl-seconds": ttl, "X-aws-ec2-metadata-token": token, "X-Forwarded-For": xff,
			"Origin": origin, "Sec-Fetch-Site": secFetchSite,
		})
		if req == nil {
			return // not an HTTP request a client could send
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case 200, 400, 401, 403, 404, 405:
		default:
			t.Fatalf("%s %q: status %d", method, path, w.Code)
		}
		if strings.Contains(w.Body.String(), fuzzCreds.SecretAccessKey) {
			t.Fatalf("%s %q with token %q: credentials served without an issued token", method, path, token)
		}
		checkGuard(t, req, s.Addr(), w)
	})
}

// FuzzContainer: arbitrary requests never panic, never get credentials without the exact token, and
// are refused (403, no secret) when they carry Origin or a cross-site/same-site Sec-Fetch-Site, or name
// a Host other than the bound address.
func FuzzContainer(f *testing.F) {
	f.Add("GET", "/v1/credentials", "wrong", "", "", "", "")
	f.Add("GET", "/v1/credentials/", "", "10.0.0.1", "", "", "")
	f.Add("DELETE", "/", "\xff", "", "", "", "")
	f.Add("GET", "/v1/credentials", "", "", "evil.example", "", "")
	f.Add("GET", "/v1/credentials", "", "", "evil.example:9912", "http://evil.example", "")
	f.Add("GET", "/v1/credentials", "", "", "", "http://evil.example", "")
	f.Add("GET", "/v1/credentials", "", "", "", "", "cross-site")
	f.Add("GET", "/v1/credentials", "", "", "", "", "same-site")
	f.Add("GET", "/v1/credentials", "", "", "[::1]:9912", "", "none")
	s, err := NewContainer(ContainerOptions{Addr: "127.0.0.1:0", AuthTokenFile: filepath.Join(f.TempDir(), "token")})
	if err != nil {
		f.Fatal(err)
	}
	startFuzzServer(f, s)
	h := s.Handler()
	f.Fuzz(func(t *testing.T, method, path, auth, xff, host, origin, secFetchSite string) {
		req := fuzzRequest(s, method, path, host, map[string]string{
			"Authorization": auth, "X-Forwarded-For": xff, "Origin": origin, "Sec-Fetch-Site": secFetchSite,
		})
		if req == nil {
			return
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case 401, 403, 404, 405:
		default:
			t.Fatalf("%s %q: status %d without the token", method, path, w.Code)
		}
		if strings.Contains(w.Body.String(), fuzzCreds.SecretAccessKey) {
			t.Fatal("credentials served without the token")
		}
		checkGuard(t, req, s.Addr(), w)
	})
}
