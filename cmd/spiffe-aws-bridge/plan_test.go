package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestPlanCommand: plan's flags reach the simulation (a fleet the quota cannot serve exits 1 with the
// verdict, in text or JSON; --nodes multiplies), and bad numbers are usage errors naming the flag.
func TestPlanCommand(t *testing.T) {
	runPlan := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), append([]string{"plan"}, args...), strings.NewReader(""), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}

	// 20 nodes × 100 workloads on half a call per second: 43,200 calls a day for 2,000 profiles that
	// need one each per SVID half-life.
	code, out, stderr := runPlan("--nodes", "20", "--profiles", "100", "--quota", "0.5", "--search=false")
	if code != 1 || !strings.Contains(out, "fleet: 2000 profiles") || !strings.Contains(out, "quota of 0.5 CreateSession calls/s (burst 1)") ||
		!strings.Contains(out, "DOES NOT HOLD") || strings.Contains(out, "largest fleet") || stderr != "" {
		t.Errorf("exit %d, stdout:\n%s\nstderr: %s", code, out, stderr)
	}

	// The numbers the config takes, in JSON: 50 profiles with timer-only 12h sessions on a twentieth of a
	// call per second (4,320 calls a day) hold, and the search finds room for more, but not 64 times more.
	code, out, stderr = runPlan("--profiles", "50", "--on-rotation=false", "--session-duration", "PT12H", "--quota", "0.05", "--output", "json")
	var j struct {
		Profiles     int     `json:"profiles"`
		Holds        bool    `json:"holds"`
		Largest      int     `json:"largest_fleet"`
		FirstFailing int     `json:"first_failing_fleet"`
		Floor        float64 `json:"floor_calls_per_second"`
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil || code != 0 || stderr != "" {
		t.Fatalf("exit %d, %v, stdout %q, stderr %q", code, err, out, stderr)
	}
	if j.Profiles != 50 || !j.Holds || j.Largest < 100 || j.FirstFailing == 0 || j.FirstFailing > 50*64 || j.Floor < 0.0017 || j.Floor > 0.0018 { // 50 / 8h
		t.Errorf("json %+v\n%s", j, out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing required flag(s): --profiles"},
		{[]string{"--profiles", "0"}, "profiles must be at least 1, got 0"},
		{[]string{"--profiles", "10", "--session-duration", "13h"}, "--session-duration 13h is too long"},
		{[]string{"--profiles", "10", "--output", "yaml"}, `--output "yaml": want text or json`},
		{[]string{"--profiles", "10", "--jitter-fraction", "0.9"}, "jitter_fraction must be in (0, 0.5], got 0.9"},
	} {
		if code, out, stderr := runPlan(tc.args...); code != 2 || !strings.Contains(stderr, tc.want) || out != "" {
			t.Errorf("plan %q: exit %d, stdout %q, stderr %q; want 2 and %q", tc.args, code, out, stderr, tc.want)
		}
	}
}
