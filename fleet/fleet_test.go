package fleet

import (
	"strings"
	"testing"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/schedule"
)

// TestDefaultPolicyKeepsTenThousandBridgesFresh is the goal: 10,000 bridges, one account's 10 TPS
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
