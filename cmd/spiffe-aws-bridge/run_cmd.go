package main

import (
	"errors"
	"io"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/daemon"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/cli"
)

func newRunCommand(stderr io.Writer) *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run the bridge daemon: keep every configured profile's credentials fresh",
		Long: `Run the bridge daemon. It follows X.509-SVID rotations from the SPIFFE Workload API and keeps
temporary AWS credentials fresh for every profile of the config, in credentials files and on local
endpoints.

Signals: SIGTERM and SIGINT stop it cleanly; SIGHUP reloads the config, transactionally (profiles whose
config did not change keep running; a changed profile's new version starts before the old one stops; a
reload that fails anywhere is reported, in the log and in /ready, and changes nothing; log_level and
log_format apply whenever the file parses).

Exit status: 0 after SIGTERM or SIGINT, 1 on a runtime failure, 2 on a usage or configuration error
(systemd: RestartPreventExitStatus=2).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(configPath)
			if err != nil {
				return &cli.ExitError{Code: 2, Err: err}
			}
			log := daemon.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
			return fatal(log, daemon.Run(cmd.Context(), configPath, cfg, log, daemon.Options{Logger: log}))
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "path to the HCL config file (required), e.g. /etc/spiffe-aws-bridge/bridge.hcl")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// fatal logs a fatal error through the daemon's logger, so that it comes in the configured format (one
// JSON object with log_format = "json"), and marks it reported so that it is not printed again. The exit
// status is kept: 2 for errors in the config, whichever layer finds them, 1 for the rest.
func fatal(log hclog.Logger, err error) error {
	if err == nil {
		return nil
	}
	code := cli.ExitFailure
	var ee *cli.ExitError
	var ce *daemon.ConfigError
	switch {
	case errors.As(err, &ee):
		code = ee.Code
	case errors.As(err, &ce):
		code = cli.ExitUsage
	}
	log.Error("fatal: stopping", "error", err.Error())
	return &cli.ExitError{Code: code, Err: err, Reported: true}
}
