package main

import (
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/dev"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/duration"
)

// newDevCommand is the dev command (package dev).
func newDevCommand(stdout, stderr io.Writer) *cobra.Command {
	o := dev.Options{Stdout: stdout, Stderr: stderr}
	var rotateEvery, runFor, session *duration.Value // set below, with the flags
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole system locally: a fake SPIRE agent, a Roles Anywhere emulator and the bridge",
		Long: `Run everything on this machine with no SPIRE and no AWS account:

  - an in-memory SPIFFE CA serving a real Workload API socket, rotating the workload's X.509-SVID;
  - a local Roles Anywhere + STS emulator that trusts that CA and verifies every signature as AWS does;
  - the bridge daemon, keeping a credentials file and a container endpoint fresh.

It prints ready-to-paste commands that use the credentials with the aws CLI (v1 or v2) or any AWS SDK.
Without --dir it works in a new temporary directory and removes it on exit; with --dir the directory and
its files (credentials, configs, the fake agent's trust bundle) are kept.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.RotateEvery, o.Duration, o.Session = rotateEvery.Duration(), runFor.Duration(), session.Duration()
			return dev.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Dir, "dir", "", "directory for the socket, configs and credentials file, kept on exit (default: a new temporary directory, removed on exit)")
	rotateEvery = duration.NewValue("30s", duration.Range{Min: time.Second, Example: "30s"})
	runFor = duration.NewValue("0s", duration.Range{Example: "2m"})
	session = duration.NewValue("1h", duration.Range{Min: config.MinSessionDuration, Max: config.MaxSessionDuration, Example: "1h, 3600 or PT1H"})
	f.Var(rotateEvery, "rotate-every", "how often the fake SPIRE agent rotates the X.509-SVID (at least 1s)")
	f.Var(runFor, "duration", "stop after this long (default: run until interrupted)")
	f.Var(session, "session-duration", "AWS session duration (15m to 12h)")
	f.StringVar(&o.LogLevel, "log-level", "info", "log level: trace, debug, info, warn, error")
	f.BoolVar(&o.Node, "node", false, "also show node mode: a fake SPIRE agent admin API (Delegated Identity API) serving two more workloads, each with its own SVID, credentials file and container endpoint")
	f.BoolVar(&o.Chain, "chain", false, "add a second profile, "+dev.ChainProfile+", that chains from the Roles Anywhere role into a role of a second account ("+dev.AccountB+") with STS AssumeRole")
	return cmd
}
