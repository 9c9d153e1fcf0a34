package safefs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs/safefstest"
)

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestParseMode(t *testing.T) {
	for _, c := range []struct {
		in   string
		want fs.FileMode
		err  string
	}{
		{"0600", 0o600, ""},
		{"600", 0o600, ""},
		{"0640", 0o640, ""},
		{"0660", 0o660, ""},
		{"0o640", 0o640, ""},
		{"0644", 0, `"0644": must be 0600, 0640 or 0660: a file holding a secret has no execute bits and no permission for others`},
		{"0700", 0, `"0700": must be 0600, 0640 or 0660`},
		{"4600", 0, `"4600": must be`},
		{"0400", 0, `"0400": must be`},
		{"0689", 0, `"0689" is not an octal file mode such as "0600"`},
		{"", 0, `"" is not an octal file mode`},
		{"00000000600", 0, `is not an octal file mode`},
	} {
		got, err := ParseMode(c.in)
		if got != c.want || !strings.Contains(errText(err), c.err) || (c.err == "") != (err == nil) {
			t.Errorf("ParseMode(%q) = %v, %v; want %v, %q", c.in, got, err, c.want, c.err)
		}
	}
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"app", "www-data", "_svc", "user.name", "machine$", "0", "65534", "4294967294"} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "-x", "a/b", "4294967295", "99999999999", "é", strings.Repeat("a", 40)} {
		if err := ValidateName(bad); err == nil {
			t.Errorf("ValidateName(%q) accepted", bad)
		}
	}
}

func TestRulesCheck(t *testing.T) {
	for _, c := range []struct {
		name       string
		r          Rules
		euid, egid int
		groups     []int
		err        string
	}{
		{"root gives to anyone", Rules{Owner: NewID(1000), Group: NewID(1000)}, 0, 0, nil, ""},
		{"own uid", Rules{Owner: NewID(1000)}, 1000, 1000, nil, ""},
		{"supplementary group", Rules{Group: NewID(27)}, 1000, 1000, []int{27}, ""},
		{"another user", Rules{Owner: NewID(1001)}, 1000, 1000, nil, "owner uid 1001 is not the bridge's user (uid 1000): the bridge must run as root to give files to another user"},
		{"another group", Rules{Group: NewID(5)}, 1000, 1000, []int{27}, "group gid 5 is not one of the bridge's groups (gid 1000): the bridge must run as root to give files to another group"},
		{"bad mode", Rules{Mode: 0o644}, 0, 0, nil, "mode 0644 must be 0600, 0640 or 0660: a file holding a secret has no execute bits and no permission for others"},
	} {
		if got := errText(c.r.check(c.euid, c.egid, c.groups)); got != c.err {
			t.Errorf("%s: %q, want %q", c.name, got, c.err)
		}
	}
}

func TestResolve(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "real", "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"dirlink":       "real",
		"real/sub/up":   "../..",
		"abs":           filepath.Join(root, "real", "sub"),
		"dangling":      "real/new-file",
		"loop":          "loop",
		"real/sub/file": "../../real/target",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	for in, want := range map[string]string{
		"dirlink/sub/credentials":    "real/sub/credentials",
		"dirlink/sub/up/dirlink/sub": "real/sub",
		"abs/x":                      "real/sub/x",
		"dangling":                   "real/new-file",
		"missing/../dirlink/x":       "real/x",
		"dirlink/sub/file":           "real/target",
	} {
		got, err := Resolve(filepath.Join(root, in))
		if err != nil || got != filepath.Join(root, want) {
			t.Errorf("Resolve(%s) = %q, %v; want %s", in, got, err, filepath.Join(root, want))
		}
	}
	if _, err := Resolve(filepath.Join(root, "loop")); err == nil || !strings.Contains(err.Error(), "too many levels of symbolic links") {
		t.Errorf("Resolve of a loop: %v", err)
	}
}

