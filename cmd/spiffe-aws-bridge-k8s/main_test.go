package main

// End-to-end tests of spiffe-aws-bridge-k8s: the binary, built by scripts/build.sh exactly as a release
// is, run as a process.

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/cmd/internal/clidocs"
)

// binPath is spiffe-aws-bridge-k8s, built by TestMain with scripts/build.sh and stamped with e2eVersion.
var binPath string

const e2eVersion = "v0.0.0-e2e"

func TestMain(m *testing.M) {
	flag.Parse()
	if flag.Lookup("test.run").Value.String() == "TestCLIReferenceIsCurrent" {
		os.Exit(m.Run()) // go generate: no binaries needed
	}
	dir, err := os.MkdirTemp("", "sab-k8s-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "spiffe-aws-bridge-k8s")
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

// result is a finished process.
type result struct {
	code           int
	stdout, stderr string
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

var updateCLIDocs = flag.Bool("update-cli-docs", false, "regenerate docs/cli and docs/man instead of checking them")

// TestCLIReferenceIsCurrent fails when docs/cli or docs/man, generated from the commands with cobra's
// generator, do not match the commands as built: run go generate ./cmd/... and commit the result.
func TestCLIReferenceIsCurrent(t *testing.T) {
	problems, err := clidocs.Check(newRootCommand(io.Discard), "../..", *updateCLIDocs)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Fatalf("the CLI reference is not current:\n%s", strings.Join(problems, "\n"))
	}
}

// TestExitCodeContract: usage and configuration errors exit 2 naming the flag or key and the fix, as on
// the other binaries (cmd/spiffe-aws-bridge's TestExitCodeContract).
func TestExitCodeContract(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(cert, []byte("not used: the URI is checked first"), 0o600); err != nil {
		t.Fatal(err)
	}
	badKey := filepath.Join(dir, "bad-key.hcl")
	if err := os.WriteFile(badKey, []byte("pod_identity {\n  bogus = 1\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := binPath
	for _, tc := range []struct {
		name string
		argv []string
		want []string // substrings of stderr; the first names the flag or key
	}{
		{"bare spiffe-aws-bridge-k8s", []string{bin}, []string{"spiffe-aws-bridge-k8s: a command is required: pick one of those listed below\n\nUsage:", "Available Commands:"}},
		{"unknown command", []string{bin, "dev"}, []string{`unknown command "dev" for "spiffe-aws-bridge-k8s"`, "Run 'spiffe-aws-bridge-k8s --help' for usage."}},
		{"run without --config", []string{bin, "run"}, []string{"missing required flag(s): --config", "Run 'spiffe-aws-bridge-k8s run --help'"}},
		{"run with an unknown key", []string{bin, "run", "--config", badKey}, []string{badKey + ":2:3: Unsupported argument"}},
		{"webhook without --service", []string{bin, "webhook", "--self-signed"}, []string{"missing required flag(s): --service"}},
		{"webhook without a certificate", []string{bin, "webhook", "--service", "pi", "--namespace", "ns"}, []string{"give --tls-cert-file and --tls-key-file, or --self-signed"}},
		{"webhook --self-signed without its objects", []string{bin, "webhook", "--service", "pi", "--namespace", "ns", "--self-signed"}, []string{"--self-signed needs --ca-secret and --webhook-config"}},
		{"webhook --credentials-uri without a scheme", []string{bin, "webhook", "--service", "pi", "--namespace", "ns", "--tls-cert-file", cert, "--tls-key-file", cert, "--credentials-uri", "169.254.170.23/v1/credentials"}, []string{`credentials URI "169.254.170.23/v1/credentials" is not an http:// or https:// URL`}},
		{"version with an argument", []string{bin, "version", "extra"}, []string{`unknown command "extra" for "spiffe-aws-bridge-k8s version"`}},
		{"completion for an unknown shell", []string{bin, "completion", "tcsh"}, []string{`unknown command "tcsh" for "spiffe-aws-bridge-k8s completion"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runArgv(t, nil, tc.argv...)
			if r.code != 2 {
				t.Errorf("exit %d, want 2\nstderr: %s", r.code, r.stderr)
			}
			if prefix := "spiffe-aws-bridge-k8s: "; !strings.HasPrefix(r.stderr, prefix) && !strings.Contains(r.stderr, "[ERROR] "+prefix+"fatal: stopping") {
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

// TestVersion: --version and version print NAME VERSION (commit C, built with GO), as on every binary.
func TestVersion(t *testing.T) {
	re := regexp.MustCompile(`^` + regexp.QuoteMeta("spiffe-aws-bridge-k8s "+e2eVersion) + ` \(commit \S+, built with go\S+\)\n$`)
	for _, arg := range []string{"--version", "version"} {
		r := runArgv(t, nil, binPath, arg)
		if r.code != 0 || !re.MatchString(r.stdout) || r.stderr != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", arg, r.code, r.stdout, r.stderr)
		}
	}
}

// durationAnswers are the four values every duration flag is judged on, and what each means.
var durationAnswers = map[string]time.Duration{"5m": 5 * time.Minute, "90m": 90 * time.Minute, "3600": time.Hour, "PT1H": time.Hour}

// TestEveryDurationTakesTheOneGrammar: the webhook's duration flags take 5m, 90m, 3600 and PT1H, as every
// duration flag of the other binaries does (cmd/spiffe-aws-bridge's test of the same name); an accepted
// value lets the command go on to the next check (a flag that follows, deliberately wrong), an
// out-of-range one is named with its bound.
func TestEveryDurationTakesTheOneGrammar(t *testing.T) {
	for _, tc := range []struct {
		name    string
		argv    func(v string) []string
		next    string            // the later check an accepted value reaches
		refused map[string]string // value → the message it gets
	}{
		{name: "webhook --token-expiration", argv: func(v string) []string {
			return []string{binPath, "webhook", "--service", "pi", "--namespace", "ns", "--token-expiration", v, "--log-level", "loud"}
		}, next: `--log-level "loud" is not a log level`, refused: map[string]string{
			"5m": "--token-expiration 5m is too short: the minimum is 10m; give at least 10m, e.g. 24h",
		}},
		{name: "webhook --ca-bundle-check", argv: func(v string) []string {
			return []string{binPath, "webhook", "--service", "pi", "--namespace", "ns", "--ca-bundle-check", v, "--log-level", "loud"}
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
