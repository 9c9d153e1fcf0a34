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
		// A link of uid 65534 would not be followed with follow_symlinks either: the message says so
		// rather than suggesting it.
		wantRefused(t, err, path+" is a symbolic link owned by uid 65534", "follow_symlinks would not follow it either")
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

// A disk-backed Kubernetes emptyDir: root-owned, 0777 (or 2777 with fsGroup), not sticky.
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

// A memory-backed Kubernetes emptyDir (medium: Memory) is a tmpfs the kubelet mounts root-owned and 1777,
// and with the pod's fsGroup root:fsGroup drwxrwsrwt (3777): sticky, so accepted without
// allow_shared_directory, as a bridge of the fsGroup's user writes it in the sidecar example. The
// exemption stays the directory's: a file in it of another user, or one others can write, is refused.
func TestSecurityMemoryEmptyDirIsAcceptedWithoutAllowSharedDirectory(t *testing.T) {
	safefstest.NeedRoot(t, "needs a root-owned directory and another user's file")
	for _, c := range []struct {
		mode fs.FileMode
		gid  int
	}{{0o777 | fs.ModeSticky, 0}, {0o777 | fs.ModeSticky | fs.ModeSetgid, nobody}} {
		dir := filepath.Join(t.TempDir(), "aws")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		safefstest.Give(t, dir, 0, c.gid)
		if err := os.Chmod(dir, c.mode); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(dir); err != nil || fi.Mode()&(fs.ModeSticky|fs.ModeSetgid|fs.ModePerm) != c.mode {
			t.Fatalf("%s: %v %v, want %v", dir, fi.Mode(), err, c.mode)
		}
		path := filepath.Join(dir, "credentials")
		mustPut(t, sinkWith(t, Options{Path: path}), testCreds("app", 1))
		if _, _, m := owner(t, path); m != 0o600 {
			t.Errorf("%v: file mode %v", c.mode, m)
		}
		if err := os.Chmod(path, 0o666); err != nil {
			t.Fatal(err)
		}
		wantRefused(t, sinkWith(t, Options{Path: path}).Put(context.Background(), testCreds("app", 2)), path+" is writable by other users")
		other := filepath.Join(dir, "theirs")
		writeFile(t, other, "", 0o600)
		safefstest.Give(t, other, nobody, nobody)
		wantRefused(t, sinkWith(t, Options{Path: other}).Put(context.Background(), testCreds("app", 1)), other+" is owned by uid 65534")
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

	for p, want := range map[string]fs.FileMode{filepath.Dir(path): 0o750, path: 0o640, path + ".lock": 0o640} {
		uid, gid, mode := owner(t, p)
		if uid != nobody || gid != nobody || mode != want {
			t.Errorf("%s: %d:%d %v, want %d:%d %v", p, uid, gid, mode, nobody, nobody, want)
		}
	}
	// Only the file's own directory is theirs: a missing directory above it is the bridge's, 0755.
	if uid, gid, mode := owner(t, home); uid != 0 || gid != 0 || mode != 0o755 {
		t.Errorf("%s: %d:%d %v, want 0:0 0755", home, uid, gid, mode)
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

// With an owner configured, root never hands an existing file of root's (or of anyone but the owner) to
// the owner, not even in the owner's own directory: it may not have been the bridge that created it. The
// refusal names the chown that makes it theirs; a file already theirs is rewritten and stays theirs.
func TestSecurityConfiguredOwnerIsNeverHandedAnExistingFile(t *testing.T) {
	safefstest.NeedRoot(t, "chowns files to another user")
	dir, _ := nobodyDir(t)
	path := filepath.Join(dir, "credentials")
	const before = "[other]\nk = v\n"
	writeFile(t, path, before, 0o644)
	s := sinkWith(t, Options{Path: path, Owner: safefs.NewID(nobody)})
	wantRefused(t, s.Put(context.Background(), testCreds("app", 1)),
		path+" is owned by uid 0, not by the configured owner (uid 65534)", "chown 65534 "+path)
	wantRefused(t, s.Check(), path+" is owned by uid 0") // a reload to it is refused too
	if uid, _, mode := owner(t, path); uid != 0 || mode != 0o644 || readString(t, path) != before {
		t.Errorf("the refused file changed: uid %d, mode %v, %q", uid, mode, readString(t, path))
	}
	wantMissing(t, path+".lock")

	safefstest.Give(t, path, nobody, 0)
	mustPut(t, s, testCreds("app", 1))
	if uid, gid, mode := owner(t, path); uid != nobody || gid != 0 || mode != 0o600 {
		t.Errorf("after Put: %d:%d %v, want %d:0 0600", uid, gid, mode, nobody)
	}
	if !strings.HasPrefix(readString(t, path), before) {
		t.Errorf("the other profile was lost")
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

// A user who owns a directory on the path (the README's ~/.aws with owner = app) and the bridge running
// with follow_symlinks = true: the user links the credentials path at a root-owned file (a passwd stand-in)
// or at a missing name in a root-owned directory (an ld.so.preload stand-in). Root must neither rewrite
// the file as the user's nor create one for them there. Before links were held to the protected_symlinks
// rule, both succeeded: the passwd stand-in became a 0600 file of uid 65534.
func TestSecurityFollowSymlinksNeverWritesWhereTheOwnerPointsIt(t *testing.T) {
	safefstest.NeedRoot(t, "plants links owned by another user")
	home, outside := nobodyDir(t)
	passwd, preload := filepath.Join(outside, "passwd"), filepath.Join(outside, "ld.so.preload")
	const entry = "root:x:0:0:root:/root:/bin/sh\n"
	writeFile(t, passwd, entry, 0o644)
	aws := filepath.Join(home, ".aws")
	if err := os.Mkdir(aws, 0o700); err != nil {
		t.Fatal(err)
	}
	safefstest.Give(t, aws, nobody, nobody)
	path := filepath.Join(aws, "credentials")
	check := func(t *testing.T) {
		t.Helper()
		if uid, gid, mode := owner(t, passwd); uid != 0 || gid != 0 || mode != 0o644 || readString(t, passwd) != entry {
			t.Errorf("the passwd stand-in changed: %d:%d %v %q", uid, gid, mode, readString(t, passwd))
		}
		wantMissing(t, preload)
		entries, _ := os.ReadDir(outside)
		if len(entries) != 1 {
			t.Errorf("the root-owned directory holds %v, want the passwd stand-in only", entries)
		}
	}
	for _, plant := range []struct{ link, target string }{
		{path, passwd},  // the file
		{path, preload}, // a missing file in a root-owned directory
		{aws, outside},  // the directory above it
	} {
		t.Run(filepath.Base(plant.link)+" -> "+filepath.Base(plant.target), func(t *testing.T) {
			_ = os.Remove(path)
			if plant.link == aws {
				if err := os.Rename(aws, aws+".real"); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = os.Remove(aws); _ = os.Rename(aws+".real", aws) })
			}
			safefstest.Symlink(t, plant.target, plant.link, nobody, nobody)
			s := sinkWith(t, Options{Path: path, Owner: safefs.NewID(nobody), FollowSymlinks: true})
			wantRefused(t, s.Put(context.Background(), testCreds("app", 1)),
				plant.link+" is a symbolic link owned by uid 65534; refusing to follow it, even with follow_symlinks")
			wantRefused(t, s.Check(), plant.link+" is a symbolic link owned by uid 65534")
			check(t)
		})
	}
	_ = os.Remove(path)

	// A link root made in a directory only root can write is followed (an operator's own link), and the
	// resolved path is held to the owner rules: root still never gives the owner a file in a directory
	// that is not theirs, nor an existing root file.
	srv := filepath.Join(filepath.Dir(outside), "srv")
	if err := os.Mkdir(srv, 0o755); err != nil {
		t.Fatal(err)
	}
	for target, want := range map[string]string{
		passwd:  passwd + " is owned by uid 0, not by the configured owner (uid 65534); refusing to hand an existing file to another user",
		preload: "refusing to create " + preload + " for the configured owner (uid 65534) in " + outside + ", a directory owned by uid 0",
	} {
		link := filepath.Join(srv, "credentials")
		_ = os.Remove(link)
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		wantRefused(t, sinkWith(t, Options{Path: link, Owner: safefs.NewID(nobody), FollowSymlinks: true}).Put(context.Background(), testCreds("app", 1)), want)
		check(t)
	}
	// The operator's link into the user's own directory: written, and theirs.
	link := filepath.Join(srv, "aws")
	if err := os.Symlink(aws, link); err != nil {
		t.Fatal(err)
	}
	mustPut(t, sinkWith(t, Options{Path: filepath.Join(link, "credentials"), Owner: safefs.NewID(nobody), FollowSymlinks: true}), testCreds("app", 2))
	if uid, _, mode := owner(t, path); uid != nobody || mode != 0o600 {
		t.Errorf("%s: uid %d mode %v, want the owner's 0600 file", path, uid, mode)
	}
}

// Node mode: several workloads' files under one shared parent (/run/spiffe-aws-bridge) that does not
// exist yet. It is created root-owned 0755 and only each workload's own leaf directory is theirs: every
// workload is served and reads its own file. Before, the first workload's write created the shared parent
// 0700 as its own, and every other workload was refused from then on.
func TestSecurityNodeModeSharedParentIsNotTheFirstWorkloads(t *testing.T) {
	safefstest.NeedRoot(t, "writes files for other users")
	root := t.TempDir()
	safefstest.Traversable(t, root)
	shared := filepath.Join(root, "run", "spiffe-aws-bridge")
	workloads := map[string]uint32{"billing": nobody, "reports": nobody - 1}
	for _, name := range []string{"billing", "reports"} {
		uid := workloads[name]
		path := filepath.Join(shared, name, "credentials")
		c := testCreds(name, 1)
		mustPut(t, sinkWith(t, Options{Path: path, Profile: name, Owner: safefs.NewID(uid)}), c)
		if got, gid, mode := owner(t, filepath.Dir(path)); got != uid || gid != 0 || mode != 0o700 {
			t.Errorf("%s: %d:%d %v, want %d:0 0700", filepath.Dir(path), got, gid, mode, uid)
		}
		cat := exec.Command("cat", path)
		cat.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		if out, err := cat.CombinedOutput(); err != nil || !strings.Contains(string(out), c.AccessKeyID) {
			t.Errorf("uid %d cannot read its own file: %v: %s", uid, err, out)
		}
	}
	for _, d := range []string{filepath.Dir(shared), shared} {
		if uid, gid, mode := owner(t, d); uid != 0 || gid != 0 || mode != 0o755 {
			t.Errorf("shared parent %s: %d:%d %v, want 0:0 0755", d, uid, gid, mode)
		}
	}
}

// Another user creates "<path>.lock" first in a sticky directory like /tmp: the bridge writes anyway (in
// a directory others can write, it locks the credentials file itself, which no one else can open) and
// leaves their file alone. Before, every write was refused.
func TestSecurityLockFilePlantedInAStickyDirectoryBlocksNothing(t *testing.T) {
	safefstest.NeedRoot(t, "needs a root-owned sticky directory and another user's file")
	path := filepath.Join(stickyDir(t), "credentials")
	writeFile(t, path+".lock", "theirs", 0o644)
	safefstest.Give(t, path+".lock", nobody, nobody)
	for i, p := range []string{"a", "b", "a"} {
		c := testCreds(p, i)
		mustPut(t, sinkWith(t, Options{Path: path, Profile: p}), c)
		if got := sectionKeys(t, path, p); !equalMaps(got, fileKeys(c)) {
			t.Errorf("profile %s holds %v", p, got)
		}
	}
	if uid, _, mode := owner(t, path); uid != 0 || mode != 0o600 {
		t.Errorf("credentials file: uid %d mode %v", uid, mode)
	}
	if uid, _, _ := owner(t, path+".lock"); uid != nobody || readString(t, path+".lock") != "theirs" {
		t.Errorf("their lock file was changed")
	}
}

// Where another user could still own the lock file (a directory their group may write), it is refused by
// name, with its owner and what to do.
func TestForeignLockFileIsRefusedByName(t *testing.T) {
	safefstest.NeedRoot(t, "gives files to another user")
	dir := filepath.Join(t.TempDir(), "aws")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o770); err != nil {
		t.Fatal(err)
	}
	safefstest.Give(t, dir, 0, nobody)
	path := filepath.Join(dir, "credentials")
	writeFile(t, path+".lock", "", 0o600)
	safefstest.Give(t, path+".lock", nobody, nobody)
	err := sinkWith(t, Options{Path: path, Group: safefs.NewID(nobody)}).Put(context.Background(), testCreds("app", 1))
	wantRefused(t, err, "lock file "+path+".lock (owned by uid 65534) cannot be used", "rm "+path+".lock")
	wantMissing(t, path)
}

// The clean-up of temporary files left by a killed writer, in a sticky directory like /tmp, removes only
// the bridge's own (or the owner's): another user's file of the same name is theirs. Before, it was
// deleted.
func TestSecurityTempCleanupLeavesOtherUsersFiles(t *testing.T) {
	safefstest.NeedRoot(t, "needs a root-owned sticky directory and another user's file")
	dir := stickyDir(t)
	path := filepath.Join(dir, "credentials")
	mustPut(t, sinkWith(t, Options{Path: path}), testCreds("app", 1)) // the file exists: an update cleans up
	theirs, ours := filepath.Join(dir, ".credentials.tmp123"), filepath.Join(dir, ".credentials.tmp456")
	writeFile(t, theirs, "their data", 0o600)
	safefstest.Give(t, theirs, nobody, nobody)
	writeFile(t, ours, "left by a killed writer", 0o600)
	mustPut(t, sinkWith(t, Options{Path: path}), testCreds("app", 2))
	if got := readString(t, theirs); got != "their data" {
		t.Errorf("their file holds %q", got)
	}
	wantMissing(t, ours)
}
