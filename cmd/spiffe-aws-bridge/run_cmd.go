package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/daemon"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/buildinfo"
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

Signals: SIGTERM and SIGINT stop it cleanly; SIGHUP reloads the config (profiles whose config did not
change keep running; a bad config is reported and the running one is kept).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(configPath)
			if err != nil {
				return &cli.ExitError{Code: 2, Err: err}
			}
			log := daemon.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
			return runDaemon(cmd.Context(), configPath, cfg, log, daemon.Options{Logger: log})
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "path to the HCL config file (required)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// runDaemon runs the daemon until ctx ends, reloading configPath on SIGHUP.
func runDaemon(ctx context.Context, configPath string, cfg *config.Config, log hclog.InterceptLogger, opts daemon.Options) error {
	log.Info("starting", "version", buildinfo.Version(), "config", configPath, "profiles", len(cfg.Profiles))
	d, err := daemon.New(ctx, cfg, opts)
	if err != nil {
		return fmt.Errorf("starting: %w", err)
	}
	defer d.Close()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping")
			return nil
		case <-hup:
			if configPath == "" {
				log.Warn("SIGHUP ignored: no config file to reload")
				continue
			}
			next, err := config.Load(configPath)
			if err != nil {
				log.Error("config reload failed; keeping the running config", "error", err)
				continue
			}
			if err := d.Reload(ctx, next); err != nil {
				log.Error("config reload failed or incomplete; the profiles that could start run", "error", err)
				continue
			}
			log.SetLevel(hclog.LevelFromString(next.LogLevel))
			log.Info("config reloaded", "profiles", len(next.Profiles))
		}
	}
}
