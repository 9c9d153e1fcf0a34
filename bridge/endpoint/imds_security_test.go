package endpoint

// Adversarial tests of the IMDS endpoint against a local user who wants the others to go without (a token
// flood) and against a network namespace attached to the host (a container on a bridge network).

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSecurityIMDSTokenFloodEvictsNoValidToken: one client holds a token; another requests 10,000 more as
// fast as it can (as many as the old in-memory store held). The first client's token still opens the
// credentials afterwards: there is no store to evict it from. Before self-contained tokens, the 10,001st
// token evicted the soonest-expiring one, the victim's, which then got 401. The victim talks to the server
// over TCP; the flood goes through the server's whole handler chain (Handler) in-process, so that it takes
// a second, not a minute, on a loaded machine under the race detector.
func TestSecurityIMDSTokenFloodEvictsNoValidToken(t *testing.T) {
	clock := newClock()
	s, _ := startIMDS(t, clock, IMDSOptions{})
	if err := s.Put(context.Background(), testCreds(clock.Now())); err != nil {
		t.Fatal(err)
	}
	victim := imdsToken(t, s, "21600")
	clock.Advance(time.Second) // every flood token expires after the victim's

	const flood, workers = 10000, 8
	var issued atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range flood / workers {
				req := httptest.NewRequest(http.MethodPut, s.URL()+imdsTokenPath, nil)
				req.RemoteAddr = fmt.Sprintf("127.0.0.1:%d", 40000+w)
				req.Header.Set(imdsTTLHeader, "21600")
				rec := httptest.NewRecorder()
				s.Handler().ServeHTTP(rec, req)
				if rec.Code == http.StatusOK {
					issued.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d tokens issued in %v", issued.Load(), time.Since(start).Round(time.Millisecond))
	if issued.Load() != flood {
		t.Fatalf("only %d of %d flood tokens were issued", issued.Load(), flood)
	}
	r := do(t, http.MethodGet, s.URL()+credsPath+testRole, map[string]string{imdsTokenHeader: victim})
	if r.status != http.StatusOK || !strings.Contains(r.body, `"Code":"Success"`) {
		t.Fatalf("the first client's token after a flood of %d: %d %s", flood, r.status, r.body)
	}
	// It still ends at its own expiry.
	clock.Advance(21600*time.Second - time.Second)
	if r := do(t, http.MethodGet, s.URL()+credsPath+testRole, map[string]string{imdsTokenHeader: victim}); r.status != http.StatusUnauthorized {
		t.Errorf("the token after its TTL: %d, want 401", r.status)
	}
}

// vethNamespace is a network namespace attached to this host by a veth pair, as a container on a bridge
// network is: one hop away, no router between. Addresses are private ones created here, on this machine.
type vethNamespace struct {
	name             string
	hostIP, clientIP netip.Addr
}

// newVethNamespace creates the namespace and the pair (iproute2's ip), removed when the test ends.
func newVethNamespace(t *testing.T) *vethNamespace {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace and a veth pair (CI runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("iproute2's ip is needed to create a network namespace (apt-get install -y iproute2): %v", err)
	}
	n := os.Getpid() % 250
	v := &vethNamespace{
		name:     fmt.Sprintf("sab-imds-%d", os.Getpid()),
		hostIP:   netip.AddrFrom4([4]byte{10, 231, byte(n), 1}),
		clientIP: netip.AddrFrom4([4]byte{10, 231, byte(n), 2}),
	}
	hostIf, nsIf := fmt.Sprintf("sabh%d", os.Getpid()%100000), fmt.Sprintf("sabn%d", os.Getpid()%100000)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", hostIf).Run()
		_ = exec.Command("ip", "netns", "del", v.name).Run()
	})
	run("netns", "add", v.name)
	run("link", "add", hostIf, "type", "veth", "peer", "name", nsIf, "netns", v.name)
	run("addr", "add", v.hostIP.String()+"/30", "dev", hostIf)
	run("link", "set", hostIf, "up")
	run("-n", v.name, "addr", "add", v.clientIP.String()+"/30", "dev", nsIf)
	run("-n", v.name, "link", "set", nsIf, "up")
	run("-n", v.name, "link", "set", "lo", "up")
	return v
}

