package main

// Fault suite: the daemon killed with SIGKILL at random moments through ~1000 refreshes; upstream
// latency spikes and clock skew. The credentials file must always parse, keep every other profile and
// hold working credentials.

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"gopkg.in/ini.v1"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

func TestDaemonCrashSafetyUnderKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("long fault test")
	}
	w := newWorld(t)
	w.Emulator.SetQuota(-1)
	// A second agent on its own socket rotating every 5 ms drives refreshes as fast as they go.
	fast := svidtest.NewServer(t, svidtest.ServerOptions{CA: w.Agent.CA(), RotateEvery: 5 * time.Millisecond,
		Entries: []svidtest.Entry{{ID: spiffeid.RequireFromString(testworld.SPIFFEID)}}})
	credsPath := filepath.Join(w.Dir, "credentials")
	const others = "# shared by several tools\n[default]\naws_access_key_id = AKIADEFAULTDEFAULT01\naws_secret_access_key = default-secret\n\n[zeta]\nregion = eu-west-1 ; keep\n"
	if err := os.WriteFile(credsPath, []byte(others), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := w.bridgeConfig(t, "bridge.hcl", credsPath, "")
	data, _ := os.ReadFile(cfg)
	cfg = w.WriteFile(t, "bridge-fast.hcl", []byte(strings.Replace(string(data), w.Agent.Addr(), fast.Addr(), 1)))

	const target = 1000
	kills := 0
	deadline := time.Now().Add(60 * time.Second)
	for w.Emulator.Stats().CreateSessionOK < target {
		if time.Now().After(deadline) {
			t.Fatalf("only %d refreshes in 60s", w.Emulator.Stats().CreateSessionOK)
		}
		cmd := exec.Command(binPath, "run", "--config", cfg)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(50+rand.IntN(250)) * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		kills++

		raw, err := os.ReadFile(credsPath)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(raw), "# shared by several tools\n[default]\naws_access_key_id = AKIADEFAULTDEFAULT01\naws_secret_access_key = default-secret\n") ||
			!strings.Contains(string(raw), "[zeta]\nregion = eu-west-1 ; keep\n") {
			t.Fatalf("after kill %d the other profiles changed:\n%s", kills, raw)
		}
		f, err := ini.Load(raw)
		if err != nil {
			t.Fatalf("after kill %d the file does not parse: %v", kills, err)
		}
		if s, err := f.GetSection("app"); err == nil {
			k := s.KeysHash()
			if k["aws_access_key_id"] == "" || k["aws_secret_access_key"] == "" || k["aws_session_token"] == "" || k["x_security_token_expires"] == "" {
				t.Fatalf("after kill %d the app section is incomplete: %v", kills, s.KeyStrings())
			}
		}
	}
	if arn := callerARN(t, w, credsPath, "app"); !strings.HasPrefix(arn, "arn:aws:sts::123456789012:assumed-role/app/") {
		t.Fatalf("the surviving credentials do not work: %q", arn)
	}
	temps, _ := filepath.Glob(filepath.Join(w.Dir, ".credentials*"))
	t.Logf("%d refreshes, %d SIGKILLs; temporary files left by killed writers: %d", w.Emulator.Stats().CreateSessionOK, kills, len(temps))
}

// TestLatencySpikesAndClockSkew: a slow AWS delays a refresh but loses nothing; a skewed clock (AWS
// refuses X-Amz-Date more than 5 minutes off) is reported while the last good credentials stay.
func TestLatencySpikesAndClockSkew(t *testing.T) {
	w := newWorld(t)
	credsPath := filepath.Join(w.Dir, "credentials")
	d := startDaemon(t, w.bridgeConfig(t, "bridge.hcl", credsPath, ""))
	current := func() string { return profileKeys(credsPath, "app")["aws_access_key_id"] }
	eventually(t, "first credentials", func() bool { return current() != "" })

	w.Emulator.SetLatency(1500 * time.Millisecond)
	before := current()
	if err := w.Agent.Rotate(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a refresh through a 1.5 s latency spike", func() bool { return current() != before })
	w.Emulator.SetLatency(0)

	w.Emulator.SetClock(func() time.Time { return time.Now().Add(6 * time.Minute) })
	before = current()
	if err := w.Agent.Rotate(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the skew reported", func() bool { return strings.Contains(d.Logs(), "5 minutes") })
	if current() != before {
		t.Fatal("credentials changed although every refresh was refused")
	}
	w.Emulator.SetClock(time.Now)
	if arn := callerARN(t, w, credsPath, "app"); !strings.HasPrefix(arn, "arn:aws:sts::123456789012:assumed-role/app/") {
		t.Fatalf("kept credentials: %q", arn)
	}
}
