// Package safefs opens and creates the files a possibly privileged process writes for others — the
// credentials file, its lock, the container endpoint's token — without following a symbolic link it did
// not create and without handing a file to the wrong user.
//
// # The walk
//
// OpenDir walks a directory path from "/" one component at a time with openat(2) and
// O_NOFOLLOW|O_DIRECTORY, relative to the directory opened before, and checks each directory it opened
// with fstat(2) on that descriptor. Everything after that (reading, creating, renaming, locking) is
// relative to the final directory's descriptor, so an attacker who swaps a component for a symbolic link
// after the check gains nothing: the walk never looks a name up twice.
//
// # The rules
//
// For every component that exists already (each directory on the path, the file, its lock):
//
//   - It is not a symbolic link (ErrRefused naming the component), unless Rules.FollowSymlinks: then the
//     path is resolved first (Resolve) and the rules apply to the resolved path. Even then a link
//     is followed only when it is owned by root or the process's user and sits where no one else can
//     write (the directory holding it and every one above: the kernel's protected_symlinks rule, strict).
//   - Its owner is root, the process's effective user or Rules.Owner.
//   - It is not writable by others, and not writable by its group unless that group is root's, the
//     process's effective group or Rules.Group. A root-owned directory with the sticky bit (like /tmp) is
//     exempt (the exemption is for that directory, not for what is in it), and
//     Rules.AllowSharedDirectory exempts every directory (a disk-backed Kubernetes emptyDir is root-owned
//     and 0777; a memory-backed one is a tmpfs, 1777, and needs no exemption).
//   - A file is a regular file with a single hard link (another name could be someone else's file).
//
// What is created gets Rules.Owner and Rules.Group (when set) and Rules.Mode (default 0600); a directory
// gets 0700, or 0750 when the mode lets the group read. For an Owner other than the process's user (root
// writing for someone), a file is created for them only in a directory of theirs, or one they could write
// anyway (Dir.CheckNew); an existing file is replaced only when it is already theirs (Dir.CheckReplace);
// and a missing directory is created for them only when it is the file's own directory or inside one of
// theirs; the ones above are the process's, mode 0755. Ownership and mode are set with fchown(2) and
// fchmod(2) on the new descriptor before the name is visible (files are written to a temporary name and
// renamed), so that no reader ever sees a wrong owner or mode.
//
// The package needs a Unix-like system; the descriptor-relative calls come from golang.org/x/sys/unix.
package safefs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultMode is the mode of files created when Rules.Mode is zero.
const DefaultMode fs.FileMode = 0o600

// AllowedModes are the file modes a configuration may ask for: the owner reads and writes, the group may
// read or read and write, others get nothing and nobody executes.
var AllowedModes = []fs.FileMode{0o600, 0o640, 0o660}

// ErrRefused is wrapped by every error about a path the rules refuse: a symbolic link, an untrusted owner,
// a directory or file others can write, a file that is not a regular file.
var ErrRefused = errors.New("safefs: refused")

// refusedError is a refusal; its text names the path and the reason.
type refusedError struct{ msg string }

func (e *refusedError) Error() string        { return e.msg }
func (e *refusedError) Is(target error) bool { return target == ErrRefused }

func refused(format string, args ...any) error {
	return &refusedError{msg: fmt.Sprintf(format, args...)}
}

// ID is a user or group id given to the files a process creates. The zero value means "not configured".
type ID struct {
	n   uint32
	set bool
}

// NewID returns the configured id n.
func NewID(n uint32) ID { return ID{n: n, set: true} }

// IsSet reports whether the id is configured.
func (i ID) IsSet() bool { return i.set }

// Int is the id as the chown(2) family takes it: -1 when not configured.
func (i ID) Int() int {
	if !i.set {
		return -1
	}
	return int(i.n)
}

// String is the decimal id, or "unset".
func (i ID) String() string {
	if !i.set {
		return "unset"
	}
	return strconv.FormatUint(uint64(i.n), 10)
}

// Rules are what a caller trusts and what it gives to the files and directories it creates.
type Rules struct {
	// Owner is trusted as the owner of existing components and owns what is created; unset: new files and
	// directories belong to the process's user, an existing file's owner is kept.
	Owner ID
	// Group is trusted as the group of group-writable components and is the group of what is created;
	// unset: the system's default group, an existing file's group is kept.
	Group ID
	// Mode is the permission of files created or replaced (one of AllowedModes); zero means DefaultMode.
	Mode fs.FileMode
	// FollowSymlinks resolves symbolic links in the path before the walk instead of refusing them, those
	// that no one but root and the process's user could have made (see Resolve).
	FollowSymlinks bool
	// AllowSharedDirectory accepts directories others (or an untrusted group) can write, for a directory
	// whose every writer is trusted (a disk-backed Kubernetes emptyDir). Symbolic links and owners are still checked,
	// and files others can write are still refused.
	AllowSharedDirectory bool
}

