package main

// End-to-end tests of the one-shot commands: the binary, built once, is run as a process by the aws CLI
// (credential_process) and directly, against svidtest (a real Workload API on a unix socket) and the
// emulator (a real Roles Anywhere + STS on loopback).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// binPath and leanPath are spiffe-aws-bridge and spiffe-aws-credential-process, built by TestMain with
// scripts/build.sh exactly as a release is, and stamped with e2eVersion.
var binPath, leanPath string

// credentialProcesses are the ways to run the credential-process command: as spiffe-aws-bridge's
// subcommand, and as the lean binary, bare or with aws_signing_helper's subcommand name.
func credentialProcesses() [][]string {
	return [][]string{{binPath, "credential-process"}, {leanPath}, {leanPath, "credential-process"}}
}

const e2eVersion = "v0.0.0-e2e"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sab-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath, leanPath = filepath.Join(dir, "spiffe-aws-bridge"), filepath.Join(dir, "spiffe-aws-credential-process")
	build := exec.Command("bash", "../../scripts/build.sh", dir)
	build.Env = append(os.Environ(), "VERSION="+e2eVersion)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binaries:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// world is the test world (its Roles Anywhere profile allowing 12-hour sessions) with the end-to-end
// tests' own helpers.
type world struct{ *testworld.World }

func newWorld(t testing.TB, entries ...svidtest.Entry) *world {
	t.Helper()
	return &world{testworld.New(t, testworld.Options{Entries: entries, ProfileDurationSeconds: 43200})}
}

// result is a finished process.
type result struct {
	code           int
	stdout, stderr string
}

// runBin runs spiffe-aws-bridge with args.
func runBin(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return runArgv(t, env, append([]string{binPath}, args...)...)
}

// runArgv runs the program argv[0] with the arguments argv[1:].
func runArgv(t *testing.T, env []string, argv ...string) result {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

// processDoc is credential_process's output.
type processDoc struct {
	Version                                                int
	AccessKeyId, SecretAccessKey, SessionToken, Expiration string //nolint:revive // AWS's names
}

func parseProcessJSON(t *testing.T, r result) processDoc {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
	}
	var d processDoc
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("stdout is not credential_process JSON: %v\n%s", err, r.stdout)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than the JSON document:\n%s", r.stdout)
	}
	exp, err := time.Parse(time.RFC3339, d.Expiration)
	if d.Version != 1 || !strings.HasPrefix(d.AccessKeyId, "ASIA") || d.SecretAccessKey == "" || d.SessionToken == "" || err != nil || !exp.After(time.Now()) {
		t.Fatalf("incomplete credentials: version %d, key %q, expiration %q", d.Version, d.AccessKeyId, d.Expiration)
	}
	return d
}

// awsCLI runs `aws sts get-caller-identity` with profile from configText and returns the ARN it prints.
func awsCLI(t *testing.T, w *world, profile, configText string) string {
	t.Helper()
	cfg := w.WriteFile(t, "aws-config-"+profile, []byte(configText))
	return awsCallerIdentity(t, w, []string{"AWS_CONFIG_FILE=" + cfg, "AWS_EC2_METADATA_DISABLED=true"}, "--profile", profile)
}

// awsCallerIdentity runs `aws sts get-caller-identity` against the emulator with no credentials of the
// caller's environment, only env, checks the account and returns the ARN it prints.
func awsCallerIdentity(t *testing.T, w *world, env []string, args ...string) string {
	t.Helper()
	account, arn := awsGetCallerIdentity(t, w, env, args...)
	if account != testworld.AccountID {
		t.Errorf("account %q", account)
	}
	return arn
}

// awsGetCallerIdentity runs `aws sts get-caller-identity` against the emulator with no credentials or
// settings of the caller's environment, only env, and returns the account and ARN it prints.
func awsGetCallerIdentity(t *testing.T, w *world, env []string, args ...string) (account, arn string) {
	t.Helper()
	aws, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("the aws CLI is not installed (CI installs Debian's awscli); skipping the aws CLI consumer test")
	}
	cmd := exec.Command(aws, append([]string{"sts", "get-caller-identity", "--region", "us-east-1",
		"--endpoint-url", w.Emulator.URL, "--output", "json"}, args...)...)
	// Only env and what keeps the CLI from reading this machine's own AWS settings.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "AWS_CONFIG_FILE="+filepath.Join(w.Dir, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(w.Dir, "none"),
		"AWS_RETRY_MODE=standard", "AWS_MAX_ATTEMPTS=1")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("aws sts get-caller-identity: %v\n%s", err, out)
	}
	var id struct{ Arn, Account string }
	if err := json.Unmarshal(out, &id); err != nil {
		t.Fatalf("aws output %q: %v", out, err)
	}
	return id.Account, id.Arn
}

