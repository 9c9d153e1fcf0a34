package plan

import (
	"testing"
	"time"
)

// TestTimerOnlyServesAFleetTheDefaultCannot: node mode multiplies profiles per account. At twice the
// default scenario's fleet (20,000 profiles on 10 calls/s), refreshing on every rotation starves
// workloads, while the recommended node-mode policy (on_rotation = false, 12h sessions) keeps every
// one supplied with one call per session. The 200,000-profile run is `go run ./cmd/bench -fleet -only
// fleet` (minutes; docs/fleet-simulation.md has its figures).
func TestTimerOnlyServesAFleetTheDefaultCannot(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: two 24 h simulations of 20,000 profiles (about 10 s of CPU); the full run covers it")
	}
	policies := NodePolicies()
	base := DefaultOptions()
	base.Bridges = 20000
	base = StagedRollout(base, 0.8)

	def := base
	def.Policy, def.SessionDuration = policies[0].Policy, policies[0].SessionDuration
	def.StopAtFirstViolation = true
	if r := Simulate(def); r.Violations == 0 {
		t.Fatalf("%s: 20,000 profiles had no violation; the comparison shows nothing", policies[0].Name)
	}

	rec := policies[len(policies)-1]
	o := base
	o.Policy, o.SessionDuration = rec.Policy, rec.SessionDuration
	r := Simulate(o)
	t.Logf("\n%s", r.Table())
	if r.Violations != 0 || r.Expiries != 0 {
		t.Fatalf("%s: %d violations, %d expiries", rec.Name, r.Violations, r.Expiries)
	}
	// One call per session (about every 7.4 h), not one per rotation (every 30 min): well under the quota.
	if perProfileDay := float64(r.Successes) / float64(o.Bridges); perProfileDay > 5 {
		t.Fatalf("%.1f sessions per profile per day; on_rotation = false should need about 3–4", perProfileDay)
	}
}

// The capacity search brackets the answer: the fleet it reports passes, the first failing one fails.
func TestCapacitySearchBrackets(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a capacity search of several 24 h simulations (about 12 s of CPU); the full run covers it")
	}
	o := DefaultOptions()
	o.Duration, o.RestartAt = 6*time.Hour, 3*time.Hour
	np := NodePolicies()[0]
	c := Capacity(o, np, 1000, 64000, 1000)
	if c.Bridges == 0 || c.Failed == 0 || c.Failed-c.Bridges > 1000 || c.Best.Violations != 0 {
		t.Fatalf("capacity %+v", c)
	}
	x := o
	x.Policy, x.SessionDuration, x.Bridges, x.StopAtFirstViolation = np.Policy, np.SessionDuration, c.Failed, true
	if r := Simulate(StagedRollout(x, 0.8)); r.Violations == 0 {
		t.Fatalf("the first failing fleet (%d) passes", c.Failed)
	}
	if got := StagedRollout(Options{Bridges: 200000, QuotaPerSecond: 10, SVIDTTL: time.Hour, Duration: 24 * time.Hour}, 0.8).BootWindow; got != 25000*time.Second {
		t.Fatalf("staged roll-out of 200,000 at 8/s: %v, want 25000s", got)
	}
}
