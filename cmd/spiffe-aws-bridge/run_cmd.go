package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/daemon"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/buildinfo"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/cli"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
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
			return fatal(log, runDaemon(cmd.Context(), configPath, cfg, log, daemon.Options{Logger: log}))
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

// NodeModeGCPercent is the Go garbage collector's target (GOGC) of a daemon with node-mode profiles, unless
// the environment sets GOGC. Such a daemon holds ~40 KB per workload (a gRPC stream with its goroutines,
// the parsed SVIDs, a refresher and its sinks), and Go's default (100) lets the heap grow by as much again
// as everything live, goroutine stacks included, before collecting: 1,000 workloads took 86–110 MB
// resident; they take 60–63 MB at 20 (62–65 MB at 25). Refreshes are rare, so collecting more often costs
// CPU only while refreshing (docs/benchmarks.md "Node mode").
const NodeModeGCPercent = 20

// gcPercent is the GOGC the daemon sets for cfg, given the GOGC environment variable: NodeModeGCPercent
// when a profile is in node mode and the environment does not choose.
func gcPercent(cfg *config.Config, env string) (int, bool) {
	if env != "" {
		return 0, false
	}
	for _, p := range cfg.Profiles {
		if p.Delegated() {
			return NodeModeGCPercent, true
		}
	}
	return 0, false
}

// runDaemon runs the daemon until ctx ends, reloading configPath on SIGHUP.
func runDaemon(ctx context.Context, configPath string, cfg *config.Config, log hclog.InterceptLogger, opts daemon.Options) error {
	addr, err := svid.Locate(cfg.AgentAddress, "the agent_address key")
	if err != nil {
		return cli.Usage(err)
	}
	log.Info("starting", "version", buildinfo.Version(), "config", configPath, "profiles", len(cfg.Profiles),
		"workload_api", addr.Addr, "workload_api_from", addr.From)
	if pct, ok := gcPercent(cfg, os.Getenv("GOGC")); ok {
		debug.SetGCPercent(pct)
		log.Info("node mode: running Go's garbage collector at a lower GOGC to keep the memory per workload low; set GOGC to override",
			"gogc", pct)
	}
	d, err := daemon.New(ctx, cfg, opts)
	if err != nil {
		return fmt.Errorf("starting: %w", err)
	}
	defer d.Close()
	defer func() {
		// One line per profile on the way out: what it did while the bridge ran.
		for _, st := range d.States() {
			log.Info("profile stopped", daemon.StopSummary(st)...)
		}
	}()
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
				d.ReloadFailed(err)
				log.Error("config reload refused; every profile keeps running as before", "error", err)
				continue
			}
			// log_level and log_format apply whenever the new file parses, whatever becomes of its profiles.
			if l, ok := log.(interface{ Reconfigure(level, format string) }); ok {
				l.Reconfigure(next.LogLevel, next.LogFormat)
			} else {
				log.SetLevel(hclog.LevelFromString(next.LogLevel))
			}
			if err := d.Reload(ctx, next); err != nil {
				log.Error("config reload refused; every profile keeps running as before", "error", err)
				continue
			}
			log.Info("config reloaded", "profiles", len(next.Profiles))
		}
	}
}