// The temporary file already has the final owner, group and mode before it is renamed into place: no
// reader ever sees the secret with another owner or mode.
func TestSecurityTempFileHasOwnerAndModeBeforeRename(t *testing.T) {
	safefstest.NeedRoot(t, "chowns files to another user")
	root := t.TempDir()
	r := Rules{Owner: NewID(safefstest.Nobody), Group: NewID(safefstest.Nobody), Mode: 0o640}
	d, err := OpenDir(filepath.Join(root, "a", "b"), r, true)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var seen []string
	beforeRename = func(tmp *os.File) {
		fi, err := tmp.Stat()
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != safefstest.Nobody || st.Gid != safefstest.Nobody || fi.Mode().Perm() != 0o640 {
			t.Errorf("temporary file %s is %d:%d %v before the rename", tmp.Name(), st.Uid, st.Gid, fi.Mode().Perm())
		}
		if base := filepath.Base(tmp.Name()); !IsTempName("credentials", base) && !IsTempName("token", base) {
			t.Errorf("temporary file name %s", tmp.Name())
		}
		seen = append(seen, tmp.Name())
	}
	t.Cleanup(func() { beforeRename = nil })
	if err := d.WriteFile("credentials", []byte("secret"), nil); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateFile("token", []byte("tok")); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 {
		t.Errorf("hook saw %d temporary files, want 2", len(seen))
	}
	if err := d.CreateFile("token", []byte("other")); !errors.Is(err, fs.ErrExist) {
		t.Errorf("CreateFile over an existing file = %v, want ErrExist", err)
	}
	// Only the file's own directory is the owner's; the shared parent above it is root's, 0755.
	for p, want := range map[string]struct {
		id   uint32
		mode fs.FileMode
	}{filepath.Join(root, "a"): {0, 0o755}, filepath.Join(root, "a", "b"): {safefstest.Nobody, 0o750}} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != want.id || st.Gid != want.id || fi.Mode().Perm() != want.mode {
			t.Errorf("created directory %s is %d:%d %v, want %d:%d %v", p, st.Uid, st.Gid, fi.Mode().Perm(), want.id, want.id, want.mode)
		}
	}
	entries, _ := os.ReadDir(d.Path())
	if len(entries) != 2 {
		t.Errorf("directory holds %v, want the two files only", entries)
	}
}

