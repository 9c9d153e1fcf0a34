package main

// End-to-end tests of the daemon: `spiffe-aws-bridge run` as a process, fed by svidtest, signing against
// the emulator, read by aws-sdk-go-v2's shared-config loader and STS client.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"gopkg.in/ini.v1"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// daemonProc is a running `spiffe-aws-bridge run`.
type daemonProc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs strings.Builder
	done chan struct{}
	err  error
}

func startDaemon(t *testing.T, configPath string) *daemonProc {
	t.Helper()
	return startDaemonCmd(t, exec.Command(binPath, "run", "--config", configPath))
}

// startDaemonCmd starts cmd, a command that runs (or execs into) the daemon, and collects its logs.
func startDaemonCmd(t *testing.T, cmd *exec.Cmd) *daemonProc {
	t.Helper()
	d := &daemonProc{cmd: cmd, done: make(chan struct{})}
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stdout = io.Discard
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			d.mu.Lock()
			d.logs.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
		}
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		<-d.done
		if t.Failed() {
			t.Logf("daemon logs:\n%s", d.Logs())
		}
	})
	return d
}

// Logs returns everything the daemon logged so far.
func (d *daemonProc) Logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logs.String()
}

// stop sends sig and waits for the exit.
func (d *daemonProc) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	_ = d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
		return d.err
	case <-time.After(20 * time.Second):
		t.Fatal("the daemon did not stop within 20s")
		return nil
	}
}

// eventually polls cond until it holds or 30 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// profileKeys reads one section of a credentials file; nil when the file or section is missing.
func profileKeys(path, profile string) map[string]string {
	f, err := ini.Load(path)
	if err != nil {
		return nil
	}
	s, err := f.GetSection(profile)
	if err != nil {
		return nil
	}
	return s.KeysHash()
}

// callerARN loads profile from the credentials file with aws-sdk-go-v2's shared-config loader and calls
// GetCallerIdentity on the emulator.
func callerARN(t *testing.T, w *world, credsPath, profile string) string {
	t.Helper()
	ctx := context.Background()
	cfg, err := awsconfig.LoadDefaultConfig(ctx,
		awsconfig.WithSharedCredentialsFiles([]string{credsPath}),
		awsconfig.WithSharedConfigFiles([]string{filepath.Join(w.Dir, "no-config")}),
		awsconfig.WithSharedConfigProfile(profile),
		awsconfig.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(w.Emulator.URL) }).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity with profile %q: %v", profile, err)
	}
	return aws.ToString(out.Arn)
}

// bridgeConfig is a daemon config with one profile "app" writing credsPath, refreshing at once on rotation.
func (w *world) bridgeConfig(t *testing.T, name, credsPath, extra string) string {
	t.Helper()
	return w.WriteConfig(t, name, "log_level     = \"debug\"\n",
		w.Profile("app", "  session_duration = \"1h\"\n", testworld.CredentialsFile(credsPath)), extra)
}

func TestRunKeepsTheProfileFreshAcrossRotationsAndKeepsTheRestOfTheFile(t *testing.T) {
	w := newWorld(t)
	credsPath := filepath.Join(w.Dir, "aws", "credentials")
	if err := os.MkdirAll(filepath.Dir(credsPath), 0o700); err != nil {
		t.Fatal(err)
	}
	original := "# my keys, do not touch\n[other]\naws_access_key_id = AKIAOTHEROTHEROTHER1\naws_secret_access_key = other-secret\n; trailing comment\n"
	if err := os.WriteFile(credsPath, []byte(original), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, w.bridgeConfig(t, "bridge.hcl", credsPath, ""))

	seen := map[string]bool{}
	for round := 0; round < 3; round++ {
		var keys map[string]string
		eventually(t, fmt.Sprintf("credentials of round %d", round), func() bool {
			keys = profileKeys(credsPath, "app")
			return keys != nil && keys["aws_access_key_id"] != "" && !seen[keys["aws_access_key_id"]]
		})
		seen[keys["aws_access_key_id"]] = true
		if arn := callerARN(t, w, credsPath, "app"); !strings.HasPrefix(arn, "arn:aws:sts::123456789012:assumed-role/app/") {
			t.Fatalf("round %d: caller %q", round, arn)
		}
		exp, err := time.Parse(time.RFC3339, keys["x_security_token_expires"])
		if err != nil || time.Until(exp) < 55*time.Minute {
			t.Errorf("x_security_token_expires %q", keys["x_security_token_expires"])
		}
		if !strings.HasPrefix(keys["x_principal_arn"], "arn:aws:sts::123456789012:assumed-role/app/") {
			t.Errorf("x_principal_arn %q", keys["x_principal_arn"])
		}
		if err := w.Agent.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := os.ReadFile(credsPath)
	if !strings.HasPrefix(string(data), "# my keys, do not touch\n[other]\naws_access_key_id = AKIAOTHEROTHEROTHER1\naws_secret_access_key = other-secret\n; trailing comment\n") {
		t.Errorf("the rest of the file changed:\n%s", data)
	}
	if fi, _ := os.Stat(credsPath); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	logs := d.Logs()
	if !strings.Contains(logs, "refreshed credentials") || !strings.Contains(logs, testworld.SPIFFEID) {
		t.Errorf("no info line per refresh with the SPIFFE ID:\n%s", logs)
	}
	data, _ = os.ReadFile(credsPath)
	keys := profileKeys(credsPath, "app")
	if strings.Contains(logs, keys["aws_secret_access_key"]) || strings.Contains(logs, keys["aws_session_token"]) {
		t.Fatal("a secret of the credentials file appears in the daemon's debug logs")
	}
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM: exit %v, want 0", err)
	}
}

