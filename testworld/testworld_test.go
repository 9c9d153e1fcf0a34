package testworld_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// createSession signs a CreateSession with s against the world's emulator, as the bridge does.
func createSession(w *testworld.World, leaf svidtest.MintOptions, id spiffeid.ID, ca *svidtest.CA) error {
	s, err := ca.MintX509SVID(id, leaf)
	if err != nil {
		return err
	}
	_, err = signer.New(signer.Options{Retry: signer.RetryPolicy{MaxAttempts: 1}}).CreateSession(context.Background(), signer.CreateSessionInput{
		Identity:       signer.Identity{Leaf: s.Certificates[0], Intermediates: s.Certificates[1:], Key: s.PrivateKey},
		TrustAnchorARN: w.TrustAnchorARN, ProfileARN: w.ProfileARN, RoleARN: testworld.RoleARN, Endpoint: w.Emulator.URL,
	})
	return err
}

// TestTheEmulatorTrustsTheAgentsCAAndNoOther: the world's role admits an SVID of the agent's CA under
// WorkloadPattern, and refuses one outside it and one from another CA; in another region too.
func TestTheEmulatorTrustsTheAgentsCAAndNoOther(t *testing.T) {
	other, err := svidtest.NewCA(svidtest.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, region := range []string{"", "eu-west-1"} {
		name := "region " + region
		if region == "" {
			name = "default region"
		}
		t.Run(name, func(t *testing.T) {
			w := testworld.New(t, testworld.Options{Region: region})
			if want := testworld.Region; region == "" && (w.Region != want || w.TrustAnchorARN != testworld.TrustAnchorARN || w.ProfileARN != testworld.ProfileARN) {
				t.Fatalf("default world in %s: %s %s", w.Region, w.TrustAnchorARN, w.ProfileARN)
			}
			if region != "" && (w.Region != region || !strings.Contains(w.TrustAnchorARN, ":"+region+":") || !strings.Contains(w.ProfileARN, ":"+region+":")) {
				t.Fatalf("world in %s: %s %s %s", region, w.Region, w.TrustAnchorARN, w.ProfileARN)
			}
			if err := createSession(w, svidtest.MintOptions{}, w.ID, w.Agent.CA()); err != nil {
				t.Fatalf("the agent's SVID for %s: %v", w.ID, err)
			}
			var api *signer.APIError
			if err := createSession(w, svidtest.MintOptions{}, spiffeid.RequireFromString("spiffe://example.org/ns/dev/app"), w.Agent.CA()); !errors.As(err, &api) || api.StatusCode != 403 {
				t.Fatalf("an SVID outside %s: %v, want 403", testworld.WorkloadPattern, err)
			}
			if err := createSession(w, svidtest.MintOptions{}, w.ID, other); !errors.As(err, &api) || api.StatusCode != 403 {
				t.Fatalf("an SVID of another CA: %v, want 403", err)
			}
		})
	}
}

// TestBuiltConfigsParseAsTheBridgeReadsThem: every block the builder writes is one the bridge's config
// accepts, naming the world's agent, ARNs and emulator.
func TestBuiltConfigsParseAsTheBridgeReadsThem(t *testing.T) {
	w := testworld.New(t, testworld.Options{Chain: true})
	creds := filepath.Join(w.Dir, "credentials")
	path := w.WriteConfig(t, "bridge.hcl", testworld.HealthChecks(8081), testworld.Telemetry(9090),
		w.Profile("app", "  session_duration = \"15m\"", testworld.CredentialsFile(creds), w.ChainHops(testworld.ExternalID, "")),
		w.ProfileBlock("other", testworld.JWTRoleARN, ""))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, w.Config())
	}
	if cfg.AgentAddress != w.Agent.Addr() || cfg.HealthChecks == nil || cfg.HealthChecks.BindPort != 8081 || cfg.Telemetry == nil || len(cfg.Profiles) != 2 {
		t.Fatalf("config: %+v", cfg)
	}
	p := cfg.Profiles[0]
	if p.Name != "app" || p.SpiffeID != testworld.SPIFFEID || p.TrustAnchorARN != testworld.TrustAnchorARN || p.ProfileARN != testworld.ProfileARN ||
		p.RoleARN != testworld.RoleARN || p.Endpoint != w.Emulator.URL || p.SessionDuration.Minutes() != 15 || p.Refresh.RotationSpread != 0 ||
		p.CredentialsFile == nil || p.CredentialsFile.Path != creds {
		t.Fatalf("profile app: %+v", p)
	}
	if len(p.AssumeRole) != 2 || p.AssumeRole[0].RoleARN != testworld.RoleB || p.AssumeRole[0].ExternalID != testworld.ExternalID ||
		p.AssumeRole[1].RoleARN != testworld.RoleC || p.AssumeRole[0].STSEndpoint != w.Emulator.URL {
		t.Fatalf("hops: %+v", p.AssumeRole)
	}
	if o := cfg.Profiles[1]; o.SpiffeID != "" || o.RoleARN != testworld.JWTRoleARN {
		t.Fatalf("profile other: %+v", o)
	}
}

// TestStartAndCloseOutsideATest: Start makes a world of its own directory; Close stops the servers and
// removes the directory.
func TestStartAndCloseOutsideATest(t *testing.T) {
	w, err := testworld.Start(testworld.Options{QuotaPerSecond: -1, STSRoles: []testworld.STSRole{{ARN: testworld.RoleB,
		Principals: []string{testworld.RoleARN}, Conditions: []emulator.Condition{{Test: "StringEquals", Key: "aws:RequestTag/team", Values: []string{"a"}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := createSession(w, svidtest.MintOptions{}, w.ID, w.Agent.CA()); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if _, err := os.Stat(w.Dir); !os.IsNotExist(err) {
		t.Fatalf("%s after Close: %v", w.Dir, err)
	}
	if _, err := os.Stat(w.Agent.SocketPath()); !os.IsNotExist(err) {
		t.Fatalf("the agent's socket after Close: %v", err)
	}
}
