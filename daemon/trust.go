package daemon

import (
	"fmt"
	"os/exec"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/trusted"
)

// checkCommand refuses, in a bridge running as root, an on_refresh program that someone other than root
// could have written (the program or a directory above it: internal/trusted's rule, as for the config
// file): root would run whatever they put there. A program not found is left to fail when it runs, as
// before. Arguments (a script given to an interpreter) are the operator's to protect.
func checkCommand(argv []string, p trusted.Process) error {
	if p.UID != 0 || len(argv) == 0 {
		return nil
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return nil
	}
	if _, err := trusted.Check(path, p, "on_refresh program"); err != nil {
		return &ConfigError{Err: fmt.Errorf("on_refresh.command %q: %w", argv[0], err)}
	}
	return nil
}
