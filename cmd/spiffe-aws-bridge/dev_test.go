package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/dev"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator"
)

// TestDevModeWorksEndToEnd runs the README's first command as a user would and follows the commands it
// prints: the aws CLI through the credentials file, and an SDK through the container endpoint.
func TestDevModeWorksEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: dev for up to a minute, with every aws CLI installed (about 40 s); the full run covers it")
	}
	dir := t.TempDir()
	cmd := exec.Command(binPath, "dev", "--dir", dir, "--rotate-every", "2s", "--duration", "60s", "--log-level", "trace")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	var mu sync.Mutex
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
		done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			mu.Lock()
			t.Logf("dev logs:\n%s", logs.String())
			mu.Unlock()
		}
	})

	// The banner: read until the "Stop with Ctrl-C." line.
	var banner strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		banner.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "Stop with Ctrl-C.") {
			break
		}
	}
	text := banner.String()
	credsPath := filepath.Join(dir, "credentials")
	endpoint := regexp.MustCompile(`Roles Anywhere/STS (http://127\.0\.0\.1:\d+)`).FindStringSubmatch(text)
	container := regexp.MustCompile(`AWS_CONTAINER_CREDENTIALS_FULL_URI=(\S+)`).FindStringSubmatch(text)
	token := regexp.MustCompile(`AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=(\S+)`).FindStringSubmatch(text)
	if endpoint == nil || container == nil || token == nil || !strings.Contains(text, credsPath) {
		t.Fatalf("banner lacks the emulator URL, the container endpoint or the credentials file:\n%s", text)
	}

	current := func() string { return profileKeys(credsPath, "dev")["aws_access_key_id"] }
	eventually(t, "the dev profile", func() bool { return current() != "" })
	first := current()
	eventually(t, "a refresh after a rotation", func() bool { return current() != "" && current() != first })

	// 1. The aws CLI, with the commands exactly as the banner prints them (file and container endpoint),
	// with every aws CLI installed: the one on PATH (here v1 from pyenv) and Debian's v2.9 in /usr/bin.
	clis := awsCLIs()
	if len(clis) == 0 {
		t.Log("the aws CLI is not installed; checked the SDK only")
	}
	blocks := bannerCommands(text)
	if len(blocks) != 2 {
		t.Fatalf("want 2 aws CLI command blocks in the banner, found %d:\n%s", len(blocks), text)
	}
	for _, aws := range clis {
		for _, block := range blocks {
			out, err := runAsAUserWould(t, filepath.Dir(aws), block)
			var id struct{ Arn string }
			if err != nil || json.Unmarshal(out, &id) != nil || !strings.HasPrefix(id.Arn, "arn:aws:sts::123456789012:assumed-role/dev-workload/") {
				t.Fatalf("the banner's commands failed with %s: %v\n%s\n%s", aws, err, block, out)
			}
		}
	}

	// 2. An SDK through the container endpoint.
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", container[1])
	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token[1])
	ctx := context.Background()
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"),
		awsconfig.WithSharedCredentialsFiles([]string{filepath.Join(dir, "none")}), awsconfig.WithSharedConfigFiles([]string{filepath.Join(dir, "none")}))
	if err != nil {
		t.Fatal(err)
	}
	out, err := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(endpoint[1]) }).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || !strings.HasPrefix(aws.ToString(out.Arn), "arn:aws:sts::123456789012:assumed-role/dev-workload/") {
		t.Fatalf("GetCallerIdentity through the container endpoint: %v", err)
	}

	keys := profileKeys(credsPath, "dev")
	tok, _ := os.ReadFile(token[1])
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("dev exited with %v after SIGINT, want 0", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("dev did not stop on SIGINT")
	}
	// Trace-level logs of the agent, the emulator and the bridge hold no secret.
	mu.Lock()
	all := logs.String() + banner.String()
	mu.Unlock()
	for _, secret := range []string{keys["aws_secret_access_key"], keys["aws_session_token"], strings.TrimSpace(string(tok))} {
		if secret == "" || strings.Contains(all, secret) {
			t.Fatalf("a secret (or an empty one) in dev's trace output: %q", secret[:min(4, len(secret))])
		}
	}
}

