package hook

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs/safefstest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/trusted"
)

// nobody is the unprivileged user the root-only tests act as (Debian's nobody).
const nobody = safefstest.Nobody

// sleeper starts `sleep 30` (as uid when cred is set) and returns it with a channel that reports
// whether it was still alive (not signalled) when the test ends its checks.
func sleeper(t *testing.T, cred *syscall.Credential) (*exec.Cmd, func() bool) {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(waited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-waited
	})
	alive := func() bool {
		select {
		case <-waited:
			return false
		case <-time.After(200 * time.Millisecond):
			return true
		}
	}
	return cmd, alive
}

// writePIDFile writes pid into dir/name with mode and, when uid >= 0, gives it to uid:gid.
func writePIDFile(t *testing.T, dir, name string, pid int, mode os.FileMode, uid, gid int) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	if uid >= 0 {
		if err := os.Chown(path, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// TestSecurityPIDFileRefused: a pid file that someone other than root or the bridge's user could have
// written is not obeyed, nor one naming init, the bridge itself, or a process of another user; the
// process named stays untouched.
func TestSecurityPIDFileRefused(t *testing.T) {
	dir := t.TempDir()
	victim, alive := sleeper(t, nil)
	vpid := victim.Process.Pid
	fifo := filepath.Join(dir, "fifo.pid")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.pid")
	if err := os.Symlink(writePIDFile(t, dir, "target.pid", vpid, 0o644, -1, -1), link); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path, want string
	}{
		{"a symbolic link is not followed", link, "is a symbolic link"},
		{"a FIFO is refused without blocking", fifo, "not a regular file"},
		{"a pid file writable by others is refused", writePIDFile(t, dir, "world.pid", vpid, 0o666, -1, -1), "writable by other users"},
		{"pid 1 is never signalled", writePIDFile(t, dir, "init.pid", 1, 0o644, -1, -1), "pid 1 (init)"},
		{"the bridge never signals itself", writePIDFile(t, dir, "self.pid", os.Getpid(), 0o644, -1, -1), "the bridge's own pid"},
	}
	if os.Geteuid() == 0 {
		cases = append(cases,
			struct{ name, path, want string }{"a pid file owned by another user is refused",
				writePIDFile(t, dir, "other.pid", vpid, 0o644, nobody, nobody), "owned by uid 65534"},
			struct{ name, path, want string }{"a pid file group-writable by another group is refused",
				writePIDFile(t, dir, "group.pid", vpid, 0o664, 0, nobody), "writable by group 65534"},
		)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSignal(SignalOptions{PIDFile: tc.path, Signal: syscall.SIGTERM})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- s.Put(context.Background(), testCreds()) }()
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Put blocked")
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
				t.Fatalf("err = %v; want it to name %s and say %q", err, tc.path, tc.want)
			}
		})
	}
	if !alive() {
		t.Fatal("the victim process was signalled")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for the cases with another user's files (the others passed)")
	}
}

// TestSecurityPIDFileOtherUsersProcess: a root-owned pid file naming a process of another user is
// refused (a workload that could make a root pid file point elsewhere still cannot reach other users'
// processes), while a pid file and process of the same owner are signalled.
func TestSecurityPIDFileOtherUsersProcess(t *testing.T) {
	safefstest.NeedRoot(t, "creates a process owned by another user (uid 65534)")
	dir := t.TempDir()
	victim, alive := sleeper(t, &syscall.Credential{Uid: nobody, Gid: nobody})
	path := writePIDFile(t, dir, "app.pid", victim.Process.Pid, 0o644, 0, 0)
	s, err := NewSignal(SignalOptions{PIDFile: path, Signal: syscall.SIGTERM})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Put(context.Background(), testCreds())
	if err == nil || !strings.Contains(err.Error(), "owned by uid 65534") || !strings.Contains(err.Error(), "another user") {
		t.Fatalf("err = %v; want a refusal naming the process owner", err)
	}
	if !alive() {
		t.Fatal("the other user's process was signalled")
	}
	// The same owner on both sides is obeyed: a root pid file naming a root process.
	own, ownAlive := sleeper(t, nil)
	s, _ = NewSignal(SignalOptions{PIDFile: writePIDFile(t, dir, "own.pid", own.Process.Pid, 0o644, 0, 0), Signal: syscall.SIGTERM})
	if err := s.Put(context.Background(), testCreds()); err != nil {
		t.Fatal(err)
	}
	if ownAlive() {
		t.Fatal("the process named by a valid pid file was not signalled")
	}
}

