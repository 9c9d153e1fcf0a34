// Package safefstest helps the adversarial file tests of packages built on safefs: skipping tests that
// need root, and setting up directories another user owns.
package safefstest

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
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

// ReadOnly makes dir unwritable for the test process, root included, the way an operator meets it: as
// root, dir becomes a read-only bind mount of itself (a read-only volume: writes fail with EROFS whoever
// writes, and root ignores permission bits); otherwise dir gets mode 0555 (EACCES). It returns a function
// that makes dir writable again (unmounts, or restores the mode), which also runs at cleanup. A root
// process that may not mount (a container without CAP_SYS_ADMIN) skips the test.
func ReadOnly(t testing.TB, dir string) (writable func()) {
	t.Helper()
	var once sync.Once
	if os.Geteuid() != 0 {
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		writable = func() {
			once.Do(func() {
				if err := os.Chmod(dir, fi.Mode().Perm()); err != nil {
					t.Errorf("restoring the mode of %s: %v", dir, err)
				}
			})
		}
		t.Cleanup(writable)
		return writable
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		if errors.Is(err, unix.EPERM) {
			t.Skipf("needs to mount (CAP_SYS_ADMIN) to make %s read-only for root: %v", dir, err)
		}
		t.Fatalf("bind-mounting %s: %v", dir, err)
	}
	writable = func() {
		once.Do(func() {
			if err := unix.Unmount(dir, 0); err != nil {
				if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
					t.Errorf("unmounting %s: %v", dir, err)
				}
			}
		})
	}
	t.Cleanup(writable)
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remounting %s read-only: %v", dir, err)
	}
	// Prove it: a test that thinks the directory is read-only when it is not proves nothing.
	probe := filepath.Join(dir, ".readonly-probe")
	if f, err := os.Create(probe); err == nil {
		f.Close()
		_ = os.Remove(probe)
		t.Fatalf("%s is still writable after the read-only remount", dir)
	}
	return writable
}

// Accounts is a user database a test edits while the code under test looks names up in it: an account
// deleted, or re-created with another uid (whose old uid then belongs to someone else). Its Lookup stands
// for the system's (os/user) behind an injectable owner lookup.
type Accounts struct {
	mu    sync.Mutex
	users map[string]uint32
}

// NewAccounts returns a database holding name with uid.
func NewAccounts(name string, uid uint32) *Accounts {
	return &Accounts{users: map[string]uint32{name: uid}}
}

// Set gives name the uid (useradd, or userdel then useradd with another uid).
func (a *Accounts) Set(name string, uid uint32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.users[name] = uid
}

// Remove deletes the account name (userdel).
func (a *Accounts) Remove(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.users, name)
}

// Lookup returns name's uid, or an error when there is no such account.
func (a *Accounts) Lookup(name string) (uint32, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	uid, ok := a.users[name]
	if !ok {
		return 0, errors.New("no such user")
	}
	return uid, nil
}
