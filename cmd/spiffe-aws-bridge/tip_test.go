package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// originTrustFromPolicy is what an IAM administrator would configure from a printed trust policy with
// its conditions, as the emulator models it: the external id, and every other StringEquals key as a
// condition.
func originTrustFromPolicy(t *testing.T, doc string) *emulator.STSTrust {
	t.Helper()
	tr := trustFromPolicy(t, doc)
	var p struct {
		Statement []struct {
			Condition struct{ StringEquals map[string]string }
		}
	}
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		t.Fatal(err)
	}
	for k, v := range p.Statement[0].Condition.StringEquals {
		if k != "sts:ExternalId" {
			tr.Conditions = append(tr.Conditions, &emulator.Condition{Test: "StringEquals", Key: k, Values: []string{v}})
		}
	}
	return tr
}

// TestCheckReadsTIPAndPrintsOriginIdentityTrustPolicies: with trusted identity propagation on, check
// reads it from the emulator and prints for each hop a trust policy conditioned on
// aws:OriginIdentity/Subject = the SVID's SPIFFE ID; applied as printed, the chain passes, and the same
// policy for another SPIFFE ID refuses it. With TIP off, check warns that the hops rely on the spoofable
// spiffe-id tag and prints the origin-conditioned policy to move to.
func TestCheckReadsTIPAndPrintsOriginIdentityTrustPolicies(t *testing.T) {
	t.Run("TIP on", func(t *testing.T) {
		w := chainWorldWith(t, `  tip {
    status         = "ENABLED"
    subject_source = "x509SAN/URI"
    subject_type   = "workload"
  }
`)
		w.Emulator.SetSTSTrust(testworld.RoleB, nil)
		w.Emulator.SetSTSTrust(testworld.RoleC, nil)
		cfg := w.WriteConfig(t, "check-tip.hcl", w.ProfileBlock("app", testworld.RoleARN, `  spiffe_id = "`+testworld.SPIFFEID+`"
`+w.ChainHops(testworld.ExternalID, "")))
		r := runBin(t, nil, "check", "--config", cfg)
		if !strings.Contains(r.stdout, "trusted identity propagation is on: subject source x509SAN/URI, subject type workload; aws:OriginIdentity/Subject = "+testworld.SPIFFEID) {
			t.Fatalf("check does not report TIP:\n%s%s", r.stdout, r.stderr)
		}
		if strings.Contains(r.stdout, "warn hop") {
			t.Fatalf("check warns about the spiffe-id tag although TIP is on:\n%s", r.stdout)
		}
		policies := printedTrustPolicies(t, r.stdout)
		if len(policies) != 2 {
			t.Fatalf("check printed %d trust policies:\n%s", len(policies), r.stdout)
		}
		b, c := originTrustFromPolicy(t, policies[testworld.RoleB]), originTrustFromPolicy(t, policies[testworld.RoleC])
		for name, tr := range map[string]*emulator.STSTrust{"B": b, "C": c} {
			if len(tr.Conditions) != 1 || tr.Conditions[0].Key != "aws:OriginIdentity/Subject" || tr.Conditions[0].Values[0] != testworld.SPIFFEID {
				t.Fatalf("%s's printed trust policy is not conditioned on the SPIFFE ID as origin identity: %+v\n%s", name, tr, r.stdout)
			}
		}
		w.Emulator.SetSTSTrust(testworld.RoleB, b)
		w.Emulator.SetSTSTrust(testworld.RoleC, c)
		if r := runBin(t, nil, "check", "--config", cfg); r.code != 0 || !strings.Contains(r.stdout, "ok   hop 2 succeeded") {
			t.Fatalf("with the printed trust policies the chain fails (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
		}
		b.Conditions[0].Values = []string{"spiffe://example.org/ns/prod/someone-else"}
		w.Emulator.SetSTSTrust(testworld.RoleB, b)
		if r := runBin(t, nil, "check", "--config", cfg); r.code == 0 || !strings.Contains(r.stdout, "FAIL hop 1 ("+testworld.RoleB+"): AccessDenied") {
			t.Fatalf("a trust policy for another SPIFFE ID admitted the chain (exit %d):\n%s", r.code, r.stdout)
		}
	})
	t.Run("TIP off", func(t *testing.T) {
		w := chainWorld(t)
		cfg := w.WriteConfig(t, "check-notip.hcl", w.ProfileBlock("app", testworld.RoleARN, `  spiffe_id = "`+testworld.SPIFFEID+`"
`+w.ChainHops(testworld.ExternalID, "")))
		r := runBin(t, nil, "check", "--config", cfg)
		if r.code != 0 {
			t.Fatalf("a warning made check fail (exit %d):\n%s", r.code, r.stdout)
		}
		for _, want := range []string{
			"trusted identity propagation is off for profile " + testworld.ProfileARN,
			"--tip-configuration status=ENABLED,subjectSource=x509SAN/URI,subjectType=workload",
			`warn hop 1 relies on the "spiffe-id" session tag`, `warn hop 2 relies on the "spiffe-id" session tag`,
			`"aws:OriginIdentity/Subject": "` + testworld.SPIFFEID + `"`,
		} {
			if !strings.Contains(r.stdout, want) {
				t.Fatalf("check's output lacks %q:\n%s", want, r.stdout)
			}
		}
		for role, doc := range printedTrustPolicies(t, r.stdout) {
			if strings.Contains(doc, "aws:OriginIdentity") {
				t.Fatalf("without TIP the trust policy check says %s needs is conditioned on the origin identity:\n%s", role, doc)
			}
		}
	})
}
