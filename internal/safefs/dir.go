package safefs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Dir is an open directory reached without following symbolic links, every component checked against
// the rules. Its methods work relative to its descriptor. Close it when done.
type Dir struct {
	fd    int
	path  string
	rules Rules
	st    unix.Stat_t // the directory, as checked
	// chain is why someone other than root and the process's user can change this directory or one
	// above it ("" when no one can): a symbolic link found here would not be followed either.
	chain string
}

// beforeRename, when set (tests), sees each temporary file right before it is renamed into place.
var beforeRename func(tmp *os.File)

// OpenDir opens the directory path (absolute), walking it from "/" without following symbolic links,
// and checks every component against r. With create, missing directories are created: DirMode, owned by
// r.Owner and r.Group when set, except that for an Owner other than the process's user only the last
// directory, and directories inside one the owner owns, are created for them; the missing directories
// above (a shared parent such as /run/spiffe-aws-bridge) are created for the process's user, mode 0755, so
// that one user's file never decides who may use the others'. With r.FollowSymlinks the path is resolved
// first (Resolve: only links no one else could have made are followed).
func OpenDir(path string, r Rules, create bool) (*Dir, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("%q is not an absolute path", path)
	}
	path = filepath.Clean(path)
	if r.FollowSymlinks {
		p, err := Resolve(path)
		if err != nil {
			return nil, err
		}
		path = p
	}
	fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: "/", Err: err}
	}
	st, err := r.checkDir(fd, "/")
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	w := walk{chain: chainStep("", "/", &st), parent: st}
	cur := "/"
	if path != "/" {
		parts := strings.Split(path[1:], "/")
		for i, c := range parts {
			next := filepath.Join(cur, c)
			nfd, err := r.openDirAt(fd, c, next, create, i == len(parts)-1, &w)
			unix.Close(fd)
			if err != nil {
				return nil, err
			}
			fd, cur = nfd, next
		}
	}
	return &Dir{fd: fd, path: path, rules: r, st: w.parent, chain: w.chain}, nil
}

// walk is what OpenDir knows of the directories it passed: the last one's status, and why someone other
// than root and the process's user can change one of them ("" when no one can).
type walk struct {
	parent unix.Stat_t
	chain  string
}

// chainStep is the chain after passing the directory full (status st): the first reason found stays.
func chainStep(chain, full string, st *unix.Stat_t) string {
	if chain != "" {
		return chain
	}
	if why := othersCanChange(st); why != "" {
		return full + " " + why
	}
	return ""
}

// foreignOwner reports whether files go to a configured owner other than the process's user (root
// writing for someone else).
func (r Rules) foreignOwner() bool { return r.Owner.IsSet() && r.Owner.Int() != os.Geteuid() }

