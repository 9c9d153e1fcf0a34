package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/assumerole"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/credentialprocess"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/duration"
)

// newCredentialsCommand is spiffe-aws-assume-role's credentials command (package assumerole).
func newCredentialsCommand(stdout, stderr io.Writer) *cobra.Command {
	var o assumerole.Options
	out := credentialprocess.Output{Stdout: stdout, Stderr: stderr}
	d := duration.NewValue(assumerole.SessionDurationDefault, credentialprocess.SessionRange)
	var ignored assumerole.IgnoredFlags
	cmd := &cobra.Command{
		Use:   "credentials",
		Short: "spiffe-aws-assume-role's credentials command: JWT-SVID → STS AssumeRoleWithWebIdentity → credential_process JSON",
		Long: `Drop-in for "spiffe-aws-assume-role credentials": fetch a JWT-SVID for --audience from the Workload
API, exchange it with STS AssumeRoleWithWebIdentity for --role-arn, and print the credentials in the
credential_process format. The flags are spiffe-aws-assume-role's; its telemetry and Sentry flags are
accepted and ignored.

  [profile app]
  credential_process = spiffe-aws-bridge credentials --audience sts.amazonaws.com --spiffe-id spiffe://example.org/app --role-arn R`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ignored.Warn(stderr)
			o.Duration = d.Duration()
			return out.Print(cmd.Context(), o.Credentials)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Audience, "audience", "", "audience of the JWT-SVID (required; the role's trust policy checks it)")
	f.StringVar(&o.SPIFFEID, "spiffe-id", "", "SPIFFE ID of the JWT-SVID (default: the workload's first)")
	f.StringVar(&o.RoleARN, "role-arn", "", "IAM role ARN to assume (required)")
	f.StringVar(&o.WorkloadSocket, "workload-socket", "", "Workload API address or socket path; default $SPIFFE_ENDPOINT_SOCKET, then unix:///tmp/spire-agent/public/api.sock")
	f.StringVar(&o.SessionName, "session-name", "", "role session name (default: derived from the SPIFFE ID)")
	f.StringVar(&o.STSEndpoint, "sts-endpoint", "", "STS endpoint URL (default: the regional STS endpoint)")
	f.StringVar(&o.STSRegion, "sts-region", "", "STS region (default $AWS_REGION, then us-east-1)")
	f.Var(d, "session-duration", "session duration: ISO 8601 (PT1H), seconds (3600) or a Go duration (1h); 15m to 12h")
	out.AddFlags(f)
	ignored.AddFlags(f)
	return cmd
}