func TestCredentialProcessFromTheWorkloadAPIWorksForTheAWSCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the aws CLI (a Python start-up per call) through every binary (about 20 s); the full run covers it")
	}
	w := newWorld(t)
	for i, argv := range credentialProcesses() {
		t.Run(strings.Join(argv, " "), func(t *testing.T) {
			line := fmt.Sprintf("%s --trust-anchor-arn %s --profile-arn %s --role-arn %s --endpoint %s --workload-socket %s",
				strings.Join(argv, " "), testworld.TrustAnchorARN, testworld.ProfileARN, testworld.RoleARN, w.Emulator.URL, w.Agent.Addr())
			profile := fmt.Sprintf("wl%d", i)
			arn := awsCLI(t, w, profile, "[profile "+profile+"]\ncredential_process = "+line+"\n")
			if !strings.HasPrefix(arn, "arn:aws:sts::123456789012:assumed-role/app/") {
				t.Fatalf("caller identity %q, want the app role", arn)
			}
		})
	}
}

func TestCredentialProcessWithAWSSigningHelperFlagsAndKeyFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the aws CLI (a Python start-up per call) through every binary (about 25 s); the full run covers it")
	}
	w := newWorld(t)
	s := w.Agent.Current()[0]
	certs, key, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := w.WriteFile(t, "cert.pem", certs), w.WriteFile(t, "key.pem", key)
	for i, argv := range credentialProcesses() {
		t.Run(strings.Join(argv, " "), func(t *testing.T) {
			// The exact form of AWS's documentation, with only "aws_signing_helper credential-process" replaced.
			line := fmt.Sprintf("%s --certificate %s --private-key %s --trust-anchor-arn %s --profile-arn %s --role-arn %s --endpoint %s --session-duration 900 --region us-east-1",
				strings.Join(argv, " "), certFile, keyFile, testworld.TrustAnchorARN, testworld.ProfileARN, testworld.RoleARN, w.Emulator.URL)
			profile := fmt.Sprintf("files%d", i)
			arn := awsCLI(t, w, profile, "[profile "+profile+"]\ncredential_process = "+line+"\n")
			if !strings.HasPrefix(arn, "arn:aws:sts::123456789012:assumed-role/app/") {
				t.Fatalf("caller identity %q", arn)
			}
			d := parseProcessJSON(t, runArgv(t, nil, strings.Fields(line)...))
			exp, _ := time.Parse(time.RFC3339, d.Expiration)
			if left := time.Until(exp); left > 15*time.Minute || left < 14*time.Minute {
				t.Errorf("--session-duration 900 gave credentials valid for %s", left)
			}
		})
	}
}

func TestCredentialsJWTDropInForSpiffeAwsAssumeRole(t *testing.T) {
	w := newWorld(t)
	// spiffe-aws-assume-role's documented form, telemetry flag included.
	line := fmt.Sprintf("%s credentials --audience %s --spiffe-id %s --role-arn %s --workload-socket %s --sts-endpoint %s --sts-region us-east-1 --session-duration PT1H",
		binPath, testworld.Audience, testworld.SPIFFEID, testworld.JWTRoleARN, strings.TrimPrefix(w.Agent.Addr(), "unix://"), w.Emulator.URL)
	arn := awsCLI(t, w, "jwt", "[profile jwt]\ncredential_process = "+line+"\n")
	if arn != "arn:aws:sts::123456789012:assumed-role/jwt-app/example.org@ns.prod.app" {
		t.Fatalf("caller identity %q, want the jwt-app role with the session named after the SPIFFE ID", arn)
	}
	r := runBin(t, nil, append(strings.Fields(line)[1:], "--telemetry-socket", "/tmp/none.sock", "--sentry-dsn", "https://x@sentry.example/1")...)
	parseProcessJSON(t, r)
	if strings.Count(r.stderr, "warning:") != 1 || !strings.Contains(r.stderr, "--telemetry-socket --sentry-dsn") {
		t.Errorf("want one warning naming the ignored flags, stderr:\n%s", r.stderr)
	}
}

