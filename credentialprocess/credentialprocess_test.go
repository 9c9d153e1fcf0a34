package credentialprocess

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecurityLogFileSymlinkRefused: --log-file-path never follows a symbolic link, so a credential_process
// line run by root cannot be made to append to a file another user chose; the link's target is untouched.
func TestSecurityLogFileSymlinkRefused(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "precious")
	if err := os.WriteFile(target, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "bridge.log")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	out := &Output{Stderr: &bytes.Buffer{}, LogFile: link}
	if _, _, err := out.logger(); err == nil || !strings.Contains(err.Error(), "symbolic link") || !strings.Contains(err.Error(), link) {
		t.Fatalf("err = %v, want a refusal naming %s", err, link)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Fatalf("the link's target changed: %q", b)
	}
	// A plain path still works.
	out.LogFile = filepath.Join(dir, "real.log")
	log, closer, err := out.logger()
	if err != nil {
		t.Fatal(err)
	}
	log.Warn("hello")
	closer()
	if b, _ := os.ReadFile(out.LogFile); !strings.Contains(string(b), "hello") {
		t.Fatalf("log file: %q", b)
	}
}
