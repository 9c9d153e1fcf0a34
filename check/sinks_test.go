package check_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/endpoint"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/check"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs/safefstest"
)

func probeOne(t *testing.T, p config.Profile) check.SinkResult {
	t.Helper()
	p.Name = "app"
	rs := check.Sinks(context.Background(), p, check.SinkOptions{})
	if len(rs) != 1 {
		t.Fatalf("%d results, want 1: %+v", len(rs), rs)
	}
	return rs[0]
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func credsFile(path string) config.Profile {
	return config.Profile{CredentialsFile: &config.CredentialsFile{Path: path, ProfileName: "app"}}
}

// TestCredentialsFileProbe: a directory the daemon could write passes and keeps nothing of the probe; a
// read-only one (for root too: a read-only bind mount), a missing one under a read-only parent and one
// whose parent is a file fail, naming the path.
func TestCredentialsFileProbe(t *testing.T) {
	dir := t.TempDir()

	r := probeOne(t, credsFile(filepath.Join(dir, "credentials")))
	if r.Status != check.OK || !strings.Contains(r.Detail, "created and removed a file in "+dir+" with mode 0600") {
		t.Errorf("writable directory: %+v", r)
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Errorf("the probe left %v behind", got)
	}

	// A missing directory: the daemon creates it; nothing is created by the probe.
	r = probeOne(t, credsFile(filepath.Join(dir, "a", "b", "credentials")))
	if r.Status != check.OK || !strings.Contains(r.Detail, filepath.Join(dir, "a", "b")+" does not exist yet") {
		t.Errorf("missing directory: %+v", r)
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Errorf("the probe left %v behind", got)
	}

	// An existing file keeps its place; the probe does not touch it.
	existing := filepath.Join(dir, "credentials")
	if err := os.WriteFile(existing, []byte("[other]\nregion = us-east-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r = probeOne(t, credsFile(existing)); r.Status != check.OK {
		t.Errorf("existing file: %+v", r)
	}
	if got := entries(t, dir); len(got) != 1 || got[0] != "credentials" {
		t.Errorf("the probe left %v", got)
	}

	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o700); err != nil {
		t.Fatal(err)
	}
	safefstest.ReadOnly(t, ro)
	for _, path := range []string{filepath.Join(ro, "credentials"), filepath.Join(ro, "missing", "credentials")} {
		r = probeOne(t, credsFile(path))
		if r.Status != check.Fail || !strings.Contains(r.Detail, ro) || r.Sink != "credentials_file "+path {
			t.Errorf("read-only %s: %+v", path, r)
		}
	}

	// The parent is a file.
	r = probeOne(t, credsFile(filepath.Join(existing, "credentials")))
	if r.Status != check.Fail || !strings.Contains(r.Detail, existing) {
		t.Errorf("parent is a file: %+v", r)
	}

	// An owner that is no user here.
	p := credsFile(filepath.Join(dir, "credentials"))
	p.CredentialsFile.Owner = "no-such-user-here"
	if r = probeOne(t, p); r.Status != check.Fail || !strings.Contains(r.Detail, `credentials_file.owner "no-such-user-here"`) {
		t.Errorf("unknown owner: %+v", r)
	}
}

// TestFileOwnerAndModeAreProved: as root, a probe gives its file the configured owner and mode, as Put
// would, in a directory of that owner's; in root's own directory it fails as Put does (root creates a
// user's file only in a directory of theirs); a directory nobody else may use (owned by another user, not
// trusted) fails.
func TestFileOwnerAndModeAreProved(t *testing.T) {
	safefstest.NeedRoot(t, "gives the probe file to another user")
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	safefstest.Give(t, home, safefstest.Nobody, safefstest.Nobody)
	p := credsFile(filepath.Join(home, "credentials"))
	p.CredentialsFile.Owner, p.CredentialsFile.Group, p.CredentialsFile.Mode = strconv.Itoa(safefstest.Nobody), strconv.Itoa(safefstest.Nobody), 0o640
	r := probeOne(t, p)
	if r.Status != check.OK || !strings.Contains(r.Detail, "mode 0640, owner 65534, group 65534") {
		t.Errorf("owner and mode: %+v", r)
	}
	p.CredentialsFile.Path = filepath.Join(dir, "credentials")
	if r = probeOne(t, p); r.Status != check.Fail || !strings.Contains(r.Detail, "a directory of theirs") {
		t.Errorf("a user's file in root's directory: %+v", r)
	}
	other := filepath.Join(dir, "other")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	safefstest.Give(t, other, 1234, 1234)
	if r = probeOne(t, credsFile(filepath.Join(other, "credentials"))); r.Status != check.Fail || !strings.Contains(r.Detail, other) {
		t.Errorf("a directory of another user: %+v", r)
	}
}

// TestPortProbe: a free port passes; a port another program holds fails naming the address; a port the
// bridge's own IMDS endpoint for this profile holds (the daemon runs) passes.
func TestPortProbe(t *testing.T) {
	imds := func(port int) config.Profile {
		return config.Profile{IMDS: &config.IMDS{BindAddress: "127.0.0.1", BindPort: port}}
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	r := probeOne(t, imds(port))
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if r.Status != check.Fail || !strings.Contains(r.Detail, "cannot listen on "+addr) || !strings.Contains(r.Detail, "another process listens there") {
		t.Errorf("busy port: %+v", r)
	}
	busy.Close()
	if r = probeOne(t, imds(port)); r.Status != check.OK {
		t.Errorf("free port: %+v", r)
	}

	s, err := endpoint.NewIMDS(endpoint.IMDSOptions{Addr: "127.0.0.1:0", RoleName: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, ps, _ := net.SplitHostPort(s.Addr())
	bridgePort, _ := strconv.Atoi(ps)
	if r = probeOne(t, imds(bridgePort)); r.Status != check.OK || !strings.Contains(r.Detail, "running bridge") {
		t.Errorf("port of the bridge's own IMDS: %+v", r)
	}
	// The same endpoint serving another profile's role is not this profile's.
	rs := check.Sinks(context.Background(), config.Profile{Name: "other", IMDS: imds(bridgePort).IMDS}, check.SinkOptions{})
	if rs[0].Status != check.Fail {
		t.Errorf("port of another profile's IMDS: %+v", rs[0])
	}
	// A port below 1024 as a non-root user, through an injected listener.
	rs = check.Sinks(context.Background(), imds(80), check.SinkOptions{Listen: func(string, string) (net.Listener, error) {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EACCES)}
	}})
	if rs[0].Status != check.Fail || !strings.Contains(rs[0].Detail, "CAP_NET_BIND_SERVICE") {
		t.Errorf("privileged port: %+v", rs[0])
	}
}

// TestHookProbes: a missing on_refresh program fails naming it; an executable one passes; a pid file not
// written yet is a warning, one owned by a user the bridge does not trust fails.
func TestHookProbes(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "reload-app")
	r := probeOne(t, config.Profile{OnRefresh: &config.OnRefresh{Command: []string{missing, "--now"}}})
	if r.Status != check.Fail || !strings.Contains(r.Detail, missing) {
		t.Errorf("missing command: %+v", r)
	}
	if err := os.WriteFile(missing, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if r = probeOne(t, config.Profile{OnRefresh: &config.OnRefresh{Command: []string{missing}}}); r.Status != check.OK {
		t.Errorf("executable command: %+v", r)
	}
	if err := os.Chmod(missing, 0o644); err != nil {
		t.Fatal(err)
	}
	if r = probeOne(t, config.Profile{OnRefresh: &config.OnRefresh{Command: []string{missing}}}); r.Status != check.Fail {
		t.Errorf("non-executable command: %+v", r)
	}

	pid := filepath.Join(dir, "app.pid")
	sig := config.Profile{Signal: &config.Signal{PIDFile: pid, Signal: syscall.SIGHUP}}
	if r = probeOne(t, sig); r.Status != check.Warn || !strings.Contains(r.Detail, pid+" does not exist yet") {
		t.Errorf("pid file not written yet: %+v", r)
	}
	if err := os.WriteFile(pid, []byte(strconv.Itoa(os.Getpid())), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(pid, 0o666); err != nil {
		t.Fatal(err)
	}
	if r = probeOne(t, sig); r.Status != check.Fail || !strings.Contains(r.Detail, "writable by other users") {
		t.Errorf("world-writable pid file: %+v", r)
	}
}

// TestSecurityCheckProvesTheOnRefreshProgramAsARootDaemonWould: as root, check refuses an on_refresh
// program another user could have written (here: in a directory uid 65534 owns), as the daemon refuses
// it at start, instead of reporting it runnable; root's own program passes.
func TestSecurityCheckProvesTheOnRefreshProgramAsARootDaemonWould(t *testing.T) {
	safefstest.NeedRoot(t, "a root daemon's rule for on_refresh programs")
	dir := t.TempDir()
	theirs := filepath.Join(dir, "theirs")
	if err := os.Mkdir(theirs, 0o755); err != nil {
		t.Fatal(err)
	}
	safefstest.Give(t, theirs, safefstest.Nobody, safefstest.Nobody)
	for _, c := range []struct {
		program string
		want    check.Status
	}{
		{filepath.Join(theirs, "reload"), check.Fail},
		{filepath.Join(dir, "reload"), check.OK},
	} {
		if err := os.WriteFile(c.program, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		r := probeOne(t, config.Profile{OnRefresh: &config.OnRefresh{Command: []string{c.program}}})
		if r.Status != c.want || (c.want == check.Fail && !strings.Contains(r.Detail, theirs)) {
			t.Errorf("%s: %+v, want status %v", c.program, r, c.want)
		}
	}
}