func TestRolesAnywhereDropInForSpiffeAwsAssumeRole(t *testing.T) {
	w := newWorld(t)
	r := runBin(t, []string{"SPIFFE_ENDPOINT_SOCKET=" + w.Agent.Addr()}, "rolesanywhere",
		"--role-arn", testworld.RoleARN, "--trust-anchor-arn", testworld.TrustAnchorARN, "--profile-arn", testworld.ProfileARN,
		"--endpoint", w.Emulator.URL, "--session-duration", "PT30M", "--region", "us-east-1")
	d := parseProcessJSON(t, r)
	exp, _ := time.Parse(time.RFC3339, d.Expiration)
	if left := time.Until(exp); left > 30*time.Minute || left < 29*time.Minute {
		t.Errorf("PT30M gave credentials valid for %s", left)
	}
}

func TestOneShotErrorsGoToStderrWithTheAWSErrorType(t *testing.T) {
	w := newWorld(t)
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"role not in profile", []string{"credential-process", "--trust-anchor-arn", testworld.TrustAnchorARN, "--profile-arn", testworld.ProfileARN,
			"--role-arn", "arn:aws:iam::123456789012:role/other", "--endpoint", w.Emulator.URL, "--workload-socket", w.Agent.Addr()}, 1, "AccessDeniedException (403)"},
		{"JWT role without web identity", []string{"credentials", "--audience", testworld.Audience, "--role-arn", testworld.RoleARN,
			"--workload-socket", w.Agent.Addr(), "--sts-endpoint", w.Emulator.URL}, 1, "sts AssumeRoleWithWebIdentity: AccessDenied"},
		{"missing ARN", []string{"credential-process", "--profile-arn", testworld.ProfileARN, "--role-arn", testworld.RoleARN}, 2, "missing required flag(s): --trust-anchor-arn"},
		{"key without certificate", []string{"credential-process", "--private-key", "k.pem", "--trust-anchor-arn", testworld.TrustAnchorARN, "--profile-arn", testworld.ProfileARN, "--role-arn", testworld.RoleARN}, 2, "--certificate and --private-key go together"},
		{"unknown flag", []string{"credential-process", "--no-such-flag"}, 2, "unknown flag: --no-such-flag"},
		{"bad ARN", []string{"credential-process", "--trust-anchor-arn", "arn:aws:rolesanywhere:us-east-1:1:x", "--profile-arn", testworld.ProfileARN,
			"--role-arn", testworld.RoleARN, "--workload-socket", w.Agent.Addr()}, 2, `--trust-anchor-arn "arn:aws:rolesanywhere:us-east-1:1:x": account "1" is not 12 digits`},
		{"unknown SPIFFE ID", []string{"credential-process", "--trust-anchor-arn", testworld.TrustAnchorARN, "--profile-arn", testworld.ProfileARN,
			"--role-arn", testworld.RoleARN, "--endpoint", w.Emulator.URL, "--workload-socket", w.Agent.Addr(), "--spiffe-id", "spiffe://example.org/nope"}, 1, testworld.SPIFFEID},
		{"bad duration", []string{"rolesanywhere", "--session-duration", "1 hour"}, 2, `--session-duration "1 hour" is not a duration: write a Go duration (90m, 1h), seconds (3600) or ISO 8601 (PT1H)`},
		{"--profile without --config", []string{"credential-process", "--profile", "app"}, 2, "--profile needs --config"},
	}
	for _, tc := range cases {
		argvs := [][]string{append([]string{binPath}, tc.args...)}
		if tc.args[0] == "credential-process" {
			argvs = append(argvs, append([]string{leanPath}, tc.args[1:]...))
		}
		for _, argv := range argvs {
			t.Run(tc.name+"/"+filepath.Base(argv[0]), func(t *testing.T) {
				r := runArgv(t, nil, argv...)
				if r.code != tc.code || r.stdout != "" || !strings.Contains(r.stderr, tc.want) || !strings.HasPrefix(r.stderr, filepath.Base(argv[0])+": ") {
					t.Fatalf("exit %d (want %d), stdout %q, stderr:\n%s\nwant stderr to start with the program name and contain %q", r.code, tc.code, r.stdout, r.stderr, tc.want)
				}
			})
		}
	}
}

