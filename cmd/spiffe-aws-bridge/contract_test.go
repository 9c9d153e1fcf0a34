package main

// The CLI contract of three binaries (spiffe-aws-bridge-k8s's is tested in its own package): exit 0 on
// success, 1 on a runtime failure, 2 on a usage or configuration error whichever layer finds it, with the
// flag or key named as the user wrote it and what to do next; --version and version on each, in one
// format.

import (
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// emuPath is rolesanywhere-emulator, built by TestMain beside the other two.
func emuPath() string { return filepath.Join(filepath.Dir(binPath), "rolesanywhere-emulator") }

// TestExitCodeContract runs every binary and subcommand with each kind of usage and configuration error
// and checks exit status 2 and a message that names the flag or key (and, where there is one, the fix).
func TestExitCodeContract(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	profile := func(name, extra string) string {
		return fmt.Sprintf("profile %q {\n  trust_anchor_arn = %q\n  profile_arn = %q\n  role_arn = %q\n%s}\n", name, testworld.TrustAnchorARN, testworld.ProfileARN, testworld.RoleARN, extra)
	}
	twoSlashes := write("two-slashes.hcl", `agent_address = "unix://tmp/agent.sock"`+"\n"+profile("app", ""))
	tcpName := write("tcp-name.hcl", `agent_address = "tcp://agent:8081"`+"\n"+profile("app", ""))
	badKey := write("bad-key.hcl", profile("app", "  bogus = 1\n"))
	if err := os.Mkdir(filepath.Join(dir, "real"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "alias")); err != nil {
		t.Fatal(err)
	}
	sameFile := write("same-file.hcl",
		profile("a", fmt.Sprintf("  credentials_file {\n    path = %q\n    profile_name = \"x\"\n  }\n", filepath.Join(dir, "real", "credentials")))+
			profile("b", fmt.Sprintf("  credentials_file {\n    path = %q\n    profile_name = \"x\"\n  }\n", filepath.Join(dir, "alias", "credentials"))))
	noUser := write("no-user.hcl", fmt.Sprintf("agent_address = %q\n", "unix://"+filepath.Join(dir, "agent.sock"))+
		profile("app", fmt.Sprintf("  credentials_file {\n    path = %q\n    owner = \"no-such-user-here\"\n  }\n", filepath.Join(dir, "creds"))))
	podIdentity := write("pods.hcl", "log_level = \"info\"\n"+podIdentityBlock(filepath.Join(dir, "admin.sock")))
	emuBad := write("emulator-bad.hcl", "account_id = \"123456789012\"\nnope = 1\n")
	emuGood := write("emulator.hcl", `account_id = "123456789012"`)
	ca, err := svidtest.NewCA(svidtest.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.MintX509SVID(spiffeid.RequireFromString(testworld.SPIFFEID), svidtest.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cert := write("cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificates[0].Raw})))
	encKey := write("enc.pem", string(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("x")})))
	arns := []string{"--trust-anchor-arn", testworld.TrustAnchorARN, "--profile-arn", testworld.ProfileARN, "--role-arn", testworld.RoleARN}
	with := func(a []string, more ...string) []string { return append(append([]string{}, a...), more...) }

	bridge, lean, emu := binPath, leanPath, emuPath()
	for _, tc := range []struct {
		name string
		argv []string
		env  []string
		want []string // substrings of stderr; the first names the flag or key
	}{
		// spiffe-aws-bridge
		{"bare spiffe-aws-bridge", []string{bridge}, nil, []string{"spiffe-aws-bridge: a command is required: pick one of those listed below\n\nUsage:", "Available Commands:"}},
		{"bare spiffe-aws-credential-process", []string{lean}, nil, []string{"spiffe-aws-credential-process: missing required flag(s): --trust-anchor-arn, --profile-arn, --role-arn\n\nUsage:", "--session-duration duration"}},
		{"bare rolesanywhere-emulator", []string{emu}, nil, []string{"rolesanywhere-emulator: missing required flag(s): --config", "\n\nUsage:", "init        Write a CA"}},
		{"unknown command", []string{bridge, "bogus"}, nil, []string{`unknown command "bogus" for "spiffe-aws-bridge"`, "Run 'spiffe-aws-bridge --help' for usage."}},
		{"unknown flag", []string{bridge, "run", "--nope"}, nil, []string{"unknown flag: --nope", "Run 'spiffe-aws-bridge run --help' for usage."}},
		{"run without --config", []string{bridge, "run"}, nil, []string{"missing required flag(s): --config", "Run 'spiffe-aws-bridge run --help'"}},
		{"run with an argument", []string{bridge, "run", "--config", badKey, "extra"}, nil, []string{`unknown command "extra" for "spiffe-aws-bridge run"`}},
		{"run with a missing config file", []string{bridge, "run", "--config", filepath.Join(dir, "none.hcl")}, nil, []string{"reading config file " + filepath.Join(dir, "none.hcl")}},
		{"run with an unknown key", []string{bridge, "run", "--config", badKey}, nil, []string{badKey + ":5:3: Unsupported argument"}},
		{"agent_address with two slashes", []string{bridge, "run", "--config", twoSlashes}, nil, []string{`agent_address "unix://tmp/agent.sock"`, `use "unix:///tmp/agent.sock"`}},
		{"agent_address with a host name", []string{bridge, "run", "--config", tcpName}, nil, []string{`agent_address "tcp://agent:8081"`, `host "agent" is not an IP address`}},
		{"same credentials file through a symlink", []string{bridge, "run", "--config", sameFile}, nil, []string{`credentials_file ` + filepath.Join(dir, "alias", "credentials") + ` is the same file as ` + filepath.Join(dir, "real", "credentials")}},
		{"owner that is no user, found at start", []string{bridge, "run", "--config", noUser}, nil, []string{`credentials_file.owner \"no-such-user-here\": no such user (name an existing user or a numeric id)`}},
		{"run with a pod_identity block", []string{bridge, "run", "--config", podIdentity}, nil, []string{noKubernetes(podIdentity, 5)}},
		{"dev --rotate-every 0s", []string{bridge, "dev", "--rotate-every", "0s"}, nil, []string{"--rotate-every 0s is too short: the minimum is 1s; give at least 1s"}},
		{"dev --rotate-every -5s", []string{bridge, "dev", "--rotate-every", "-5s"}, nil, []string{"--rotate-every -5s is too short"}},
		{"dev --session-duration 5m", []string{bridge, "dev", "--session-duration", "5m"}, nil, []string{"--session-duration 5m is too short: the minimum is 15m; give 15m to 12h (900 to 43200 seconds, PT15M to PT12H)"}},
		{"dev --log-level loud", []string{bridge, "dev", "--log-level", "loud"}, nil, []string{`--log-level "loud" is not a log level: use one of trace, debug, info, warn, error`}},
		{"dev --duration -1s", []string{bridge, "dev", "--duration", "-1s"}, nil, []string{"--duration -1s is negative"}},
		{"credential-process without flags", []string{bridge, "credential-process"}, nil, []string{"missing required flag(s): --trust-anchor-arn, --profile-arn, --role-arn"}},
		{"credential-process --session-duration 300", with([]string{bridge, "credential-process"}, with(arns, "--session-duration", "300")...), nil, []string{"--session-duration 300 is too short: the minimum is 15m; give 15m to 12h (900 to 43200 seconds, PT15M to PT12H)"}},
		{"credential-process --role-arn garbage", []string{bridge, "credential-process", "--trust-anchor-arn", testworld.TrustAnchorARN, "--profile-arn", testworld.ProfileARN, "--role-arn", "garbage"}, nil, []string{`--role-arn "garbage": is not an ARN`}},
		{"credential-process --workload-socket with two slashes", with([]string{bridge, "credential-process"}, with(arns, "--workload-socket", "unix://tmp/agent.sock")...), nil, []string{`(from --workload-socket)`, `use "unix:///tmp/agent.sock"`}},
		{"credential-process bad $SPIFFE_ENDPOINT_SOCKET", with([]string{bridge, "credential-process"}, arns...), []string{"SPIFFE_ENDPOINT_SOCKET=unix://tmp/agent.sock"}, []string{`(from $SPIFFE_ENDPOINT_SOCKET)`, `use "unix:///tmp/agent.sock"`}},
		{"credential-process encrypted key", with([]string{bridge, "credential-process"}, with(arns, "--certificate", cert, "--private-key", encKey)...), nil, []string{"--private-key " + encKey, "openssl pkey -in " + encKey + " -out key-plain.pem"}},
		{"credential-process --config with an error", []string{bridge, "credential-process", "--config", twoSlashes, "--profile", "app"}, nil, []string{`agent_address "unix://tmp/agent.sock"`}},
		{"credential-process --endpoint plain http to a remote host", with([]string{bridge, "credential-process"}, with(arns, "--endpoint", "http://10.0.0.5:8443")...), nil, []string{`--endpoint "http://10.0.0.5:8443" is plain http to a host that is not loopback: use https, or add --insecure-endpoint`}},
		{"credential-process --session-duration soon", with([]string{bridge, "credential-process"}, with(arns, "--session-duration", "soon")...), nil, []string{`--session-duration "soon" is not a duration: write a Go duration (90m, 1h), seconds (3600) or ISO 8601 (PT1H); give 15m to 12h`}},
		{"credential-process --assume-role-duration 90m", with([]string{bridge, "credential-process"}, with(arns, "--assume-role-arn", "arn:aws:iam::210987654321:role/b", "--assume-role-duration", "90m")...), nil, []string{"--assume-role-duration 90m is too long: the maximum is 1h; give 15m to 1h (900 to 3600 seconds, PT15M to PT1H)"}},
		{"check -c with a bad config", []string{bridge, "check", "-c", twoSlashes}, nil, []string{`agent_address "unix://tmp/agent.sock"`}},
		{"dev --rotate-every soon", []string{bridge, "dev", "--rotate-every", "soon"}, nil, []string{`--rotate-every "soon" is not a duration: write a Go duration (90m, 1h), seconds (3600) or ISO 8601 (PT1H); give at least 1s`}},
		{"credentials without flags", []string{bridge, "credentials"}, nil, []string{"missing required flag(s): --audience, --role-arn"}},
		{"credentials --session-duration PT1M", []string{bridge, "credentials", "--audience", "a", "--role-arn", testworld.RoleARN, "--session-duration", "PT1M"}, nil, []string{"--session-duration PT1M is too short: the minimum is 15m; give 15m to 12h (900 to 43200 seconds, PT15M to PT12H)"}},
		{"credentials --role-arn garbage", []string{bridge, "credentials", "--audience", "a", "--role-arn", "garbage"}, nil, []string{`--role-arn "garbage": is not an ARN`}},
		{"rolesanywhere without flags", []string{bridge, "rolesanywhere"}, nil, []string{"missing required flag(s): --trust-anchor-arn, --profile-arn, --role-arn"}},
		{"rolesanywhere --session-duration PT5M", with([]string{bridge, "rolesanywhere"}, with(arns, "--session-duration", "PT5M")...), nil, []string{"--session-duration PT5M is too short: the minimum is 15m; give 15m to 12h (900 to 43200 seconds, PT15M to PT12H)"}},
		{"check with a bad config", []string{bridge, "check", "--config", twoSlashes}, nil, []string{`agent_address "unix://tmp/agent.sock"`}},
		{"check --spiffe-id without --config", []string{bridge, "check", "--spiffe-id", "spiffe://example.org/a"}, nil, []string{`--spiffe-id "spiffe://example.org/a" asks which pod_identity rule maps that ID, but no --config`}},
		{"check --workload-socket with two slashes", []string{bridge, "check", "--workload-socket", "unix://tmp/agent.sock"}, nil, []string{`(from --workload-socket)`, `use "unix:///tmp/agent.sock"`}},
		{"version with an argument", []string{bridge, "version", "extra"}, nil, []string{`unknown command "extra" for "spiffe-aws-bridge version"`}},
		{"completion for an unknown shell", []string{bridge, "completion", "tcsh"}, nil, []string{`unknown command "tcsh" for "spiffe-aws-bridge completion"`}},
		// spiffe-aws-credential-process
		{"lean without flags", []string{lean}, nil, []string{"spiffe-aws-credential-process: missing required flag(s): --trust-anchor-arn, --profile-arn, --role-arn"}},
		{"lean unknown command", []string{lean, "bogus"}, nil, []string{`unknown command "bogus" for "spiffe-aws-credential-process"`}},
		{"lean --session-duration 300", with([]string{lean}, with(arns, "--session-duration", "300")...), nil, []string{"--session-duration 300 is too short: the minimum is 15m"}},
		{"lean --role-arn garbage", []string{lean, "--trust-anchor-arn", testworld.TrustAnchorARN, "--profile-arn", testworld.ProfileARN, "--role-arn", "garbage"}, nil, []string{`--role-arn "garbage": is not an ARN`}},
		{"lean --endpoint plain http to a remote host", with([]string{lean}, with(arns, "--endpoint", "http://10.0.0.5:8443")...), nil, []string{`--endpoint "http://10.0.0.5:8443" is plain http to a host that is not loopback: use https, or add --insecure-endpoint`}},
		{"lean unknown flag", []string{lean, "--nope"}, nil, []string{"unknown flag: --nope", "Run 'spiffe-aws-credential-process --help' for usage."}},
		// rolesanywhere-emulator
		{"emulator without --config", []string{emu}, nil, []string{"rolesanywhere-emulator: missing required flag(s): --config"}},
		{"emulator --log-level loud", []string{emu, "--config", emuGood, "--log-level", "loud"}, nil, []string{`--log-level "loud" is not a log level`}},
		{"emulator non-loopback --listen", []string{emu, "--config", emuGood, "--listen", "0.0.0.0:0"}, nil, []string{`--listen "0.0.0.0:0" is not a loopback address: add --allow-remote`}},
		{"emulator bad config", []string{emu, "--config", emuBad}, nil, []string{emuBad + ":2:1: Unsupported argument"}},
		{"emulator missing config file", []string{emu, "--config", filepath.Join(dir, "none.hcl")}, nil, []string{filepath.Join(dir, "none.hcl")}},
		{"emulator unknown command", []string{emu, "bogus"}, nil, []string{`unknown command "bogus" for "rolesanywhere-emulator"`}},
		{"emulator --fail-status 200", []string{emu, "--config", emuGood, "--fail-status", "200"}, nil, []string{"--fail-status 200 is not an HTTP error status"}},
		{"emulator --latency soon", []string{emu, "--config", emuGood, "--latency", "soon"}, nil, []string{`--latency "soon" is not a duration: write a Go duration (90m, 1h), seconds (3600) or ISO 8601 (PT1H)`}},
		{"emulator --latency -1s", []string{emu, "--config", emuGood, "--latency", "-1s"}, nil, []string{"--latency -1s is negative"}},
		{"emulator --fail-next -1", []string{emu, "--config", emuGood, "--fail-next", "-1"}, nil, []string{"--fail-next -1 is negative"}},
		{"emulator --now garbage", []string{emu, "--config", emuGood, "--now", "garbage"}, nil, []string{`--now "garbage": want an RFC 3339 time`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runArgv(t, tc.env, tc.argv...)
			if r.code != 2 {
				t.Errorf("exit %d, want 2\nstderr: %s", r.code, r.stderr)
			}
			prefix := filepath.Base(tc.argv[0]) + ": "
			if !strings.HasPrefix(r.stderr, prefix) && !strings.Contains(r.stderr, "[ERROR] "+prefix+"fatal: stopping") {
				t.Errorf("stderr does not start with %q: %s", prefix, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if r.stdout != "" {
				t.Errorf("stdout %q on an error", r.stdout)
			}
		})
	}
}

// TestVersionOnEveryBinary: --version and version print NAME VERSION (commit C, built with GO) on all
// three binaries.
func TestVersionOnEveryBinary(t *testing.T) {
	for _, bin := range []string{binPath, leanPath, emuPath()} {
		name := filepath.Base(bin)
		re := regexp.MustCompile(`^` + regexp.QuoteMeta(name+" "+e2eVersion) + ` \(commit \S+, built with go\S+\)\n$`)
		for _, arg := range []string{"--version", "version"} {
			r := runArgv(t, nil, bin, arg)
			if r.code != 0 || !re.MatchString(r.stdout) || r.stderr != "" {
				t.Errorf("%s %s: exit %d, stdout %q, stderr %q", name, arg, r.code, r.stdout, r.stderr)
			}
		}
	}
}
