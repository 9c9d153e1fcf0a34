package examples

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestComposeDemoStopsAtOnceAndSaysWhatItIs: every service of the compose demo runs under Docker's init
// (which passes SIGTERM on to a program that would otherwise be PID 1) with a stop grace period of at most
// 2 s, and the images built from the repository carry the version and commit the binaries print.
func TestComposeDemoStopsAtOnceAndSaysWhatItIs(t *testing.T) {
	p := loadCompose(t)
	for _, name := range p.ServiceNames() {
		s := p.Services[name]
		if s.Init == nil || !*s.Init {
			t.Errorf("service %s: no init: true (a shell or program as PID 1 may ignore SIGTERM)", name)
		}
		if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) > 2*time.Second {
			t.Errorf("service %s: stop_grace_period %v, want at most 2s", name, s.StopGracePeriod)
		}
	}
	for _, name := range []string{"bridge", "emulator"} {
		args := service(t, p, name).Build.Args
		for _, arg := range []string{"VERSION", "COMMIT"} {
			if v, ok := args[arg]; !ok || v == nil || *v == "" {
				t.Errorf("service %s: build arg %s is not passed (%v)", name, arg, args)
			}
		}
	}
	df, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(df), `VERSION="${VERSION}" COMMIT="${COMMIT}" bash scripts/build.sh`) {
		t.Error("the Dockerfile does not pass VERSION and COMMIT to scripts/build.sh")
	}
	readme, err := os.ReadFile(filepath.Join(composeDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Go module proxy", "Compose v2", "COMMIT=$(git rev-parse HEAD) docker compose up --build"} {
		if !strings.Contains(string(readme), want) {
			t.Errorf("examples/spire/README.md does not say %q", want)
		}
	}
}

// TestWorkloadScriptStopsAtOnceOnSIGTERM runs the demo's workload script as PID 1 of a new PID namespace,
// as in its container, once while it waits for the credentials and once in its loop (with an aws stub),
// and checks that SIGTERM ends it cleanly within a second.
func TestWorkloadScriptStopsAtOnceOnSIGTERM(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root for a PID namespace (unshare --pid); CI runs as root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare is not installed")
	}
	script, err := filepath.Abs(filepath.Join(composeDir, "scripts", "workload.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, phase := range []string{"waiting for the credentials", "in its loop"} {
		t.Run(phase, func(t *testing.T) {
			dir := t.TempDir()
			stub := filepath.Join(dir, "aws")
			if err := os.WriteFile(stub, []byte("#!/bin/sh\necho arn:aws:sts::123456789012:assumed-role/demo/x\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			creds, token := filepath.Join(dir, "credentials"), filepath.Join(dir, "container.token")
			if phase == "in its loop" {
				for _, f := range []string{creds, token} {
					if err := os.WriteFile(f, []byte("x\n"), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			cmd := exec.Command("unshare", "--pid", "--fork", "--kill-child", "bash", script)
			cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "CREDENTIALS_FILE="+creds, "TOKEN_FILE="+token)
			var out lockedBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			// The script: unshare's child, PID 1 in its namespace. Give it time to reach its wait.
			var pid int
			deadline := time.Now().Add(5 * time.Second)
			for pid == 0 && time.Now().Before(deadline) {
				b, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/task/" + strconv.Itoa(cmd.Process.Pid) + "/children")
				if f := strings.Fields(string(b)); len(f) > 0 {
					pid, _ = strconv.Atoi(f[0])
				}
				time.Sleep(10 * time.Millisecond)
			}
			if pid == 0 {
				t.Fatalf("the script did not start:\n%s", out.String())
			}
			want := "workload: waiting for the bridge"
			if phase == "in its loop" {
				want = "endpoint arn:aws:sts::123456789012:assumed-role/demo/x"
			}
			for i := 0; i < 250 && !strings.Contains(out.String(), want); i++ {
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(200 * time.Millisecond)
			start := time.Now()
			if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil || !strings.Contains(out.String(), "workload: stopping") {
					t.Errorf("after SIGTERM: %v (want exit 0 and the stop message)\n%s", err, out.String())
				}
				if d := time.Since(start); d > time.Second {
					t.Errorf("stopped %v after SIGTERM, want at once", d)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("still running 5 s after SIGTERM (as PID 1, a shell without a trap ignores it):\n%s", out.String())
			}
		})
	}
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
