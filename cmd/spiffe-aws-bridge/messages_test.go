package main

// Messages that diagnose: each test runs the real binary into the situation and checks the
// facts the message must carry — the path, the flag or key, the hint.

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs/safefstest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// TestWorkloadAPIFailuresSayWhatIsWrong: a missing socket, a regular file and a socket nobody listens on
// are told apart, with the address and where it came from (flag, environment, config key).
func TestWorkloadAPIFailuresSayWhatIsWrong(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.sock")
	regular := filepath.Join(dir, "regular.sock")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	cfg := filepath.Join(dir, "bridge.hcl")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("agent_address = %q\nprofile \"app\" {\n  trust_anchor_arn = %q\n  profile_arn = %q\n  role_arn = %q\n}\n",
		"unix://"+regular, testworld.TrustAnchorARN, testworld.ProfileARN, testworld.RoleARN)), 0o600); err != nil {
		t.Fatal(err)
	}
	arns := []string{"--trust-anchor-arn", testworld.TrustAnchorARN, "--profile-arn", testworld.ProfileARN, "--role-arn", testworld.RoleARN}
	for _, tc := range []struct {
		name string
		argv []string
		env  []string
		want []string
	}{
		{"missing socket, flag", append([]string{leanPath, "--workload-socket", "unix://" + missing}, arns...), nil,
			[]string{"Workload API unix://" + missing + " (from --workload-socket)", "no socket at " + missing + ": is the SPIRE agent running, and is this its socket_path?"}},
		{"regular file, environment", append([]string{binPath, "credential-process"}, arns...), []string{"SPIFFE_ENDPOINT_SOCKET=unix://" + regular},
			[]string{"Workload API unix://" + regular + " (from $SPIFFE_ENDPOINT_SOCKET)", regular + " is not a socket (it is a regular file)"}},
		{"nobody listens, JWT", []string{binPath, "credentials", "--audience", "a", "--role-arn", testworld.RoleARN, "--workload-socket", stale}, nil,
			[]string{"Workload API unix://" + stale + " (from --workload-socket)", "connection refused: nothing listens there (is the SPIRE agent running?"}},
		{"regular file, config key", []string{leanPath, "--config", cfg, "--profile", "app"}, nil,
			[]string{"(from the agent_address key of " + cfg + ")", regular + " is not a socket"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runArgv(t, tc.env, tc.argv...)
			if r.code != 1 {
				t.Errorf("exit %d, want 1 (a runtime failure)", r.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
		})
	}

	// check, with the config: the agent_address key is named.
	r := runBin(t, nil, "check", "--config", cfg)
	if r.code != 1 || !strings.Contains(r.stdout, "(from the agent_address key of "+cfg+")") || !strings.Contains(r.stdout, regular+" is not a socket") {
		t.Errorf("check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// The daemon logs the hint while it waits for the agent.
	d := startDaemon(t, cfg)
	eventually(t, "the Workload API hint in the daemon's log", func() bool {
		return strings.Contains(d.Logs(), regular+" is not a socket (it is a regular file)")
	})
	if !strings.Contains(d.Logs(), `workload_api_from="the agent_address key"`) {
		t.Errorf("the start-up line does not say where the address came from:\n%s", d.Logs())
	}
	_ = d.stop(t, syscall.SIGTERM)
}

// TestRunLogsSinksAtStartAndASummaryAtStop: the start-up log names each profile's sinks with their paths
// and ports; a stop logs one summary line per profile.
func TestRunLogsSinksAtStartAndASummaryAtStop(t *testing.T) {
	w := newWorld(t)
	credsPath := filepath.Join(w.Dir, "aws", "credentials")
	port := freeTCPPort(t)
	cfg := w.bridgeConfig(t, "bridge.hcl", credsPath, "")
	src, _ := os.ReadFile(cfg)
	src = []byte(strings.Replace(string(src), "  credentials_file {", fmt.Sprintf("  imds {\n    bind_port = %d\n  }\n  credentials_file {", port), 1))
	if err := os.WriteFile(cfg, src, 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, cfg)
	eventually(t, "credentials", func() bool { return profileKeys(credsPath, "app")["aws_access_key_id"] != "" })
	// The refresh line comes after the sinks were written: wait for it, not for the file.
	eventually(t, "the refresh line", func() bool { return strings.Contains(d.Logs(), "refreshed credentials") })
	logs := d.Logs()
	want := fmt.Sprintf(`profile started: profile=app selector="spiffe_id %s" role=%s sinks=["credentials_file %s [app]", "imds http://127.0.0.1:%d/"]`, testworld.SPIFFEID, testworld.RoleARN, credsPath, port)
	if !strings.Contains(logs, "sinks=[\"credentials_file "+credsPath+" [app]\", \"imds http://127.0.0.1:"+fmt.Sprint(port)+"/\"]") {
		t.Errorf("start-up log lacks the sinks, want like %s", want)
	}
	if !strings.Contains(logs, `delivered_to=["credentials_file `) {
		t.Errorf("the refresh line does not name the sinks that got the credentials")
	}
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("exit: %v", err)
	}
	logs = d.Logs()
	if n := strings.Count(logs, "profile stopped: profile=app refreshes="); n != 1 || !strings.Contains(logs, "credentials_expire=") {
		t.Errorf("want one summary line for the profile at stop, got %d:\n%s", n, logs)
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestFatalStartErrorsAreJSONWithLogFormatJSON: with log_format = "json" the error that stops the bridge
// at start is a JSON log line like every other (and its prefix is not doubled: "imds: imds:").
func TestFatalStartErrorsAreJSONWithLogFormatJSON(t *testing.T) {
	w := newWorld(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	cfg := w.WriteFile(t, "bridge.hcl", []byte(fmt.Sprintf("agent_address = %q\nlog_format = \"json\"\n%s", w.Agent.Addr(),
		w.ProfileBlock("app", testworld.RoleARN, fmt.Sprintf("  imds {\n    bind_port = %d\n  }\n", port)))))
	r := runBin(t, nil, "run", "--config", cfg)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", r.code, r.stderr)
	}
	var fatal map[string]any
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("a line of stderr is not JSON: %q", line)
		}
		if strings.HasPrefix(fmt.Sprint(m["@message"]), "fatal") {
			fatal = m
		}
	}
	msg := fmt.Sprint(fatal["error"])
	if fatal == nil || !strings.Contains(msg, fmt.Sprintf("imds: listen on 127.0.0.1:%d", port)) || strings.Contains(msg, "imds: imds:") ||
		!strings.Contains(msg, "another process listens there") {
		t.Fatalf("fatal line %v\nstderr:\n%s", fatal, r.stderr)
	}
}

// TestHealthChecksOnPort80AsNonRootGetAHint: health_checks {} binds port 80, which a non-root bridge
// may not; the error says so and what to configure.
func TestHealthChecksOnPort80AsNonRootGetAHint(t *testing.T) {
	safefstest.NeedRoot(t, "to run the bridge as another user")
	dir, err := os.MkdirTemp("", "health80")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "bridge.hcl")
	src := fmt.Sprintf("agent_address = %q\nhealth_checks {}\nprofile \"app\" {\n  trust_anchor_arn = %q\n  profile_arn = %q\n  role_arn = %q\n}\n",
		"unix://"+filepath.Join(dir, "agent.sock"), testworld.TrustAnchorARN, testworld.ProfileARN, testworld.RoleARN)
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "spiffe-aws-bridge")
	data, err := os.ReadFile(binPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", cfg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: safefstest.Nobody, Gid: safefstest.Nobody}}
	done := make(chan struct{})
	var out []byte
	go func() { out, _ = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the bridge did not fail on port 80")
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 ||
		!strings.Contains(string(out), "health_checks: listen on localhost:80") ||
		!strings.Contains(string(out), "ports below 1024 need root or CAP_NET_BIND_SERVICE: configure a port above 1023, e.g. bind_port = 8080") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

// TestCheckPrintsTheConfiguredTrustAnchorUnescaped: check's trust policy names the profile's trust
// anchor ARN as written, with no \u003c escapes.
func TestCheckPrintsTheConfiguredTrustAnchorUnescaped(t *testing.T) {
	w := newWorld(t)
	cfg := w.WriteConfig(t, "bridge.hcl", w.ProfileBlock("app", testworld.RoleARN, ""))
	r := runBin(t, nil, "check", "--config", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, `"aws:SourceArn": "`+testworld.TrustAnchorARN+`"`) || strings.Contains(r.stdout, `\u00`) {
		t.Fatalf("exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runBin(t, nil, "check", "--workload-socket", w.Agent.Addr())
	if r.code != 0 || !strings.Contains(r.stdout, `"aws:SourceArn": "arn:aws:rolesanywhere:<region>:<account>:trust-anchor/<id>"`) {
		t.Fatalf("without a config: exit %d:\n%s", r.code, r.stdout)
	}
}
