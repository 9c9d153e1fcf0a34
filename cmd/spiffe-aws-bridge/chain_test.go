package main

// End-to-end tests of role chaining: account A's Roles Anywhere session → role in account B →
// role in account C, by the daemon and the one-shots, read by the aws CLI from the emulator's STS.

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator"
)

const (
	chainAccountB  = "222222222222"
	chainAccountC  = "333333333333"
	chainRoleB     = "arn:aws:iam::222222222222:role/deployer"
	chainRoleC     = "arn:aws:iam::333333333333:role/workload"
	chainExternal  = "tenant-7"
	chainSessionNm = "example.org@ns.prod.app"
)

// chainWorld is the one-shot world with two more accounts: B's role trusts A's Roles Anywhere role (with
// an external id), C's role trusts B's.
func chainWorld(t *testing.T) *world {
	t.Helper()
	return chainWorldWith(t, "")
}

// chainWorldWith is chainWorld with profileBody (HCL lines) added to the Roles Anywhere profile.
func chainWorldWith(t *testing.T, profileBody string) *world {
	t.Helper()
	w := newWorld(t)
	w.emu.Close()
	caFile := filepath.Join(w.dir, "ca.pem")
	cfgFile := w.write(t, "emulator-chain.hcl", []byte(fmt.Sprintf(`
account_id = %q
trust_anchor %q {
  ca_bundle_file = %q
}
profile %q {
  role_arns = [%q]
%s}
role %q {
  condition {
    tag    = "x509SAN/URI"
    values = ["spiffe://example.org/ns/prod/*"]
  }
}
role %q {
  sts_trust {
    principals          = [%q]
    external_id         = %q
    tag_session         = true
    set_source_identity = true
  }
}
role %q {
  sts_trust {
    principals          = [%q]
    tag_session         = true
    set_source_identity = true
  }
}
`, e2eAccount, e2eTrustAnchor, caFile, e2eProfile, e2eRole, profileBody, e2eRole, chainRoleB, e2eRole, chainExternal, chainRoleC, chainRoleB)))
	cfg, err := emulator.LoadConfig(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	w.emu, err = emulator.NewServer(emulator.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.emu.Close() })
	return w
}

// awsIdentity runs `aws sts get-caller-identity` against the emulator with only env (and IMDS off) and
// returns the account and ARN it prints.
func awsIdentity(t *testing.T, w *world, env []string, args ...string) (account, arn string) {
	t.Helper()
	return awsGetCallerIdentity(t, w, append([]string{"AWS_EC2_METADATA_DISABLED=true"}, env...), args...)
}

// sessionOf is the emulator's view of the session of accessKeyID.
func sessionOf(t *testing.T, w *world, accessKeyID string) emulator.SessionView {
	t.Helper()
	var views []emulator.SessionView
	if err := json.Unmarshal([]byte(httpBody(t, w.emu.URL+"/_emulator/sessions?access_key_id="+accessKeyID)), &views); err != nil || len(views) != 1 {
		t.Fatalf("emulator sessions view for %s: %v %v", accessKeyID, views, err)
	}
	return views[0]
}

func chainHops(w *world, externalID, extraC string) string {
	return fmt.Sprintf(`  assume_role {
    role_arn     = %q
    external_id  = %q
    sts_endpoint = %q
  }
  assume_role {
    role_arn     = %q
    sts_endpoint = %q
%s  }
`, chainRoleB, externalID, w.emu.URL, chainRoleC, w.emu.URL, extraC)
}

