package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/schedule"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/daemon"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/clock"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs/safefstest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// hookProfile is a profile with a credentials file and an on_refresh block running argv.
func (w *world) hookProfile(credsPath string, argv ...string) string {
	body := testworld.CredentialsFile(credsPath)
	if len(argv) > 0 {
		q := make([]string, len(argv))
		for i, a := range argv {
			q[i] = fmt.Sprintf("%q", a)
		}
		body += fmt.Sprintf("  on_refresh {\n    command = [%s]\n  }", strings.Join(q, ", "))
	}
	return w.profile("app", body)
}

// startErr is daemon.New on cfgText, for a daemon expected to refuse it.
func (w *world) startErr(t *testing.T, cfgText string) error {
	t.Helper()
	d, err := daemon.New(context.Background(), w.parse(t, cfgText), daemon.Options{
		Logger: hclog.NewNullLogger(), Clock: clock.Real{}, Signer: signer.Options{Now: time.Now},
		Policy: schedule.Policy{JitterFraction: 1e-9, RotationSpread: -1},
	})
	if err == nil {
		d.Close()
	}
	return err
}

// writeProgram writes a shell script at path (mode 0755) owned by uid:gid.
func writeProgram(t *testing.T, path, script string, uid, gid int) {
	t.Helper()
	_ = os.Remove(path)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	safefstest.Give(t, path, uid, gid)
}

// theirDir makes a directory under parent that uid 65534 owns.
func theirDir(t *testing.T, parent string) string {
	t.Helper()
	dir := filepath.Join(parent, "alice-bin")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	safefstest.Give(t, dir, safefstest.Nobody, safefstest.Nobody)
	return dir
}

// TestSecurityOnRefreshProgramMissingAtStartIsRefused: a root bridge whose on_refresh program does not
// exist (deleted by uid 65534 from a directory they own, to pass the check) refuses the config at start —
// a config error naming the program, and for a bare name the PATH searched — and refuses a reload that
// adds it; when uid 65534 then puts the program back, root never runs it.
func TestSecurityOnRefreshProgramMissingAtStartIsRefused(t *testing.T) {
	safefstest.NeedRoot(t, "hides an on_refresh program in a directory of another user (uid 65534)")
	w := newWorld(t, time.Now)
	theirs := theirDir(t, w.Dir)
	prog := filepath.Join(theirs, "reload")
	credsPath := filepath.Join(w.Dir, "credentials")
	var ce *daemon.ConfigError

	err := w.startErr(t, w.hookProfile(credsPath, prog))
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), fmt.Sprintf("on_refresh.command %q: program not found", prog)) {
		t.Fatalf("start with a missing program in a directory of uid 65534: %v", err)
	}
	path := theirs + ":/usr/sbin:/usr/bin:/sbin:/bin"
	t.Setenv("PATH", path)
	err = w.startErr(t, w.hookProfile(credsPath, "sab-test-reload"))
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), fmt.Sprintf(`on_refresh.command "sab-test-reload": program not found in PATH %q`, path)) {
		t.Fatalf("start with a bare name found nowhere on PATH: %v", err)
	}

	// On reload.
	d, _ := w.start(t, clock.Real{}, time.Now, w.hookProfile(credsPath))
	within(t, 10*time.Second, "first credentials", func() bool { return fileKey(credsPath, "app") != "" })
	err = d.Reload(context.Background(), w.parse(t, w.hookProfile(credsPath, prog)))
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), prog) {
		t.Fatalf("reload adding a missing program: %v", err)
	}
	marker := filepath.Join(w.Dir, "ran-as-root")
	writeProgram(t, prog, "id -u > "+marker, safefstest.Nobody, safefstest.Nobody)
	before := fileKey(credsPath, "app")
	if err := w.Agent.Rotate(); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "a refresh after the refused reload", func() bool { return fileKey(credsPath, "app") != before })
	time.Sleep(300 * time.Millisecond) // a hook would have run right after the file was written
	if b, err := os.ReadFile(marker); err == nil {
		t.Fatalf("the program uid 65534 put back ran (as uid %s)", strings.TrimSpace(string(b)))
	}
}

