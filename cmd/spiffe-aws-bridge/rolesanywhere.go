package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/credentialprocess"
)

func newRolesAnywhereCommand(stdout, stderr io.Writer) *cobra.Command {
	o := credentialprocess.Options{Output: credentialprocess.Output{Stdout: stdout, Stderr: stderr}}
	var ignored ignoredFlags
	cmd := &cobra.Command{
		Use:   "rolesanywhere",
		Short: "spiffe-aws-assume-role's rolesanywhere command: Roles Anywhere credentials as credential_process JSON",
		Long: `Drop-in for "spiffe-aws-assume-role rolesanywhere": the same flags, including --session-duration in
ISO 8601 (PT1H; seconds and Go durations such as 1h work too). Without --certificate/--private-key the
X.509-SVID comes from the Workload API.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ignored.warn(stderr)
			return o.Run(cmd.Context(), cmd.Flags())
		},
	}
	o.AddFlags(cmd.Flags())
	o.AddSessionDurationFlag(cmd.Flags(), "PT1H")
	ignored.addFlags(cmd.Flags())
	return cmd
}

// ignoredFlags are spiffe-aws-assume-role's telemetry and Sentry flags, accepted so that no existing
// config breaks, and ignored.
type ignoredFlags struct {
	telemetrySocket, telemetryName, sentryDSN string
	flags                                     *pflag.FlagSet
}

func (i *ignoredFlags) addFlags(f *pflag.FlagSet) {
	i.flags = f
	f.StringVar(&i.telemetrySocket, "telemetry-socket", "", "accepted for spiffe-aws-assume-role compatibility; ignored")
	f.StringVar(&i.telemetryName, "telemetry-name", "", "accepted for spiffe-aws-assume-role compatibility; ignored")
	f.StringVar(&i.sentryDSN, "sentry-dsn", "", "accepted for spiffe-aws-assume-role compatibility; ignored")
}

// warn prints one warning when any ignored flag was given.
func (i *ignoredFlags) warn(stderr io.Writer) {
	var set []string
	for _, n := range []string{"telemetry-socket", "telemetry-name", "sentry-dsn"} {
		if i.flags.Changed(n) {
			set = append(set, "--"+n)
		}
	}
	if len(set) > 0 {
		fmt.Fprintf(stderr, "spiffe-aws-bridge: warning: %v accepted for compatibility and ignored (use the daemon's Prometheus metrics)\n", set)
	}
}
