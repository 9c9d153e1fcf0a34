package config

import (
	"os"
	"path/filepath"
)

// sameFile reports whether two credentials file paths name the same file, through symbolic links
// (in the file or any directory above it) or hard links. It is best effort at load time: for a file that
// does not exist yet, the existing part of its path is resolved and the rest compared as written.
func sameFile(a, b string) bool {
	if a == b {
		return true
	}
	if fa, err := os.Stat(a); err == nil {
		if fb, err := os.Stat(b); err == nil {
			return os.SameFile(fa, fb) // device and inode: hard links too
		}
	}
	return resolveExisting(a) == resolveExisting(b)
}

// resolveExisting resolves the symbolic links of the longest existing prefix of the clean absolute path
// p and appends the rest unchanged.
func resolveExisting(p string) string {
	p = filepath.Clean(p)
	rest := ""
	for dir := p; ; {
		if r, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return p
		}
		rest = filepath.Join(filepath.Base(dir), rest)
		dir = parent
	}
}