// TestCredentialProcessTakesAProfileFromTheDaemonConfig: with --config and --profile, the one-shot
// signs with the daemon's settings for that profile; flags given explicitly win, and a wrong profile
// or a broken config is a usage error (exit 2) that names what is wrong and where.
func TestCredentialProcessTakesAProfileFromTheDaemonConfig(t *testing.T) {
	w := newWorld(t)
	cfg := w.WriteConfig(t, "bridge.hcl", w.ProfileBlock("app", testworld.RoleARN, "  session_duration = \"20m\"\n"))
	broken := w.WriteFile(t, "broken.hcl", []byte("agent_address = \"unix:///x\"\nprofile \"app\" {\n  role_arn = 42\n}\n"))
	for _, argv := range credentialProcesses() {
		t.Run(strings.Join(argv, " "), func(t *testing.T) {
			d := parseProcessJSON(t, runArgv(t, nil, append(argv, "--config", cfg, "--profile", "app")...))
			exp, _ := time.Parse(time.RFC3339, d.Expiration)
			if left := time.Until(exp); left > 20*time.Minute || left < 19*time.Minute {
				t.Errorf("session_duration = \"20m\" gave credentials valid for %s", left)
			}
			d = parseProcessJSON(t, runArgv(t, nil, append(argv, "--config", cfg, "--profile", "app", "--session-duration", "900")...))
			exp, _ = time.Parse(time.RFC3339, d.Expiration)
			if left := time.Until(exp); left > 15*time.Minute || left < 14*time.Minute {
				t.Errorf("--session-duration 900 over the config's 20m gave credentials valid for %s", left)
			}
			for _, bad := range []struct {
				args []string
				want string
			}{
				{[]string{"--config", cfg, "--profile", "nope"}, `has no profile "nope" (it has ["app"])`},
				{[]string{"--config", cfg}, "--config needs --profile NAME"},
				{[]string{"--config", broken, "--profile", "app"}, broken + ":3:"},
			} {
				r := runArgv(t, nil, append(argv, bad.args...)...)
				if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, bad.want) {
					t.Errorf("%q: exit %d (want 2), stdout %q, stderr %q; want it to contain %q", bad.args, r.code, r.stdout, r.stderr, bad.want)
				}
			}
		})
	}
}

func TestOneShotNeverPrintsSecretsInDebugLogs(t *testing.T) {
	w := newWorld(t)
	logFile := filepath.Join(w.Dir, "debug.log")
	r := runBin(t, nil, "credential-process", "--debug", "--trust-anchor-arn", testworld.TrustAnchorARN, "--profile-arn", testworld.ProfileARN,
		"--role-arn", testworld.RoleARN, "--endpoint", w.Emulator.URL, "--workload-socket", w.Agent.Addr())
	d := parseProcessJSON(t, r)
	r2 := runBin(t, nil, "credentials", "--debug", "--log-file-path", logFile, "--audience", testworld.Audience, "--role-arn", testworld.JWTRoleARN,
		"--workload-socket", w.Agent.Addr(), "--sts-endpoint", w.Emulator.URL)
	d2 := parseProcessJSON(t, r2)
	r3 := runBin(t, nil, "rolesanywhere", "--debug", "--trust-anchor-arn", testworld.TrustAnchorARN, "--profile-arn", testworld.ProfileARN,
		"--role-arn", testworld.RoleARN, "--endpoint", w.Emulator.URL, "--workload-socket", w.Agent.Addr())
	d3 := parseProcessJSON(t, r3)
	r5 := runArgv(t, nil, leanPath, "--debug", "--trust-anchor-arn", testworld.TrustAnchorARN, "--profile-arn", testworld.ProfileARN,
		"--role-arn", testworld.RoleARN, "--endpoint", w.Emulator.URL, "--workload-socket", w.Agent.Addr())
	d5 := parseProcessJSON(t, r5)
	certs, key, err := w.Agent.Current()[0].Marshal()
	if err != nil {
		t.Fatal(err)
	}
	r6 := runArgv(t, nil, leanPath, "--debug", "--certificate", w.WriteFile(t, "cert.pem", certs), "--private-key", w.WriteFile(t, "key.pem", key),
		"--trust-anchor-arn", testworld.TrustAnchorARN, "--profile-arn", testworld.ProfileARN, "--role-arn", testworld.RoleARN, "--endpoint", w.Emulator.URL)
	d6 := parseProcessJSON(t, r6)
	cfg := w.WriteConfig(t, "bridge.hcl", "log_level = \"trace\"\n"+w.ProfileBlock("app", testworld.RoleARN, ""))
	r4 := runBin(t, nil, "check", "--config", cfg)
	if r4.code != 0 || !strings.Contains(r4.stdout+r4.stderr, "CreateSession") {
		t.Fatalf("check --config: exit %d\n%s%s", r4.code, r4.stdout, r4.stderr)
	}
	logs, _ := os.ReadFile(logFile)
	all := r.stderr + r2.stderr + string(logs) + r3.stderr + r4.stdout + r4.stderr + r5.stderr + r6.stderr
	if !strings.Contains(r5.stderr, "signing with") || !strings.Contains(all, "signing with") || !strings.Contains(string(logs), "assuming role with a JWT-SVID") {
		t.Fatalf("debug logs missing:\n%s", all)
	}
	for _, secret := range []string{d.SecretAccessKey, d.SessionToken, d2.SecretAccessKey, d2.SessionToken, d3.SecretAccessKey, d3.SessionToken, d5.SecretAccessKey, d5.SessionToken, d6.SecretAccessKey, d6.SessionToken} {
		if strings.Contains(all, secret) {
			t.Fatal("a secret appears in the debug output")
		}
	}
	// Nor any line of the private key's PEM body (both the key files and the Workload API carry this key).
	for _, line := range strings.Split(string(key), "\n") {
		if len(line) >= 32 && !strings.HasPrefix(line, "-----") && strings.Contains(all, line) {
			t.Fatal("a line of the private key appears in the debug output")
		}
	}
	if !strings.Contains(r6.stderr, "source=files") {
		t.Errorf("the key-file run did not log its source:\n%s", r6.stderr)
	}
}