// TestDaemonChainsIntoAccountCAndKeepsCredentialsWhenAHopFails is role chaining's end-to-end story.
func TestDaemonChainsIntoAccountCAndKeepsCredentialsWhenAHopFails(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a daemon story of several refreshes through two STS hops (about 50 s); the full run covers it")
	}
	w := chainWorld(t)
	healthPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	metricsPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	credsPath := filepath.Join(w.dir, "aws", "credentials")
	cfg := w.write(t, "bridge-chain.hcl", []byte(fmt.Sprintf(`
agent_address = %q
log_level     = "debug"
health_checks {
  bind_address = "127.0.0.1"
  bind_port    = %d
}
telemetry {
  prometheus {
    host = "127.0.0.1"
    port = %d
  }
}
profile "app" {
  spiffe_id         = %q
  trust_anchor_arn  = %q
  profile_arn       = %q
  role_arn          = %q
  endpoint          = %q
  insecure_endpoint = true
  refresh {
    rotation_spread = "0s"
  }
  credentials_file {
    path = %q
  }
%s}
`, w.agent.Addr(), healthPort, metricsPort, e2eSpiffeID, e2eTrustAnchor, e2eProfile, e2eRole, w.emu.URL, credsPath,
		chainHops(w, chainExternal, "    session_tags = { team = \"payments\" }\n"))))
	d := startDaemon(t, cfg)
	eventually(t, "the credentials file", func() bool { return profileKeys(credsPath, "app")["aws_access_key_id"] != "" })
	first := profileKeys(credsPath, "app")

	account, arn := awsIdentity(t, w, []string{"AWS_SHARED_CREDENTIALS_FILE=" + credsPath}, "--profile", "app")
	if account != chainAccountC || arn != "arn:aws:sts::"+chainAccountC+":assumed-role/workload/"+chainSessionNm {
		t.Fatalf("the aws CLI is %s in account %s; want role workload of account %s", arn, account, chainAccountC)
	}
	v := sessionOf(t, w, first["aws_access_key_id"])
	if v.Tags["spiffe-id"] != e2eSpiffeID || v.Tags["team"] != "payments" || v.SourceIdentity == "" || !v.Chained {
		t.Fatalf("account C's session: %+v", v)
	}
	ready := fmt.Sprintf("http://127.0.0.1:%d/ready", healthPort)
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	if body := httpBody(t, ready); !strings.Contains(body, chainRoleC) {
		t.Fatalf("/ready does not list the chain: %s", body)
	}

	for _, tc := range []struct {
		name   string
		break_ func()
		fix    func()
		role   string
		label  string
		code   string
	}{
		{"wrong external id", func() {
			w.emu.SetSTSTrust(chainRoleB, &emulator.STSTrust{Principals: []string{e2eRole}, ExternalID: "tenant-8", TagSession: true, SetSourceIdentity: true})
		}, func() {
			w.emu.SetSTSTrust(chainRoleB, &emulator.STSTrust{Principals: []string{e2eRole}, ExternalID: chainExternal, TagSession: true, SetSourceIdentity: true})
		}, chainRoleB, "assume_role[0]", "AccessDenied"},
		{"target role does not trust the previous hop", func() {
			w.emu.SetSTSTrust(chainRoleC, &emulator.STSTrust{Principals: []string{"arn:aws:iam::222222222222:role/someone-else"}, TagSession: true, SetSourceIdentity: true})
		}, func() {
			w.emu.SetSTSTrust(chainRoleC, &emulator.STSTrust{Principals: []string{chainRoleB}, TagSession: true, SetSourceIdentity: true})
		}, chainRoleC, "assume_role[1]", "AccessDenied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.break_()
			defer tc.fix()
			if err := w.agent.Rotate(); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the hop's failure in /ready", func() bool {
				body := httpBody(t, ready)
				return strings.Contains(body, `"last_error_hop":"`+tc.role+`"`) && strings.Contains(body, tc.code)
			})
			if code := httpStatus(ready); code != 200 {
				t.Fatalf("/ready = %d while the previous credentials are fresh", code)
			}
			eventually(t, "the hop label in the metrics", func() bool {
				return strings.Contains(httpBody(t, metricsURL), fmt.Sprintf(`error_type=%q,hop=%q`, tc.code, tc.label))
			})
			logs := d.Logs()
			if !strings.Contains(logs, "hop="+tc.role) || !strings.Contains(logs, "trust policy of "+tc.role) {
				t.Fatalf("the log does not name the hop's role and explain the error:\n%s", logs)
			}
			if got := profileKeys(credsPath, "app"); got["aws_access_key_id"] != first["aws_access_key_id"] {
				t.Fatalf("the credentials file changed although hop %s failed", tc.role)
			}
			if account, _ := awsIdentity(t, w, []string{"AWS_SHARED_CREDENTIALS_FILE=" + credsPath}, "--profile", "app"); account != chainAccountC {
				t.Fatalf("the kept credentials are account %s's", account)
			}
		})
	}
	for _, secret := range []string{first["aws_secret_access_key"], first["aws_session_token"]} {
		if strings.Contains(d.Logs(), secret) {
			t.Fatal("the daemon logged a secret")
		}
	}
}

