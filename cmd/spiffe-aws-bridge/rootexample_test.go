package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs/safefstest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// readmeRootExample is the HCL of the README's "Run the daemon" section: the config a root bridge uses
// to keep /home/app/.aws/credentials for the user app.
func readmeRootExample(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "## Run the daemon")
	if !ok {
		t.Fatal(`README.md has no "## Run the daemon" section`)
	}
	_, block, ok := strings.Cut(section, "```hcl\n")
	if !ok {
		t.Fatal(`"## Run the daemon" has no hcl block`)
	}
	block, _, _ = strings.Cut(block, "```")
	return block
}

// TestSecurityReadmeRootExampleServesItsUser runs the README's root example as written, with only the
// machine-specific values replaced (the agent's socket, the emulator's ARNs and endpoint, user app →
// nobody, /home/app → a test home owned by nobody): the bridge, as root, creates ~/.aws and the file for
// that user, who can read them and use the credentials, and nothing in them belongs to root.
func TestSecurityReadmeRootExampleServesItsUser(t *testing.T) {
	safefstest.NeedRoot(t, "runs the bridge as root for a file owned by another user (uid 65534)")
	w := newWorld(t)
	home := filepath.Join(w.Dir, "home", "app")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	safefstest.Give(t, home, safefstest.Nobody, safefstest.Nobody)
	safefstest.Traversable(t, home)
	credsPath := filepath.Join(home, ".aws", "credentials")

	example := readmeRootExample(t)
	for _, r := range []struct{ key, value, after string }{
		{"agent_address", w.Agent.Addr(), ""},
		{"spiffe_id", testworld.SPIFFEID, ""},
		{"trust_anchor_arn", testworld.TrustAnchorARN, ""},
		{"profile_arn", testworld.ProfileARN, ""},
		{"role_arn", testworld.RoleARN, "\n  endpoint = \"" + w.Emulator.URL + "\"\n  insecure_endpoint = true"},
		{"path", credsPath, ""},
		{"owner", "nobody", ""},
		{"group", "nogroup", ""},
	} {
		re := regexp.MustCompile(`(?m)^(\s*` + r.key + `\s*=\s*)"[^"]*"`)
		m := re.FindStringSubmatchIndex(example)
		if m == nil {
			t.Fatalf("the README's root example has no %s; this test follows it and needs updating:\n%s", r.key, example)
		}
		example = example[:m[3]] + strconv.Quote(r.value) + r.after + example[m[1]:]
	}
	cfg := w.WriteFile(t, "root-example.hcl", []byte(example))
	d := startDaemon(t, cfg)
	eventually(t, "the credentials file", func() bool { return profileKeys(credsPath, "app")["aws_access_key_id"] != "" })

	for path, wantMode := range map[string]os.FileMode{filepath.Dir(credsPath): 0o700 | os.ModeDir, credsPath: 0o600} {
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != safefstest.Nobody || st.Gid != safefstest.Nobody || fi.Mode() != wantMode {
			t.Errorf("%s: uid %d gid %d mode %s; want 65534:65534 %s", path, st.Uid, st.Gid, fi.Mode(), wantMode)
		}
	}
	// The user reads it: cat running as nobody.
	cat := exec.Command("cat", credsPath)
	cat.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: safefstest.Nobody, Gid: safefstest.Nobody}}
	out, err := cat.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "aws_secret_access_key") {
		t.Fatalf("nobody cannot read %s: %v %s", credsPath, err, out)
	}
	// And the credentials work (aws-sdk-go-v2's shared-config loader, against the emulator's STS).
	if arn := callerARN(t, w, credsPath, "app"); !strings.Contains(arn, ":assumed-role/") {
		t.Fatalf("caller ARN %q", arn)
	}
	if strings.Contains(d.Logs(), profileKeys(credsPath, "app")["aws_secret_access_key"]) {
		t.Error("the secret reached the logs")
	}
}
