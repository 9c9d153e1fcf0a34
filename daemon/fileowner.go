package daemon

import (
	"fmt"
	"strings"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs"
)

// fileOwner resolves the owner and group settings of a block that writes files (user and group names or
// numeric ids) to ids, the owner with lookup (nil: safefs.LookupOwner); the errors name the key and its value, e.g.
// `credentials_file.owner "app": no such user`.
func fileOwner(lookup func(string) (safefs.ID, error), ownerKey, owner, groupKey, group string) (safefs.ID, safefs.ID, error) {
	if lookup == nil {
		lookup = safefs.LookupOwner
	}
	uid, err := lookup(owner)
	if err != nil {
		return safefs.ID{}, safefs.ID{}, &ConfigError{Err: fmt.Errorf("%s %q: %w (name an existing user or a numeric id)", ownerKey, owner, err)}
	}
	gid, err := safefs.LookupGroup(group)
	if err != nil {
		return safefs.ID{}, safefs.ID{}, &ConfigError{Err: fmt.Errorf("%s %q: %w (name an existing group or a numeric id)", groupKey, group, err)}
	}
	return uid, gid, nil
}

// ownerUserName is owner when it is a user name, "" when it is a numeric id or unset: a name is looked up
// again before every write of the file (credfile.Options.OwnerName), an id stays what it is.
func ownerUserName(owner string) string {
	if strings.Trim(owner, "0123456789") == "" {
		return ""
	}
	return owner
}

// ConfigError is a config value that passed the config's own checks but that the system refuses when
// the daemon applies it (an owner that is no user here): a configuration error, as bad as a syntax error.
type ConfigError struct {
	// Err names the key and the value.
	Err error
}

// Error implements error.
func (e *ConfigError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *ConfigError) Unwrap() error { return e.Err }
