package daemon_test

// End-to-end tests of the daemon in-process: the real fake Workload API (svidtest, a gRPC server on a
// unix socket), the emulator (a real HTTP server verifying signatures) and the daemon's real servers,
// with an injected clock where time matters.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"gopkg.in/ini.v1"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/schedule"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/daemon"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/clock"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/logtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// world is the test world (a fake SPIRE agent and an emulator trusting its CA, both on now) with the
// daemon's own helpers.
type world struct{ *testworld.World }

func newWorld(t *testing.T, now func() time.Time) world {
	t.Helper()
	return world{testworld.New(t, testworld.Options{Clock: now, SVIDTTL: 24 * time.Hour, QuotaPerSecond: -1})}
}

// profile is a profile block for the world's identity; body goes inside it.
func (w world) profile(name, body string) string { return w.Profile(name, body) }

// parse is cfgText parsed as the daemon's config, after the world's agent and health checks on an
// ephemeral port.
func (w world) parse(t *testing.T, cfgText string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(w.Config("health_checks {\n  bind_port = 0\n}\n", cfgText)), filepath.Join(w.Dir, "bridge.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// start runs a daemon on the world with cfg (health checks on an ephemeral port are added), clk and a
// log buffer.
func (w world) start(t *testing.T, clk clock.Clock, now func() time.Time, cfgText string) (*daemon.Daemon, *logtest.Buffer) {
	t.Helper()
	return w.startWith(t, clk, now, cfgText, nil)
}

// startWith is start with the daemon's options changed by opt.
func (w world) startWith(t *testing.T, clk clock.Clock, now func() time.Time, cfgText string, opt func(*daemon.Options)) (*daemon.Daemon, *logtest.Buffer) {
	t.Helper()
	cfg := w.parse(t, cfgText)
	logs := &logtest.Buffer{}
	opts := daemon.Options{
		Logger:             hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug}),
		Clock:              clk,
		Signer:             signer.Options{Now: now},
		Policy:             schedule.Policy{JitterFraction: 1e-9, RotationSpread: -1},
		WorkloadAPIBackoff: svid.Backoff{Base: 20 * time.Millisecond, Max: 200 * time.Millisecond},
	}
	if opt != nil {
		opt(&opts)
	}
	d, err := daemon.New(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Close()
		if t.Failed() {
			t.Logf("daemon logs:\n%s", logs.String())
		}
	})
	return d, logs
}

type readyReport struct {
	Ready        bool `json:"ready"`
	ConfigReload *struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	} `json:"config_reload"`
	Profiles []struct {
		Profile       string `json:"profile"`
		Ready         bool   `json:"ready"`
		Identity      string `json:"identity"`
		SpiffeID      string `json:"spiffe_id"`
		LastErrorType string `json:"last_error_type"`
		Reason        string `json:"reason"`
	} `json:"profiles"`
}

func ready(t *testing.T, d *daemon.Daemon) (int, readyReport) {
	t.Helper()
	return getReady[readyReport](t, d)
}

// getReady fetches d's /ready and decodes its body into a T.
func getReady[T any](t *testing.T, d *daemon.Daemon) (int, T) {
	t.Helper()
	var r T
	resp, err := http.Get("http://" + d.HealthAddr() + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("/ready: %v: %s", err, body)
	}
	return resp.StatusCode, r
}

