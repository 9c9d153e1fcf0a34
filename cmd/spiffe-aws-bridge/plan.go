package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/spf13/cobra"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/cli"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/duration"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/plan"
)

func newPlanCommand(stdout io.Writer) *cobra.Command {
	var (
		profiles, nodes, hops, burst, resolution, maxProfiles int
		onRotation, search                                    bool
		jitter, quota                                         float64
		seed                                                  uint64
		output                                                string
	)
	svidTTL := duration.NewValue("1h", duration.Range{Min: 2 * time.Minute, Max: 30 * 24 * time.Hour, Example: "1h"})
	session := duration.NewValue("1h", duration.Range{Min: config.MinSessionDuration, Max: config.MaxSessionDuration, Example: "12h"})
	spread := duration.NewValue("28m", duration.Range{Max: config.MaxRotationSpread, Example: "28m"})
	cmd := &cobra.Command{
		Use:   "plan --profiles N [flags]",
		Short: "Check that a fleet's refreshes fit the account's Roles Anywhere quota, and find the largest that does",
		Long: `Check that a fleet fits one account's IAM Roles Anywhere CreateSession quota (10 calls per second per
account and region by default), by simulating it: every profile runs the daemon's own refresh schedule on
a virtual clock for 24 hours, with a SPIRE server restart at 12 h that rotates every SVID at once (the
simulation CI runs; docs/fleet-simulation.md). The fleet holds when no workload ever has credentials with
less than 15 minutes left and the day's calls, throttled ones included, stay within the quota.

It prints the verdict, the figures behind it and, unless --search=false, the largest fleet that holds
with the same numbers and the margin to it. Give the numbers of your config: --session-duration is
session_duration, --on-rotation, --rotation-spread and --jitter-fraction the refresh block's keys,
--assume-role-hops the number of assume_role blocks.

Exit status: 0 when the fleet holds, 1 when it does not, 2 on a usage error.`,
		Example: `  # 10,000 bridges with the defaults (1h SVIDs, 1h sessions, refresh on rotation)
  spiffe-aws-bridge plan --profiles 10000

  # node mode: 10,000 hosts with 20 workloads each, timer-only refresh and 12h sessions
  spiffe-aws-bridge plan --nodes 10000 --profiles 20 --on-rotation=false --session-duration 12h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return cli.Usagef("--output %q: want text or json", output)
			}
			if nodes < 0 {
				return cli.Usagef("--nodes %d: give a positive number of nodes (or leave it out)", nodes)
			}
			total := profiles
			if nodes > 0 {
				if profiles > math.MaxInt32/nodes {
					return cli.Usagef("--nodes %d × --profiles %d is too many profiles to simulate", nodes, profiles)
				}
				total = nodes * profiles
			}
			f := plan.Fleet{
				Profiles: total, SVIDTTL: svidTTL.Duration(), SessionDuration: session.Duration(), OnRotation: onRotation,
				RotationSpread: spread.Duration(), JitterFraction: jitter, AssumeRoleHops: hops, QuotaPerSecond: quota,
				Burst: burst, Seed: seed,
			}
			if f.Burst == 0 {
				f.Burst = max(1, int(math.Ceil(quota))) // one second's worth, as the simulation assumes
			}
			if err := f.Validate(); err != nil {
				return cli.Usage(err)
			}
			a, err := plan.Evaluate(f, plan.Search{Largest: search, Resolution: resolution, Max: maxProfiles})
			if err != nil {
				return cli.Usage(err)
			}
			if output == "json" {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(a.JSON()); err != nil {
					return err
				}
			} else {
				fmt.Fprint(stdout, a.Text())
			}
			if !a.Holds {
				return &cli.ExitError{Code: cli.ExitFailure, Err: errors.New("the fleet does not hold"), Reported: true}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&profiles, "profiles", 0, "profiles sharing the account's quota in one region (with --nodes: profiles per node) (required)")
	fl.IntVar(&nodes, "nodes", 0, "node mode: the number of nodes, each serving --profiles workloads (the fleet is their product)")
	fl.Var(svidTTL, "svid-ttl", "X.509-SVID lifetime (the SPIRE agent rotates at half of it)")
	fl.Var(session, "session-duration", "the profiles' session_duration (15m to 12h)")
	fl.BoolVar(&onRotation, "on-rotation", true, "refresh { on_rotation }: refresh when a new SVID arrives (false: only on the session's own schedule)")
	fl.Var(spread, "rotation-spread", "refresh { rotation_spread } (0s: refresh at once)")
	fl.Float64Var(&jitter, "jitter-fraction", config.DefaultJitterFraction, "refresh { jitter_fraction }")
	fl.IntVar(&hops, "assume-role-hops", 0, "assume_role blocks per profile (one STS call each after CreateSession; chained sessions last at most 1h)")
	fl.Float64Var(&quota, "quota", 10, "the account's CreateSession quota, calls per second (Roles Anywhere's default: 10)")
	fl.IntVar(&burst, "burst", 0, "the quota's burst (default: one second's worth)")
	fl.BoolVar(&search, "search", true, "also search the largest fleet that holds (more simulations)")
	fl.IntVar(&resolution, "resolution", 0, "step of the search, in profiles (default: a quarter of the largest fleet found to hold, at most 2500)")
	fl.IntVar(&maxProfiles, "max-profiles", 0, "stop the search at this many profiles (default: 64 times the fleet)")
	fl.Uint64Var(&seed, "seed", 1, "seed of the simulation's random source")
	fl.StringVarP(&output, "output", "o", "text", "output format: text or json")
	_ = cmd.MarkFlagRequired("profiles")
	return cmd
}
