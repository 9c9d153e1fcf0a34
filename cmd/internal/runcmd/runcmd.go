// Package runcmd is the run command of spiffe-aws-bridge and spiffe-aws-bridge-k8s: the daemon, with pod
// identity when the binary links the Kubernetes client (Options.PodAuthenticator) and without it
// otherwise. Only the commands import it.
package runcmd

import (
	"errors"
	"io"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/daemon"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/cli"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity"
)

// Options parameterise the run command for one binary.
type Options struct {
	// Binary is the name of the binary the command belongs to, for its help text.
	Binary string
	// PodAuthenticator makes pod identity's token authenticator from the daemon's logger: it enables
	// pod_identity blocks. nil in a binary built without Kubernetes support, where a pod_identity block
	// is a configuration error naming daemon.KubernetesBinary.
	PodAuthenticator func(log hclog.Logger) podidentity.AuthenticatorFactory
	// Stderr receives the daemon's logs.
	Stderr io.Writer
}

// New returns the run command.
func New(o Options) *cobra.Command {
	var configPath string
	pods := `A config with a pod_identity block (Kubernetes pod identity) needs the Kubernetes client, which this
binary leaves out to stay small: run the same config with "` + daemon.KubernetesBinary + ` run --config FILE" (the
chart's image ships both); here such a config exits 2.`
	if o.PodAuthenticator != nil {
		pods = `This binary serves pod identity too (a pod_identity block: pods' projected service-account tokens
verified by TokenReview, this node's pods followed by an informer); without that block it runs any config
as spiffe-aws-bridge run does.`
	}
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run the bridge daemon: keep every configured profile's credentials fresh",
		Long: `Run the bridge daemon. It follows X.509-SVID rotations from the SPIFFE Workload API and keeps
temporary AWS credentials fresh for every profile of the config, in credentials files and on local
endpoints.

` + pods + `

Signals: SIGTERM and SIGINT stop it cleanly; SIGHUP reloads the config, transactionally (profiles whose
config did not change keep running; a changed profile's new version starts before the old one stops; a
reload that fails anywhere is reported, in the log and in /ready, and changes nothing; log_level and
log_format apply whenever the file parses).

Exit status: 0 after SIGTERM or SIGINT, 1 on a runtime failure, 2 on a usage or configuration error
(systemd: RestartPreventExitStatus=2).`,
		Example: "  " + o.Binary + " run --config /etc/spiffe-aws-bridge/bridge.hcl",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(configPath)
			if err != nil {
				return &cli.ExitError{Code: 2, Err: err}
			}
			log := daemon.NewLogger(o.Stderr, cfg.LogLevel, cfg.LogFormat)
			opts := daemon.Options{Logger: log}
			if o.PodAuthenticator != nil {
				opts.PodAuthenticator = o.PodAuthenticator(log.Named("pod_identity"))
			}
			return Fatal(log, daemon.Run(cmd.Context(), configPath, cfg, log, opts))
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "path to the HCL config file (required), e.g. /etc/spiffe-aws-bridge/bridge.hcl")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// Fatal logs a fatal error through the daemon's logger, so that it comes in the configured format (one
// JSON object with log_format = "json"), and marks it reported so that it is not printed again. The exit
// status is kept: 2 for errors in the config, whichever layer finds them, 1 for the rest.
func Fatal(log hclog.Logger, err error) error {
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