// mode is r.Mode with its default.
func (r Rules) mode() fs.FileMode {
	if r.Mode == 0 {
		return DefaultMode
	}
	return r.Mode
}

// DirMode is the mode of directories created under r: 0700, or 0750 when the file mode lets the group
// read.
func (r Rules) DirMode() fs.FileMode {
	if r.mode()&0o040 != 0 {
		return 0o750
	}
	return 0o700
}

// FileMode is the mode of files created or replaced under r: Mode, or DefaultMode.
func (r Rules) FileMode() fs.FileMode { return r.mode() }

// Check reports whether the process can give files to the rules' owner and group: only root can give a
// file to another user (or to a group it is not a member of), and it is better to say so at start than at
// the first write.
func (r Rules) Check() error {
	groups, _ := os.Getgroups()
	return r.check(os.Geteuid(), os.Getegid(), groups)
}

// check is Check for a process with effective ids euid and egid and supplementary groups.
func (r Rules) check(euid, egid int, groups []int) error {
	if r.Mode != 0 {
		if err := ValidateMode(r.Mode); err != nil {
			return fmt.Errorf("mode %04o %w", uint32(r.Mode), err)
		}
	}
	if euid == 0 {
		return nil
	}
	if r.Owner.IsSet() && r.Owner.Int() != euid {
		return fmt.Errorf("owner uid %s is not the bridge's user (uid %d): the bridge must run as root to give files to another user",
			r.Owner, euid)
	}
	if r.Group.IsSet() && r.Group.Int() != egid && !slices.Contains(groups, r.Group.Int()) {
		return fmt.Errorf("group gid %s is not one of the bridge's groups (gid %d): the bridge must run as root to give files to another group",
			r.Group, egid)
	}
	return nil
}

// ParseMode parses an octal mode such as "0600" or "640" and checks it with ValidateMode.
func ParseMode(s string) (fs.FileMode, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0")
	n, err := strconv.ParseUint(t, 8, 32)
	if err != nil || t == "" || len(s) > 5 {
		return 0, fmt.Errorf("%q is not an octal file mode such as \"0600\"", s)
	}
	m := fs.FileMode(n)
	if err := ValidateMode(m); err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	return m, nil
}

// ValidateMode reports whether m is one of AllowedModes.
func ValidateMode(m fs.FileMode) error {
	for _, a := range AllowedModes {
		if m == a {
			return nil
		}
	}
	return errors.New("must be 0600, 0640 or 0660: a file holding a secret has no execute bits and no permission for others")
}

