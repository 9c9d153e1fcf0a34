package credfile

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs/safefstest"
)

// The adversarial suite: the bridge runs as root and writes into directories
// other users own. Tests named TestSecurity… are counted by CI.

const nobody = safefstest.Nobody

// nobodyDir returns a directory owned by nobody (mode 0755), inside a traversable test directory, and a
// directory beside it for the targets an attacker points links at.
func nobodyDir(t *testing.T) (dir, outside string) {
	t.Helper()
	root := t.TempDir()
	dir, outside = filepath.Join(root, "home-nobody"), filepath.Join(root, "outside")
	for _, d := range []string{dir, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	safefstest.Give(t, dir, nobody, nobody)
	return dir, outside
}

func sinkWith(t *testing.T, o Options) *Sink {
	t.Helper()
	if o.Profile == "" {
		o.Profile = "app"
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wantRefused(t *testing.T, err error, contains ...string) {
	t.Helper()
	if !errors.Is(err, safefs.ErrRefused) {
		t.Fatalf("error = %v, want a refusal", err)
	}
	for _, c := range contains {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("error %q does not mention %q", err, c)
		}
	}
}

func wantMissing(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s was created: %v", path, err)
	}
}

func owner(t *testing.T, path string) (uid, gid uint32, mode fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid, fi.Mode().Perm()
}

// The owner of the directory plants credentials -> a file elsewhere (or a path that does not exist yet):
// root must neither overwrite the target nor create it.
func TestSecuritySymlinkPlantedAtTheCredentialsPathIsRefused(t *testing.T) {
	safefstest.NeedRoot(t, "chowns files to another user")
	dir, outside := nobodyDir(t)
	path := filepath.Join(dir, "credentials")
	existing, missing := filepath.Join(outside, "sudoers"), filepath.Join(outside, "nologin")
	writeFile(t, existing, "root ALL=(ALL) ALL\n", 0o440)
	for _, target := range []string{existing, missing} {
		_ = os.Remove(path)
		safefstest.Symlink(t, target, path, nobody, nobody)
		err := sinkWith(t, Options{Path: path, Owner: safefs.NewID(nobody)}).Put(context.Background(), testCreds("app", 1))
		wantRefused(t, err, path+" is a symbolic link", "follow_symlinks = true")
		if got := readString(t, existing); got != "root ALL=(ALL) ALL\n" {
			t.Errorf("the link's target was changed to %q", got)
		}
		wantMissing(t, missing)
		wantMissing(t, path+".lock") // refused before the lock is created
	}
}

func TestSecuritySymlinkPlantedAtTheLockPathIsRefused(t *testing.T) {
	safefstest.NeedRoot(t, "chowns files to another user")
	dir, outside := nobodyDir(t)
	path := filepath.Join(dir, "credentials")
	existing, missing := filepath.Join(outside, "existing"), filepath.Join(outside, "nologin")
	writeFile(t, existing, "keep", 0o644)
	for _, target := range []string{existing, missing} {
		_ = os.Remove(path + ".lock")
		safefstest.Symlink(t, target, path+".lock", nobody, nobody)
		err := sinkWith(t, Options{Path: path, Owner: safefs.NewID(nobody)}).Put(context.Background(), testCreds("app", 1))
		wantRefused(t, err, path+".lock is a symbolic link")
		if got := readString(t, existing); got != "keep" {
			t.Errorf("the lock link's target was changed to %q", got)
		}
		if _, _, mode := owner(t, existing); mode != 0o644 {
			t.Errorf("the lock link's target has mode %v", mode)
		}
		wantMissing(t, missing)
		wantMissing(t, path) // nothing written without the lock
	}
}

// A directory on the path that is a symbolic link is refused; with follow_symlinks the file is written
// where it points.
func TestSecuritySymlinkedDirectoryComponentIsRefused(t *testing.T) {
	root := t.TempDir()
	real := filepath.Join(root, "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(root, "aws")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "aws", "credentials")
	err := sinkWith(t, Options{Path: path}).Put(context.Background(), testCreds("app", 1))
	wantRefused(t, err, filepath.Join(root, "aws")+" is a symbolic link; refusing to follow it (set follow_symlinks = true if the link is intended)")
	wantMissing(t, filepath.Join(real, "credentials"))
	wantMissing(t, filepath.Join(real, "credentials.lock"))

	c := testCreds("app", 2)
	mustPut(t, sinkWith(t, Options{Path: path, FollowSymlinks: true}), c)
	if got := sectionKeys(t, filepath.Join(real, "credentials"), "app"); !equalMaps(got, fileKeys(c)) {
		t.Errorf("target holds %v", got)
	}
}

// A file another user pre-created in a directory the bridge writes to keeps that user as owner: they
// would read every secret written into it.
func TestSecurityCredentialsFileOfAnotherUserIsRefused(t *testing.T) {
	safefstest.NeedRoot(t, "chowns files to another user")
	dir := t.TempDir()
	path := filepath.Join(dir, "credentials")
	const before = "[other]\nregion = eu-west-1\n"
	writeFile(t, path, before, 0o600)
	safefstest.Give(t, path, nobody, nobody)
	err := sinkWith(t, Options{Path: path}).Put(context.Background(), testCreds("app", 1))
	wantRefused(t, err, path+" is owned by uid 65534", "only root, the bridge's user (uid 0) or a configured owner are accepted")
	if got := readString(t, path); got != before {
		t.Errorf("file changed to %q", got)
	}
	if uid, _, _ := owner(t, path); uid != nobody {
		t.Errorf("file now owned by %d", uid)
	}
}

// Without an owner configured, a directory on the path owned by another user is refused; with it, the
// directory is trusted.
func TestSecurityDirectoryOfAnotherUserIsRefused(t *testing.T) {
	safefstest.NeedRoot(t, "chowns files to another user")
	dir, _ := nobodyDir(t)
	path := filepath.Join(dir, ".aws", "credentials")
	err := sinkWith(t, Options{Path: path}).Put(context.Background(), testCreds("app", 1))
	wantRefused(t, err, dir+" is owned by uid 65534")
	wantMissing(t, filepath.Join(dir, ".aws"))

	mustPut(t, sinkWith(t, Options{Path: path, Owner: safefs.NewID(nobody)}), testCreds("app", 1))
	if uid, _, _ := owner(t, path); uid != nobody {
		t.Errorf("file owned by %d, want the configured owner", uid)
	}
}

// A hard link to a file elsewhere (root's own credentials) must not be read and re-written for the
// directory's owner.
func TestSecurityHardLinkedCredentialsFileIsRefused(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "root-credentials")
	writeFile(t, secret, "[root]\naws_access_key_id = AKIAROOT\n", 0o600)
	path := filepath.Join(dir, "credentials")
	if err := os.Link(secret, path); err != nil {
		t.Fatal(err)
	}
	err := sinkWith(t, Options{Path: path}).Put(context.Background(), testCreds("app", 1))
	wantRefused(t, err, path+" has 2 hard links")
}

func TestSecurityStickyRootDirectoryIsAcceptedAsParent(t *testing.T) {
	safefstest.NeedRoot(t, "needs a root-owned directory and another user's file")
	dir := filepath.Join(t.TempDir(), "tmp")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "credentials")
	mustPut(t, sinkWith(t, Options{Path: path}), testCreds("app", 1))

	// The exception is for the sticky directory, not for what is in it.
	other := filepath.Join(dir, "theirs")
	writeFile(t, other, "", 0o600)
	safefstest.Give(t, other, nobody, nobody)
	wantRefused(t, sinkWith(t, Options{Path: other}).Put(context.Background(), testCreds("app", 1)), other+" is owned by uid 65534")
	sub := filepath.Join(dir, "shared")
	if err := os.Mkdir(sub, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sub, 0o777); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, sinkWith(t, Options{Path: filepath.Join(sub, "credentials")}).Put(context.Background(), testCreds("app", 1)),
		sub+" is writable by other users")
}

