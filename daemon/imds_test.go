package daemon_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/clock"
)

// imdsRequest sends method to the IMDS endpoint at addr with header; it returns the status and body.
func imdsRequest(t *testing.T, method, addr, path string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestIMDSTokensOutliveAReload: a token from an IMDS endpoint still opens the credentials after a reload
// replaced the profile (and its IMDS server, on the same socket): the daemon signs every IMDS server's
// tokens with one key.
func TestIMDSTokensOutliveAReload(t *testing.T) {
	w := newWorld(t, time.Now)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	body := func(hosts string) string {
		return w.profile("app", fmt.Sprintf("  imds {\n    bind_port = %d\n    allowed_hosts = %s\n  }", port, hosts))
	}
	d, _ := w.start(t, clock.Real{}, time.Now, body("[]"))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	creds := "/latest/meta-data/iam/security-credentials/app"
	within(t, 10*time.Second, "credentials served", func() bool {
		status, tok := imdsRequest(t, http.MethodPut, addr, "/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "600"})
		if status != http.StatusOK {
			return false
		}
		status, _ = imdsRequest(t, http.MethodGet, addr, creds, map[string]string{"X-aws-ec2-metadata-token": tok})
		return status == http.StatusOK
	})
	_, tok := imdsRequest(t, http.MethodPut, addr, "/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "600"})

	if err := d.Reload(context.Background(), w.parse(t, body(`["bridge.internal"]`))); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "the new version's credentials", func() bool {
		status, doc := imdsRequest(t, http.MethodGet, addr, creds, map[string]string{"X-aws-ec2-metadata-token": tok})
		if status == http.StatusUnauthorized {
			t.Fatalf("the token from before the reload: %d %s", status, doc)
		}
		return status == http.StatusOK && strings.Contains(doc, `"Code":"Success"`)
	})
}