// within polls cond every 5 ms until it holds or limit passes.
func within(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("not within %s: %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func fileKey(path, section string) string {
	f, err := ini.Load(path)
	if err != nil {
		return ""
	}
	s, err := f.GetSection(section)
	if err != nil {
		return ""
	}
	return s.Key("aws_access_key_id").String()
}

func creates(w world) int { return w.Emulator.Stats().CreateSession }

// TestSecurityDeletedEntryStopsMintingAtOnce is the revoked identity of docs/security.md: the SPIRE
// registration entry is deleted, the agent ends the stream with PermissionDenied "no identity issued".
// Both profiles stop calling CreateSession at once and are not ready within 2 s; "withdraw" clears its
// sink at once, "keep_until_expiry" keeps its valid credentials until they expire; re-adding the entry
// brings fresh credentials without a restart.
func TestSecurityDeletedEntryStopsMintingAtOnce(t *testing.T) {
	fake := clock.NewFake(time.Now().Truncate(time.Second))
	w := newWorld(t, fake.Now)
	keepPath, withdrawPath := filepath.Join(w.Dir, "keep"), filepath.Join(w.Dir, "withdraw")
	d, logs := w.start(t, fake, fake.Now,
		w.profile("keep", testworld.CredentialsFile(keepPath))+
			w.profile("withdraw", "  on_identity_loss = \"withdraw\"\n"+testworld.CredentialsFile(withdrawPath)))
	within(t, 10*time.Second, "both profiles ready, their files written", func() bool {
		c, _ := ready(t, d)
		return c == 200 && fileKey(keepPath, "keep") != "" && fileKey(withdrawPath, "withdraw") != ""
	})

	// Control: with the identity present, the refresh deadline (40 minutes into a 1h session) mints.
	n := creates(w)
	keepBefore, withdrawBefore := fileKey(keepPath, "keep"), fileKey(withdrawPath, "withdraw")
	fake.Advance(41 * time.Minute)
	within(t, 10*time.Second, "the timer refreshes", func() bool { return creates(w) == n+2 })
	within(t, 5*time.Second, "both files rewritten", func() bool {
		return fileKey(keepPath, "keep") != keepBefore && fileKey(withdrawPath, "withdraw") != withdrawBefore
	})
	keepKey := fileKey(keepPath, "keep")

	if ok, err := w.Agent.DeleteEntry(w.ID); !ok || err != nil {
		t.Fatalf("DeleteEntry: %v %v", ok, err)
	}
	took := within(t, 2*time.Second, "/ready reports no_identity for both profiles", func() bool {
		code, r := ready(t, d)
		if code != 503 || len(r.Profiles) != 2 {
			return false
		}
		for _, p := range r.Profiles {
			if p.Ready || p.Identity != "no_identity" || !strings.Contains(p.Reason, w.ID.String()) {
				return false
			}
		}
		return true
	})
	t.Logf("not ready %s after the entry was deleted", took.Round(time.Millisecond))
	within(t, 2*time.Second, "withdraw cleared its file", func() bool { return fileKey(withdrawPath, "withdraw") == "" })
	if got := fileKey(keepPath, "keep"); got != keepKey {
		t.Fatalf("keep_until_expiry changed its file (%q → %q) while the credentials are valid", keepKey, got)
	}
	// Past the next refresh deadline: no CreateSession with the revoked identity.
	n = creates(w)
	fake.Advance(41 * time.Minute)
	time.Sleep(500 * time.Millisecond)
	if got := creates(w); got != n {
		t.Fatalf("%d CreateSession calls after the identity was revoked", got-n)
	}
	// Past expiry the kept credentials are withdrawn too.
	fake.Advance(20 * time.Minute)
	within(t, 2*time.Second, "keep_until_expiry withdrew its file at expiry", func() bool { return fileKey(keepPath, "keep") == "" })
	if c := strings.Count(logs.String(), "[ERROR] refresher: identity lost"); c != 2 || !strings.Contains(logs.String(), "spiffe_id="+w.ID.String()) {
		t.Errorf("identity loss logged %d times at ERROR (want once per profile, naming the SPIFFE ID)", c)
	}

	// The entry comes back: fresh credentials, ready again, no restart.
	if err := w.Agent.AddEntry(svidtest.Entry{ID: w.ID}); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "ready again with fresh credentials", func() bool {
		code, _ := ready(t, d)
		return code == 200 && fileKey(keepPath, "keep") != "" && fileKey(withdrawPath, "withdraw") != ""
	})
	if got := creates(w); got != n+2 {
		t.Fatalf("%d CreateSession calls after the entry came back, want 2", got-n)
	}
}

// TestClockJumpWithdrawsExpiredCredentialsAndRefreshesWithin30s: real timers, an injected wall clock
// that steps 2h forward (an NTP step or a resume from suspend). The endpoint never serves the expired
// credentials, and within 30 s they leave the file and fresh ones are everywhere.
func TestClockJumpWithdrawsExpiredCredentialsAndRefreshesWithin30s(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: waits for the 30 s wall-clock watch; the full run covers it")
	}
	t.Parallel()
	clk := &clock.Shifted{}
	w := newWorld(t, clk.Now)
	credsPath := filepath.Join(w.Dir, "credentials")
	d, _ := w.start(t, clk, clk.Now, w.profile("app", testworld.CredentialsFile(credsPath)))
	within(t, 10*time.Second, "ready, the file written", func() bool { c, _ := ready(t, d); return c == 200 && fileKey(credsPath, "app") != "" })
	before := fileKey(credsPath, "app")
	n := creates(w)

	clk.Jump(2 * time.Hour)
	jumped := time.Now()
	if code, r := ready(t, d); code != 503 || r.Profiles[0].Ready {
		t.Fatalf("/ready = %d right after the jump: expired credentials reported ready", code)
	}
	within(t, 30*time.Second, "a refresh after the jump", func() bool { return creates(w) > n })
	within(t, 30*time.Second-time.Since(jumped), "fresh credentials in the file", func() bool {
		k := fileKey(credsPath, "app")
		return k != "" && k != before
	})
	within(t, 2*time.Second, "ready again", func() bool { c, _ := ready(t, d); return c == 200 })
	t.Logf("refreshed %s after the clock jumped", time.Since(jumped).Round(time.Millisecond))
}
