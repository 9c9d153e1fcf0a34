package daemon

import (
	"fmt"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs"
)

// fileOwner resolves the owner and group settings of a block that writes files (user and group names or
// numeric ids) to ids; the errors name the key and its value, e.g.
// `credentials_file.owner "app": no such user`.
func fileOwner(ownerKey, owner, groupKey, group string) (safefs.ID, safefs.ID, error) {
	uid, err := safefs.LookupOwner(owner)
	if err != nil {
		return safefs.ID{}, safefs.ID{}, &ConfigError{Err: fmt.Errorf("%s %q: %w (name an existing user or a numeric id)", ownerKey, owner, err)}
	}
	gid, err := safefs.LookupGroup(group)
	if err != nil {
		return safefs.ID{}, safefs.ID{}, &ConfigError{Err: fmt.Errorf("%s %q: %w (name an existing group or a numeric id)", groupKey, group, err)}
	}
	return uid, gid, nil
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
