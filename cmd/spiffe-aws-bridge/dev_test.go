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
)

// TestDevModeWorksEndToEnd runs the README's first command as a user would and follows the commands it
// prints: the aws CLI through the credentials file, and an SDK through the container endpoint.
func TestDevModeWorksEndToEnd(t *testing.T) {
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

	// 1. The aws CLI, exactly as the banner says.
	if aws, err := exec.LookPath("aws"); err == nil {
		c := exec.Command(aws, "sts", "get-caller-identity", "--region", "us-east-1", "--endpoint-url", endpoint[1], "--output", "json")
		c.Env = append(os.Environ(), "AWS_SHARED_CREDENTIALS_FILE="+credsPath, "AWS_PROFILE=dev", "AWS_CONFIG_FILE="+filepath.Join(dir, "none"))
		out, err := c.CombinedOutput()
		var id struct{ Arn string }
		if err != nil || json.Unmarshal(out, &id) != nil || !strings.HasPrefix(id.Arn, "arn:aws:sts::123456789012:assumed-role/dev-workload/") {
			t.Fatalf("aws sts get-caller-identity: %v\n%s", err, out)
		}
	} else {
		t.Log("the aws CLI is not installed; checked the SDK only")
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
	if err != nil || json.Unmarshal(out, &id) != nil || id.Account != devAccountB {
		t.Fatalf("aws sts get-caller-identity: %v\n%s", err, out)
	}
	var views []struct{ Tags map[string]string }
	key := profileKeys(line[1], "dev-cross-account")["aws_access_key_id"]
	if err := json.Unmarshal([]byte(httpBody(t, line[3]+"/_emulator/sessions?access_key_id="+key)), &views); err != nil || len(views) != 1 || views[0].Tags["spiffe-id"] != devSpiffeID {
		t.Fatalf("the cross-account session: %v %+v", err, views)
	}
}