// A component swapped for a symbolic link after Resolve (or without FollowSymlinks) is never followed.
func TestSecurityOpenDirNeverFollowsALink(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "real"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	_, err := OpenDir(filepath.Join(root, "link", "x"), Rules{}, true)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), filepath.Join(root, "link")+" is a symbolic link") {
		t.Fatalf("OpenDir through a link = %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "real", "x")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("created through the link: %v", err)
	}
	d, err := OpenDir(filepath.Join(root, "link", "x"), Rules{FollowSymlinks: true}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Path() != filepath.Join(root, "real", "x") {
		t.Errorf("Path = %s", d.Path())
	}
	// A file that is a link, a FIFO (must not block) or a directory is refused.
	if err := os.Symlink("/etc/passwd", filepath.Join(d.Path(), "f")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(d.Path(), "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"f": "is a symbolic link", "fifo": "is not a regular file (p---------)", ".": `"." is not a file name`} {
		if _, _, err := d.OpenFile(name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("OpenFile(%s) = %v, want %q", name, err, want)
		}
	}
}

func TestIsTempName(t *testing.T) {
	for name, want := range map[string]bool{
		".credentials.tmp123": true, ".credentials.tmp0": true,
		".credentials": false, ".credentials.tmp": false, "credentials.tmp123": false, ".credentials.tmp12a": false,
		".credentials.tmp-1": false, ".credentials.bak1": false, ".token.tmp1": false, "..credentials.tmp1": false,
		".credentials.tmp4294967295": true, ".credentials.tmp9223372036854775807": true, ".credentials.tmp9223372036854775808": false,
		".credentials.tmp012": false, ".credentials.tmp00": false, ".credentials.tmp+1": false, ".credentials.tmp-0": false,
		// Another file's temporary files: credentials2's, credentials.tmp5's; and the old form without
		// the separator, which could not tell them apart.
		".credentials2.tmp12345": false, ".credentials.tmp5.tmp1": false, ".credentials123": false,
	} {
		if got := IsTempName("credentials", name); got != want {
			t.Errorf("IsTempName(credentials, %q) = %v, want %v", name, got, want)
		}
	}
	if !IsTempName("credentials2", TempName("credentials2", 12345)) || IsTempName("credentials", TempName("credentials2", 12345)) {
		t.Errorf("%s is credentials2's temporary file, not credentials'", TempName("credentials2", 12345))
	}
}

// A link is followed only when no one but root and the bridge's user could have made it or can replace
// it: the link's owner and every directory down to it are checked, as the kernel's protected_symlinks
// does (strictly). Before this rule, every link was followed.
func TestSecurityResolveFollowsOnlyLinksNoOneElseCouldHaveMade(t *testing.T) {
	safefstest.NeedRoot(t, "plants links owned by another user")
	root := t.TempDir()
	target := filepath.Join(root, "etc", "passwd")
	mkdirs := func(dir string, mode fs.FileMode, uid int) string {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		safefstest.Give(t, dir, uid, uid)
		return dir
	}
	mkdirs(filepath.Dir(target), 0o755, 0)
	home := mkdirs(filepath.Join(root, "home"), 0o755, safefstest.Nobody)
	inHome := mkdirs(filepath.Join(home, "rootdir"), 0o755, 0)
	shared := mkdirs(filepath.Join(root, "shared"), 0o777, 0)
	sticky := mkdirs(filepath.Join(root, "tmp"), 0o777|fs.ModeSticky, 0)
	foreignGroup := mkdirs(filepath.Join(root, "group"), 0o775, 0)
	safefstest.Give(t, foreignGroup, 0, safefstest.Nobody)
	trusted := mkdirs(filepath.Join(root, "srv"), 0o755, 0)

	for _, c := range []struct {
		link string
		uid  int
		want string // "" follows
	}{
		{filepath.Join(home, "credentials"), safefstest.Nobody, "is a symbolic link owned by uid 65534; refusing to follow it, even with follow_symlinks"},
		{filepath.Join(home, "root-link"), 0, home + " is owned by uid 65534"},
		{filepath.Join(inHome, "link"), 0, home + " is owned by uid 65534"},
		{filepath.Join(shared, "link"), 0, shared + " is writable by other users"},
		{filepath.Join(foreignGroup, "link"), 0, foreignGroup + " is writable by group 65534"},
		{filepath.Join(sticky, "nobody-link"), safefstest.Nobody, "owned by uid 65534"},
		{filepath.Join(sticky, "root-link"), 0, ""},
		{filepath.Join(trusted, "link"), 0, ""},
	} {
		safefstest.Symlink(t, target, c.link, c.uid, c.uid)
		got, err := Resolve(c.link)
		if c.want == "" {
			if err != nil || got != target {
				t.Errorf("Resolve(%s) = %q, %v; want %s", c.link, got, err, target)
			}
			continue
		}
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "point the path at the file the link names instead") {
			t.Errorf("Resolve(%s) = %q, %v; want a refusal saying %q", c.link, got, err, c.want)
		}
		// Walking the path without follow_symlinks names the same reason and does not suggest it
		// (allow_shared_directory accepts the shared directories as directories, never the links in them).
		_, err = OpenDir(filepath.Join(c.link, "x"), Rules{Owner: NewID(safefstest.Nobody), AllowSharedDirectory: true}, false)
		if !errors.Is(err, ErrRefused) || strings.Contains(err.Error(), "set follow_symlinks") || !strings.Contains(err.Error(), "follow_symlinks would not follow it either") {
			t.Errorf("OpenDir(%s/x) = %v; want a refusal that does not suggest follow_symlinks", c.link, err)
		}
	}
	// A link it would follow is refused without follow_symlinks, suggesting it.
	_, err := OpenDir(filepath.Join(trusted, "link", "x"), Rules{}, false)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "set follow_symlinks = true if the link is intended") {
		t.Errorf("OpenDir through a trusted link = %v", err)
	}
}

// TestSecurityProbeWriteHoldsTheOwnerRulesOfAWrite: check --config's probe of a file for another user
// applies the rules a write does: in a root directory (not theirs) it is refused, as Put is, and nothing
// of theirs is created there even for a moment; in a directory of theirs it passes. Before, the probe
// created a temporary file owned by the user in root's directory and reported that the write would work.
func TestSecurityProbeWriteHoldsTheOwnerRulesOfAWrite(t *testing.T) {
	safefstest.NeedRoot(t, "gives files to uid 65534")
	root := t.TempDir()
	rules := Rules{Owner: NewID(safefstest.Nobody)}
	if what, err := ProbeWrite(filepath.Join(root, "credentials"), rules, ".lock"); err == nil || !strings.Contains(err.Error(), "a directory of theirs") {
		t.Fatalf("probe in root's directory for uid %d = %q, %v; want the refusal a write gives", safefstest.Nobody, what, err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("the probe left %v in root's directory", entries)
	}
	theirs := filepath.Join(root, "home")
	if err := os.Mkdir(theirs, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(theirs, safefstest.Nobody, safefstest.Nobody); err != nil {
		t.Fatal(err)
	}
	if _, err := ProbeWrite(filepath.Join(theirs, "credentials"), rules, ".lock"); err != nil {
		t.Fatalf("probe in the user's own directory: %v", err)
	}
}
