package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/plan"
)

// fleetCapacity runs the node-mode fleet figures of docs/fleet-simulation.md: for each policy of
// plan.NodePolicies, the largest fleet one account's 10 calls/s keeps at zero lapses over 24 h; then the
// issue's scenario itself, 200,000 profiles under the recommended policy, in full. It takes minutes, so
// it runs only with -fleet (never in -quick).
func (b *bench) fleetCapacity() error {
	o := plan.DefaultOptions()
	var results []plan.CapacityResult
	for _, np := range plan.NodePolicies() {
		start := time.Now()
		c := plan.Capacity(o, np, 2500, 800000, 2500)
		fmt.Fprintf(os.Stderr, "bench: fleet capacity, %s: %d (first failing %d; %d runs, %v)\n", np.Name, c.Bridges, c.Failed, c.Runs, time.Since(start).Round(time.Second))
		results = append(results, c)
	}
	fmt.Printf("\n%s\n", plan.CapacityTable(o, results))

	o.Bridges = 200000
	rec := plan.NodePolicies()[len(plan.NodePolicies())-1]
	o.Policy, o.SessionDuration = rec.Policy, rec.SessionDuration
	o = plan.StagedRollout(o, 0.8)
	start := time.Now()
	r := plan.Simulate(o)
	fmt.Printf("%s\n(simulated in %v)\n", r.Table(), time.Since(start).Round(time.Second))
	ok := r.Violations == 0 && r.Expiries == 0
	b.add("fleet: 200,000 profiles, 10 calls/s, 24 h, "+rec.Name, fmt.Sprintf("%d lapses, min remaining %v, mean %.2f calls/s", r.Violations, r.MinRemaining.Round(time.Second), r.MeanCallsPerSecond), "0 lapses", pass(ok))
	return nil
}