// TestSecurityPIDFileDirectorySwappedForALinkIsRefused: a workload that owns a directory above a root
// pid file swaps it for a link to a directory holding another root-owned app.pid; root must not signal
// that other process. Before the directory walk, only the pid file itself was opened without following a
// link, and the other process was killed. An operator's own link (/var/run -> /run) is still followed.
func TestSecurityPIDFileDirectorySwappedForALinkIsRefused(t *testing.T) {
	safefstest.NeedRoot(t, "plants a link owned by another user (uid 65534)")
	root := t.TempDir()
	workload, other := filepath.Join(root, "workload"), filepath.Join(root, "other")
	for _, d := range []string{workload, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	safefstest.Give(t, workload, nobody, nobody)
	victim, alive := sleeper(t, nil)
	writePIDFile(t, other, "app.pid", victim.Process.Pid, 0o644, 0, 0)
	pidFile := filepath.Join(workload, "run", "app.pid")
	// The swap: workload/run (theirs to replace) is now their link to the other directory.
	safefstest.Symlink(t, other, filepath.Join(workload, "run"), nobody, nobody)
	s, err := NewSignal(SignalOptions{PIDFile: pidFile, Signal: syscall.SIGTERM})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Put(context.Background(), testCreds())
	if err == nil || !strings.Contains(err.Error(), filepath.Join(workload, "run")+" is a symbolic link owned by uid 65534") {
		t.Fatalf("err = %v; want a refusal naming the link", err)
	}
	// Without the link, a directory of theirs above the pid file is refused as well.
	if err := os.Remove(filepath.Join(workload, "run")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(workload, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	writePIDFile(t, filepath.Join(workload, "run"), "app.pid", victim.Process.Pid, 0o644, 0, 0)
	err = s.Put(context.Background(), testCreds())
	if err == nil || !strings.Contains(err.Error(), workload+" is owned by uid 65534") || !strings.Contains(err.Error(), "such as /run") {
		t.Fatalf("err = %v; want a refusal naming the directory of uid 65534", err)
	}
	if !alive() {
		t.Fatal("the other process was signalled")
	}

	// An operator's link, root's in a directory only root writes, is followed.
	varDir := filepath.Join(root, "var")
	if err := os.Mkdir(varDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, filepath.Join(varDir, "run")); err != nil {
		t.Fatal(err)
	}
	s, _ = NewSignal(SignalOptions{PIDFile: filepath.Join(varDir, "run", "app.pid"), Signal: syscall.SIGTERM})
	if err := s.Put(context.Background(), testCreds()); err != nil {
		t.Fatal(err)
	}
	if alive() {
		t.Fatal("the process named through the operator's link was not signalled")
	}
}

// TestSecurityOnRefreshProgramCheckedBeforeEveryRun: with Trust set (a root bridge), a program that is
// not found is refused by NewCommand, naming it (and the PATH searched for a bare name); one found is run
// by the absolute path found at start, with its first argument as configured, whatever is later put
// earlier on PATH; one replaced by a file uid 65534 owns, or whose directory becomes writable by others,
// is not run and Put fails naming the file, its owner and mode, and the fix.
func TestSecurityOnRefreshProgramCheckedBeforeEveryRun(t *testing.T) {
	safefstest.NeedRoot(t, "gives an on_refresh program to another user (uid 65534)")
	root := &trusted.Process{UID: 0, GID: 0}
	dir := t.TempDir()
	theirs, bin := filepath.Join(dir, "theirs"), filepath.Join(dir, "bin")
	for _, d := range []string{theirs, bin} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	safefstest.Give(t, theirs, nobody, nobody)
	path := theirs + ":" + bin + ":/usr/bin:/bin"
	t.Setenv("PATH", path)
	marker := filepath.Join(dir, "ran")
	write := func(p, script string, uid int) {
		t.Helper()
		_ = os.Remove(p)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		safefstest.Give(t, p, uid, uid)
	}

	for _, name := range []string{filepath.Join(theirs, "reload"), "reload"} {
		_, err := NewCommand(CommandOptions{Command: []string{name}, Trust: root})
		want := fmt.Sprintf("on_refresh.command %q: program not found", name)
		if !strings.Contains(name, "/") {
			want += fmt.Sprintf(" in PATH %q", path)
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing program %q: %v, want %q", name, err, want)
		}
	}

	prog := filepath.Join(bin, "reload")
	write(prog, `echo "$0 $1" > `+marker, 0)
	c, err := NewCommand(CommandOptions{Command: []string{"reload", "arg"}, Trust: root})
	if err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(theirs, "reload"), "echo theirs > "+marker, nobody)
	if err := c.Put(context.Background(), creds.Credentials{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(marker); string(b) != prog+" arg\n" {
		t.Fatalf("ran %q, want root's program %s", b, prog)
	}

	_ = os.Remove(marker)
	write(prog, "echo theirs > "+marker, nobody)
	err = c.Put(context.Background(), creds.Credentials{})
	if err == nil || !strings.Contains(err.Error(), "on_refresh program "+prog+" is owned by uid 65534") ||
		!strings.Contains(err.Error(), "mode -rwxr-xr-x") || !strings.Contains(err.Error(), "fix: chown root "+prog) {
		t.Errorf("program owned by uid 65534: %v", err)
	}
	write(prog, "echo theirs > "+marker, 0)
	if err := os.Chmod(bin, 0o777); err != nil {
		t.Fatal(err)
	}
	err = c.Put(context.Background(), creds.Credentials{})
	if err == nil || !strings.Contains(err.Error(), "directory "+bin+" is writable by other users") ||
		!strings.Contains(err.Error(), "fix: chmod o-w "+bin) {
		t.Errorf("program in a directory writable by others: %v", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a program someone else could have written ran")
	}
}
