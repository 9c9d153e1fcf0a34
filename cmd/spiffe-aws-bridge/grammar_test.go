package main

import (
	"strings"
	"testing"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// durationAnswers are the four values every duration flag is judged on, and what each means.
var durationAnswers = map[string]time.Duration{"5m": 5 * time.Minute, "90m": 90 * time.Minute, "3600": time.Hour, "PT1H": time.Hour}

// TestEveryDurationTakesTheOneGrammar: 5m, 90m, 3600 and PT1H mean the same wherever the three binaries
// take a duration (a Go duration, seconds as aws_signing_helper's --session-duration, ISO 8601 as
// spiffe-aws-assume-role's), and a value out of range exits 2 naming the flag, the range in the three
// forms and the bound it crossed.
func TestEveryDurationTakesTheOneGrammar(t *testing.T) {
	w := newWorld(t)
	const tooShort = "is too short: the minimum is 15m; give 15m to 12h (900 to 43200 seconds, PT15M to PT12H)"

	// The session of every one-shot: AWS (here the emulator) is asked for that long.
	arns := []string{"--trust-anchor-arn", testworld.TrustAnchorARN, "--profile-arn", testworld.ProfileARN, "--role-arn", testworld.RoleARN,
		"--workload-socket", w.Agent.Addr(), "--endpoint", w.Emulator.URL}
	oneShots := map[string][]string{
		"spiffe-aws-bridge credential-process":             append([]string{binPath, "credential-process"}, arns...),
		"spiffe-aws-credential-process":                    append([]string{leanPath}, arns...),
		"spiffe-aws-credential-process credential-process": append([]string{leanPath, "credential-process"}, arns...),
		"spiffe-aws-bridge rolesanywhere":                  append([]string{binPath, "rolesanywhere"}, arns...),
		"spiffe-aws-bridge credentials": {binPath, "credentials", "--audience", testworld.Audience, "--role-arn", testworld.JWTRoleARN,
			"--workload-socket", w.Agent.Addr(), "--sts-endpoint", w.Emulator.URL},
	}
	for name, argv := range oneShots {
		for value, want := range durationAnswers {
			t.Run(name+" --session-duration "+value, func(t *testing.T) {
				r := runArgv(t, nil, append(append([]string{}, argv...), "--session-duration", value)...)
				if want < 15*time.Minute {
					if r.code != 2 || !strings.Contains(r.stderr, "--session-duration "+value+" "+tooShort) || r.stdout != "" {
						t.Fatalf("exit %d, stderr %q, want 2 and %q", r.code, r.stderr, tooShort)
					}
					return
				}
				start := time.Now()
				d := parseProcessJSON(t, r)
				exp, _ := time.Parse(time.RFC3339, d.Expiration)
				if got := exp.Sub(start); got < want-time.Minute || got > want+time.Minute {
					t.Errorf("credentials last %v, want %v", got.Round(time.Second), want)
				}
			})
		}
	}

	// Every other duration flag: accepted values let the command go on to the next check (a flag that
	// follows, deliberately wrong); out-of-range ones are named.
	for _, tc := range []struct {
		name    string
		argv    func(v string) []string
		next    string            // the later check an accepted value reaches
		refused map[string]string // value → the message it gets
	}{
		{name: "spiffe-aws-bridge dev --rotate-every", argv: func(v string) []string {
			return []string{binPath, "dev", "--rotate-every", v, "--log-level", "loud"}
		}, next: `--log-level "loud" is not a log level`},
		{name: "spiffe-aws-bridge dev --duration", argv: func(v string) []string {
			return []string{binPath, "dev", "--duration", v, "--log-level", "loud"}
		}, next: `--log-level "loud" is not a log level`},
		{name: "spiffe-aws-bridge dev --session-duration", argv: func(v string) []string {
			return []string{binPath, "dev", "--session-duration", v, "--log-level", "loud"}
		}, next: `--log-level "loud" is not a log level`, refused: map[string]string{"5m": "--session-duration 5m " + tooShort}},
		{name: "spiffe-aws-bridge credential-process --assume-role-duration", argv: func(v string) []string {
			return append(append([]string{binPath, "credential-process"}, arns...),
				"--assume-role-arn", "arn:aws:iam::210987654321:role/b", "--assume-role-duration", v, "--certificate", "only.pem")
		}, next: "--certificate and --private-key go together", refused: map[string]string{
			"5m":  "--assume-role-duration 5m is too short: the minimum is 15m; give 15m to 1h (900 to 3600 seconds, PT15M to PT1H)",
			"90m": "--assume-role-duration 90m is too long: the maximum is 1h; give 15m to 1h (900 to 3600 seconds, PT15M to PT1H)",
		}},
		{name: "rolesanywhere-emulator --latency", argv: func(v string) []string {
			return []string{emuPath(), "--config", "emulator.hcl", "--latency", v, "--log-level", "loud"}
		}, next: `--log-level "loud" is not a log level`},
	} {
		for value := range durationAnswers {
			t.Run(tc.name+" "+value, func(t *testing.T) {
				r := runArgv(t, nil, tc.argv(value)...)
				want := tc.next
				if msg, ok := tc.refused[value]; ok {
					want = msg
				}
				if r.code != 2 || !strings.Contains(r.stderr, want) {
					t.Errorf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, want)
				}
			})
		}
	}
}
