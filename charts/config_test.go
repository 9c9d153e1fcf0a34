package charts

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
)

// TestChartConfigIsOneTheBridgeLoads renders the chart's bridge.hcl for the defaults and every example
// values file and loads it with config.Load, as the DaemonSet's `spiffe-aws-bridge run --config` does: the
// pod_identity block with the values' listen addresses, audience and rules (in order, with their hops),
// the agent's admin socket where the DaemonSet mounts it, health on the node's loopback.
func TestChartConfigIsOneTheBridgeLoads(t *testing.T) {
	helm := helmBinary(t)
	for _, values := range valuesFiles(t) {
		t.Run(filepath.Base(values), func(t *testing.T) {
			objs := render(t, helm, values)
			cm := find(t, objs, "ConfigMap", "-node")
			hcl, _ := nested(t, cm.Object, "data", "bridge.hcl").(string)
			path := filepath.Join(t.TempDir(), "bridge.hcl")
			if err := os.WriteFile(path, []byte(hcl), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatalf("the rendered config does not load: %v\n%s", err, hcl)
			}
			pi := cfg.PodIdentity
			if pi == nil {
				t.Fatal("no pod_identity block")
			}
			var v struct {
				Bridge struct {
					PodIdentity struct{ Listen []string } `json:"podIdentity"`
					Rules       []struct {
						SpiffeID   string `json:"spiffeId"`
						RoleARN    string `json:"roleArn"`
						AssumeRole []struct {
							RoleARN string `json:"roleArn"`
						} `json:"assumeRole"`
					}
				}
			}
			readValues(t, values, &v)
			if want := v.Bridge.PodIdentity.Listen; want != nil && !reflect.DeepEqual(pi.Listen, want) {
				t.Errorf("listen %v, want %v", pi.Listen, want)
			}
			if pi.Audience != "spiffe-aws-bridge" {
				t.Errorf("audience %q", pi.Audience)
			}
			if len(pi.Rules) != len(v.Bridge.Rules) {
				t.Fatalf("%d rules loaded, %d in the values", len(pi.Rules), len(v.Bridge.Rules))
			}
			for i, r := range v.Bridge.Rules {
				got := pi.Rules[i]
				if got.SpiffeID != r.SpiffeID || got.RoleARN != r.RoleARN || len(got.AssumeRole) != len(r.AssumeRole) {
					t.Errorf("rule %d: %+v, want %+v", i, got, r)
				}
				for j, a := range r.AssumeRole {
					if got.AssumeRole[j].RoleARN != a.RoleARN {
						t.Errorf("rule %d hop %d: %s, want %s", i, j, got.AssumeRole[j].RoleARN, a.RoleARN)
					}
				}
			}
			if !pi.VerifySourceAddress {
				t.Errorf("verify_source_address is off; on by default")
			}
			if cfg.DelegatedIdentity == nil || cfg.DelegatedIdentity.AdminAddress != "unix:///run/spire/agent-admin/admin.sock" {
				t.Errorf("delegated_identity %+v, want the admin socket where the DaemonSet mounts it", cfg.DelegatedIdentity)
			}
		})
	}
}

// readValues decodes the chart's default values and then the values file over them into v (lists are
// replaced, as helm does).
func readValues(t *testing.T, file string, v any) {
	t.Helper()
	for _, f := range []string{filepath.Join(chartDir, "values.yaml"), file} {
		if f == "" {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(raw, v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
}

// bridge.podIdentity.verifySourceAddress=false renders verify_source_address = false (CNIs that SNAT).
func TestChartVerifySourceAddressOff(t *testing.T) {
	helm := helmBinary(t)
	cm := find(t, render(t, helm, "", "bridge.podIdentity.verifySourceAddress=false"), "ConfigMap", "-node")
	hcl, _ := nested(t, cm.Object, "data", "bridge.hcl").(string)
	path := filepath.Join(t.TempDir(), "bridge.hcl")
	if err := os.WriteFile(path, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("the rendered config does not load: %v\n%s", err, hcl)
	}
	if cfg.PodIdentity.VerifySourceAddress {
		t.Fatalf("verify_source_address still on:\n%s", hcl)
	}
}
