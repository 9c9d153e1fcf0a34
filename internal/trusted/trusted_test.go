package trusted_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs/safefstest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/trusted"
)

// write creates path with data and mode (umask aside), and its parent directories 0755.
func write(t *testing.T, path, data string, mode os.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// refused asserts that reading path for the running process is refused with an *Error about atPath whose
// text holds every want.
func refused(t *testing.T, path, atPath string, want ...string) {
	t.Helper()
	data, err := trusted.ReadChecked(path, trusted.Self(), trusted.Options{What: "config file"})
	if err == nil {
		t.Fatalf("%s was read (%q); want it refused", path, data)
	}
	var te *trusted.Error
	if !errors.As(err, &te) || !errors.Is(err, trusted.ErrUntrusted) {
		t.Fatalf("error %v (%T) is not a *trusted.Error", err, err)
	}
	if te.Path != atPath {
		t.Errorf("refusal names %s; want %s", te.Path, atPath)
	}
	for _, w := range append(want, "config file "+path) {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

// accepted asserts that path is read for the running process and holds data.
func accepted(t *testing.T, path, data string) {
	t.Helper()
	got, err := trusted.ReadChecked(path, trusted.Self(), trusted.Options{What: "config file"})
	if err != nil {
		t.Fatalf("%s refused: %v", path, err)
	}
	if string(got) != data {
		t.Fatalf("read %q; want %q", got, data)
	}
}

// TestTheRulesForTheProcessOwnUser runs as any user: files and directories of the running user are
// trusted unless others (or a foreign group) can write them; a sticky directory is accepted.
func TestTheRulesForTheProcessOwnUser(t *testing.T) {
	dir := t.TempDir()
	good := write(t, filepath.Join(dir, "etc", "bridge.hcl"), "ok", 0o644)
	accepted(t, good, "ok")

	worldWritable := write(t, filepath.Join(dir, "ww", "bridge.hcl"), "x", 0o666)
	refused(t, worldWritable, worldWritable, "is writable by other users", "mode -rw-rw-rw-", "fix: chmod o-w "+worldWritable)

	openDir := write(t, filepath.Join(dir, "open", "bridge.hcl"), "x", 0o600)
	chmod(t, filepath.Dir(openDir), 0o777)
	refused(t, openDir, filepath.Dir(openDir), "directory "+filepath.Dir(openDir)+" is writable by other users",
		"mode drwxrwxrwx", "fix: chmod o-w "+filepath.Dir(openDir))

	sticky := write(t, filepath.Join(dir, "sticky", "bridge.hcl"), "tmp", 0o600)
	chmod(t, filepath.Dir(sticky), 0o777|os.ModeSticky)
	accepted(t, sticky, "tmp")

	// A link made by the process's own user, in a checked directory, is followed; the rules then hold
	// for where it leads.
	link := filepath.Join(dir, "etc", "link.hcl")
	if err := os.Symlink(worldWritable, link); err != nil {
		t.Fatal(err)
	}
	refused(t, link, worldWritable, "file "+worldWritable+" is writable by other users")
	good2 := filepath.Join(dir, "etc", "good-link.hcl")
	if err := os.Symlink("bridge.hcl", good2); err != nil {
		t.Fatal(err)
	}
	accepted(t, good2, "ok")

	fifo := filepath.Join(dir, "etc", "fifo.hcl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	refused(t, fifo, fifo, "is not a regular file")

	// Relative paths are taken from the working directory.
	t.Chdir(filepath.Dir(good))
	accepted(t, "bridge.hcl", "ok")

	if _, err := trusted.ReadChecked(filepath.Join(dir, "missing.hcl"), trusted.Self(), trusted.Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v; want ErrNotExist", err)
	}
	big := write(t, filepath.Join(dir, "etc", "big.hcl"), strings.Repeat("x", 100), 0o600)
	if _, err := trusted.ReadChecked(big, trusted.Self(), trusted.Options{MaxSize: 99}); err == nil || !strings.Contains(err.Error(), "larger than 99 bytes") {
		t.Fatalf("oversized file: %v", err)
	}
}

// TestSecurityFilesAnotherUserCouldWriteAreRefusedForRoot: as root, a file or directory owned by another
// user (uid 65534), a directory group-writable by a foreign group, and a link another user planted in a
// sticky directory are each refused with the chown/chmod that fixes it; root's own files in /tmp-style
// sticky directories are accepted.
func TestSecurityFilesAnotherUserCouldWriteAreRefusedForRoot(t *testing.T) {
	safefstest.NeedRoot(t, "gives files to another user (uid 65534)")
	dir := t.TempDir()

	theirs := write(t, filepath.Join(dir, "a", "bridge.hcl"), "x", 0o600)
	safefstest.Give(t, theirs, safefstest.Nobody, safefstest.Nobody)
	refused(t, theirs, theirs, "is owned by uid 65534", "fix: chown root "+theirs)

	theirDir := write(t, filepath.Join(dir, "b", "sub", "bridge.hcl"), "x", 0o600)
	safefstest.Give(t, filepath.Dir(theirDir), safefstest.Nobody, safefstest.Nobody)
	refused(t, theirDir, filepath.Dir(theirDir), "directory "+filepath.Dir(theirDir)+" is owned by uid 65534",
		"fix: chown root "+filepath.Dir(theirDir))

	groupDir := write(t, filepath.Join(dir, "c", "bridge.hcl"), "x", 0o600)
	safefstest.Give(t, filepath.Dir(groupDir), 0, safefstest.Nobody)
	chmod(t, filepath.Dir(groupDir), 0o775)
	refused(t, groupDir, filepath.Dir(groupDir), "is writable by its group gid 65534", "fix: chmod g-w "+filepath.Dir(groupDir))
	// Root's group may write.
	safefstest.Give(t, filepath.Dir(groupDir), 0, 0)
	accepted(t, groupDir, "x")

	// A sticky, world-writable directory like /tmp: root's file is safe there, a link another user
	// planted is not followed, a sticky directory another user owns is not trusted.
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	chmod(t, tmp, 0o777|os.ModeSticky)
	mine := write(t, filepath.Join(tmp, "bridge.hcl"), "root's", 0o600)
	accepted(t, mine, "root's")
	planted := filepath.Join(tmp, "planted.hcl")
	safefstest.Symlink(t, mine, planted, safefstest.Nobody, safefstest.Nobody)
	refused(t, planted, planted, "symbolic link "+planted+" is owned by uid 65534", "fix: rm "+planted)
	safefstest.Give(t, tmp, safefstest.Nobody, safefstest.Nobody)
	refused(t, mine, tmp, "directory "+tmp+" is owned by uid 65534")
}

// TestReadFileIsUncheckedForAnUnprivilegedProcess: a bridge that does not run as root reads what it is
// given, as it always did (see ReadFile).
func TestReadFileIsUncheckedForAnUnprivilegedProcess(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("checks the behaviour of a process that does not run as root")
	}
	p := write(t, filepath.Join(t.TempDir(), "ww", "bridge.hcl"), "x", 0o666)
	if _, err := trusted.ReadFile(p, trusted.Options{}); err != nil {
		t.Fatal(err)
	}
}
