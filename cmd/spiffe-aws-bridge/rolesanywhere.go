package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/assumerole"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/credentialprocess"
)

// newRolesAnywhereCommand is spiffe-aws-assume-role's rolesanywhere command: the credential-process
// one-shot with spiffe-aws-assume-role's --session-duration default (package assumerole).
func newRolesAnywhereCommand(stdout, stderr io.Writer) *cobra.Command {
	o := credentialprocess.Options{Output: credentialprocess.Output{Stdout: stdout, Stderr: stderr}}
	var ignored assumerole.IgnoredFlags
	cmd := &cobra.Command{
		Use:   "rolesanywhere",
		Short: "spiffe-aws-assume-role's rolesanywhere command: Roles Anywhere credentials as credential_process JSON",
		Long: `Drop-in for "spiffe-aws-assume-role rolesanywhere": the same flags, including --session-duration in
ISO 8601 (PT1H; seconds and Go durations such as 1h work too). Without --certificate/--private-key the
X.509-SVID comes from the Workload API.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ignored.Warn(stderr)
			return o.Run(cmd.Context(), cmd.Flags())
		},
	}
	o.AddFlags(cmd.Flags())
	o.AddSessionDurationFlag(cmd.Flags(), assumerole.SessionDurationDefault)
	ignored.AddFlags(cmd.Flags())
	return cmd
}