// openDirAt opens the directory name in parent (full is its path, for messages), creating it when
// missing and create is set, and checks it; w is updated with it. Only the last component needs a
// descriptor that can read and sync; the others may be opened with only search permission (O_PATH,
// where the system has it).
func (r Rules) openDirAt(parent int, name, full string, create, last bool, w *walk) (int, error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	for range 3 {
		fd, err := unix.Openat(parent, name, flags, 0)
		if errors.Is(err, unix.EACCES) && !last && oPath != 0 {
			fd, err = unix.Openat(parent, name, oPath|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		switch {
		case err == nil:
			st, err := r.checkDir(fd, full)
			if err != nil {
				unix.Close(fd)
				return -1, err
			}
			w.parent, w.chain = st, chainStep(w.chain, full, &st)
			return fd, nil
		case errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR):
			return -1, r.notFollowed(parent, name, full, "open", err, w.chain)
		case errors.Is(err, unix.ENOENT) && create:
			// For another user, only their own directory (the last, or one inside theirs) is theirs.
			forOwner := !r.foreignOwner() || last || int(w.parent.Uid) == r.Owner.Int()
			mode := r.DirMode()
			if !forOwner {
				mode = 0o755
			}
			err := unix.Mkdirat(parent, name, uint32(mode))
			if errors.Is(err, unix.EEXIST) {
				continue // created meanwhile: open and check it
			}
			if err != nil {
				return -1, &fs.PathError{Op: "mkdir", Path: full, Err: err}
			}
			fd, err := r.adoptDir(parent, name, full, forOwner, mode, w.chain)
			if err != nil {
				return -1, err
			}
			var st unix.Stat_t
			if err := unix.Fstat(fd, &st); err != nil {
				unix.Close(fd)
				return -1, &fs.PathError{Op: "stat", Path: full, Err: err}
			}
			w.parent, w.chain = st, chainStep(w.chain, full, &st)
			return fd, nil
		default:
			return -1, &fs.PathError{Op: "open", Path: full, Err: err}
		}
	}
	return -1, &fs.PathError{Op: "open", Path: full, Err: unix.EAGAIN}
}

// adoptDir opens a directory this process just created and gives it mode and, when forOwner, the rules'
// owner and group.
func (r Rules) adoptDir(parent int, name, full string, forOwner bool, mode fs.FileMode, chain string) (int, error) {
	fd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, r.notFollowed(parent, name, full, "open", err, chain)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, &fs.PathError{Op: "stat", Path: full, Err: err}
	}
	if int(st.Uid) != os.Geteuid() { // replaced between mkdir and open: not ours
		unix.Close(fd)
		return -1, refused("%s was replaced by a directory owned by uid %d while it was being created; refusing to use it", full, st.Uid)
	}
	if forOwner {
		if err := r.chown(fd, st); err != nil {
			unix.Close(fd)
			return -1, &fs.PathError{Op: "chown", Path: full, Err: err}
		}
	}
	if err := unix.Fchmod(fd, uint32(mode)); err != nil {
		unix.Close(fd)
		return -1, &fs.PathError{Op: "chmod", Path: full, Err: err}
	}
	return fd, nil
}

// chown gives fd the rules' owner and group where they are set and differ from st's.
func (r Rules) chown(fd int, st unix.Stat_t) error {
	uid, gid := -1, -1
	if r.Owner.IsSet() && uint32(r.Owner.Int()) != st.Uid {
		uid = r.Owner.Int()
	}
	if r.Group.IsSet() && uint32(r.Group.Int()) != st.Gid {
		gid = r.Group.Int()
	}
	if uid == -1 && gid == -1 {
		return nil
	}
	return unix.Fchown(fd, uid, gid)
}

// notFollowed explains an ELOOP or ENOTDIR from opening name in parent with O_NOFOLLOW: a symbolic link
// is refused; anything else is the system's error. chain is why someone else can change parent or a
// directory above it: the message suggests follow_symlinks only for a link it would follow.
func (r Rules) notFollowed(parent int, name, full, op string, err error, chain string) error {
	var st unix.Stat_t
	if unix.Fstatat(parent, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return &fs.PathError{Op: op, Path: full, Err: err}
	}
	switch {
	case r.FollowSymlinks:
		// Resolved, then swapped for a link during the walk.
		return refused("%s is a symbolic link that appeared while the path was being opened; refusing to follow it", full)
	case !trustedLinkOwner(st.Uid):
		return refused("%s is a symbolic link owned by uid %d; refusing to follow it (follow_symlinks would not follow it either: %s)", full, st.Uid, linkRule())
	case chain != "":
		return refused("%s is a symbolic link in a directory someone else can change (%s); refusing to follow it (follow_symlinks would not follow it either: %s)", full, chain, linkRule())
	}
	return refused("%s is a symbolic link; refusing to follow it (set follow_symlinks = true if the link is intended)", full)
}

// trustedUser reports whether uid may own a component: root, the process's user or the configured owner.
func (r Rules) trustedUser(uid uint32) bool {
	return uid == 0 || int(uid) == os.Geteuid() || (r.Owner.IsSet() && int(uid) == r.Owner.Int())
}

// trustedGroup reports whether members of gid may write a component.
func (r Rules) trustedGroup(gid uint32) bool {
	return gid == 0 || int(gid) == os.Getegid() || (r.Group.IsSet() && int(gid) == r.Group.Int())
}

