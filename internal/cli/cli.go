// Package cli is the process plumbing the bridge's binaries share: running a cobra command tree and
// turning its error into a message on stderr and an exit code.
package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

// ExitError carries a specific process exit code out of a command: 2 for usage and configuration
// errors, 1 (any other error) for failures.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Execute runs root with args and returns the process exit code: 0, the code of an ExitError, 2 for a
// flag error (unknown flag, bad value), 1 for any other error. A failure is printed on root's stderr (set
// it with SetErr) behind root's name, without the usage text. spiffe-aws-bridge and
// spiffe-aws-credential-process both end in it, so that they fail alike.
func Execute(ctx context.Context, root *cobra.Command, args []string) int {
	root.SetArgs(args)
	root.SilenceUsage, root.SilenceErrors = true, true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &ExitError{Code: 2, Err: err} })
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(root.ErrOrStderr(), "%s: %v\n", root.Name(), err)
		var ee *ExitError
		if errors.As(err, &ee) {
			return ee.Code
		}
		return 1
	}
	return 0
}
