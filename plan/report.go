package plan

import (
	"fmt"
	"strings"
	"time"
)

// Text is the answer as `spiffe-aws-bridge plan` prints it: the fleet and the scenario, the verdict with
// the figures behind it, and the largest fleet that holds.
func (a Answer) Text() string {
	var sb strings.Builder
	f, o, r := a.Fleet, a.Options, a.Run
	fmt.Fprintf(&sb, "fleet: %d profiles sharing one account's Roles Anywhere quota of %g CreateSession calls/s (burst %d) in one region\n",
		f.Profiles, f.QuotaPerSecond, f.Burst)
	fmt.Fprintf(&sb, "  SVID TTL %v (rotated every %v), session_duration %v, %s", short(f.SVIDTTL), short(f.SVIDTTL/2), short(f.SessionDuration), refreshString(f))
	if f.AssumeRoleHops > 0 {
		fmt.Fprintf(&sb, ", %d assume_role hop(s) per refresh (credentials last %v)", f.AssumeRoleHops, short(f.EffectiveSession()))
	}
	fmt.Fprintln(&sb)
	fmt.Fprintf(&sb, "  needs at least %.2f calls/s sustained (%s)\n", f.FloorCallsPerSecond(), floorString(f))
	boot := fmt.Sprintf("boots over the first %v", short(o.SVIDTTL/2))
	if o.BootWindow > 0 {
		boot = fmt.Sprintf("boots staged over the first %v (80%% of the quota)", short(o.BootWindow.Round(time.Second)))
	}
	fmt.Fprintf(&sb, "simulated: %v, %s, a SPIRE server restart at %v rotating every SVID within %v, seed %d\n\n",
		short(o.Duration), boot, short(o.RestartAt), short(o.RestartWindow), o.Seed)

	budget := int(o.QuotaPerSecond * o.Duration.Seconds())
	if a.Holds {
		fmt.Fprintf(&sb, "HOLDS: no workload ever held credentials with less than %v left, none expired; %d calls in the day (%.0f%% of the quota's %d), mean %.2f/s, peak accepted %d/s, %.2f%% throttled and retried; least left at a replacement %v\n",
			short(FreshnessGoal), r.Calls, 100*float64(r.Calls)/float64(budget), budget, r.MeanCallsPerSecond, r.PeakAcceptedPerSecond,
			r.ThrottledPercent(), r.MinRemaining.Round(time.Second))
	} else {
		fmt.Fprintf(&sb, "DOES NOT HOLD: %s\n", failure(r, budget))
	}
	if a.Searched {
		switch {
		case a.Largest == 0:
			fmt.Fprintf(&sb, "largest fleet that holds: fewer than %d profiles with these numbers\n", a.FirstFailing)
		case a.FirstFailing == 0:
			fmt.Fprintf(&sb, "largest fleet that holds: at least %d profiles (the search stops at %d times the fleet; %d simulations)\n", a.Largest, a.Largest/a.Fleet.Profiles, a.Runs)
		default:
			fmt.Fprintf(&sb, "largest fleet that holds: %d profiles (%d fail; search step %d, %d simulations)\n", a.Largest, a.FirstFailing, a.Resolution, a.Runs)
		}
		if a.Largest > 0 {
			fmt.Fprintf(&sb, "margin: %+.0f%% (%+d profiles)\n", 100*a.Margin(), a.Largest-f.Profiles)
		}
	}
	if !a.Holds || a.Searched && a.Margin() < 0.1 {
		sb.WriteString(advice(f))
	}
	return sb.String()
}

// short prints a duration without zero units: 1h, 28m, 12h, 1h30m, 5s.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func refreshString(f Fleet) string {
	if !f.OnRotation {
		return fmt.Sprintf("refresh { on_rotation = false, jitter_fraction = %g }", f.JitterFraction)
	}
	return fmt.Sprintf("refresh { rotation_spread = %q, jitter_fraction = %g }", short(f.RotationSpread), f.JitterFraction)
}