// TestSecurityOnRefreshProgramReplacedAfterStartIsNotRun: a root bridge runs the program it found and
// checked at start, by its absolute path, and checks it again before every run. A program uid 65534 puts
// earlier on PATH is never run; once the program is replaced by a file uid 65534 owns, or its directory is
// made writable by others, it is not run and the hook fails naming the file, its owner and mode, and the
// fix; once root repairs it, it runs again.
func TestSecurityOnRefreshProgramReplacedAfterStartIsNotRun(t *testing.T) {
	safefstest.NeedRoot(t, "gives an on_refresh program to another user (uid 65534)")
	w := newWorld(t, time.Now)
	theirs := theirDir(t, w.Dir)
	bin := filepath.Join(w.Dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	const name = "sab-test-reload"
	prog := filepath.Join(bin, name)
	rootRan, theyRan := filepath.Join(w.Dir, "root-ran"), filepath.Join(w.Dir, "they-ran")
	rootScript := fmt.Sprintf("echo \"$0\" >> %s", rootRan)
	writeProgram(t, prog, rootScript, 0, 0)
	t.Setenv("PATH", theirs+":"+bin+":/usr/sbin:/usr/bin:/sbin:/bin")
	credsPath := filepath.Join(w.Dir, "credentials")
	d, _ := w.start(t, clock.Real{}, time.Now, w.hookProfile(credsPath, name))
	runs := func() int {
		b, _ := os.ReadFile(rootRan)
		return strings.Count(string(b), "\n")
	}
	within(t, 10*time.Second, "the hook after the first refresh", func() bool { return runs() == 1 })
	refresh := func() {
		t.Helper()
		before := fileKey(credsPath, "app")
		if err := w.Agent.Rotate(); err != nil {
			t.Fatal(err)
		}
		within(t, 10*time.Second, "a refresh", func() bool { return fileKey(credsPath, "app") != before })
	}
	hookError := func(want ...string) {
		t.Helper()
		within(t, 10*time.Second, "the on_refresh sink failing with "+strings.Join(want, ", "), func() bool {
			_, r := readySinks(t, d)
			for _, p := range r.Profiles {
				for _, s := range p.Sinks {
					if s.Name != "on_refresh" || s.OK {
						continue
					}
					ok := true
					for _, w := range want {
						ok = ok && strings.Contains(s.LastError, w)
					}
					return ok
				}
			}
			return false
		})
	}
	notRun := func(what string) {
		t.Helper()
		time.Sleep(300 * time.Millisecond)
		if _, err := os.Stat(theyRan); err == nil {
			t.Fatalf("%s: the program of uid 65534 ran as root", what)
		}
	}

	// A program of the same name earlier on PATH: PATH is not consulted again.
	writeProgram(t, filepath.Join(theirs, name), "id -u > "+theyRan, safefstest.Nobody, safefstest.Nobody)
	refresh()
	within(t, 10*time.Second, "root's program run again", func() bool { return runs() == 2 })
	notRun("a program earlier on PATH")

	// The program replaced by a file uid 65534 owns.
	writeProgram(t, prog, "id -u > "+theyRan, safefstest.Nobody, safefstest.Nobody)
	refresh()
	hookError("on_refresh program "+prog+" is owned by uid 65534", "mode -rwxr-xr-x", "fix: chown root "+prog)
	notRun("the program owned by uid 65534")

	// Root repairs it; its directory is then made writable by others.
	writeProgram(t, prog, rootScript, 0, 0)
	refresh()
	within(t, 10*time.Second, "the repaired program run", func() bool { return runs() >= 3 })
	if err := os.Chmod(bin, 0o777); err != nil {
		t.Fatal(err)
	}
	n := runs()
	refresh()
	hookError("directory "+bin+" is writable by other users", "mode drwxrwxrwx", "fix: chmod o-w "+bin)
	if runs() != n {
		t.Fatal("the program in a directory writable by others ran")
	}
}