// nameRE is the form of a user or group name (POSIX portable names, as useradd accepts them).
var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$`)

// ValidateName reports whether s has the form of a user or group name or a numeric id (0 to 4294967294).
// It does not look the name up.
func ValidateName(s string) error {
	if isNumeric(s) {
		if _, err := parseID(s); err != nil {
			return err
		}
		return nil
	}
	if !nameRE.MatchString(s) {
		return errors.New("is not a user or group name or a numeric id")
	}
	return nil
}

func isNumeric(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseID parses a numeric id; 4294967295 is (uid_t)-1, "no change", and not an id.
func parseID(s string) (ID, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 1<<32-1 {
		return ID{}, errors.New("is out of range for an id (0 to 4294967294)")
	}
	return NewID(uint32(n)), nil
}

// LookupOwner resolves a user name or numeric id (which need not exist in the user database: containers
// often run with ids that do not). "" is an unset ID.
func LookupOwner(name string) (ID, error) {
	if name == "" {
		return ID{}, nil
	}
	if isNumeric(name) {
		return parseID(name)
	}
	u, err := user.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return ID{}, errors.New("no such user")
		}
		return ID{}, err
	}
	return parseID(u.Uid)
}

// LookupGroup resolves a group name or numeric id, like LookupOwner.
func LookupGroup(name string) (ID, error) {
	if name == "" {
		return ID{}, nil
	}
	if isNumeric(name) {
		return parseID(name)
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		var unknown user.UnknownGroupError
		if errors.As(err, &unknown) {
			return ID{}, errors.New("no such group")
		}
		return ID{}, err
	}
	return parseID(g.Gid)
}

// Resolve returns path with every symbolic link in it resolved, a dangling last link included: the
// name a file would be created under. Components that do not exist are kept as they are.
//
// A link is followed only when no one but root and the process's user could have made it or can replace
// it (the rule of the kernel's protected_symlinks, made strict): the link is owned by root or the
// process's effective user, and every directory from "/" down to the one holding it is owned by root or
// that user and writable by no one else (a root-owned directory with the sticky bit, like /tmp, counts:
// others cannot remove or rename a link they do not own). Any other link is refused (ErrRefused, naming
// it, its owner or the directory that lets someone else write there). A configured Rules.Owner is not
// trusted here: a link in the owner's directory is the owner's choice of target, not the operator's.
func Resolve(path string) (string, error) {
	return resolve(path, checkLink)
}

// resolve is Resolve with the decision on each link left to check (nil: follow every link).
func resolve(path string, check func(link, dir string) error) (string, error) {
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("%q is not an absolute path", path)
	}
	resolved := "/"
	rest := strings.Split(filepath.Clean(path), "/")
	links := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			resolved = filepath.Dir(resolved)
			continue
		}
		next := filepath.Join(resolved, c)
		fi, err := os.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) {
			return filepath.Join(append([]string{next}, rest...)...), nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		if links++; links > 40 {
			return "", fmt.Errorf("%s: too many levels of symbolic links", path)
		}
		if check != nil {
			if err := check(next, resolved); err != nil {
				return "", err
			}
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(target) {
			resolved = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return resolved, nil
}

// checkLink refuses to follow the symbolic link at link, in the link-free directory dir, unless its
// owner is root or the process's user and no one else can write dir or a directory above it.
func checkLink(link, dir string) error {
	var st unix.Stat_t
	if err := unix.Lstat(link, &st); err != nil {
		return &fs.PathError{Op: "lstat", Path: link, Err: err}
	}
	if !trustedLinkOwner(st.Uid) {
		return refused("%s is a symbolic link owned by uid %d; refusing to follow it, even with follow_symlinks: %s", link, st.Uid, linkRule())
	}
	if why := untrustedChain(dir); why != "" {
		return refused("%s is a symbolic link in a directory someone else can change (%s); refusing to follow it, even with follow_symlinks: %s", link, why, linkRule())
	}
	return nil
}

// linkRule says which links are followed and what to do instead.
func linkRule() string {
	return fmt.Sprintf("only a link owned by root or the bridge's user (uid %d), in directories no one else can write, is followed; point the path at the file the link names instead", os.Geteuid())
}

// trustedLinkOwner reports whether a link owned by uid may be followed: root or the process's user.
func trustedLinkOwner(uid uint32) bool { return uid == 0 || int(uid) == os.Geteuid() }

// untrustedChain returns why someone other than root and the process's user can change the entries of the
// link-free directory dir or of a directory above it ("" when no one can): an owner, or write permission
// for others or a foreign group (a root-owned sticky directory is exempt).
func untrustedChain(dir string) string {
	p := "/"
	parts := strings.Split(strings.TrimPrefix(filepath.Clean(dir), "/"), "/")
	for i := -1; i < len(parts); i++ {
		if i >= 0 {
			if parts[i] == "" {
				continue
			}
			p = filepath.Join(p, parts[i])
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fmt.Sprintf("%s: %v", p, err)
		}
		if why := othersCanChange(&st); why != "" {
			return p + " " + why
		}
	}
	return ""
}

// othersCanChange says who besides root and the process's user can add, remove or rename entries of the
// directory st describes ("" when no one can).
func othersCanChange(st *unix.Stat_t) string {
	switch {
	case st.Uid != 0 && int(st.Uid) != os.Geteuid():
		return fmt.Sprintf("is owned by uid %d", st.Uid)
	case st.Uid == 0 && st.Mode&unix.S_ISVTX != 0:
		return "" // like /tmp: others cannot remove or rename what they do not own
	case st.Mode&unix.S_IWOTH != 0:
		return fmt.Sprintf("is writable by other users (mode %s)", ModeOf(*st))
	case st.Mode&unix.S_IWGRP != 0 && st.Gid != 0 && int(st.Gid) != os.Getegid():
		return fmt.Sprintf("is writable by group %d (mode %s)", st.Gid, ModeOf(*st))
	}
	return ""
}