// A Kubernetes emptyDir: root-owned, 0777 (or 2777 with fsGroup), not sticky.
func TestSecuritySharedDirectoryNeedsAllowSharedDirectory(t *testing.T) {
	for _, mode := range []fs.FileMode{0o777, 0o777 | fs.ModeSetgid} {
		dir := filepath.Join(t.TempDir(), "aws")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "credentials")
		err := sinkWith(t, Options{Path: path}).Put(context.Background(), testCreds("app", 1))
		wantRefused(t, err, dir+" is writable by other users", "allow_shared_directory = true")
		wantMissing(t, path)

		mustPut(t, sinkWith(t, Options{Path: path, AllowSharedDirectory: true}), testCreds("app", 1))
		if _, _, m := owner(t, path); m != 0o600 {
			t.Errorf("file mode %v", m)
		}
		// Still never a file others can write.
		if err := os.Chmod(path, 0o666); err != nil {
			t.Fatal(err)
		}
		wantRefused(t, sinkWith(t, Options{Path: path, AllowSharedDirectory: true}).Put(context.Background(), testCreds("app", 2)),
			path+" is writable by other users")
	}
}

func TestSecurityGroupWritableDirectoryOfAForeignGroupIsRefused(t *testing.T) {
	safefstest.NeedRoot(t, "gives a directory to another group")
	dir := filepath.Join(t.TempDir(), "aws")
	if err := os.Mkdir(dir, 0o770); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o770); err != nil {
		t.Fatal(err)
	}
	safefstest.Give(t, dir, 0, nobody)
	path := filepath.Join(dir, "credentials")
	wantRefused(t, sinkWith(t, Options{Path: path}).Put(context.Background(), testCreds("app", 1)),
		dir+" is writable by its group (gid 65534")
	mustPut(t, sinkWith(t, Options{Path: path, Group: safefs.NewID(nobody)}), testCreds("app", 1))
}

