package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/schedule"
)

// TestDefaultPolicyKeepsTenThousandBridgesFresh is the fleet's goal: 10,000 bridges, one account's 10 TPS
// quota, 1h SVIDs rotated at half-life, 1h sessions, 24h with a SPIRE server restart that makes every
// agent rotate at once — and no workload ever holds credentials with less than 15 minutes left.
func TestDefaultPolicyKeepsTenThousandBridgesFresh(t *testing.T) {
	r := Simulate(DefaultOptions())
	t.Logf("\n%s", r.Table())
	if r.Violations != 0 || r.Expiries != 0 {
		t.Fatalf("%d violations on %d bridges, %d expiries; minimum remaining %v", r.Violations, r.ViolatingBridges, r.Expiries, r.MinRemaining)
	}
	if r.MinRemaining < FreshnessGoal {
		t.Fatalf("minimum remaining lifetime %v < %v", r.MinRemaining, FreshnessGoal)
	}
	if r.Successes == 0 || r.Calls < r.Successes {
		t.Fatalf("implausible run: %d calls, %d successes", r.Calls, r.Successes)
	}
}

// TestNarrowRotationSpreadStarvesWorkloads shows that the simulation can fail: the previous default
// spread (10m) makes a fleet that rotates in step exceed the quota, and some workloads fall below 15m.
func TestNarrowRotationSpreadStarvesWorkloads(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a 24 h simulation of 10,000 bridges per policy (about 20 s of CPU); TestDefaultPolicyKeepsTenThousandBridgesFresh still runs")
	}
	o := DefaultOptions()
	o.Policy = schedule.Policy{RotationSpread: 10 * time.Minute}
	r := Simulate(o)
	if r.Violations == 0 || r.ThrottledPercent() < 50 {
		t.Fatalf("10m spread: %d violations, %.1f%% throttled; the simulation should show starvation", r.Violations, r.ThrottledPercent())
	}
}

func TestSimulationIsDeterministic(t *testing.T) {
	o := DefaultOptions()
	o.Bridges, o.Duration, o.RestartAt = 500, 6*time.Hour, 3*time.Hour
	a, b := Simulate(o), Simulate(o)
	if a.Table() != b.Table() {
		t.Fatal("two runs with the same options differ")
	}
	o.Seed++
	if c := Simulate(o); c.Table() == a.Table() {
		t.Fatal("a different seed gave the same run")
	}
	if !strings.Contains(a.Table(), "after restart") {
		t.Fatalf("table lacks the phases:\n%s", a.Table())
	}
}

// TestTwoHopChainsKeepTheFleetFresh: with two assume_role hops per refresh every successful refresh
// costs one CreateSession and two STS calls, STS's own quota (600/s per hop's account) never throttles,
// and the freshness goal holds.
func TestTwoHopChainsKeepTheFleetFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a 24 h simulation of 10,000 bridges with two hops each (about 10 s of CPU); the full run covers it")
	}
	o := DefaultOptions()
	o.ChainHops = 2
	r := Simulate(o)
	t.Logf("\n%s", r.Table())
	if r.Violations != 0 || r.Expiries != 0 || r.STSThrottled != 0 {
		t.Fatalf("%d violations, %d expiries, %d STS throttles", r.Violations, r.Expiries, r.STSThrottled)
	}
	// Every CreateSession that succeeded led to two hops (those still in flight at the end excepted).
	accepted := r.Calls - r.Throttled
	if r.STSCalls > 2*accepted || r.STSCalls < 2*accepted-2*o.Bridges || r.Successes > accepted {
		t.Fatalf("%d accepted CreateSession calls, %d STS calls, %d successes", accepted, r.STSCalls, r.Successes)
	}
	if !strings.Contains(r.Table(), "2 STS AssumeRole hop(s) per refresh") {
		t.Fatalf("the table does not report the hops:\n%s", r.Table())
	}
}

// TestThrottledHopsRedoCreateSession: when a hop's STS quota is too small, throttled hops fail the
// refresh and the retry spends another CreateSession: more Roles Anywhere calls than without a chain.
func TestThrottledHopsRedoCreateSession(t *testing.T) {
	o := DefaultOptions()
	o.Bridges, o.Duration, o.RestartAt = 2000, 6*time.Hour, 3*time.Hour
	plain := Simulate(o)
	o.ChainHops, o.STSQuotaPerSecond, o.STSBurst = 1, 0.5, 1
	chained := Simulate(o)
	if chained.STSThrottled == 0 || chained.Calls <= plain.Calls {
		t.Fatalf("STS quota 0.5/s: %d STS throttles, %d CreateSession calls (without a chain %d)", chained.STSThrottled, chained.Calls, plain.Calls)
	}
}

// TestShortSVIDsCallOncePerRotation: the simulated bridges report each SVID's validity as the refresher
// does, so the schedule bounds the spread by the SVID's half-life. With 2m SVIDs (rotated every minute)
// and the default policy, every rotation is followed by its own call: one call per bridge per rotation,
// the rate plan's floor assumes. Without the bound, a 28m spread made about one call per six rotations.
func TestShortSVIDsCallOncePerRotation(t *testing.T) {
	o := DefaultOptions()
	o.Bridges, o.Duration, o.SVIDTTL, o.RestartAt = 100, 2*time.Hour, 2*time.Minute, time.Hour
	o.QuotaPerSecond, o.Burst = 1000, 1000 // no throttling: count the schedule's calls alone
	r := Simulate(o)
	rotations := o.Bridges * int(o.Duration/(o.SVIDTTL/2)) // each bridge's first SVID included
	t.Logf("%d calls for %d SVIDs", r.Calls, rotations)
	if r.Throttled != 0 || r.Calls < rotations*98/100 || r.Calls > rotations {
		t.Fatalf("%d calls (%d throttled) for %d SVIDs delivered; want one per SVID", r.Calls, r.Throttled, rotations)
	}
}