// client is an HTTP client whose connections are opened inside the namespace.
func (v *vethNamespace) client(t *testing.T) *http.Client {
	t.Helper()
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			// The socket is created in the namespace of the thread that creates it. This thread never
			// returns to the pool: a goroutine that exits locked takes its thread with it.
			runtime.LockOSThread()
			fd, err := unix.Open("/run/netns/"+v.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				ch <- result{err: err}
				return
			}
			defer unix.Close(fd)
			if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
				ch <- result{err: fmt.Errorf("setns: %w", err)}
				return
			}
			c, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
	return c
}

// do sends method url with header from inside the namespace; it returns the status and body.
func (v *vethNamespace) do(t *testing.T, method, url string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, val := range header {
		req.Header.Set(k, val)
	}
	resp, err := v.client(t).Do(req)
	if err != nil {
		t.Fatalf("%s %s from the namespace: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s from the namespace: %v", method, url, err)
	}
	return resp.StatusCode, string(b)
}

// TestSecurityIMDSAllowedClientsRefuseANetworkNamespace: IMDS bound off loopback (all interfaces), reached
// from a namespace through the host's end of a veth pair, the way a container on a bridge network reaches
// it. The IP TTL of 1 on the token answer does not stop that client (it is one hop away): with its address
// allowed it gets the token and the credentials. With an allow-list that does not name it, it gets neither
// (403 naming its address and imds.allowed_clients), not even with a token fetched on the host, while the
// host's loopback clients are still served. Without allowed_clients (the bridge before it existed) the
// namespace's client got the credentials.
func TestSecurityIMDSAllowedClientsRefuseANetworkNamespace(t *testing.T) {
	v := newVethNamespace(t)
	for _, c := range []struct {
		name    string
		allowed string
		want    int
	}{
		{"namespace not in allowed_clients", "10.99.0.0/16", http.StatusForbidden},
		{"namespace in allowed_clients", v.clientIP.String() + "/32", http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			clock := newClock()
			s, _ := startIMDS(t, clock, IMDSOptions{Addr: "0.0.0.0:0", AllowRemote: true,
				AllowedClients: []netip.Prefix{netip.MustParsePrefix(c.allowed)}})
			creds := testCreds(clock.Now())
			if err := s.Put(context.Background(), creds); err != nil {
				t.Fatal(err)
			}
			_, port, _ := net.SplitHostPort(s.Addr())
			base := "http://" + net.JoinHostPort(v.hostIP.String(), port)
			status, tok := v.do(t, http.MethodPut, base+imdsTokenPath, map[string]string{imdsTTLHeader: "60"})
			if status != c.want {
				t.Fatalf("token PUT from %s: %d %q, want %d", v.clientIP, status, tok, c.want)
			}
			if c.want == http.StatusForbidden {
				if !strings.Contains(tok, v.clientIP.String()) || !strings.Contains(tok, "imds.allowed_clients") {
					t.Errorf("refusal %q should name the address and imds.allowed_clients", tok)
				}
				// The host's loopback clients are served; their token opens nothing from the namespace.
				loop := "http://127.0.0.1:" + port
				r := do(t, http.MethodPut, loop+imdsTokenPath, map[string]string{imdsTTLHeader: "60"})
				if r.status != http.StatusOK {
					t.Fatalf("loopback token PUT: %d %q", r.status, r.body)
				}
				hostTok := r.body
				if r := do(t, http.MethodGet, loop+credsPath+testRole, map[string]string{imdsTokenHeader: hostTok}); r.status != http.StatusOK {
					t.Fatalf("loopback credentials GET: %d %q", r.status, r.body)
				}
				status, body := v.do(t, http.MethodGet, base+credsPath+testRole, map[string]string{imdsTokenHeader: hostTok})
				if status != http.StatusForbidden || strings.Contains(body, creds.SecretAccessKey) {
					t.Fatalf("credentials GET from the namespace with a host token: %d %q", status, body)
				}
				return
			}
			status, body := v.do(t, http.MethodGet, base+credsPath+testRole, map[string]string{imdsTokenHeader: tok})
			if status != http.StatusOK || !strings.Contains(body, creds.SecretAccessKey) {
				t.Fatalf("allowed namespace client: %d %q", status, body)
			}
		})
	}
}