func TestRunRidesOutAgentRestartsAndAWSFaults(t *testing.T) {
	w := newWorld(t)
	credsPath := filepath.Join(w.Dir, "credentials")
	startDaemon(t, w.bridgeConfig(t, "bridge.hcl", credsPath, ""))
	current := func() string { return profileKeys(credsPath, "app")["aws_access_key_id"] }
	eventually(t, "first credentials", func() bool { return current() != "" })

	// The agent goes away and comes back: the file stays valid, delivery resumes without a bridge restart.
	first := current()
	w.Agent.Stop()
	time.Sleep(300 * time.Millisecond)
	if callerARN(t, w, credsPath, "app") == "" || current() != first {
		t.Fatal("credentials changed or broke while the agent was down")
	}
	if err := w.Agent.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := w.Agent.Rotate(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a refresh after the agent restart", func() bool { return current() != first })

	// A burst of 500s and of 429s: retried until the emulator answers again.
	for _, fault := range []struct {
		status int
		typ    string
	}{{500, "InternalServerException"}, {429, "ThrottlingException"}} {
		before := current()
		w.Emulator.FailNext(2, fault.status, fault.typ)
		if err := w.Agent.Rotate(); err != nil {
			t.Fatal(err)
		}
		eventually(t, fmt.Sprintf("a refresh through %d errors", fault.status), func() bool { return current() != before })
		if callerARN(t, w, credsPath, "app") == "" {
			t.Fatal("no caller")
		}
	}

	// AccessDenied: the last good credentials stay in the file while they are valid.
	before := current()
	w.Emulator.FailNext(1000, 403, "AccessDeniedException")
	if err := w.Agent.Rotate(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if current() != before {
		t.Fatal("credentials changed although AWS denied the refresh")
	}
	if !strings.HasPrefix(callerARN(t, w, credsPath, "app"), "arn:aws:sts::123456789012:assumed-role/app/") {
		t.Fatal("the kept credentials do not work")
	}
}

func TestRunReloadsOnSIGHUPAndKeepsRunningOnABadConfig(t *testing.T) {
	w := newWorld(t)
	credsPath := filepath.Join(w.Dir, "credentials")
	cfgPath := w.bridgeConfig(t, "bridge.hcl", credsPath, "")
	d := startDaemon(t, cfgPath)
	eventually(t, "first credentials", func() bool { return profileKeys(credsPath, "app") != nil })
	first := profileKeys(credsPath, "app")["aws_access_key_id"]

	// Add a second profile writing another section.
	w.bridgeConfig(t, "bridge.hcl", credsPath, fmt.Sprintf(`
profile "second" {
  trust_anchor_arn = %q
  profile_arn      = %q
  role_arn         = %q
  endpoint         = %q
  insecure_endpoint = true
  credentials_file {
    path = %q
  }
}`, testworld.TrustAnchorARN, testworld.ProfileARN, testworld.RoleARN, w.Emulator.URL, credsPath))
	_ = d.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "the added profile", func() bool { return profileKeys(credsPath, "second") != nil })
	if got := profileKeys(credsPath, "app")["aws_access_key_id"]; got != first {
		t.Errorf("the unchanged profile was refreshed by the reload (%s → %s)", first, got)
	}

	// A broken config is reported; the running one keeps going.
	if err := os.WriteFile(cfgPath, []byte("profile \"app\" {\n  bogus = 1\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = d.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "the reload error", func() bool { return strings.Contains(d.Logs(), "config reload refused") })
	if err := w.Agent.Rotate(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "refreshes after the failed reload", func() bool { return profileKeys(credsPath, "app")["aws_access_key_id"] != first })
}

// podIdentityBlock is a pod_identity block (with the delegated_identity block it needs) for the agent
// admin socket admin.
func podIdentityBlock(admin string) string {
	return fmt.Sprintf(`delegated_identity {
  admin_address = %q
}
pod_identity {
  listen    = ["127.0.0.1:0"]
  interface = ""
  node_name = "node-a"
  rule {
    spiffe_id        = "spiffe://example.org/ns/{ns}/sa/{sa}"
    trust_anchor_arn = %q
    profile_arn      = %q
    role_arn         = "arn:aws:iam::123456789012:role/{sa}"
  }
}
`, "unix://"+admin, testworld.TrustAnchorARN, testworld.ProfileARN)
}

// noKubernetes is what spiffe-aws-bridge says of the pod_identity block at line of the config file path:
// it links no Kubernetes client, so the block needs spiffe-aws-bridge-k8s.
func noKubernetes(path string, line int) string {
	return fmt.Sprintf("pod_identity (%s:%d): this spiffe-aws-bridge is built without Kubernetes support; run it with spiffe-aws-bridge-k8s run --config %s (the chart's image ships both)", path, line, path)
}

// TestRunRefusesAPodIdentityReloadAndKeepsServing: a SIGHUP that adds a pod_identity block to a running
// spiffe-aws-bridge (no Kubernetes client) is refused like any failed reload, in the log and in /ready,
// naming the block and spiffe-aws-bridge-k8s; the profile keeps being refreshed and nothing listens for
// pods.
func TestRunRefusesAPodIdentityReloadAndKeepsServing(t *testing.T) {
	w := newWorld(t)
	credsPath := filepath.Join(w.Dir, "credentials")
	port := freeTCPPort(t)
	health := fmt.Sprintf("health_checks {\n  bind_port = %d\n}\n", port)
	cfgPath := w.bridgeConfig(t, "bridge.hcl", credsPath, health)
	d := startDaemon(t, cfgPath)
	eventually(t, "first credentials", func() bool { return profileKeys(credsPath, "app") != nil })
	first := profileKeys(credsPath, "app")["aws_access_key_id"]

	w.bridgeConfig(t, "bridge.hcl", credsPath, health+podIdentityBlock(filepath.Join(w.Dir, "admin.sock")))
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	line := 1 + strings.Count(string(data[:strings.Index(string(data), "pod_identity {")]), "\n")
	want := noKubernetes(cfgPath, line)
	_ = d.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "the refused reload", func() bool {
		return strings.Contains(d.Logs(), "config reload refused") && strings.Contains(d.Logs(), want)
	})
	var ready string
	eventually(t, "/ready reporting the refused reload", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ready", port))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		ready = string(b)
		return strings.Contains(ready, "built without Kubernetes support")
	})
	if err := w.Agent.Rotate(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "refreshes after the refused reload", func() bool { return profileKeys(credsPath, "app")["aws_access_key_id"] != first })
	if strings.Contains(d.Logs(), "pod identity started") {
		t.Error("pod identity started in spiffe-aws-bridge")
	}
}

func TestRunExitsNonZeroOnABadConfigNamingThePosition(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.hcl")
	if err := os.WriteFile(cfg, []byte("log_level = \"loud\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runBin(t, nil, "run", "--config", cfg)
	if r.code != 2 || !strings.Contains(r.stderr, cfg+":1:") || !strings.Contains(r.stderr, "log_level") {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	r = runBin(t, nil, "run", "--config", filepath.Join(dir, "missing.hcl"))
	if r.code != 2 || !strings.Contains(r.stderr, "missing.hcl") {
		t.Fatalf("missing file: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}
