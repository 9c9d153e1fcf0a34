package daemon_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/daemon"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/clock"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs/safefstest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// sinkReport is /ready as a monitoring script reads it: the states and the sinks.
type sinkReport struct {
	Ready    bool   `json:"ready"`
	Status   string `json:"status"`
	Profiles []struct {
		Profile      string `json:"profile"`
		Ready        bool   `json:"ready"`
		Status       string `json:"status"`
		Reason       string `json:"reason"`
		SinkFailures int    `json:"sink_failures"`
		Sinks        []struct {
			Name      string `json:"name"`
			OK        bool   `json:"ok"`
			LastError string `json:"last_error"`
		} `json:"sinks"`
	} `json:"profiles"`
}

func readySinks(t *testing.T, d *daemon.Daemon) (int, sinkReport) {
	t.Helper()
	return getReady[sinkReport](t, d)
}

// sinksReported reports whether every sink of every profile in r has a result: written (ok) or failed
// (an error). A refresh records its sinks one by one, so a report read in between shows a sink that has
// not run yet as neither.
func sinksReported(r sinkReport) bool {
	for _, p := range r.Profiles {
		for _, s := range p.Sinks {
			if !s.OK && s.LastError == "" {
				return false
			}
		}
	}
	return true
}

// TestReadOnlyCredentialsDirectoryIsNotReady is the operator's read-only volume (a ConfigMap or Secret
// mount, a read-only root file system): the credentials directory exists, every check at start passes,
// and every write fails with EROFS — for root too. A profile whose only sink is that file is not ready
// (503, the reason naming the path); a profile that also serves IMDS is degraded (still 200 on its own);
// the stop summary counts the failed writes; once the directory is writable again both profiles are
// ready without a restart.
func TestReadOnlyCredentialsDirectoryIsNotReady(t *testing.T) {
	t.Parallel()
	w := newWorld(t, time.Now)
	roDir := filepath.Join(w.Dir, "ro")
	if err := os.Mkdir(roDir, 0o700); err != nil {
		t.Fatal(err)
	}
	writable := safefstest.ReadOnly(t, roDir)
	onlyPath, bothPath := filepath.Join(roDir, "only"), filepath.Join(roDir, "both")
	d, _ := w.startWith(t, clock.Real{}, time.Now,
		w.profile("only", testworld.CredentialsFile(onlyPath))+
			w.profile("both", testworld.CredentialsFile(bothPath)+"  imds {\n    bind_port = 0\n  }"),
		func(o *daemon.Options) {
			o.Policy.RetryBase, o.Policy.RetryMax = 50*time.Millisecond, 300*time.Millisecond
		})

	var code int
	var r sinkReport
	within(t, 10*time.Second, "credentials obtained, the file sinks failing", func() bool {
		code, r = readySinks(t, d)
		return len(r.Profiles) == 2 && r.Profiles[0].SinkFailures > 0 && r.Profiles[1].SinkFailures > 0 && sinksReported(r)
	})
	if code != http.StatusServiceUnavailable || r.Ready || r.Status != "not_ready" {
		t.Errorf("/ready = %d ready=%v status %q with a profile delivering to no one; want 503 not_ready", code, r.Ready, r.Status)
	}
	only, both := r.Profiles[0], r.Profiles[1]
	if only.Ready || only.Status != "not_ready" || !strings.Contains(only.Reason, roDir) || !strings.Contains(only.Reason, "read-only file system") {
		t.Errorf("profile only: ready=%v status %q reason %q; want not_ready naming %s", only.Ready, only.Status, only.Reason, roDir)
	}
	if both.Ready || both.Status != "degraded" || !strings.Contains(both.Reason, "1 of 2 sinks fail") || !strings.Contains(both.Reason, bothPath) {
		t.Errorf("profile both: ready=%v status %q reason %q; want degraded naming %s", both.Ready, both.Status, both.Reason, bothPath)
	}
	if len(both.Sinks) != 2 || both.Sinks[0].OK || !both.Sinks[1].OK || !strings.HasPrefix(both.Sinks[1].Name, "imds") {
		t.Errorf("profile both sinks: %+v", both.Sinks)
	}
	summary := fmt.Sprint(daemon.StopSummary(d.States()[0]))
	if !strings.Contains(summary, "sink_failures") || !strings.Contains(summary, onlyPath) {
		t.Errorf("the stop summary does not count the sink failures: %s", summary)
	}

	writable()
	took := within(t, 10*time.Second, "ready again once the directory is writable", func() bool {
		code, r = readySinks(t, d)
		return code == http.StatusOK && r.Ready && r.Status == "ready" && r.Profiles[0].Ready && r.Profiles[1].Ready
	})
	t.Logf("ready %s after the directory became writable", took.Round(time.Millisecond))
	if fileKey(onlyPath, "only") == "" || fileKey(bothPath, "both") == "" {
		t.Error("ready, but the files do not hold the credentials")
	}
}

// TestFailingHookDegradesTheProfile: an on_refresh command that fails is a failing sink: the profile whose
// file is written is degraded (200), its sinks naming the hook and its error; it never counts as
// delivering, so a profile whose file cannot be written (a read-only directory) stays not ready while its
// hook runs.
func TestFailingHookDegradesTheProfile(t *testing.T) {
	t.Parallel()
	w := newWorld(t, time.Now)
	credsPath := filepath.Join(w.Dir, "credentials")
	failing := filepath.Join(w.Dir, "reload-app")
	if err := os.WriteFile(failing, []byte("#!/bin/sh\necho cannot reload >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	roDir := filepath.Join(w.Dir, "ro")
	if err := os.Mkdir(roDir, 0o700); err != nil {
		t.Fatal(err)
	}
	safefstest.ReadOnly(t, roDir)
	d, _ := w.start(t, clock.Real{}, time.Now,
		w.profile("app", testworld.CredentialsFile(credsPath)+fmt.Sprintf("  on_refresh {\n    command = [%q]\n  }", failing))+
			w.profile("nofile", testworld.CredentialsFile(filepath.Join(roDir, "credentials"))+"  on_refresh {\n    command = [\"/bin/true\"]\n  }"))
	var code int
	var r sinkReport
	within(t, 10*time.Second, "both profiles refreshed, their failing sinks reported", func() bool {
		code, r = readySinks(t, d)
		return len(r.Profiles) == 2 && r.Profiles[0].SinkFailures > 0 && r.Profiles[1].SinkFailures > 0 && sinksReported(r) &&
			fileKey(credsPath, "app") != ""
	})
	app, nofile := r.Profiles[0], r.Profiles[1]
	if app.Status != "degraded" || app.Ready || len(app.Sinks) != 2 || !app.Sinks[0].OK || app.Sinks[1].OK ||
		app.Sinks[1].Name != "on_refresh" || !strings.Contains(app.Sinks[1].LastError, "exit status 3") {
		t.Errorf("profile app with a failing hook: %+v", app)
	}
	if nofile.Status != "not_ready" || !nofile.Sinks[1].OK || !strings.Contains(nofile.Reason, roDir) {
		t.Errorf("profile nofile, its file failing and its hook running: %+v", nofile)
	}
	if code != http.StatusServiceUnavailable || r.Status != "not_ready" {
		t.Errorf("/ready = %d %q, want 503 not_ready", code, r.Status)
	}
}
