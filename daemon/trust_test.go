package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/hook"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs/safefstest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/trusted"
)

// TestSecurityOnRefreshProgramAnotherUserCanWriteIsRefused: a root bridge refuses (as a config error, at
// start and on reload) an on_refresh program that uid 65534 owns or could replace, since root would run
// what they put there; root's own programs, and programs found on PATH, are accepted.
func TestSecurityOnRefreshProgramAnotherUserCanWriteIsRefused(t *testing.T) {
	safefstest.NeedRoot(t, "gives a program to another user (uid 65534)")
	dir := t.TempDir()
	prog := filepath.Join(dir, "bin", "reload")
	if err := os.MkdirAll(filepath.Dir(prog), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	root := trusted.Process{UID: 0, GID: 0}
	for _, argv := range [][]string{{prog, "arg"}, {"sh", "-c", "true"}} {
		if _, err := newCommand(hook.CommandOptions{Command: argv}, root); err != nil {
			t.Fatalf("%q: %v", argv, err)
		}
	}
	safefstest.Give(t, filepath.Dir(prog), safefstest.Nobody, safefstest.Nobody)
	_, err := newCommand(hook.CommandOptions{Command: []string{prog}}, root)
	var ce *ConfigError
	if !errors.As(err, &ce) || !errors.Is(err, trusted.ErrUntrusted) ||
		!strings.Contains(err.Error(), "directory "+filepath.Dir(prog)+" is owned by uid 65534") {
		t.Fatalf("program in a directory of uid 65534: %v", err)
	}
	// An unprivileged bridge runs what its own user could run anyway.
	if _, err := newCommand(hook.CommandOptions{Command: []string{prog}}, trusted.Process{UID: 1000, GID: 1000}); err != nil {
		t.Fatalf("unprivileged bridge: %v", err)
	}
}
