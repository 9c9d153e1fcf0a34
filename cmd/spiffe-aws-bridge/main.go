// Command spiffe-aws-bridge turns SPIFFE X.509-SVIDs into AWS credentials through IAM Roles Anywhere.
//
//	spiffe-aws-bridge run --config bridge.hcl   the daemon: keep credentials fresh for every profile
//	spiffe-aws-bridge dev                       the whole system on a laptop: no SPIRE, no AWS
//	spiffe-aws-bridge credential-process …      one-shot, for credential_process in ~/.aws/config
//	spiffe-aws-bridge credentials …             drop-in for spiffe-aws-assume-role (JWT-SVID → STS)
//	spiffe-aws-bridge check …                   why doesn't this work?
//	spiffe-aws-bridge version                   (or --version)
//
// Exit status: 0 success, 1 runtime failure, 2 usage or configuration error.
//
// The credential-process command is also built alone, as the lean spiffe-aws-credential-process, for
// AWS SDKs that start it on every credential refresh. Kubernetes pod identity (a config's pod_identity
// block, the admission webhook) is in spiffe-aws-bridge-k8s: this binary links no Kubernetes client.
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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the CLI with args and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return cli.Execute(ctx, root, args)
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "spiffe-aws-bridge",
		Short: "AWS credentials for SPIFFE workloads through IAM Roles Anywhere, key never on disk",
		Long: `spiffe-aws-bridge follows the SPIFFE Workload API's X.509-SVID rotations, signs an IAM Roles Anywhere
CreateSession with each (the key stays in memory) and hands the temporary AWS credentials to workloads:
credentials files, credential_process, local IMDSv2 and container-credentials endpoints, hooks.

Start with "spiffe-aws-bridge dev" (everything local, no SPIRE, no AWS account); run the daemon with
"spiffe-aws-bridge run --config FILE". Kubernetes pod identity (a pod_identity block, the admission
webhook) is served by spiffe-aws-bridge-k8s. Shell completion: "spiffe-aws-bridge completion
bash|zsh|fish|powershell".

Exit status, for every command: 0 success, 1 runtime failure, 2 usage or configuration error.`,
	}
	root.AddCommand(
		runcmd.New(runcmd.Options{Binary: "spiffe-aws-bridge", Stderr: stderr}),
		newDevCommand(stdout, stderr),
		newPlanCommand(stdout),
	)
	for _, c := range extraCommands(stdout, stderr) {
		root.AddCommand(c)
	}
	cli.AddVersion(root, "spiffe-aws-bridge")
	return root
}
