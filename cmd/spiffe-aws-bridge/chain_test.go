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
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

const chainSessionNm = "example.org@ns.prod.app"

// chainWorld is the world with two more accounts: B's role trusts A's Roles Anywhere role (with an
// external id), C's role trusts B's.
func chainWorld(t *testing.T) *world {
	t.Helper()
	return chainWorldWith(t, "")
}

// chainWorldWith is chainWorld with profileBody (HCL lines) added to the Roles Anywhere profile.
func chainWorldWith(t *testing.T, profileBody string) *world {
	t.Helper()
	return &world{testworld.New(t, testworld.Options{Chain: true, ProfileBody: profileBody})}
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
	if err := json.Unmarshal([]byte(httpBody(t, w.Emulator.URL+"/_emulator/sessions?access_key_id="+accessKeyID)), &views); err != nil || len(views) != 1 {
		t.Fatalf("emulator sessions view for %s: %v %v", accessKeyID, views, err)
	}
	return views[0]
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
	credsPath := filepath.Join(w.Dir, "aws", "credentials")
	cfg := w.WriteConfig(t, "bridge-chain.hcl", "log_level     = \"debug\"\n", testworld.HealthChecks(healthPort), testworld.Telemetry(metricsPort),
		w.Profile("app", testworld.CredentialsFile(credsPath), w.ChainHops(testworld.ExternalID, "    session_tags = { team = \"payments\" }\n")))
	d := startDaemon(t, cfg)
	eventually(t, "the credentials file", func() bool { return profileKeys(credsPath, "app")["aws_access_key_id"] != "" })
	first := profileKeys(credsPath, "app")

	account, arn := awsIdentity(t, w, []string{"AWS_SHARED_CREDENTIALS_FILE=" + credsPath}, "--profile", "app")
	if account != testworld.AccountC || arn != "arn:aws:sts::"+testworld.AccountC+":assumed-role/workload/"+chainSessionNm {
		t.Fatalf("the aws CLI is %s in account %s; want role workload of account %s", arn, account, testworld.AccountC)
	}
	v := sessionOf(t, w, first["aws_access_key_id"])
	if v.Tags["spiffe-id"] != testworld.SPIFFEID || v.Tags["team"] != "payments" || v.SourceIdentity == "" || !v.Chained {
		t.Fatalf("account C's session: %+v", v)
	}
	ready := fmt.Sprintf("http://127.0.0.1:%d/ready", healthPort)
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	if body := httpBody(t, ready); !strings.Contains(body, testworld.RoleC) {
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
			w.Emulator.SetSTSTrust(testworld.RoleB, &emulator.STSTrust{Principals: []string{testworld.RoleARN}, ExternalID: "tenant-8", TagSession: true, SetSourceIdentity: true})
		}, func() {
			w.Emulator.SetSTSTrust(testworld.RoleB, &emulator.STSTrust{Principals: []string{testworld.RoleARN}, ExternalID: testworld.ExternalID, TagSession: true, SetSourceIdentity: true})
		}, testworld.RoleB, "assume_role[0]", "AccessDenied"},
		{"target role does not trust the previous hop", func() {
			w.Emulator.SetSTSTrust(testworld.RoleC, &emulator.STSTrust{Principals: []string{"arn:aws:iam::222222222222:role/someone-else"}, TagSession: true, SetSourceIdentity: true})
		}, func() {
			w.Emulator.SetSTSTrust(testworld.RoleC, &emulator.STSTrust{Principals: []string{testworld.RoleB}, TagSession: true, SetSourceIdentity: true})
		}, testworld.RoleC, "assume_role[1]", "AccessDenied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.break_()
			defer tc.fix()
			if err := w.Agent.Rotate(); err != nil {
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
			if account, _ := awsIdentity(t, w, []string{"AWS_SHARED_CREDENTIALS_FILE=" + credsPath}, "--profile", "app"); account != testworld.AccountC {
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
		return []string{"--trust-anchor-arn", testworld.TrustAnchorARN, "--profile-arn", testworld.ProfileARN, "--role-arn", testworld.RoleARN,
			"--endpoint", w.Emulator.URL, "--workload-socket", w.Agent.Addr(),
			"--assume-role-arn", testworld.RoleB, "--external-id", external, "--assume-role-arn", testworld.RoleC, "--external-id", "",
			"--sts-endpoint", w.Emulator.URL}
	}
	flags := flagsWith(testworld.ExternalID)
	for _, argv := range append(credentialProcesses(), []string{binPath, "rolesanywhere"}) {
		t.Run(filepath.Base(strings.Join(argv, " ")), func(t *testing.T) {
			doc := parseProcessJSON(t, runArgv(t, nil, append(argv, flags...)...))
			account, _ := awsIdentity(t, w, []string{"AWS_ACCESS_KEY_ID=" + doc.AccessKeyId, "AWS_SECRET_ACCESS_KEY=" + doc.SecretAccessKey, "AWS_SESSION_TOKEN=" + doc.SessionToken})
			if account != testworld.AccountC {
				t.Fatalf("account %s, want %s", account, testworld.AccountC)
			}
			if v := sessionOf(t, w, doc.AccessKeyId); v.Tags["spiffe-id"] != testworld.SPIFFEID {
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
	w.Emulator.SetSTSTrust(testworld.RoleC, nil)
	cfg := w.WriteConfig(t, "check-chain.hcl", w.ProfileBlock("app", testworld.RoleARN, `  spiffe_id = "`+testworld.SPIFFEID+`"
`+w.ChainHops(testworld.ExternalID, "")))
	r := runBin(t, nil, "check", "--config", cfg)
	if r.code == 0 || !strings.Contains(r.stdout, "FAIL hop 2 ("+testworld.RoleC+"): AccessDenied") || !strings.Contains(r.stdout, "ok   hop 1 succeeded") {
		t.Fatalf("exit %d; want hop 1 ok and hop 2 refused with AccessDenied:\n%s%s", r.code, r.stdout, r.stderr)
	}
	policies := printedTrustPolicies(t, r.stdout)
	if len(policies) != 2 {
		t.Fatalf("check printed %d trust policies, want one per hop:\n%s", len(policies), r.stdout)
	}
	b, c := trustFromPolicy(t, policies[testworld.RoleB]), trustFromPolicy(t, policies[testworld.RoleC])
	if b.ExternalID != testworld.ExternalID || b.Principals[0] != testworld.RoleARN || c.Principals[0] != testworld.RoleB || !c.TagSession {
		t.Fatalf("printed policies: B %+v, C %+v", b, c)
	}
	w.Emulator.SetSTSTrust(testworld.RoleB, b)
	w.Emulator.SetSTSTrust(testworld.RoleC, c)
	if r := runBin(t, nil, "check", "--config", cfg); r.code != 0 || !strings.Contains(r.stdout, "ok   hop 2 succeeded: arn:aws:sts::"+testworld.AccountC) {
		t.Fatalf("with the printed trust policies the chain still fails (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Without sts:TagSession (which the SPIFFE ID tag needs) STS refuses, and check says why.
	c.TagSession = false
	w.Emulator.SetSTSTrust(testworld.RoleC, c)
	if r := runBin(t, nil, "check", "--config", cfg); r.code == 0 || !strings.Contains(r.stdout, "must allow sts:TagSession") {
		t.Fatalf("a trust policy without sts:TagSession: exit %d\n%s", r.code, r.stdout)
	}
	// When hop 1 fails, hop 2's trust policy is still printed, and hop 2 is not tried.
	w.Emulator.SetSTSTrust(testworld.RoleB, nil)
	r = runBin(t, nil, "check", "--config", cfg)
	if r.code == 0 || !strings.Contains(r.stdout, "FAIL hop 1 ("+testworld.RoleB+"): AccessDenied") || !strings.Contains(r.stdout, "skip hop 2") ||
		len(printedTrustPolicies(t, r.stdout)) != 2 {
		t.Fatalf("hop 1 refused: exit %d\n%s", r.code, r.stdout)
	}
}