func TestCheckReportsGoodAndBadSVIDs(t *testing.T) {
	good := svidtest.Entry{ID: spiffeid.RequireFromString(testworld.SPIFFEID), Hint: "good"}
	w := newWorld(t, good)
	r := runBin(t, nil, "check", "--workload-socket", w.Agent.Addr())
	if r.code != 0 || !strings.Contains(r.stdout, "x509SAN/URI        "+testworld.SPIFFEID) || !strings.Contains(r.stdout, `"aws:PrincipalTag/x509SAN/URI": "`+testworld.SPIFFEID+`"`) {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	bad := []svidtest.Entry{
		{ID: spiffeid.RequireFromString("spiffe://example.org/ca"), Hint: "ca", Mint: svidtest.MintOptions{IsCA: true}},
		{ID: spiffeid.RequireFromString("spiffe://example.org/nods"), Hint: "nods", Mint: svidtest.MintOptions{KeyUsage: x509.KeyUsageKeyEncipherment}},
		{ID: spiffeid.RequireFromString("spiffe://example.org/ed"), Hint: "ed", Mint: svidtest.MintOptions{KeyType: svidtest.KeyTypeEd25519}},
		{ID: spiffeid.RequireFromString("spiffe://example.org/old"), Hint: "old", Mint: svidtest.MintOptions{NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}},
	}
	w2 := newWorld(t, bad...)
	r = runBin(t, nil, "check", "--workload-socket", w2.Agent.Addr())
	for _, want := range []string{
		"FAIL basic constraints: the certificate is a CA (CA:TRUE)",
		"FAIL key usage: digitalSignature is missing",
		"FAIL key type: unsupported private key Ed25519",
		"FAIL validity: expired at",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("check output lacks %q", want)
		}
	}
	if r.code != 1 || !strings.Contains(r.stderr, "check: 4 problem(s) found") {
		t.Errorf("exit %d, stderr %q; want 1 and 4 problems\n%s", r.code, r.stderr, r.stdout)
	}
}

