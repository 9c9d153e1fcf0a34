package endpoint

import (
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs"
)

// checkTokenMode refuses a token file that anyone but its owner can read or write: the token is the
// credentials (any local user can reach the endpoint's port). Its group may read and write it when it is
// the configured auth_token_group, and may have what a group-readable auth_token_mode (0640, 0660) gives
// when, with no group configured, it is root's or the bridge's group. A file written by hand under umask
// 022 (mode 0644), or rotated by renaming such a file over it, is refused with the chmod that fixes it.
// Execute bits give nothing away and are left alone.
func checkTokenMode(path string, info *safefs.FileInfo, r safefs.Rules) error {
	var allowed fs.FileMode
	switch {
	case r.Group.IsSet() && int(info.GID) == r.Group.Int():
		allowed = 0o060
	case !r.Group.IsSet() && (info.GID == 0 || int(info.GID) == os.Getegid()):
		allowed = r.FileMode() & 0o060
	}
	extra := info.Mode & 0o066 &^ allowed
	if extra == 0 {
		return nil
	}
	var who, fix []string
	if g := extra & 0o070; g != 0 {
		who = append(who, fmt.Sprintf("its group (gid %d)", info.GID))
		fix = append(fix, "g-"+permLetters(g>>3))
	}
	if o := extra & 0o007; o != 0 {
		who = append(who, "other users")
		fix = append(fix, "o-"+permLetters(o))
	}
	return &tokenModeError{msg: fmt.Sprintf("auth token file %s (owner uid %d, mode %04o) can be read or written by %s; refusing it: "+
		"the token gives its holder the credentials, so only its owner may read it (and its group, when "+
		"auth_token_group or auth_token_mode allow it); fix: chmod %s %s",
		path, info.UID, uint32(info.Mode), strings.Join(who, " and "), strings.Join(fix, ","), path)}
}

// tokenModeError is a token file refused for its permissions; it wraps safefs.ErrRefused like the other
// refusals of the token file.
type tokenModeError struct{ msg string }

func (e *tokenModeError) Error() string        { return e.msg }
func (e *tokenModeError) Is(target error) bool { return target == safefs.ErrRefused }

// permLetters is "rwx" for the bits of one permission triplet.
func permLetters(m fs.FileMode) string {
	s := ""
	for _, b := range []struct {
		bit fs.FileMode
		c   string
	}{{4, "r"}, {2, "w"}, {1, "x"}} {
		if m&b.bit != 0 {
			s += b.c
		}
	}
	return s
}
