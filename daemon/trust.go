package daemon

import (
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/hook"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/trusted"
)

// newCommand builds the on_refresh hook of a bridge running as p. A bridge running as root holds the
// program to internal/trusted's rule, as its config file (hook.CommandOptions.Trust): the program (the
// first word, found on PATH when it has no slash) must exist when the config is loaded, no one but root
// may be able to have written it or a directory above it, and the hook runs that absolute path, checked
// again before every run; anything else is a config error (exit 2 at start, a refused reload). A bridge
// running as another user looks the program up on PATH at every run, as before: it cannot be made to run
// anything its own user could not. Arguments (a script given to an interpreter) are the operator's to
// protect.
func newCommand(o hook.CommandOptions, p trusted.Process) (*hook.Command, error) {
	if p.UID == 0 {
		o.Trust = &p
	}
	c, err := hook.NewCommand(o)
	if err != nil {
		return nil, &ConfigError{Err: err}
	}
	return c, nil
}
