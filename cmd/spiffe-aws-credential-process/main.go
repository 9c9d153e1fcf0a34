// Command spiffe-aws-credential-process is `spiffe-aws-bridge credential-process` built alone: the same
// flags, the same output, the same code (package credentialprocess), in a binary that links nothing of
// the daemon. An AWS SDK starts a credential_process program every time it needs credentials, and a Go
// program pays for the initialisation of every package it links before main runs; this binary links
// about half as many as spiffe-aws-bridge, and starts in about half the time (docs/benchmarks.md).
//
//	[profile app]
//	credential_process = spiffe-aws-credential-process --trust-anchor-arn TA --profile-arn P --role-arn R
//
// A leading "credential-process" argument is dropped, so that an aws_signing_helper line works with
// only the program name replaced.
//
// It must stay lean: a test fails when it starts to depend on the daemon's packages.
//
// Exit status: 0 success, 1 runtime failure, 2 usage or configuration error.
package main

//go:generate go test -run TestCLIReferenceIsCurrent -update-cli-docs .

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/credentialprocess"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/cli"
)

const name = "spiffe-aws-credential-process"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := newRoot(os.Stdout, os.Stderr)
	root.SetIn(os.Stdin)
	root.SetOut(os.Stdout)
	root.SetErr(os.Stderr)
	code := cli.Execute(ctx, root, args(os.Args[1:]))
	stop()
	os.Exit(code)
}

// newRoot is the binary's command: credential-process under the binary's name, with --version and version.
func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := credentialprocess.NewCommand(name, name, stdout, stderr)
	cli.AddVersion(root, name)
	return root
}

// args drops aws_signing_helper's subcommand name, so that
// "aws_signing_helper credential-process --certificate …" needs only its program name replaced.
func args(a []string) []string {
	if len(a) > 0 && a[0] == "credential-process" {
		return a[1:]
	}
	return a
}
