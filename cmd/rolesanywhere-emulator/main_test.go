package main

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rolesanywhere-emulator")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
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
	if !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "bad.hcl:2,1-5: Unsupported argument") {
		t.Fatalf("err %v, output %s", err, out)
	}
}
