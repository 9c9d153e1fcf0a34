package hook

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/logtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testAccessKey = "ASIATESTACCESSKEY"
	testSecret    = "s3cr3t-SECRET-access-key-value"
	testSession   = "sess10n-TOKEN-value-xyz"
)

func testCreds() creds.Credentials {
	return creds.Credentials{
		AccessKeyID:     testAccessKey,
		SecretAccessKey: testSecret,
		SessionToken:    testSession,
		Expiration:      time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600)),
		AssumedRoleARN:  "arn:aws:sts::123456789012:assumed-role/app/s1",
	}
}

func assertNoSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, sec := range []string{testSecret, testSession} {
		if strings.Contains(s, sec) {
			t.Errorf("%s contains secret %q", what, sec)
		}
	}
}

func TestCommandEnvironment(t *testing.T) {
	out := filepath.Join(t.TempDir(), "env")
	log, logs := logtest.New()
	c, err := NewCommand(CommandOptions{
		Profile: "demo",
		Command: []string{"sh", "-c", `env > "$0"; echo hello from hook`, out},
		Logger:  log,
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != "on_refresh" {
		t.Errorf("Name = %q", c.Name())
	}
	if err := c.Put(context.Background(), testCreds()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	env := string(b)
	for _, want := range []string{
		"SPIFFE_AWS_BRIDGE_PROFILE=demo\n",
		"SPIFFE_AWS_BRIDGE_EXPIRATION=2030-01-02T02:04:05Z\n",
		"SPIFFE_AWS_BRIDGE_ACCESS_KEY_ID=" + testAccessKey + "\n",
		"SPIFFE_AWS_BRIDGE_ROLE_ARN=arn:aws:sts::123456789012:assumed-role/app/s1\n",
	} {
		if !strings.Contains(env, want) {
			t.Errorf("environment lacks %q", want)
		}
	}
	if !strings.Contains(env, "PATH=") {
		t.Error("environment does not inherit the daemon's")
	}
	assertNoSecrets(t, "command environment", env)
	if !strings.Contains(logs.String(), "hello from hook") {
		t.Errorf("output not logged:\n%s", logs.String())
	}
	assertNoSecrets(t, "log", logs.String())
	if err := c.Clear(context.Background()); err != nil {
		t.Errorf("Clear: %v", err)
	}
}

func TestCommandFailure(t *testing.T) {
	log, logs := logtest.New()
	c, err := NewCommand(CommandOptions{Command: []string{"sh", "-c", "echo oops >&2; exit 3"}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Put(context.Background(), testCreds())
	var ee *exec.ExitError
	if err == nil || !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("err = %v, want exit status 3", err)
	}
	if !strings.Contains(err.Error(), `"sh"`) || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("error %q does not name the command and status", err)
	}
	if !strings.Contains(logs.String(), "[WARN]") || !strings.Contains(logs.String(), "oops") {
		t.Errorf("log:\n%s", logs.String())
	}
	assertNoSecrets(t, "log", logs.String())

	c, err = NewCommand(CommandOptions{Command: []string{filepath.Join(t.TempDir(), "does-not-exist")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Put(context.Background(), testCreds()); err == nil {
		t.Error("missing program: no error")
	}
}

func TestCommandTimeoutKills(t *testing.T) {
	// The shell backgrounds a grandchild holding the output pipe: the whole group must die.
	c, err := NewCommand(CommandOptions{Command: []string{"sh", "-c", "sleep 10 & sleep 10"}, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = c.Put(context.Background(), testCreds())
	elapsed := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("err = %v, want a timeout", err)
	}
	if elapsed > 3*time.Second {
		t.Errorf("Put took %s after a 200ms timeout", elapsed)
	}
}

func TestCommandOutputCapped(t *testing.T) {
	log, logs := logtest.New()
	c, err := NewCommand(CommandOptions{Command: []string{"sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x"}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Put(context.Background(), testCreds()); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "x"); n > maxOutput+100 || n < maxOutput {
		t.Errorf("logged %d bytes of output, want about %d", n, maxOutput)
	}
}

func TestNewCommandValidation(t *testing.T) {
	for _, argv := range [][]string{nil, {}, {""}, {"", "x"}} {
		if _, err := NewCommand(CommandOptions{Command: argv}); err == nil {
			t.Errorf("command %q accepted", argv)
		}
	}
	c, err := NewCommand(CommandOptions{Command: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.timeout != DefaultTimeout {
		t.Errorf("default timeout = %s", c.timeout)
	}
}

func TestSignal(t *testing.T) {
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- child.Wait() }()
	t.Cleanup(func() {
		_ = child.Process.Kill()
		<-waited
	})
	pidFile := filepath.Join(t.TempDir(), "app.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(child.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := NewSignal(SignalOptions{PIDFile: pidFile, Signal: syscall.SIGTERM})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "signal" {
		t.Errorf("Name = %q", s.Name())
	}
	if err := s.Put(context.Background(), testCreds()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		waited <- err // for the cleanup
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("child: %v", err)
		}
		ws := ee.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
			t.Errorf("child status %v, want killed by SIGTERM", ws)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("child not signalled")
	}
	if err := s.Clear(context.Background()); err != nil {
		t.Errorf("Clear: %v", err)
	}
}

func TestSignalDefault(t *testing.T) {
	s, err := NewSignal(SignalOptions{PIDFile: "/x"})
	if err != nil {
		t.Fatal(err)
	}
	if s.sig != syscall.SIGHUP {
		t.Errorf("default signal %v", s.sig)
	}
	if _, err := NewSignal(SignalOptions{}); err == nil {
		t.Error("empty pid file accepted")
	}
}

func TestSignalPIDFileErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pid")
	s, err := NewSignal(SignalOptions{PIDFile: missing})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Put(context.Background(), testCreds())
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing pid file: %v", err)
	}
	for _, content := range []string{"", "abc", "0", "-5", "12 34", "1.5"} {
		path := filepath.Join(dir, "bad.pid")
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := NewSignal(SignalOptions{PIDFile: path, Signal: syscall.SIGUSR1})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Put(context.Background(), testCreds())
		if err == nil {
			t.Errorf("content %q accepted", content)
			continue
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), strconv.Quote(strings.TrimSpace(content))) {
			t.Errorf("content %q: error %q does not name the file and content", content, err)
		}
	}
	// A pid that does not exist: the kill error is wrapped.
	path := filepath.Join(dir, "gone.pid")
	if err := os.WriteFile(path, []byte("2147483646"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, _ = NewSignal(SignalOptions{PIDFile: path})
	if err := s.Put(context.Background(), testCreds()); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("nonexistent pid: %v, want ESRCH", err)
	}
}

func TestParseSignal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want syscall.Signal
	}{
		{"SIGHUP", syscall.SIGHUP}, {"HUP", syscall.SIGHUP}, {"hup", syscall.SIGHUP}, {"SigHup", syscall.SIGHUP},
		{"SIGUSR1", syscall.SIGUSR1}, {"usr1", syscall.SIGUSR1},
		{"SIGUSR2", syscall.SIGUSR2}, {"sigusr2", syscall.SIGUSR2},
		{"SIGTERM", syscall.SIGTERM}, {"TERM", syscall.SIGTERM},
		{"SIGINT", syscall.SIGINT}, {"int", syscall.SIGINT},
		{"SIGQUIT", syscall.SIGQUIT}, {"QUIT", syscall.SIGQUIT},
	} {
		got, err := ParseSignal(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "SIG", "KILL", "SIGKILL", "9", "SIGHUPX"} {
		_, err := ParseSignal(bad)
		if err == nil {
			t.Errorf("ParseSignal(%q) accepted", bad)
			continue
		}
		for _, name := range []string{"SIGHUP", "SIGUSR1", "SIGUSR2", "SIGTERM", "SIGINT", "SIGQUIT"} {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("error %q does not list %s", err, name)
			}
		}
	}
}

// sink mirrors bridge.Sink, which this package must satisfy without importing it.
type sink interface {
	Name() string
	Put(ctx context.Context, c creds.Credentials) error
	Clear(ctx context.Context) error
}

var (
	_ sink = (*Command)(nil)
	_ sink = (*Signal)(nil)
)
