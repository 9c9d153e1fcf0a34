package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// builtDir holds the binary once built; TestMain removes it.
var builtDir string

// built is the binary, built once for every test of the package (a build is most of their time).
var built = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "emulator-bin")
	if err != nil {
		return "", err
	}
	builtDir = dir
	bin := filepath.Join(dir, "rolesanywhere-emulator")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("build: %w\n%s", err, out)
	}
	return bin, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

func build(t *testing.T) string {
	t.Helper()
	bin, err := built()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestBinary(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "emulator.hcl")
	if err := os.WriteFile(cfg, []byte(`account_id = "123456789012"`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfg, "--listen", "127.0.0.1:0", "--fail-next", "1", "--fail-status", "503")
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	url, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("no URL printed: %v; stderr: %s", err, stderr.String())
	}
	url = strings.TrimSpace(url)
	// The injected fault comes first, before any verification.
	resp, err := http.Post(url+"/sessions", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("x-amzn-ErrorType") != "InternalServerException" {
		t.Fatalf("fault: %d %s", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"))
	}
	resp, err = http.Post(url+"/sessions", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("unsigned request after the fault: %d", resp.StatusCode)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v; stderr: %s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("did not stop on SIGTERM")
	}
}

func TestBadConfigExits2(t *testing.T) {
	bin := build(t)
	cfg := filepath.Join(t.TempDir(), "bad.hcl")
	_ = os.WriteFile(cfg, []byte("account_id = \"123456789012\"\nnope = 1\n"), 0o600)
	out, err := exec.Command(bin, "--config", cfg).CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "bad.hcl:2:1: Unsupported argument") {
		t.Fatalf("err %v, output %s", err, out)
	}
}

// TestSecurityAllowedHostsFlag: the emulator refuses a Host that does not name it unless --allowed-hosts
// lists it (the compose demo reaches it as http://emulator:8443), and refuses web pages regardless.
func TestSecurityAllowedHostsFlag(t *testing.T) {
	bin := build(t)
	cfg := filepath.Join(t.TempDir(), "emulator.hcl")
	if err := os.WriteFile(cfg, []byte(`account_id = "123456789012"`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfg, "--listen", "127.0.0.1:0", "--allowed-hosts", "emulator", "--allowed-hosts", "other:1")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	url = strings.TrimSpace(url)
	_, port, _ := strings.Cut(strings.TrimPrefix(url, "http://"), ":")
	for _, tc := range []struct {
		host, origin string
		want         int
	}{
		{"emulator:" + port, "", 400}, // accepted: an unsigned CreateSession
		{"other:1", "", 400},
		{"127.0.0.1:" + port, "", 400},
		{"other:" + port, "", 403},
		{"evil.example:" + port, "", 403},
		{"emulator:" + port, "http://evil.example", 403},
	} {
		req, _ := http.NewRequest(http.MethodPost, url+"/sessions", strings.NewReader("{}"))
		req.Host = tc.host
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Host %q Origin %q: %d, want %d", tc.host, tc.origin, resp.StatusCode, tc.want)
		}
	}

	out, err := exec.Command(bin, "--config", cfg, "--allowed-hosts", "http://emulator").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 ||
		!strings.Contains(string(out), `--allowed-hosts: allowed_hosts entry "http://emulator": has a scheme`) {
		t.Fatalf("bad --allowed-hosts: %v %s", err, out)
	}
}