// TestOneShotsChainIntoAccountC: credential-process (both binaries) and rolesanywhere take the
// --assume-role-* flags; a duration over 1h reaches STS and fails with its error named.
func TestOneShotsChainIntoAccountC(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: every one-shot binary through two hops and the aws CLI (about 35 s); the full run covers it")
	}
	w := chainWorld(t)
	// One --external-id per hop, in order: C's trust policy has no external id condition.
	flagsWith := func(external string) []string {
		return []string{"--trust-anchor-arn", e2eTrustAnchor, "--profile-arn", e2eProfile, "--role-arn", e2eRole,
			"--endpoint", w.emu.URL, "--workload-socket", w.agent.Addr(),
			"--assume-role-arn", chainRoleB, "--external-id", external, "--assume-role-arn", chainRoleC, "--external-id", "",
			"--sts-endpoint", w.emu.URL}
	}
	flags := flagsWith(chainExternal)
	for _, argv := range append(credentialProcesses(), []string{binPath, "rolesanywhere"}) {
		t.Run(filepath.Base(strings.Join(argv, " ")), func(t *testing.T) {
			doc := parseProcessJSON(t, runArgv(t, nil, append(argv, flags...)...))
			account, _ := awsIdentity(t, w, []string{"AWS_ACCESS_KEY_ID=" + doc.AccessKeyId, "AWS_SECRET_ACCESS_KEY=" + doc.SecretAccessKey, "AWS_SESSION_TOKEN=" + doc.SessionToken})
			if account != chainAccountC {
				t.Fatalf("account %s, want %s", account, chainAccountC)
			}
			if v := sessionOf(t, w, doc.AccessKeyId); v.Tags["spiffe-id"] != e2eSpiffeID {
				t.Fatalf("no spiffe-id tag: %+v", v)
			}
			for name, bad := range map[string][]string{
				"wrong external id": flagsWith("tenant-8"),
				"duration over 1h":  append(flags, "--assume-role-duration", "2h"),
			} {
				r := runArgv(t, nil, append(argv, bad...)...)
				// AWS refuses a chained session over 1h, so the flag's range says so before anything is
				// fetched (exit 2, as every flag error); STS's refusal names the hop.
				want := map[string]string{"wrong external id": "AccessDenied", "duration over 1h": "--assume-role-duration 2h is too long: the maximum is 1h"}[name]
				wantHop := map[string]string{"wrong external id": "hop"}[name]
				if r.code == 0 || r.stdout != "" || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, wantHop) {
					t.Errorf("%s: exit %d, stdout %q, stderr %s; want a failure naming %s", name, r.code, r.stdout, r.stderr, want)
				}
			}
		})
	}
}

// printedTrustPolicies reads, from check's output, the trust policy printed for each hop's role.
func printedTrustPolicies(t *testing.T, out string) map[string]string {
	t.Helper()
	got := map[string]string{}
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		l = strings.TrimSpace(l)
		role, ok := strings.CutPrefix(l, "Trust policy ")
		if !ok {
			continue
		}
		role, _, _ = strings.Cut(role, " ")
		var doc []string
		for _, m := range lines[i+1:] {
			if strings.HasPrefix(strings.TrimSpace(m), "Permission policy") {
				break
			}
			doc = append(doc, m)
		}
		got[role] = strings.Join(doc, "\n")
	}
	return got
}