// whoUsers and whoGroups say who is accepted, for messages.
func (r Rules) whoUsers() string {
	s := fmt.Sprintf("root, the bridge's user (uid %d)", os.Geteuid())
	if r.Owner.IsSet() {
		s += fmt.Sprintf(" or the configured owner (uid %s)", r.Owner)
	} else {
		s += " or a configured owner"
	}
	return s
}

func (r Rules) whoGroups() string {
	s := fmt.Sprintf("root's, the bridge's (gid %d)", os.Getegid())
	if r.Group.IsSet() {
		s += fmt.Sprintf(" or the configured group (gid %s)", r.Group)
	} else {
		s += " or a configured group"
	}
	return s
}

// checkOwner applies the owner rule to a component.
func (r Rules) checkOwner(st *unix.Stat_t, path string) error {
	if !r.trustedUser(st.Uid) {
		return refused("%s is owned by uid %d; refusing to use it: only %s are accepted", path, st.Uid, r.whoUsers())
	}
	return nil
}

// checkDir applies the rules to the directory open as fd and returns its status.
func (r Rules) checkDir(fd int, path string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return st, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if err := r.checkOwner(&st, path); err != nil {
		return st, err
	}
	if r.AllowSharedDirectory {
		return st, nil
	}
	mode := uint32(st.Mode)
	if st.Uid == 0 && mode&unix.S_ISVTX != 0 {
		return st, nil // like /tmp: others cannot remove or rename what they do not own
	}
	if mode&unix.S_IWOTH != 0 {
		return st, refused("%s is writable by other users (mode %s); refusing to use it: only a root-owned directory with the sticky bit (like /tmp) may be, or set allow_shared_directory = true if every user who can write there is trusted",
			path, ModeOf(st))
	}
	if mode&unix.S_IWGRP != 0 && !r.trustedGroup(st.Gid) {
		return st, refused("%s is writable by its group (gid %d, mode %s); refusing to use it: only %s group may write it, or set allow_shared_directory = true if every member is trusted",
			path, st.Gid, ModeOf(st), r.whoGroups())
	}
	return st, nil
}

// checkFile applies the rules to an existing file.
func (r Rules) checkFile(st *unix.Stat_t, path string) error {
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return refused("%s is not a regular file (%s)", path, ModeOf(*st).Type())
	}
	if err := r.checkOwner(st, path); err != nil {
		return err
	}
	mode := uint32(st.Mode)
	if mode&unix.S_IWOTH != 0 {
		return refused("%s is writable by other users (mode %s); refusing to use it", path, ModeOf(*st))
	}
	if mode&unix.S_IWGRP != 0 && !r.trustedGroup(st.Gid) {
		return refused("%s is writable by its group (gid %d, mode %s); refusing to use it: only %s group may write it",
			path, st.Gid, ModeOf(*st), r.whoGroups())
	}
	if st.Nlink > 1 {
		return refused("%s has %d hard links; refusing to use it (another name may make it someone else's file)", path, st.Nlink)
	}
	return nil
}

// ModeOf is st's mode as fs.FileMode, which prints it as ls does (drwxrwxrwt, -rw-r--r--).
func ModeOf(st unix.Stat_t) fs.FileMode {
	m := fs.FileMode(st.Mode & 0o777)
	switch uint32(st.Mode) & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	}
	if st.Mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	if st.Mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if st.Mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	return m
}

// Path is the directory's path (resolved, with Rules.FollowSymlinks).
func (d *Dir) Path() string { return d.path }

// Join is the path of name in d.
func (d *Dir) Join(name string) string { return filepath.Join(d.path, name) }

