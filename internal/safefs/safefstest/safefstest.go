// Package safefstest helps the adversarial file tests of packages built on safefs: skipping tests that
// need root, and setting up directories another user owns.
package safefstest

import (
	"os"
	"path/filepath"
	"testing"
)

// Nobody is the uid and gid of the unprivileged user the tests give files to (nobody:nogroup).
const Nobody = 65534

// NeedRoot skips the test unless it runs as root, saying why it needs root, e.g.
// NeedRoot(t, "chowns files to another user") skips with "needs root: chowns files to another user".
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: " + why)
	}
}

// Traversable makes dir and its parents up to (not including) "/" searchable by every user (mode
// 0755 on the test's own directories: t.TempDir() creates them 0700), so that another user can reach a
// file inside. It only widens directories owned by the current user.
func Traversable(t testing.TB, dir string) {
	t.Helper()
	for d := filepath.Clean(dir); d != "/"; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o005 == 0o005 {
			continue
		}
		if err := os.Chmod(d, fi.Mode().Perm()|0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// Give makes path (a file, directory or symbolic link, not followed) belong to uid:gid.
func Give(t testing.TB, path string, uid, gid int) {
	t.Helper()
	if err := os.Lchown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
}

// Symlink creates a symbolic link at link pointing at target, owned by uid:gid (as if that user planted
// it).
func Symlink(t testing.TB, target, link string, uid, gid int) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	Give(t, link, uid, gid)
}
