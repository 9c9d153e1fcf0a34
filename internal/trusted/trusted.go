// Package trusted reads the files a privileged bridge acts on — its own config file, the key and
// certificate files of the one-shot commands, the programs its hooks run — only when no one but root or
// the bridge's own user could have written them.
//
// A bridge running as root runs on_refresh commands, signals processes and gives files away. Whoever can
// write its config (or a directory above it) can make it do any of that, so a root bridge holds what it
// trusts to the rule sshd's StrictModes and sudo apply to authorized_keys and sudoers:
//
//   - the file and every directory on its path, from "/", is owned by root or the bridge's user;
//   - none is writable by other users, and none is writable by its group unless that group is root's (gid
//     0) or the bridge's own;
//   - the file is a regular file;
//   - a symbolic link on the way is followed only when it is owned by root or the bridge's user (it already
//     sits in a checked directory: the kernel's protected_symlinks rule), and the rules then apply to where
//     it leads.
//
// One exception, where this package is more lenient than sshd (which refuses any group- or
// world-writable directory) and as lenient as the kernel: a directory writable by others is accepted
// when it has the sticky bit and is owned by root or the bridge's user, like /tmp. The sticky bit lets
// nobody but an entry's owner rename or remove it, so a root-owned file (or directory) there cannot be
// replaced by another user; what another user creates there is owned by them and refused. Tests and
// `dev` keep their configs in such directories (t.TempDir() and os.MkdirTemp under /tmp).
//
// Every refusal is an *Error naming the file, the component at fault, its owner and mode, and the
// chown/chmod that fixes it. ReadFile applies the rules only when the process runs as root; see its
// documentation for why.
package trusted

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs"
)

// ErrUntrusted is wrapped by every refusal (an *Error).
var ErrUntrusted = errors.New("trusted: refused")

// Error is a file refused because someone other than root or the bridge's user could have written it.
type Error struct {
	// What names the file's role, e.g. "config file".
	What string
	// File is the file asked for.
	File string
	// Path is the component at fault: File itself, a directory above it, or a symbolic link on the way.
	Path string
	// UID, GID and Mode are Path's owner, group and mode (as ls shows it).
	UID, GID uint32
	Mode     fs.FileMode
	// Reason says what is wrong with Path ("is writable by other users", "directory /etc/x is owned by
	// uid 1000").
	Reason string
	// Fix is the command that fixes it.
	Fix string
}

// Error implements error.
func (e *Error) Error() string {
	sep := ": "
	if strings.HasPrefix(e.Reason, "is ") {
		sep = " "
	}
	return fmt.Sprintf("%s %s%s%s (owner %s, group %s, mode %s): a bridge running as root uses only files that no one "+
		"but root or its own user can have written (as sshd's StrictModes); fix: %s",
		e.What, e.File, sep, e.Reason, userName(e.UID), groupName(e.GID), e.Mode, e.Fix)
}

// Is makes errors.Is(err, ErrUntrusted) true.
func (e *Error) Is(target error) bool { return target == ErrUntrusted }

// Process is the identity files are trusted for: root and this user may own them, members of root's
// group and of this group may write them.
type Process struct {
	// UID and GID are the process's effective user and group ids.
	UID, GID int
}

// Self is the running process's effective identity.
func Self() Process { return Process{UID: os.Geteuid(), GID: os.Getegid()} }

// Options configure ReadFile.
type Options struct {
	// What names the file in errors, e.g. "config file" or "private key file"; default "file".
	What string
	// MaxSize bounds what is read; 0 means no limit. A larger file is an error.
	MaxSize int64
}

// ReadFile reads the file at path. When the process runs as root the file and the directories above it
// must pass Check first, and the file is then read through a descriptor opened without following a
// symbolic link, so that what was checked is what is read.
//
// A process that does not run as root reads the file as it always did (os.ReadFile): it cannot be made to
// do anything its own user could not do anyway, and unprivileged bridges commonly read configs that
// another account manages (a Kubernetes ConfigMap, a CI checkout). Checking them would refuse those setups
// without protecting anyone.
func ReadFile(path string, opts Options) ([]byte, error) {
	p := Self()
	if p.UID != 0 {
		return readAll(path, opts)
	}
	return ReadChecked(path, p, opts)
}

// ReadChecked is ReadFile with the rules applied for p whatever the process's own identity.
func ReadChecked(path string, p Process, opts Options) ([]byte, error) {
	resolved, st, err := check(path, p, opts.what())
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(resolved, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), resolved)
	defer f.Close()
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if now.Dev != st.Dev || now.Ino != st.Ino {
		return nil, fmt.Errorf("%s %s was replaced while it was being checked; try again", opts.what(), path)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return readLimited(f, path, opts)
}

// Check applies the rules for p to the file at path (relative paths are taken from the working directory)
// and returns the path with every symbolic link resolved.
func Check(path string, p Process, what string) (string, error) {
	resolved, _, err := check(path, p, Options{What: what}.what())
	return resolved, err
}

func (o Options) what() string {
	if o.What == "" {
		return "file"
	}
	return o.What
}

// maxLinks bounds the symbolic links followed, as the kernel does (ELOOP after 40).
const maxLinks = 40