// TestDevChainReachesTheSecondAccount runs `dev --chain` and the command its banner prints for the
// cross-account profile: the aws CLI is account B's role, and the session carries the spiffe-id tag.
func TestDevChainReachesTheSecondAccount(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: dev --chain and the aws CLI (about 20 s); the full run covers it")
	}
	aws, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("the aws CLI is not installed")
	}
	dir := t.TempDir()
	cmd := exec.Command(binPath, "dev", "--chain", "--dir", dir, "--duration", "60s")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var banner strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		banner.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "Stop with Ctrl-C.") {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	line := regexp.MustCompile(`AWS_SHARED_CREDENTIALS_FILE=(\S+) AWS_PROFILE=dev-cross-account aws sts get-caller-identity --region (\S+) --endpoint-url (\S+)`).FindStringSubmatch(banner.String())
	if line == nil {
		t.Fatalf("the banner has no cross-account command:\n%s", banner.String())
	}
	eventually(t, "the cross-account profile", func() bool { return profileKeys(line[1], "dev-cross-account")["aws_access_key_id"] != "" })
	c := exec.Command(aws, "sts", "get-caller-identity", "--region", line[2], "--endpoint-url", line[3], "--output", "json")
	c.Env = append(os.Environ(), "AWS_SHARED_CREDENTIALS_FILE="+line[1], "AWS_PROFILE=dev-cross-account", "AWS_CONFIG_FILE="+filepath.Join(dir, "none"))
	out, err := c.CombinedOutput()
	var id struct{ Account, Arn string }
	if err != nil || json.Unmarshal(out, &id) != nil || id.Account != dev.AccountB {
		t.Fatalf("aws sts get-caller-identity: %v\n%s", err, out)
	}
	var views []struct{ Tags map[string]string }
	key := profileKeys(line[1], "dev-cross-account")["aws_access_key_id"]
	if err := json.Unmarshal([]byte(httpBody(t, line[3]+"/_emulator/sessions?access_key_id="+key)), &views); err != nil || len(views) != 1 || views[0].Tags["spiffe-id"] != dev.SPIFFEID {
		t.Fatalf("the cross-account session: %v %+v", err, views)
	}
	// dev runs with trusted identity propagation on: the banner's command shows account B's session with
	// the SPIFFE ID as its origin identity.
	show := regexp.MustCompile(`(?m)^\s*(curl -s "\S+/_emulator/sessions\?access_key_id=\$\(.*\)")$`).FindStringSubmatch(banner.String())
	if show == nil {
		t.Fatalf("the banner has no command showing account B's origin identity:\n%s", banner.String())
	}
	sh := exec.Command("sh", "-c", show[1])
	sh.Env = append(os.Environ(), "AWS_CONFIG_FILE="+filepath.Join(dir, "none"))
	out, err = sh.Output()
	var origin []struct {
		Account        string
		OriginIdentity emulator.OriginIdentity `json:"origin_identity"`
		Chain          []string
	}
	if err != nil || json.Unmarshal(out, &origin) != nil || len(origin) != 1 || origin[0].Account != dev.AccountB ||
		origin[0].OriginIdentity.Subject != dev.SPIFFEID || origin[0].OriginIdentity.SubjectType != "workload" || len(origin[0].Chain) != 1 {
		t.Fatalf("%s: %v\n%s", show[1], err, out)
	}
}

// awsCLIs are the aws CLIs installed: the one on PATH and /usr/bin/aws (Debian's) when it is another.
func awsCLIs() []string {
	var out []string
	if p, err := exec.LookPath("aws"); err == nil {
		out = append(out, p)
	}
	if _, err := os.Stat("/usr/bin/aws"); err == nil && (len(out) == 0 || out[0] != "/usr/bin/aws") {
		out = append(out, "/usr/bin/aws")
	}
	return out
}

// bannerCommands returns the command blocks of dev's banner: each "# the aws CLI …" comment and the
// indented lines after it, up to a blank line.
func bannerCommands(banner string) []string {
	var blocks []string
	var cur []string
	in := false
	for _, line := range strings.Split(banner, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "# the aws CLI"):
			in, cur = true, nil
		case in && trimmed == "":
			blocks, in = append(blocks, strings.Join(cur, "\n")), false
		case in:
			cur = append(cur, trimmed)
		}
	}
	return blocks
}

// runAsAUserWould runs a shell snippet with bash in a clean environment: no AWS_* variables and an
// empty home, so that only what the snippet sets is used (aws CLI v1 needs a region from
// AWS_DEFAULT_REGION or --region; v2 also reads AWS_REGION).
func runAsAUserWould(t *testing.T, awsDir, snippet string) ([]byte, error) {
	t.Helper()
	c := exec.Command("bash", "-euc", snippet)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "PATH=") {
			c.Env = append(c.Env, kv)
		}
	}
	c.Env = append(c.Env, "HOME="+t.TempDir(), "PATH="+awsDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	var stderr strings.Builder
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		return append(out, stderr.String()...), err
	}
	return out, nil
}

// TestDevRemovesItsTemporaryDirectoryAndKeepsDir: without --dir, dev works in a new temporary directory
// and removes it on exit; with --dir, the directory and its files stay.
func TestDevRemovesItsTemporaryDirectoryAndKeepsDir(t *testing.T) {
	r := runBin(t, nil, "dev", "--duration", "3s")
	m := regexp.MustCompile(`(?m)^  directory\s+(\S+)$`).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil || !strings.Contains(r.stdout, "The directory is removed on exit (keep it with --dir).") {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Fatalf("dev left its temporary directory %s behind (%v)", m[1], err)
	}

	dir := filepath.Join(t.TempDir(), "kept")
	r = runBin(t, nil, "dev", "--duration", "3s", "--dir", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "The directory is kept on exit.") {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, f := range []string{"bridge.hcl", "emulator.hcl", "trust-bundle.pem"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("--dir: %s was not kept: %v", f, err)
		}
	}
}