// BenchmarkCredentialProcess reports the wall time of one `credential-process` run, process start to
// JSON on stdout, as the aws CLI experiences it (Workload API fetch, signing, CreateSession on loopback).
func BenchmarkCredentialProcess(b *testing.B) {
	w := newWorld(b)
	w.Emulator.SetQuota(-1) // measure the process, not AWS's 10/s quota
	for _, src := range []struct {
		name string
		args []string
	}{
		{"workload-api", []string{"--workload-socket", w.Agent.Addr()}},
	} {
		b.Run(src.name, func(b *testing.B) {
			args := append([]string{"credential-process", "--trust-anchor-arn", testworld.TrustAnchorARN, "--profile-arn", testworld.ProfileARN,
				"--role-arn", testworld.RoleARN, "--endpoint", w.Emulator.URL}, src.args...)
			for i := 0; i < b.N; i++ {
				out, err := exec.Command(binPath, args...).Output()
				if err != nil || !bytes.Contains(out, []byte(`"AccessKeyId"`)) {
					b.Fatalf("credential-process: %v", err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/run")
		})
	}
}

// TestCheckExplainsAccessDenied: with a config, check tries CreateSession per profile and explains
// AWS's refusal in plain words, naming the tag value the role's trust policy must match.
func TestCheckExplainsAccessDenied(t *testing.T) {
	w := newWorld(t)
	cfg := w.WriteConfig(t, "bridge.hcl", w.ProfileBlock("good", testworld.RoleARN, "")+
		w.ProfileBlock("denied", "arn:aws:iam::123456789012:role/not-in-the-profile", ""))
	r := runBin(t, nil, "check", "--config", cfg)
	out := r.stdout + r.stderr
	if r.code != 1 {
		t.Fatalf("exit %d with a denied profile, want 1\n%s", r.code, out)
	}
	for _, want := range []string{"AWS refused to assume the role", `aws:PrincipalTag/x509SAN/URI must match "` + testworld.SPIFFEID + `"`,
		"not-in-the-profile", "AccessDeniedException"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}

func TestVersionPrintsTheStampedVersion(t *testing.T) {
	r := runBin(t, nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "spiffe-aws-bridge "+e2eVersion+" (commit ") {
		t.Fatalf("exit %d, stdout %q", r.code, r.stdout)
	}
	r = runArgv(t, nil, leanPath, "--version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "spiffe-aws-credential-process "+e2eVersion+" (commit ") {
		t.Fatalf("spiffe-aws-credential-process --version: exit %d, stdout %q", r.code, r.stdout)
	}
}

// TestEmulatorBinaryNeverLogsSecrets: the standalone rolesanywhere-emulator, at trace level, issues
// credentials through CreateSession and AssumeRoleWithWebIdentity and then authenticates an STS call
// signed with them (session token in X-Amz-Security-Token); neither the secret key nor the session token
// may appear in anything it prints.
func TestEmulatorBinaryNeverLogsSecrets(t *testing.T) {
	w := newWorld(t) // its agent, and the emulator.hcl that trusts the agent's CA
	cmd := exec.Command(filepath.Join(filepath.Dir(binPath), "rolesanywhere-emulator"),
		"--config", filepath.Join(w.Dir, "emulator.hcl"), "--listen", "127.0.0.1:0", "--log-level", "trace")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer // read only after Wait
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	out := bufio.NewReader(stdout)
	url, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("the emulator printed no URL: %v", err)
	}
	url = strings.TrimSpace(url)

	d := parseProcessJSON(t, runArgv(t, nil, leanPath, "--trust-anchor-arn", testworld.TrustAnchorARN, "--profile-arn", testworld.ProfileARN,
		"--role-arn", testworld.RoleARN, "--endpoint", url, "--workload-socket", w.Agent.Addr()))
	d2 := parseProcessJSON(t, runBin(t, nil, "credentials", "--audience", testworld.Audience, "--role-arn", testworld.JWTRoleARN,
		"--workload-socket", w.Agent.Addr(), "--sts-endpoint", url))
	ctx := context.Background()
	for _, c := range []processDoc{d, d2} {
		client := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(url),
			Credentials: credentials.NewStaticCredentialsProvider(c.AccessKeyId, c.SecretAccessKey, c.SessionToken)})
		id, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil || !strings.HasPrefix(aws.ToString(id.Arn), "arn:aws:sts::123456789012:assumed-role/") {
			t.Fatalf("GetCallerIdentity with the issued credentials: %v", err)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("emulator exit: %v\n%s", err, stderr.String())
	}
	all := url + string(rest) + stderr.String()
	if !strings.Contains(all, "CreateSession") || !strings.Contains(all, "GetCallerIdentity") {
		t.Fatalf("the emulator's trace logs do not show the calls:\n%s", all)
	}
	for _, secret := range []string{d.SecretAccessKey, d.SessionToken, d2.SecretAccessKey, d2.SessionToken} {
		if strings.Contains(all, secret) {
			t.Fatal("a secret appears in the emulator's trace output")
		}
	}
}
