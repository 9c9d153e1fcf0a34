package main

// Adversarial end-to-end tests of design.md §7's first threat: a web page in a browser on the same host,
// made same-origin with a loopback server by DNS rebinding. Every HTTP surface (the daemon's IMDS,
// container, health and metrics servers, and the emulator's API and admin endpoints) is attacked over
// real loopback connections.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator"
)

// surface is one HTTP endpoint under attack.
type surface struct {
	name   string
	method string
	url    string // on 127.0.0.1:<port>
	header map[string]string
	pass   int // the status a legitimate request gets
	// after, if set, runs after each request with whether the guard refused it (to check that a refused
	// request had no effect).
	after func(t *testing.T, refused bool)
}

// attack is one request variant: the Host to send (with %s standing for the port) and headers to add.
type attack struct {
	name   string
	host   string
	header map[string]string
	refuse bool
}

var attacks = []attack{
	{"a correct Host passes", "127.0.0.1:%s", nil, false},
	{"localhost with the bound port passes", "localhost:%s", nil, false},
	{"a DNS name as Host is refused (DNS rebinding)", "evil.example:%s", nil, true},
	{"a DNS name without the port is refused", "evil.example", nil, true},
	{"an Origin header is refused", "127.0.0.1:%s", map[string]string{"Origin": "http://evil.example"}, true},
	{"Origin null is refused", "127.0.0.1:%s", map[string]string{"Origin": "null"}, true},
	{"Sec-Fetch-Site cross-site is refused", "127.0.0.1:%s", map[string]string{"Sec-Fetch-Site": "cross-site"}, true},
	{"Sec-Fetch-Site same-site is refused", "127.0.0.1:%s", map[string]string{"Sec-Fetch-Site": "same-site"}, true},
	{"Sec-Fetch-Site same-origin passes", "127.0.0.1:%s", map[string]string{"Sec-Fetch-Site": "same-origin"}, false},
	{"Sec-Fetch-Site none passes", "127.0.0.1:%s", map[string]string{"Sec-Fetch-Site": "none"}, false},
}