// Close closes the directory.
func (d *Dir) Close() error {
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// Sync makes the directory's entries (a rename) durable. Some file systems cannot sync a directory.
func (d *Dir) Sync() error {
	if err := unix.Fsync(d.fd); err != nil {
		return &fs.PathError{Op: "sync", Path: d.path, Err: err}
	}
	return nil
}

// FileInfo is what the rules need to know of an open file, and its identity for change detection.
type FileInfo struct {
	// UID and GID are the file's owner and group.
	UID, GID uint32
	// Mode is the file's permission bits.
	Mode fs.FileMode
	// Key identifies this version of the file: it changes when the file is replaced or written.
	Key FileKey
}

// FileKey identifies a version of a file: device, inode, size, and modification and change times (ns).
// Two opens of an unchanged file give equal keys; replacing or writing the file changes the key.
type FileKey struct {
	Dev, Ino     uint64
	Size         int64
	Mtime, Ctime int64
}

func keyOf(st *unix.Stat_t) FileKey {
	return FileKey{
		Dev: uint64(st.Dev), Ino: uint64(st.Ino), Size: st.Size,
		Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(),
	}
}

func infoOf(st *unix.Stat_t) *FileInfo {
	return &FileInfo{UID: st.Uid, GID: st.Gid, Mode: fs.FileMode(st.Mode & 0o777), Key: keyOf(st)}
}

// OpenFile opens the existing file name in d for reading, without following a symbolic link, and checks
// it against the rules. A missing file is an error wrapping fs.ErrNotExist.
func (d *Dir) OpenFile(name string) (*os.File, *FileInfo, error) {
	if err := checkName(name); err != nil {
		return nil, nil, err
	}
	full := d.Join(name)
	// O_NONBLOCK: opening a FIFO must not block; the type is checked right after.
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, nil, d.rules.notFollowed(d.fd, name, full, "open", err, d.chain)
		}
		return nil, nil, &fs.PathError{Op: "open", Path: full, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, nil, &fs.PathError{Op: "stat", Path: full, Err: err}
	}
	if err := d.rules.checkFile(&st, full); err != nil {
		unix.Close(fd)
		return nil, nil, err
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, nil, &fs.PathError{Op: "open", Path: full, Err: err}
	}
	return os.NewFile(uintptr(fd), full), infoOf(&st), nil
}

// Stat returns the identity and rules-relevant status of name in d, without following a symbolic link
// and without checking it. A missing file is an error wrapping fs.ErrNotExist.
func (d *Dir) Stat(name string) (*FileInfo, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: d.Join(name), Err: err}
	}
	return infoOf(&st), nil
}

// OpenNoFollow opens name in d for reading without following a symbolic link (an error wrapping
// unix.ELOOP) and without blocking on a FIFO, and checks nothing else: for callers with rules of their
// own (a pid file), who fstat the file themselves.
func (d *Dir) OpenNoFollow(name string) (*os.File, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: d.Join(name), Err: err}
	}
	return os.NewFile(uintptr(fd), d.Join(name)), nil
}

// ReadFile returns the contents of the existing file name in d (see OpenFile), at most limit bytes
// (0: no limit; a longer file is an error).
func (d *Dir) ReadFile(name string, limit int64) ([]byte, *FileInfo, error) {
	f, info, err := d.OpenFile(name)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if limit > 0 {
		r = io.LimitReader(f, limit+1)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, err
	}
	if limit > 0 && int64(len(data)) > limit {
		return nil, nil, fmt.Errorf("%s is longer than %d bytes", f.Name(), limit)
	}
	return data, info, nil
}

// OpenOrCreate opens the file name in d for reading (see OpenFile), creating it empty — exclusively,
// with the rules' owner, group and mode — when it does not exist. It is meant for lock files.
func (d *Dir) OpenOrCreate(name string) (*os.File, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	for range 3 {
		f, _, err := d.OpenFile(name)
		if !errors.Is(err, fs.ErrNotExist) {
			return f, err
		}
		fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if errors.Is(err, unix.EEXIST) {
			continue // created meanwhile (or a link appeared): open and check it
		}
		if err != nil {
			return nil, &fs.PathError{Op: "create", Path: d.Join(name), Err: err}
		}
		f = os.NewFile(uintptr(fd), d.Join(name))
		rules := d.rules
		if d.CheckNew(name) != nil {
			rules.Owner = ID{} // never a new name of theirs in a directory that is not theirs
		}
		if err := rules.setAttrs(f, nil); err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	}
	return nil, &fs.PathError{Op: "open", Path: d.Join(name), Err: unix.EAGAIN}
}

