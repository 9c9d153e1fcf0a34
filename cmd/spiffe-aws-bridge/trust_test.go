package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs/safefstest"
)

// asNobody runs sh -c script as uid 65534, failing the test when it fails.
func asNobody(t *testing.T, script string) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: safefstest.Nobody, Gid: safefstest.Nobody}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("as nobody: %s: %v %s", script, err, out)
	}
}

// TestSecurityConfigAnotherUserCanWriteIsRefusedAtStartAndOnReload: a root bridge's config that another
// user (uid 65534) can write is refused at start (exit 2, naming the file, its owner and the chown that
// fixes it) and on SIGHUP: the on_refresh command that user adds is never run as root, while the running
// profile keeps refreshing. Once root owns the file again, the same reload is accepted and the command
// runs (so the hook would have run had the reload been accepted).
func TestSecurityConfigAnotherUserCanWriteIsRefusedAtStartAndOnReload(t *testing.T) {
	safefstest.NeedRoot(t, "runs the bridge as root with a config owned by another user (uid 65534)")
	w := newWorld(t)
	credsPath := filepath.Join(w.Dir, "credentials")

	// At start.
	theirs := w.bridgeConfig(t, "theirs.hcl", credsPath, "")
	safefstest.Give(t, theirs, safefstest.Nobody, safefstest.Nobody)
	r := runBin(t, nil, "run", "--config", theirs)
	if r.code != 2 || !strings.Contains(r.stderr, "config file "+theirs+" is owned by uid 65534") ||
		!strings.Contains(r.stderr, "fix: chown root "+theirs) {
		t.Fatalf("start with a config owned by uid 65534: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(credsPath); err == nil {
		t.Fatal("the refused config was acted on: the credentials file exists")
	}

	// On reload: the bridge starts with root's config, which is then handed to uid 65534, who adds a
	// hook.
	cfgPath := w.bridgeConfig(t, "bridge.hcl", credsPath, "")
	d := startDaemon(t, cfgPath)
	eventually(t, "first credentials", func() bool { return profileKeys(credsPath, "app") != nil })
	first := profileKeys(credsPath, "app")["aws_access_key_id"]

	marker := filepath.Join(w.Dir, "ran-as-root")
	src, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	hooked := strings.Replace(string(src), "  credentials_file {",
		fmt.Sprintf("  on_refresh {\n    command = [\"/bin/sh\", \"-c\", \"id -u > %s\"]\n  }\n  credentials_file {", marker), 1)
	staged := w.WriteFile(t, "staged.hcl", []byte(hooked))
	safefstest.Give(t, staged, safefstest.Nobody, safefstest.Nobody)
	safefstest.Give(t, cfgPath, safefstest.Nobody, safefstest.Nobody)
	safefstest.Traversable(t, w.Dir)
	asNobody(t, fmt.Sprintf("cat %s > %s", staged, cfgPath))

	_ = d.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "the refused reload", func() bool {
		return strings.Contains(d.Logs(), "config reload refused") && strings.Contains(d.Logs(), "is owned by uid 65534")
	})
	if err := w.Agent.Rotate(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a refresh after the refused reload", func() bool { return profileKeys(credsPath, "app")["aws_access_key_id"] != first })
	time.Sleep(300 * time.Millisecond) // a hook would have run right after the refresh
	if b, err := os.ReadFile(marker); err == nil {
		t.Fatalf("the on_refresh command of the config uid 65534 wrote ran (as uid %s)", strings.TrimSpace(string(b)))
	}

	// Root takes the file back: the same config is accepted and its hook runs.
	safefstest.Give(t, cfgPath, 0, 0)
	_ = d.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "the accepted reload", func() bool { return strings.Contains(d.Logs(), "config reloaded") })
	if err := w.Agent.Rotate(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the hook of the accepted config", func() bool {
		b, err := os.ReadFile(marker)
		return err == nil && strings.TrimSpace(string(b)) == "0"
	})
}