// With owner and group configured, what the bridge creates belongs to them, with the configured modes,
// and that user can read the file.
func TestSecurityConfiguredOwnerGetsNewDirectoriesAndFile(t *testing.T) {
	safefstest.NeedRoot(t, "chowns files to another user")
	root := t.TempDir()
	safefstest.Traversable(t, root)
	home := filepath.Join(root, "home")
	path := filepath.Join(home, ".aws", "credentials")
	c := testCreds("app", 1)
	mustPut(t, sinkWith(t, Options{Path: path, Owner: safefs.NewID(nobody), Group: safefs.NewID(nobody), Mode: 0o640}), c)

	for p, want := range map[string]fs.FileMode{home: 0o750, filepath.Dir(path): 0o750, path: 0o640, path + ".lock": 0o640} {
		uid, gid, mode := owner(t, p)
		if uid != nobody || gid != nobody || mode != want {
			t.Errorf("%s: %d:%d %v, want %d:%d %v", p, uid, gid, mode, nobody, nobody, want)
		}
	}
	cat := exec.Command("cat", path)
	cat.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cat.CombinedOutput()
	if err != nil {
		t.Fatalf("nobody cannot read the file: %v: %s", err, out)
	}
	if !strings.Contains(string(out), c.AccessKeyID) {
		t.Errorf("nobody read %q", out)
	}
	// Another process of that user cannot read the secret of a file written without the owner: the
	// test itself proves the owner matters.
	mustPut(t, sinkWith(t, Options{Path: filepath.Join(root, "rootfile")}), c)
	cat = exec.Command("cat", filepath.Join(root, "rootfile"))
	cat.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	if out, err := cat.CombinedOutput(); err == nil {
		t.Errorf("nobody read root's 0600 file: %s", out)
	}
}

// With an owner configured, an existing file owned by root (or the bridge) is handed to the owner.
func TestSecurityConfiguredOwnerTakesOverAnExistingFile(t *testing.T) {
	safefstest.NeedRoot(t, "chowns files to another user")
	path := filepath.Join(t.TempDir(), "credentials")
	writeFile(t, path, "[other]\nk = v\n", 0o600)
	s := sinkWith(t, Options{Path: path, Owner: safefs.NewID(nobody)})
	mustPut(t, s, testCreds("app", 1))
	if uid, gid, mode := owner(t, path); uid != nobody || gid != 0 || mode != 0o600 {
		t.Errorf("after Put: %d:%d %v, want %d:0 0600", uid, gid, mode, nobody)
	}
	// Unchanged content but the wrong owner: still rewritten.
	safefstest.Give(t, path, 0, 0)
	if err := s.Clear(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Clear(context.Background()); err != nil {
		t.Fatal(err)
	}
	if uid, _, _ := owner(t, path); uid != nobody {
		t.Errorf("after an idempotent Clear the file is owned by %d", uid)
	}
}

// Giving a file to another user needs root; the sink says so when it is built, not at the first write.
func TestOwnerNeedsRootWhenNotRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("needs a non-root user: root may give files to anyone (TestRulesCheck covers the rule as root)")
	}
	_, err := New(Options{Path: "/x/credentials", Profile: "app", Owner: safefs.NewID(uint32(os.Geteuid() + 1))})
	if err == nil || !strings.Contains(err.Error(), "the bridge must run as root to give files to another user") {
		t.Errorf("New = %v", err)
	}
}
