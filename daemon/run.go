package daemon

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/buildinfo"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/cli"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
)

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

// Run runs the daemon of cfg, read from configPath, until ctx ends, reloading configPath on SIGHUP (no
// reload without a path): the `run` command, and `dev`'s bridge. log is the daemon's logger (NewLogger);
// a config's log_level and log_format apply to it whenever a new file parses. It lowers GOGC for
// node-mode profiles (NodeModeGCPercent) unless the environment sets it. Errors in cfg before anything
// starts are usage errors (cli.Usage).
func Run(ctx context.Context, configPath string, cfg *config.Config, log hclog.InterceptLogger, opts Options) error {
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
	d, err := New(ctx, cfg, opts)
	if err != nil {
		return fmt.Errorf("starting: %w", err)
	}
	defer d.Close()
	defer func() {
		// One line per profile on the way out: what it did while the bridge ran.
		for _, st := range d.States() {
			log.Info("profile stopped", StopSummary(st)...)
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
