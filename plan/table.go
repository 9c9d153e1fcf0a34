package plan

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/schedule"
)

// Table is the result as a printable report: the scenario, the totals, one row per phase and the
// histogram of the lifetime left on credentials when they were replaced.
func (r Result) Table() string {
	var sb strings.Builder
	o := r.Options
	p := o.Policy.WithDefaults()
	boot := fmt.Sprintf("boots spread over the first %v", o.SVIDTTL/2)
	if o.BootWindow > 0 {
		boot = fmt.Sprintf("boots spread over the first %v (staged roll-out)", o.BootWindow)
	}
	if o.ColdStart {
		boot = "cold start (every bridge boots at t=0)"
	}
	restart := "no SPIRE server restart"
	if o.RestartAt > 0 && o.RestartAt < o.Duration {
		restart = fmt.Sprintf("SPIRE server restart at %v (new SVIDs within %v)", o.RestartAt, o.RestartWindow)
	}
	fmt.Fprintf(&sb, "fleet: %d bridges, %v simulated, seed %d; %s; %s\n", o.Bridges, o.Duration, o.Seed, boot, restart)
	fmt.Fprintf(&sb, "  SVID TTL %v (rotated every %v), sessions %v, quota %g calls/s (burst %d), latency %v–%v\n",
		o.SVIDTTL, o.SVIDTTL/2, o.SessionDuration, o.QuotaPerSecond, o.Burst, o.LatencyMin, o.LatencyMax)
	fmt.Fprintf(&sb, "policy: %s\n", policyString(p))
	fmt.Fprintf(&sb, "calls %d (mean %.2f/s, peak %d/s, peak accepted %d/s), throttled %d (%.2f%%), successes %d\n",
		r.Calls, r.MeanCallsPerSecond, r.PeakCallsPerSecond, r.PeakAcceptedPerSecond, r.Throttled, r.ThrottledPercent(), r.Successes)
	if o.ChainHops > 0 {
		fmt.Fprintf(&sb, "role chaining: %d STS AssumeRole hop(s) per refresh, each hop's quota %g calls/s (burst %d): STS calls %d (peak %d/s), throttled %d (%.2f%%)\n",
			o.ChainHops, o.STSQuotaPerSecond, o.STSBurst, r.STSCalls, r.PeakSTSCallsPerSecond, r.STSThrottled, percent(r.STSThrottled, r.STSCalls))
	}
	fmt.Fprintf(&sb, "credentials: min remaining at replacement %v, mean %v; violations (< %v left, or expired) %d on %d bridges; expiries %d; longest wait for first credentials %v\n\n",
		r.MinRemaining.Round(time.Second), r.MeanRemaining.Round(time.Second), FreshnessGoal, r.Violations, r.ViolatingBridges,
		r.Expiries, r.MaxFirstCredentials.Round(time.Millisecond))

	w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "phase\tfrom\tto\tcalls\tmean/s\tpeak/s\taccepted peak/s\tthrottled\tthrottled %\tmin remaining\tviolations\texpiries\t")
	for _, ph := range r.Phases() {
		fmt.Fprintf(w, "%s\t%v\t%v\t%d\t%.2f\t%d\t%d\t%d\t%.2f\t%v\t%d\t%d\t\n", ph.Name, ph.From, ph.To, ph.Calls,
			ph.MeanCallsPerSecond, ph.PeakCallsPerSecond, ph.PeakAcceptedPerSecond, ph.Throttled, ph.ThrottledPercent(),
			ph.MinRemaining.Round(time.Second), ph.Violations, ph.Expiries)
	}
	w.Flush()

	fmt.Fprintf(&sb, "\nremaining lifetime at replacement (5-minute buckets):\n")
	w = tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	for lo := 0; lo < len(r.RemainingHistogram); lo += 5 {
		n := 0
		for m := lo; m < min(lo+5, len(r.RemainingHistogram)); m++ {
			n += r.RemainingHistogram[m]
		}
		fmt.Fprintf(w, "%dm–%dm\t%d\t%.2f%%\t\n", lo, lo+5, n, percent(n, r.Replacements))
	}
	w.Flush()
	return sb.String()
}

func policyString(p schedule.Policy) string {
	spread := p.RotationSpread.String()
	if p.RotationSpread < 0 {
		spread = "none"
	}
	if p.TimerOnly {
		spread = "n/a (on_rotation = false)"
	}
	return fmt.Sprintf("refresh fraction %.3g, min remaining %v, jitter fraction %g, rotation spread %s, retry %v–%v",
		p.RefreshFraction, p.MinRemaining, p.JitterFraction, spread, p.RetryBase, p.RetryMax)
}

// SweepPoint is one run of a sweep: the policy knobs it varied and what it measured.
type SweepPoint struct {
	// RotationSpread is the spread swept; zero means no spread (simulated as the schedule's negative
	// "refresh at once", since a zero Policy field means the default).
	RotationSpread time.Duration
	// JitterFraction is the jitter fraction swept.
	JitterFraction float64
	// Result is the run's result.
	Result Result
}

// Sweep runs base once for every combination of RotationSpread and JitterFraction, the other policy
// fields as in base.Policy, and returns the points in order (spreads outer, jitters inner).
func Sweep(base Options, spreads []time.Duration, jitters []float64) []SweepPoint {
	var out []SweepPoint
	for _, sp := range spreads {
		for _, j := range jitters {
			o := base
			o.Policy.RotationSpread = sp
			if sp == 0 {
				o.Policy.RotationSpread = -1
			}
			o.Policy.JitterFraction = j
			out = append(out, SweepPoint{RotationSpread: sp, JitterFraction: j, Result: Simulate(o)})
		}
	}
	return out
}

// SweepTable prints a sweep, one row per point: quota use (overall, after the restart and with rotations
// aligned) and freshness.
func SweepTable(points []SweepPoint) string {
	var sb strings.Builder
	w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "spread\tjitter\tcalls\tthrottled %\tpeak/s\tpeak/s after restart\tthrottled % after restart\tthrottled % aligned\tmin remaining\tmean remaining\tviolations\texpiries\t")
	for _, pt := range points {
		r := pt.Result
		fmt.Fprintf(w, "%v\t%g\t%d\t%.2f\t%d\t%d\t%.2f\t%.2f\t%v\t%v\t%d\t%d\t\n", pt.RotationSpread, pt.JitterFraction,
			r.Calls, r.ThrottledPercent(), r.PeakCallsPerSecond, r.AfterRestart.PeakCallsPerSecond,
			r.AfterRestart.ThrottledPercent(), r.Aligned.ThrottledPercent(), r.MinRemaining.Round(time.Second),
			r.MeanRemaining.Round(time.Second), r.Violations, r.Expiries)
	}
	w.Flush()
	return sb.String()
}
