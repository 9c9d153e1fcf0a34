package safefs

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// ProbeWrite proves, leaving nothing behind, that the file at path (absolute) can be written the way
// WriteFile and CreateFile write it under r: every directory on the path passes r; the file, when it
// exists, and each sibling named by the file's name plus a suffix in alsoSuffixes (".lock"), when it
// exists, pass r; and a temporary file
// is created in the file's directory with the final owner, group and mode (the existing file's owner and
// group without r.Owner and r.Group), synced and removed. When the directory does not exist yet, the
// nearest existing directory above it must let a directory be created in it with r's owner, group and
// mode (one is created and removed). It returns what it proved, for a report; the error names the path
// that cannot be used and why.
func ProbeWrite(path string, r Rules, alsoSuffixes ...string) (string, error) {
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("%q is not an absolute path", path)
	}
	target := filepath.Clean(path)
	if r.FollowSymlinks {
		p, err := Resolve(target)
		if err != nil {
			return "", err
		}
		target = p
	}
	dir, base := filepath.Split(target)
	dir = filepath.Clean(dir)
	d, err := OpenDir(dir, r, false)
	if errors.Is(err, fs.ErrNotExist) {
		return probeMissingDir(dir, r)
	}
	if err != nil {
		return "", err
	}
	defer d.Close()
	var prev *FileInfo
	names := []string{base}
	for _, suffix := range alsoSuffixes {
		names = append(names, base+suffix)
	}
	for i, name := range names {
		f, info, err := d.OpenFile(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		f.Close()
		if i == 0 {
			prev = info
		}
	}
	// The same owner rules as a write: a file for another user only in a directory of theirs, an existing
	// file only when it is theirs already (checked before anything is created for them).
	if prev != nil {
		err = d.CheckReplace(base, prev)
	} else {
		err = d.CheckNew(base)
	}
	if err != nil {
		return "", err
	}
	tmp, err := d.writeTemp(base, nil, prev)
	if err != nil {
		return "", fmt.Errorf("cannot create a file in %s with %s, as writing %s needs: %w", dir, r.describe(prev), base, err)
	}
	if err := unix.Unlinkat(d.fd, tmp, 0); err != nil {
		return "", &fs.PathError{Op: "remove", Path: d.Join(tmp), Err: err}
	}
	return fmt.Sprintf("created and removed a file in %s with %s", dir, r.describe(prev)), nil
}

// probeMissingDir proves that the missing directory dir can be created: in the nearest existing
// directory above it, a temporary directory is created with r's owner, group and mode, then removed.
func probeMissingDir(dir string, r Rules) (string, error) {
	parent := filepath.Dir(dir)
	for {
		d, err := OpenDir(parent, r, false)
		if errors.Is(err, fs.ErrNotExist) && parent != "/" {
			parent = filepath.Dir(parent)
			continue
		}
		if err != nil {
			return "", err
		}
		defer d.Close()
		// As Dir's walk creates it: for another user, only the file's own directory (or one inside
		// theirs) is theirs; the bridge's own directories above it are 0755.
		var pst unix.Stat_t
		if err := unix.Fstat(d.fd, &pst); err != nil {
			return "", &fs.PathError{Op: "stat", Path: parent, Err: err}
		}
		forOwner := !r.foreignOwner() || parent == filepath.Dir(dir) || int(pst.Uid) == r.Owner.Int()
		mode := r.DirMode()
		if !forOwner {
			mode = 0o755
		}
		for range 100 {
			name := ".probe" + strconv.FormatUint(uint64(rand.Uint32()), 10)
			err := unix.Mkdirat(d.fd, name, uint32(mode))
			if errors.Is(err, unix.EEXIST) {
				continue
			}
			if err != nil {
				return "", fmt.Errorf("%s does not exist and cannot be created: %w", dir, &fs.PathError{Op: "mkdir", Path: d.Join(name), Err: err})
			}
			fd, err := r.adoptDir(d.fd, name, d.Join(name), forOwner, mode, "")
			if fd >= 0 {
				unix.Close(fd)
			}
			if rmErr := unix.Unlinkat(d.fd, name, unix.AT_REMOVEDIR); rmErr != nil && err == nil {
				err = &fs.PathError{Op: "remove", Path: d.Join(name), Err: rmErr}
			}
			if err != nil {
				return "", fmt.Errorf("%s does not exist and cannot be created: %w", dir, err)
			}
			owner := ""
			if forOwner {
				owner = r.ownerText()
			}
			return fmt.Sprintf("%s does not exist yet: created and removed a directory in %s with mode %04o%s", dir, parent, uint32(mode), owner), nil
		}
		return "", &fs.PathError{Op: "mkdir", Path: d.Join(".probe*"), Err: unix.EEXIST}
	}
}

// describe is the owner, group and mode a file written under r gets, replacing prev (nil: a new file).
func (r Rules) describe(prev *FileInfo) string {
	s := fmt.Sprintf("mode %04o", uint32(r.FileMode()))
	switch {
	case r.Owner.IsSet() || r.Group.IsSet():
		s += r.ownerText()
	case prev != nil:
		s += fmt.Sprintf(", owner %d:%d (the existing file's)", prev.UID, prev.GID)
	}
	return s
}

func (r Rules) ownerText() string {
	s := ""
	if r.Owner.IsSet() {
		s += ", owner " + r.Owner.String()
	}
	if r.Group.IsSet() {
		s += ", group " + r.Group.String()
	}
	return s
}
