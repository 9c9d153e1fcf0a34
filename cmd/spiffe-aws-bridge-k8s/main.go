// Command spiffe-aws-bridge-k8s is spiffe-aws-bridge's Kubernetes build: the daemon with pod identity
// (a config's pod_identity block: pods' projected service-account tokens verified by TokenReview, this
// node's pods followed by an informer) and pod identity's admission webhook. The chart's DaemonSet and
// webhook Deployment run it; everything else is in spiffe-aws-bridge, which links no Kubernetes client
// and so stays small (docs/benchmarks.md).
//
//	spiffe-aws-bridge-k8s run --config bridge.hcl   the daemon, pod_identity blocks included
//	spiffe-aws-bridge-k8s webhook …                 pod identity's mutating admission webhook (HTTPS)
//	spiffe-aws-bridge-k8s version                   (or --version)
//	spiffe-aws-bridge-k8s completion …              shell completion
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

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/cmd/internal/runcmd"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/cli"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity/kube"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the CLI with args and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCommand(stderr)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return cli.Execute(ctx, root, args)
}

func newRootCommand(stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "spiffe-aws-bridge-k8s",
		Short: "spiffe-aws-bridge for Kubernetes: the daemon with pod identity, and its admission webhook",
		Long: `spiffe-aws-bridge-k8s is the build of spiffe-aws-bridge that links the Kubernetes client. Its run
command is spiffe-aws-bridge's daemon that also serves pod identity (a config's pod_identity block: each
pod of the node gets the AWS credentials of its own SPIFFE identity on 169.254.170.23, its projected
service-account token verified by TokenReview); its webhook command injects what pods need to ask for
them. The chart (charts/spiffe-aws-bridge) runs both.

Every other command (dev, credential-process, credentials, rolesanywhere, check, plan) is in
spiffe-aws-bridge, which leaves the Kubernetes client out: a smaller binary and about 14 MB less memory
per daemon.

Exit status, for every command: 0 success, 1 runtime failure, 2 usage or configuration error.`,
	}
	root.AddCommand(
		runcmd.New(runcmd.Options{Binary: "spiffe-aws-bridge-k8s", PodAuthenticator: kube.NewAuthenticatorFactory, Stderr: stderr}),
		newWebhookCommand(stderr),
	)
	cli.AddVersion(root, "spiffe-aws-bridge-k8s")
	return root
}