// OthersCanCreate reports whether users other than the directory's owner and root may create names in d
// (it is writable by others: a sticky /tmp, a shared directory). There, any name not yet taken, such as a
// lock file, can be taken first by someone else.
func (d *Dir) OthersCanCreate() bool { return d.st.Mode&unix.S_IWOTH != 0 }

// CheckNew reports whether a new file name may be created in d for the rules' owner: always, unless the
// owner is another user than the process's; then only when d is the owner's, or a directory the owner
// could create the file in itself (writable by others, like /tmp). Root never creates a file owned by a
// user inside a directory that user does not own (a /etc/ld.so.preload of theirs).
func (d *Dir) CheckNew(name string) error {
	r := d.rules
	if !r.foreignOwner() || int(d.st.Uid) == r.Owner.Int() || d.OthersCanCreate() {
		return nil
	}
	return refused("refusing to create %s for the configured owner (uid %s) in %s, a directory owned by uid %d: a file is created for a user only in a directory of theirs; choose a path in one of their directories, or in a directory that does not exist yet (such as %s), which the bridge creates for them",
		d.Join(name), r.Owner, d.path, d.st.Uid, filepath.Join(d.path, "uid-"+r.Owner.String(), name))
}

// CheckReplace reports whether the existing file name in d (prev, from OpenFile) may be replaced by a file
// of the rules' owner: always, unless the owner is another user than the process's and prev belongs to
// someone else (root, the process's user): the bridge never hands a file it may not have created to
// another user.
func (d *Dir) CheckReplace(name string, prev *FileInfo) error {
	r := d.rules
	if prev == nil || !r.foreignOwner() || int(prev.UID) == r.Owner.Int() {
		return nil
	}
	return refused("%s is owned by uid %d, not by the configured owner (uid %s); refusing to hand an existing file to another user: if the file is meant to be theirs, chown %s %s, or remove it and the bridge creates it for them",
		d.Join(name), prev.UID, r.Owner, r.Owner, d.Join(name))
}

// setAttrs gives the new file f its owner, group and mode: the rules' owner and group when set, else
// prev's (an existing file being replaced), else the process's; the rules' mode.
func (r Rules) setAttrs(f *os.File, prev *FileInfo) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return &fs.PathError{Op: "stat", Path: f.Name(), Err: err}
	}
	uid, gid := r.Owner.Int(), r.Group.Int()
	if prev != nil && uid == -1 {
		uid = int(prev.UID)
	}
	if prev != nil && gid == -1 {
		gid = int(prev.GID)
	}
	if uid == int(st.Uid) {
		uid = -1
	}
	if gid == int(st.Gid) {
		gid = -1
	}
	if uid != -1 || gid != -1 {
		if err := f.Chown(uid, gid); err != nil {
			return err
		}
	}
	return f.Chmod(r.FileMode())
}

