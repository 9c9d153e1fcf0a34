package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/check"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/credentialprocess"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/cli"
)

// newCheckCommand is the check command (package check): exit status 0 only when every check passes.
func newCheckCommand(stdout, stderr io.Writer) *cobra.Command {
	o := check.Options{Out: stdout}
	cmd := &cobra.Command{
		Use:   "check [--config FILE [--spiffe-id ID]]",
		Short: "Explain what would stop this node from getting AWS credentials",
		Long: `Connect to the SPIFFE Workload API and list the X.509-SVIDs offered; check each against IAM Roles
Anywhere's requirements (key type, CA flag, key usage, validity, chain); print the principal tags AWS
derives from it and a minimal role trust policy that admits it. With --config, also try one
CreateSession per profile and explain any AWS error in plain words, read the profile's trusted identity
propagation and attribute mappings (from the emulator; for AWS it prints the get-profile command), then
walk the profile's assume_role hops (STS AssumeRole), printing for each the trust policy its role needs
(conditioned on aws:OriginIdentity/Subject when TIP is on) and the permission the previous role needs,
and warning when a hop relies on the spoofable spiffe-id session tag without TIP; and prove each
profile's sinks as the daemon would use them (a file created and removed in each target directory with
the configured owner and mode, each port bound, each hook's command found), naming what cannot work.

With a pod_identity block, also list its settings (listen addresses, audience, node name source, token
cache TTL) and each rule in order with its position, pattern, trust anchor, profile, role ARN, hops and
session name templates, warning of rules that map too widely (one role for every matching pod, a
namespace capture the role ignores, captures that make two SPIFFE IDs the same role, a rule shadowed by
an earlier one). Warnings do not fail the check. A config with pod_identity and no profile does not need
the bridge's own Workload API.

With --spiffe-id, answer only which rule maps that SPIFFE ID and to what (role ARN, hops, session names,
captures filled in) by the rules the daemon uses, or that no rule does (the pod would get 403); when the
Workload API offers an X.509-SVID for that ID (as in dev and test worlds), also prove the role with a
real CreateSession and the hops, otherwise say the answer is static. Needs no Kubernetes.

Exits 0 only when every check passes (with --spiffe-id: a rule maps the ID and, when tried, the role
works).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), credentialprocess.Timeout)
			defer cancel()
			r, err := check.Run(ctx, o)
			if err != nil {
				return err
			}
			if !r.OK() {
				return &cli.ExitError{Code: 1, Err: fmt.Errorf("check: %d problem(s) found", r.Problems)}
			}
			if r.Warnings > 0 {
				fmt.Fprintf(stdout, "\nAll checks passed, with %d warning(s).\n", r.Warnings)
				return nil
			}
			fmt.Fprintln(stdout, "\nAll checks passed.")
			return nil
		},
	}
	cmd.Flags().StringVarP(&o.ConfigPath, "config", "c", "", "bridge config: also check each profile with a real CreateSession")
	cmd.Flags().StringVar(&o.SpiffeID, "spiffe-id", "", "with --config: which pod_identity rule maps this SPIFFE ID, and to which role (proved when the Workload API offers its SVID)")
	cmd.Flags().StringVar(&o.WorkloadSocket, "workload-socket", "", "Workload API address (default: the config's agent_address, $SPIFFE_ENDPOINT_SOCKET, SPIRE's default)")
	return cmd
}
