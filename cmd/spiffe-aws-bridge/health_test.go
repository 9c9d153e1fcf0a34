package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs/safefstest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// TestReadOnlyCredentialsDirectoryFailsCheckAndReady is the operator who points credentials_file at a
// read-only volume (for root too: a read-only bind mount, EROFS). `check --config` exits 1 naming the
// path; the daemon's /ready answers 503 with the profile not_ready and the path in its reason; the stop
// summary counts the failed writes. Once the directory is writable, check passes.
func TestReadOnlyCredentialsDirectoryFailsCheckAndReady(t *testing.T) {
	w := newWorld(t)
	roDir := filepath.Join(w.Dir, "ro")
	if err := os.Mkdir(roDir, 0o700); err != nil {
		t.Fatal(err)
	}
	writable := safefstest.ReadOnly(t, roDir)
	credsPath := filepath.Join(roDir, "credentials")
	port, metricsPort := freeTCPPort(t), freeTCPPort(t)
	cfg := w.bridgeConfig(t, "bridge.hcl", credsPath, testworld.HealthChecks(port)+testworld.Telemetry(metricsPort))

	r := runBin(t, nil, "check", "--config", cfg)
	if r.code != 1 || !strings.Contains(r.stdout, "FAIL credentials_file "+credsPath+": ") || !strings.Contains(r.stdout, roDir) ||
		!strings.Contains(r.stdout, "read-only file system") || strings.Contains(r.stdout, "All checks passed.") {
		t.Fatalf("check on a read-only credentials directory: exit %d, want 1 naming %s\n%s\n%s", r.code, roDir, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "ok   CreateSession succeeded") {
		t.Errorf("check did not get as far as CreateSession:\n%s", r.stdout)
	}

	d := startDaemon(t, cfg)
	var code int
	var rep struct {
		Ready    bool   `json:"ready"`
		Status   string `json:"status"`
		Profiles []struct {
			Status       string `json:"status"`
			Reason       string `json:"reason"`
			SinkFailures int    `json:"sink_failures"`
		} `json:"profiles"`
	}
	eventually(t, "/ready reporting the failing sink", func() bool {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/ready")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		code = resp.StatusCode
		return json.Unmarshal(body, &rep) == nil && len(rep.Profiles) == 1 && rep.Profiles[0].SinkFailures > 0
	})
	if code != http.StatusServiceUnavailable || rep.Ready || rep.Status != "not_ready" || rep.Profiles[0].Status != "not_ready" ||
		!strings.Contains(rep.Profiles[0].Reason, credsPath) {
		t.Errorf("/ready = %d %+v; want 503, not_ready, the reason naming %s", code, rep, credsPath)
	}
	// The metrics say the same.
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(metricsPort) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`spiffe_aws_bridge_profile_state{profile="app",state="not_ready"} 1`,
		`spiffe_aws_bridge_profile_state{profile="app",state="ready"} 0`,
		`spiffe_aws_bridge_profile_ready{profile="app"} 0`,
		`spiffe_aws_bridge_sink_ok{profile="app",sink="credentials_file \"` + credsPath + `\" [app]"} 0`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("exit: %v", err)
	}
	m := regexp.MustCompile(`profile stopped: profile=app refreshes=\d+ consecutive_failures=0 sink_failures=(\d+) failing_sinks=\["credentials_file \\"` +
		regexp.QuoteMeta(credsPath) + `\\" \[app\]"\]`).FindStringSubmatch(d.Logs())
	if m == nil || m[1] == "0" {
		t.Errorf("the stop summary does not count the sink failures:\n%s", d.Logs())
	}

	writable()
	if r = runBin(t, nil, "check", "--config", cfg); r.code != 0 || !strings.Contains(r.stdout, "ok   credentials_file "+credsPath+": created and removed a file in "+roDir) {
		t.Errorf("check on the writable directory: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
