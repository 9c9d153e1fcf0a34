package plan

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/schedule"
)

// NamedPolicy is a refresh policy as an operator configures it: the schedule's policy and the session
// duration (both config keys of a profile).
type NamedPolicy struct {
	// Name says what the policy is, in config terms.
	Name string
	// Policy is the refresh policy (zero fields take the defaults).
	Policy schedule.Policy
	// SessionDuration is the profile's session_duration.
	SessionDuration time.Duration
}

// NodePolicies are the policies compared for node mode's fleets (docs/fleet-simulation.md): the default,
// and on_rotation = false with sessions of 1h, 4h and 12h. The last is the recommended node-mode policy.
func NodePolicies() []NamedPolicy {
	return []NamedPolicy{
		{"default (on_rotation, spread 28m), 1h sessions", schedule.Policy{}, time.Hour},
		{"default (on_rotation, spread 28m), 12h sessions", schedule.Policy{}, 12 * time.Hour},
		{"on_rotation = false, 1h sessions", schedule.Policy{TimerOnly: true}, time.Hour},
		{"on_rotation = false, 4h sessions", schedule.Policy{TimerOnly: true}, 4 * time.Hour},
		{"on_rotation = false, 12h sessions (recommended)", schedule.Policy{TimerOnly: true}, 12 * time.Hour},
	}
}

// StagedRollout returns o with boots spread so that first sessions are asked for at no more than
// fraction of the quota (never faster than over the first SVID half-life): a fleet larger than the quota
// can serve in a half-life cannot all start at once, whatever the policy, and the capacity search
// measures the steady state rather than that start.
func StagedRollout(o Options, fraction float64) Options {
	w := time.Duration(float64(o.Bridges) / (fraction * o.QuotaPerSecond) * float64(time.Second))
	if w > o.SVIDTTL/2 {
		o.BootWindow = min(w, o.Duration/2)
	}
	return o
}

// CapacityResult is the largest fleet a policy keeps at zero violations.
type CapacityResult struct {
	Policy NamedPolicy
	// Bridges is the largest fleet tried with zero violations (and no expiry); Failed the smallest
	// tried with some (zero when none failed up to the search's ceiling).
	Bridges, Failed int
	// Best is the run at Bridges.
	Best Result
	// Runs is how many simulations the search took.
	Runs int
}

// Capacity searches the largest fleet that np keeps at zero violations under the quota in scenario o —
// zero lapses, and no more calls (throttled ones included) than the quota allows over the run: a policy
// that keeps its own workloads supplied by hammering the account's quota with 429s leaves nothing for
// anyone else on the account —  (o.Bridges and the
// policy fields are replaced; boots are staged as StagedRollout(…, 0.8) does): from lo it doubles the
// fleet until one fails or hi passes, then bisects to within resolution bridges. Failing runs stop at
// their first violation.
func Capacity(o Options, np NamedPolicy, lo, hi, resolution int) CapacityResult {
	o.Policy, o.SessionDuration = np.Policy, np.SessionDuration
	res := CapacityResult{Policy: np}
	run := func(n int) (Result, bool) {
		res.Runs++
		return holds(o, n)
	}
	for n := lo; ; n = min(2*n, hi) {
		r, ok := run(n)
		if !ok {
			res.Failed = n
			break
		}
		res.Bridges, res.Best = n, r
		if n == hi {
			return res
		}
	}
	if res.Bridges == 0 {
		return res
	}
	for res.Failed-res.Bridges > resolution {
		mid := (res.Bridges + res.Failed) / 2
		if r, ok := run(mid); ok {
			res.Bridges, res.Best = mid, r
		} else {
			res.Failed = mid
		}
	}
	return res
}

// CapacityTable prints one row per policy: the largest fleet at zero violations, its call rate and
// freshness.
func CapacityTable(o Options, results []CapacityResult) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "capacity: %v simulated, quota %g calls/s (burst %d), SVID TTL %v, SPIRE server restart at %v, staged roll-out at 80%% of the quota\n",
		o.Duration, o.QuotaPerSecond, o.Burst, o.SVIDTTL, o.RestartAt)
	w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "policy\tlargest fleet (0 lapses, calls ≤ quota)\tfirst failing\tmean calls/s\tthrottled %\tmin remaining\tfirst credentials within\t")
	for _, c := range results {
		failed := "-"
		if c.Failed > 0 {
			failed = fmt.Sprint(c.Failed)
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%.2f\t%.2f\t%v\t%v\t\n", c.Policy.Name, c.Bridges, failed, c.Best.MeanCallsPerSecond,
			c.Best.ThrottledPercent(), c.Best.MinRemaining.Round(time.Second), c.Best.MaxFirstCredentials.Round(time.Second))
	}
	w.Flush()
	return sb.String()
}