// IsTempName reports whether name is one of the temporary files WriteFile and CreateFile use for base:
// exactly "." + base + ".tmp" + a number in decimal (no sign, no leading zero). The ".tmp" separator makes
// the name say which file it is for: ".creds2.tmp7" belongs to creds2, never to creds, so a writer of one
// file never removes another file's temporary file while that file's writer is about to rename it.
func IsTempName(base, name string) bool {
	digits, ok := strings.CutPrefix(name, "."+base+tempSep)
	if !ok || digits == "" {
		return false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	return err == nil && n >= 0 && strconv.FormatInt(n, 10) == digits
}

// tempSep separates a temporary file's base name from its number.
const tempSep = ".tmp"

// TempName is the name of temporary file n for base: "." + base + ".tmp" + n in decimal.
func TempName(base string, n uint32) string {
	return "." + base + tempSep + strconv.FormatUint(uint64(n), 10)
}

// createTemp creates a new temporary file for base in d.
func (d *Dir) createTemp(base string) (string, *os.File, error) {
	for range 100 {
		name := TempName(base, rand.Uint32())
		fd, err := unix.Openat(d.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return "", nil, &fs.PathError{Op: "create", Path: d.Join(name), Err: err}
		}
		return name, os.NewFile(uintptr(fd), d.Join(name)), nil
	}
	return "", nil, &fs.PathError{Op: "create", Path: d.Join("." + base + tempSep + "*"), Err: unix.EEXIST}
}

// writeTemp writes data to a new temporary file for base with its final owner, group and mode (see
// setAttrs), synced and closed, and returns its name. On error nothing is left behind.
func (d *Dir) writeTemp(base string, data []byte, prev *FileInfo) (string, error) {
	name, f, err := d.createTemp(base)
	if err != nil {
		return "", err
	}
	fail := func(err error) (string, error) {
		f.Close()
		_ = unix.Unlinkat(d.fd, name, 0)
		return "", err
	}
	if err := d.rules.setAttrs(f, prev); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if beforeRename != nil {
		beforeRename(f)
	}
	if err := f.Close(); err != nil {
		_ = unix.Unlinkat(d.fd, name, 0)
		return "", err
	}
	return name, nil
}

// WriteFile atomically replaces (or creates) the file name in d with data: it writes a temporary file in
// d with the final owner, group and mode, syncs it, renames it over name and syncs d. prev is the file
// being replaced (from OpenFile), nil when there is none: without a configured owner or group, its owner
// and group are kept. A reader sees the old file or the new one, never a mix; on error name is untouched
// and no temporary file is left.
func (d *Dir) WriteFile(name string, data []byte, prev *FileInfo) error {
	if err := checkName(name); err != nil {
		return err
	}
	if prev == nil {
		if err := d.CheckNew(name); err != nil {
			return err
		}
	} else if err := d.CheckReplace(name, prev); err != nil {
		return err
	}
	tmp, err := d.writeTemp(name, data, prev)
	if err != nil {
		return err
	}
	if err := unix.Renameat(d.fd, tmp, d.fd, name); err != nil {
		_ = unix.Unlinkat(d.fd, tmp, 0)
		return &fs.PathError{Op: "rename", Path: d.Join(name), Err: err}
	}
	_ = d.Sync()
	return nil
}

// CreateFile creates the file name in d holding data, atomically and only if it does not exist (an error
// wrapping fs.ErrExist otherwise): a temporary file with the rules' owner, group and mode, synced, then
// hard-linked to name, so that a reader never sees it empty.
func (d *Dir) CreateFile(name string, data []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := d.CheckNew(name); err != nil {
		return err
	}
	tmp, err := d.writeTemp(name, data, nil)
	if err != nil {
		return err
	}
	err = unix.Linkat(d.fd, tmp, d.fd, name, 0)
	_ = unix.Unlinkat(d.fd, tmp, 0)
	if err != nil {
		return &fs.PathError{Op: "create", Path: d.Join(name), Err: err}
	}
	_ = d.Sync()
	return nil
}

// RemoveTemps deletes the temporary files (see TempName) for base that a killed writer left in d and
// returns their paths: regular files with exactly that name, owned by the process's user or the rules'
// owner (a writer gives its temporary file the owner before the rename). Anyone else's file of that name
// is left alone: in a shared directory such as /tmp it is theirs. Call it only while no other writer of
// base can be between creating and renaming its temporary file (under the caller's lock).
func (d *Dir) RemoveTemps(base string) []string {
	fd, err := unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	f := os.NewFile(uintptr(fd), d.path)
	names, _ := f.Readdirnames(-1)
	f.Close()
	var removed []string
	for _, n := range names {
		if !IsTempName(base, n) {
			continue
		}
		var st unix.Stat_t
		if unix.Fstatat(d.fd, n, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			continue
		}
		if int(st.Uid) != os.Geteuid() && (!d.rules.Owner.IsSet() || int(st.Uid) != d.rules.Owner.Int()) {
			continue
		}
		if unix.Unlinkat(d.fd, n, 0) == nil {
			removed = append(removed, d.Join(n))
		}
	}
	return removed
}

// checkName refuses names that are not a single path component.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return fmt.Errorf("%q is not a file name", name)
	}
	return nil
}