// trustFromPolicy is what an IAM administrator would configure from a printed trust policy, as the
// emulator models it.
func trustFromPolicy(t *testing.T, doc string) *emulator.STSTrust {
	t.Helper()
	var p struct {
		Statement []struct {
			Principal struct{ AWS string }
			Action    []string
			Condition struct {
				StringEquals map[string]string
			}
		}
	}
	if err := json.Unmarshal([]byte(doc), &p); err != nil || len(p.Statement) != 1 {
		t.Fatalf("printed trust policy does not parse: %v\n%s", err, doc)
	}
	s := p.Statement[0]
	tr := &emulator.STSTrust{Principals: []string{s.Principal.AWS}, ExternalID: s.Condition.StringEquals["sts:ExternalId"]}
	for _, a := range s.Action {
		tr.TagSession = tr.TagSession || a == "sts:TagSession"
		tr.SetSourceIdentity = tr.SetSourceIdentity || a == "sts:SetSourceIdentity"
	}
	if !slices.Contains(s.Action, "sts:AssumeRole") {
		t.Fatalf("printed trust policy lacks sts:AssumeRole: %s", doc)
	}
	return tr
}

// TestCheckWalksEveryHopAndPrintsTheTrustPolicyEachRoleNeeds: with account C's role trusting nobody,
// check fails at hop 2 naming AccessDenied; the trust policies it prints, applied to both roles as an
// administrator would, make the whole chain pass.
func TestCheckWalksEveryHopAndPrintsTheTrustPolicyEachRoleNeeds(t *testing.T) {
	w := chainWorld(t)
	w.emu.SetSTSTrust(chainRoleC, nil)
	cfg := w.oneShotConfig(t, "check-chain.hcl", w.profileBlock("app", e2eRole, `  spiffe_id = "`+e2eSpiffeID+`"
`+chainHops(w, chainExternal, "")))
	r := runBin(t, nil, "check", "--config", cfg)
	if r.code == 0 || !strings.Contains(r.stdout, "FAIL hop 2 ("+chainRoleC+"): AccessDenied") || !strings.Contains(r.stdout, "ok   hop 1 succeeded") {
		t.Fatalf("exit %d; want hop 1 ok and hop 2 refused with AccessDenied:\n%s%s", r.code, r.stdout, r.stderr)
	}
	policies := printedTrustPolicies(t, r.stdout)
	if len(policies) != 2 {
		t.Fatalf("check printed %d trust policies, want one per hop:\n%s", len(policies), r.stdout)
	}
	b, c := trustFromPolicy(t, policies[chainRoleB]), trustFromPolicy(t, policies[chainRoleC])
	if b.ExternalID != chainExternal || b.Principals[0] != e2eRole || c.Principals[0] != chainRoleB || !c.TagSession {
		t.Fatalf("printed policies: B %+v, C %+v", b, c)
	}
	w.emu.SetSTSTrust(chainRoleB, b)
	w.emu.SetSTSTrust(chainRoleC, c)
	if r := runBin(t, nil, "check", "--config", cfg); r.code != 0 || !strings.Contains(r.stdout, "ok   hop 2 succeeded: arn:aws:sts::"+chainAccountC) {
		t.Fatalf("with the printed trust policies the chain still fails (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Without sts:TagSession (which the SPIFFE ID tag needs) STS refuses, and check says why.
	c.TagSession = false
	w.emu.SetSTSTrust(chainRoleC, c)
	if r := runBin(t, nil, "check", "--config", cfg); r.code == 0 || !strings.Contains(r.stdout, "must allow sts:TagSession") {
		t.Fatalf("a trust policy without sts:TagSession: exit %d\n%s", r.code, r.stdout)
	}
	// When hop 1 fails, hop 2's trust policy is still printed, and hop 2 is not tried.
	w.emu.SetSTSTrust(chainRoleB, nil)
	r = runBin(t, nil, "check", "--config", cfg)
	if r.code == 0 || !strings.Contains(r.stdout, "FAIL hop 1 ("+chainRoleB+"): AccessDenied") || !strings.Contains(r.stdout, "skip hop 2") ||
		len(printedTrustPolicies(t, r.stdout)) != 2 {
		t.Fatalf("hop 1 refused: exit %d\n%s", r.code, r.stdout)
	}
}