// do sends method url with the given Host and headers over a real connection; it returns status and body.
func do(t *testing.T, method, rawURL, host string, headers ...map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for _, h := range headers {
		for k, v := range h {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestSecurityEverySurfaceRefusesBrowsersAndDNSRebinding runs the daemon binary with its default
// (loopback) configuration and attacks each of its servers and the emulator's.
func TestSecurityEverySurfaceRefusesBrowsersAndDNSRebinding(t *testing.T) {
	e := startEndpointsDaemon(t)
	secret := e.served(t)["SecretAccessKey"]
	if secret == "" {
		t.Fatal("no secret served")
	}
	token, err := os.ReadFile(e.tokenPath)
	if err != nil {
		t.Fatal(err)
	}
	imds := fmt.Sprintf("http://127.0.0.1:%d", e.imdsPort)
	code, imdsToken := do(t, http.MethodPut, imds+"/latest/api/token", fmt.Sprintf("127.0.0.1:%d", e.imdsPort),
		map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "60"})
	if code != 200 {
		t.Fatalf("IMDS token: %d", code)
	}
	// A separate emulator for its admin endpoint, so that a fault it arms does not hit the daemon.
	cfg, err := emulator.LoadConfig(filepath.Join(e.Dir, "emulator.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	emu, err := emulator.NewServer(emulator.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	emuHost := strings.TrimPrefix(emu.URL, "http://")

	surfaces := []surface{
		{name: "IMDS token PUT", method: http.MethodPut, url: imds + "/latest/api/token",
			header: map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "60"}, pass: 200},
		{name: "IMDS credentials GET", method: http.MethodGet, url: imds + "/latest/meta-data/iam/security-credentials/served",
			header: map[string]string{"X-aws-ec2-metadata-token": imdsToken}, pass: 200},
		{name: "container endpoint", method: http.MethodGet, url: e.containerURL(),
			header: map[string]string{"Authorization": strings.TrimSpace(string(token))}, pass: 200},
		{name: "health live", method: http.MethodGet, url: fmt.Sprintf("http://127.0.0.1:%d/live", e.healthPort), pass: 200},
		{name: "health ready", method: http.MethodGet, url: fmt.Sprintf("http://127.0.0.1:%d/ready", e.healthPort), pass: 200},
		{name: "metrics", method: http.MethodGet, url: fmt.Sprintf("http://127.0.0.1:%d/metrics", e.metricsPort), pass: 200},
		// Unsigned: a request that passes the guard is refused by the emulator's own checks.
		{name: "emulator CreateSession", method: http.MethodPost, url: e.Emulator.URL + "/sessions", pass: 400},
		{name: "emulator STS", method: http.MethodPost, url: e.Emulator.URL + "/", pass: 400},
		{name: "emulator admin fail", method: http.MethodPost, url: emu.URL + "/_emulator/fail?n=1&status=503", pass: 204,
			after: func(t *testing.T, refused bool) {
				// An armed fault answers the next CreateSession 503 (and is used up by it).
				want := map[bool]int{true: 400, false: 503}[refused]
				if code, _ := do(t, http.MethodPost, emu.URL+"/sessions", emuHost); code != want {
					t.Errorf("CreateSession after the admin request: %d, want %d (refused=%v)", code, want, refused)
				}
			}},
	}
	for _, s := range surfaces {
		t.Run(s.name, func(t *testing.T) {
			u, err := url.Parse(s.url)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range attacks {
				host := a.host
				if strings.Contains(host, "%s") {
					host = fmt.Sprintf(host, u.Port())
				}
				code, body := do(t, s.method, s.url, host, s.header, a.header)
				switch {
				case a.refuse && (code != http.StatusForbidden || !strings.HasPrefix(body, "spiffe-aws-bridge: refused: ")):
					t.Errorf("%s: %d %q, want the guard's 403", a.name, code, body)
				case a.refuse && (strings.Contains(body, secret) || strings.Contains(body, "SecretAccessKey")):
					t.Errorf("%s: the refusal carries credentials", a.name)
				case !a.refuse && code != s.pass:
					t.Errorf("%s: %d %q, want %d", a.name, code, body, s.pass)
				}
				if s.after != nil {
					s.after(t, a.refuse)
				}
			}
		})
	}
	if logs := e.d.Logs(); strings.Contains(logs, secret) || strings.Contains(logs, imdsToken) {
		t.Error("a secret or token reached the daemon's logs")
	}
}

// TestSecuritySimulatedRebindingBrowserGetsNoIMDSToken does what a browser does once its page's name
// (evil.example) rebinds to 127.0.0.1: it connects to the IMDS port with a URL, and so a Host, naming
// the page's site, and tries the IMDSv2 token PUT then the credentials GET.
func TestSecuritySimulatedRebindingBrowserGetsNoIMDSToken(t *testing.T) {
	e := startEndpointsDaemon(t)
	loopback := fmt.Sprintf("127.0.0.1:%d", e.imdsPort)
	browser := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, loopback) // evil.example resolves to 127.0.0.1
	}}}
	page := fmt.Sprintf("http://evil.example:%d", e.imdsPort)
	req, _ := http.NewRequest(http.MethodPut, page+"/latest/api/token", nil)
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "21600")
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), fmt.Sprintf(`Host "evil.example:%d"`, e.imdsPort)) {
		t.Fatalf("rebound token PUT: %d %q, want 403 naming the Host", resp.StatusCode, body)
	}
	resp, err = browser.Get(page + "/latest/meta-data/iam/security-credentials/served")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || strings.Contains(string(body), "SecretAccessKey") {
		t.Fatalf("rebound credentials GET: %d %q", resp.StatusCode, body)
	}
	eventually(t, "the refusal is logged", func() bool {
		logs := e.d.Logs()
		return strings.Contains(logs, "refused a request that may come from a web page") && strings.Contains(logs, "server=imds")
	})
}