// check walks path from "/" with lstat, checking every directory, following trusted links, and checks
// the file. It returns the resolved path and the file's stat.
func check(path string, p Process, what string) (string, *unix.Stat_t, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	c := checker{p: p, what: what, file: path, abs: abs}
	var st unix.Stat_t
	if err := unix.Lstat("/", &st); err != nil {
		return "", nil, &fs.PathError{Op: "stat", Path: "/", Err: err}
	}
	if err := c.dir("/", &st); err != nil {
		return "", nil, err
	}
	resolved := "/"
	rest := strings.Split(abs, "/")
	links := 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			resolved = filepath.Dir(resolved)
			continue
		}
		next := filepath.Join(resolved, name)
		if err := unix.Lstat(next, &st); err != nil {
			return "", nil, &fs.PathError{Op: "open", Path: path, Err: err} // as os.ReadFile says it
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			if err := c.link(next, &st); err != nil {
				return "", nil, err
			}
			if links++; links > maxLinks {
				return "", nil, fmt.Errorf("%s %s: too many levels of symbolic links", what, path)
			}
			target, err := os.Readlink(next)
			if err != nil {
				return "", nil, fmt.Errorf("%s %s: %w", what, path, err)
			}
			if filepath.IsAbs(target) {
				resolved = "/"
			}
			rest = append(strings.Split(target, "/"), rest...)
			continue
		case unix.S_IFDIR:
			if err := c.dir(next, &st); err != nil {
				return "", nil, err
			}
		default:
			if len(rest) > 0 && !onlyDots(rest) {
				return "", nil, fmt.Errorf("%s %s: %s is not a directory", what, path, next)
			}
		}
		resolved = next
	}
	if err := unix.Lstat(resolved, &st); err != nil {
		return "", nil, &fs.PathError{Op: "stat", Path: resolved, Err: err}
	}
	if err := c.regular(resolved, &st); err != nil {
		return "", nil, err
	}
	return resolved, &st, nil
}

// onlyDots reports whether the remaining components are all empty or ".".
func onlyDots(rest []string) bool {
	for _, r := range rest {
		if r != "" && r != "." {
			return false
		}
	}
	return true
}

// checker applies the rules for one file.
type checker struct {
	p               Process
	what, file, abs string
}

func (c checker) trustedUser(uid uint32) bool  { return uid == 0 || int(uid) == c.p.UID }
func (c checker) trustedGroup(gid uint32) bool { return gid == 0 || int(gid) == c.p.GID }

// refuse builds the *Error for path with st.
func (c checker) refuse(path string, st *unix.Stat_t, reason, fix string) error {
	return &Error{What: c.what, File: c.file, Path: path, UID: st.Uid, GID: st.Gid, Mode: safefs.ModeOf(*st), Reason: reason, Fix: fix}
}

// owner is the chown argument that gives a component to the trusted owner: root, or the bridge's user.
func (c checker) owner() string {
	if c.p.UID == 0 {
		return "root"
	}
	return userName(uint32(c.p.UID))
}

// writers checks the owner and who may write a file or directory; kind prefixes the reason ("" for the
// file, "directory /x" for a directory above it); sticky says whether a sticky, world-writable directory
// is acceptable.
func (c checker) writers(path string, st *unix.Stat_t, kind string, sticky bool) error {
	mode := uint32(st.Mode)
	var fixes, reasons []string
	if !c.trustedUser(st.Uid) {
		reasons = append(reasons, "is owned by "+userName(st.Uid))
		fixes = append(fixes, fmt.Sprintf("chown %s %s", c.owner(), path))
	}
	if mode&unix.S_IWOTH != 0 && !(sticky && mode&unix.S_ISVTX != 0 && c.trustedUser(st.Uid)) {
		reasons = append(reasons, "is writable by other users")
		fixes = append(fixes, "chmod o-w "+path)
	}
	if mode&unix.S_IWGRP != 0 && !c.trustedGroup(st.Gid) {
		reasons = append(reasons, "is writable by its group "+groupName(st.Gid))
		fixes = append(fixes, "chmod g-w "+path)
	}
	if len(reasons) == 0 {
		return nil
	}
	return c.refuse(path, st, strings.TrimSpace(kind+" "+strings.Join(reasons, " and ")), strings.Join(fixes, " && "))
}

// dir applies the rules to a directory on the path.
func (c checker) dir(path string, st *unix.Stat_t) error {
	return c.writers(path, st, "directory "+path, true)
}

// link applies the rules to a symbolic link on the path: it is followed only when root or the bridge's
// user made it (the directory it is in was checked already).
func (c checker) link(path string, st *unix.Stat_t) error {
	if c.trustedUser(st.Uid) {
		return nil
	}
	return c.refuse(path, st, "symbolic link "+path+" is owned by "+userName(st.Uid)+" and is not followed",
		fmt.Sprintf("rm %s, and re-create it as %s if it is intended", path, c.owner()))
}

// regular applies the rules to the file itself.
func (c checker) regular(path string, st *unix.Stat_t) error {
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return c.refuse(path, st, strings.TrimPrefix(path+" ", c.abs+" ")+"is not a regular file", "point the path at a regular file owned by "+c.owner())
	}
	kind := ""
	if path != c.abs {
		kind = "file " + path // reached through a symbolic link
	}
	return c.writers(path, st, kind, false)
}

// userName is "uid N (name)", or "uid N" when the user database does not know it.
func userName(uid uint32) string {
	s := "uid " + strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		s += " (" + u.Username + ")"
	}
	return s
}

// groupName is "gid N (name)", or "gid N".
func groupName(gid uint32) string {
	s := "gid " + strconv.FormatUint(uint64(gid), 10)
	if g, err := user.LookupGroupId(strconv.FormatUint(uint64(gid), 10)); err == nil {
		s += " (" + g.Name + ")"
	}
	return s
}

func readAll(path string, opts Options) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f, path, opts)
}

func readLimited(f *os.File, path string, opts Options) ([]byte, error) {
	var r io.Reader = f
	if opts.MaxSize > 0 {
		r = io.LimitReader(f, opts.MaxSize+1)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	if opts.MaxSize > 0 && int64(len(data)) > opts.MaxSize {
		return nil, fmt.Errorf("%s %s is larger than %d bytes", opts.what(), path, opts.MaxSize)
	}
	return data, nil
}
