// Command spiffe-aws-bridge turns SPIFFE X.509-SVIDs into AWS credentials through IAM Roles Anywhere.
//
//	spiffe-aws-bridge run --config bridge.hcl   the daemon: keep credentials fresh for every profile
//	spiffe-aws-bridge dev                       the whole system on a laptop: no SPIRE, no AWS
//	spiffe-aws-bridge credential-process …      one-shot, for credential_process in ~/.aws/config
//	spiffe-aws-bridge credentials …             drop-in for spiffe-aws-assume-role (JWT-SVID → STS)
//	spiffe-aws-bridge check …                   why doesn't this work?
//	spiffe-aws-bridge version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// exitError carries a specific exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the CLI with args and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "spiffe-aws-bridge:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "spiffe-aws-bridge",
		Short:         "AWS credentials for SPIFFE workloads through IAM Roles Anywhere, key never on disk",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newRunCommand(stderr),
		newDevCommand(stdout, stderr),
		newVersionCommand(stdout),
	)
	for _, c := range extraCommands(stdout, stderr) {
		root.AddCommand(c)
	}
	return root
}