func floorString(f Fleet) string {
	s := f.EffectiveSession()
	if f.OnRotation && f.SVIDTTL/2 < 2*s/3 {
		return fmt.Sprintf("one call per profile per SVID rotation: %d / %v", f.Profiles, short(f.SVIDTTL/2))
	}
	return fmt.Sprintf("one call per profile per two thirds of a session: %d / %v", f.Profiles, short(2*s/3))
}

// failure says why a run does not hold.
func failure(r Result, budget int) string {
	switch {
	case r.Expiries > 0:
		return fmt.Sprintf("workloads' credentials expired without a replacement (the run stopped at the first lapse; %d calls, %.0f%% throttled)", r.Calls, r.ThrottledPercent())
	case r.Violations > 0:
		return fmt.Sprintf("a workload's credentials were replaced with less than %v left (the run stopped at the first lapse; %d calls, %.0f%% throttled)", short(FreshnessGoal), r.Calls, r.ThrottledPercent())
	default:
		return fmt.Sprintf("the fleet sent more calls than the quota allows in a day (%d, throttled ones included, over %d): it keeps its own workloads supplied only by hammering the account with 429s, leaving nothing for anyone else on it", r.Calls, budget)
	}
}

// advice names the knobs that raise the capacity, the way docs/fleet-simulation.md does.
func advice(f Fleet) string {
	var sb strings.Builder
	sb.WriteString("to serve more profiles:\n")
	if f.OnRotation {
		sb.WriteString("  - refresh { on_rotation = false } with a longer session_duration (one call per session instead of per rotation; 12h sessions serve 217,500 profiles on 10 calls/s)\n")
	} else if f.SessionDuration < 12*time.Hour && f.AssumeRoleHops == 0 {
		sb.WriteString("  - a longer session_duration (up to 12h): one call per two thirds of a session\n")
	}
	if f.OnRotation {
		sb.WriteString("  - a longer SVID TTL (the default policy calls once per profile per SVID half-life)\n")
	}
	sb.WriteString("  - ask AWS for a higher CreateSession quota (then pass it as --quota), or split the profiles across accounts or regions\n")
	return sb.String()
}

// JSON is the answer as `plan --output json` prints it.
type JSON struct {
	Profiles          int     `json:"profiles"`
	Holds             bool    `json:"holds"`
	QuotaPerSecond    float64 `json:"quota_per_second"`
	FloorPerSecond    float64 `json:"floor_calls_per_second"`
	Calls             int     `json:"calls"`
	MeanPerSecond     float64 `json:"mean_calls_per_second"`
	ThrottledPercent  float64 `json:"throttled_percent"`
	Lapses            int     `json:"lapses"`
	MinRemainingSecs  float64 `json:"min_remaining_seconds"`
	Largest           int     `json:"largest_fleet,omitempty"`
	FirstFailing      int     `json:"first_failing_fleet,omitempty"`
	MarginPercent     float64 `json:"margin_percent,omitempty"`
	SearchResolution  int     `json:"search_resolution,omitempty"`
	Simulations       int     `json:"simulations"`
	SimulatedDuration string  `json:"simulated_duration"`
}

// JSON returns the answer's figures for `plan --output json`.
func (a Answer) JSON() JSON {
	j := JSON{
		Profiles: a.Fleet.Profiles, Holds: a.Holds, QuotaPerSecond: a.Fleet.QuotaPerSecond, FloorPerSecond: a.Fleet.FloorCallsPerSecond(),
		Calls: a.Run.Calls, MeanPerSecond: a.Run.MeanCallsPerSecond, ThrottledPercent: a.Run.ThrottledPercent(),
		Lapses: a.Run.Violations, MinRemainingSecs: a.Run.MinRemaining.Seconds(), Simulations: a.Runs,
		SimulatedDuration: a.Options.Duration.String(),
	}
	if a.Searched {
		j.Largest, j.FirstFailing, j.SearchResolution = a.Largest, a.FirstFailing, a.Resolution
		j.MarginPercent = 100 * a.Margin()
	}
	return j
}
