package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestStaysLean fails when the lean binary starts to link what only the daemon and the other commands
// need: every package linked is initialised at each start, which is the start-up cost this binary exists
// to avoid. The end-to-end tests of the command itself run in cmd/spiffe-aws-bridge, with both binaries.
func TestStaysLean(t *testing.T) {
	out, err := exec.Command("go", "list", "-tags", "grpcnotrace", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	// Small leaves of the heavy trees, with no initialisation to speak of, that the config and ARN
	// validation shared with the daemon use.
	allowed := []string{
		"github.com/aws/aws-sdk-go-v2/aws/arn",                       // ARN parsing, no dependencies
		"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/hook", // config validates hook commands
	}
	for _, heavy := range []string{
		"github.com/prometheus", // the daemon's metrics
		"github.com/aws",        // aws-sdk-go-v2: STS for the JWT commands
		"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge",        // the refresher and its sinks
		"github.com/spiffe-aws-bridge/spiffe-aws-bridge/daemon",        // run
		"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator",      // dev
		"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest", // dev
		"golang.org/x/net/trace",                                       // left out by the grpcnotrace tag
	} {
		for _, d := range deps {
			if (d == heavy || strings.HasPrefix(d, heavy+"/")) && !slices.Contains(allowed, d) {
				t.Errorf("spiffe-aws-credential-process links %s", d)
			}
		}
	}
	// It is the credential-process command, not a copy of it.
	if !slices.Contains(deps, "github.com/spiffe-aws-bridge/spiffe-aws-bridge/credentialprocess") {
		t.Error("spiffe-aws-credential-process does not use credentialprocess")
	}
}

func TestArgsDropsAWSSigningHelpersSubcommand(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{nil, nil},
		{[]string{"--role-arn", "R"}, []string{"--role-arn", "R"}},
		{[]string{"credential-process", "--role-arn", "R"}, []string{"--role-arn", "R"}},
		{[]string{"--debug", "credential-process"}, []string{"--debug", "credential-process"}},
	} {
		if got := args(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("args(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
