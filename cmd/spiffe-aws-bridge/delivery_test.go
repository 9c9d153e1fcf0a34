package main

// Which delivery method keeps a long-running client supplied? One daemon serves every method; for each,
// a long-running aws-sdk-go-v2 client and a long-running botocore client (the Python SDK, AWS CLI v1)
// call STS on the emulator while the bridge refreshes several times, and the test records whether each
// client picks up the new credentials. The README's table ("Delivery methods: which one?") must say what
// was measured.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// deliveryLifetime is how long the emulator's sessions last here: the bridge refreshes at half of it, and
// clients reach expiry within seconds (AWS's minimum is 15 minutes; the emulator's test knob shortens it).
const deliveryLifetime = 5 * time.Second

// clientRun is what one long-running client did.
type clientRun struct {
	keys   []string // distinct access key ids used, in order
	calls  int
	failed int // calls that failed (e.g. ExpiredToken)
	lastOK bool
	errs   []string
}

// pickedUp: the client followed the bridge's refreshes (used at least three keys) and still works.
func (r clientRun) pickedUp() bool { return len(r.keys) >= 3 && r.lastOK }

func (r clientRun) String() string {
	verdict := "no"
	if r.pickedUp() {
		verdict = "yes"
	}
	return fmt.Sprintf("%s (%d keys used, %d of %d calls failed)", verdict, len(r.keys), r.failed, r.calls)
}

func (r *clientRun) record(key string, err error) {
	r.calls++
	if key != "" && (len(r.keys) == 0 || r.keys[len(r.keys)-1] != key) {
		seen := false
		for _, k := range r.keys {
			seen = seen || k == key
		}
		if !seen {
			r.keys = append(r.keys, key)
		}
	}
	r.lastOK = err == nil
	if err != nil {
		r.failed++
		if len(r.errs) < 3 {
			r.errs = append(r.errs, err.Error())
		}
	}
}

// botocorePython finds a Python with botocore: python3 on PATH, else the interpreter of the aws CLI.
func botocorePython() string {
	var candidates []string
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	if aws, err := exec.LookPath("aws"); err == nil {
		if f, err := os.Open(aws); err == nil {
			line, _ := bufio.NewReader(f).ReadString('\n')
			f.Close()
			if fields := strings.Fields(strings.TrimPrefix(line, "#!")); len(fields) > 0 && strings.Contains(fields[0], "python") {
				candidates = append(candidates, fields[0])
			}
		}
	}
	for _, p := range candidates {
		if exec.Command(p, "-c", "import botocore").Run() == nil {
			return p
		}
	}
	return ""
}

// botocoreClient is a long-running botocore program: one session, one STS client, a call every interval.
const botocoreClient = `
import json, sys, time
import botocore.session
duration, interval, url = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
session = botocore.session.get_session()
client = session.create_client("sts", region_name="us-east-1", endpoint_url=url)
end = time.time() + duration
while time.time() < end:
    key, err = "", ""
    try:
        creds = session.get_credentials()
        key = creds.get_frozen_credentials().access_key if creds else ""
        client.get_caller_identity()
    except Exception as e:
        err = type(e).__name__ + ": " + str(e)[:300]
    print(json.dumps({"key": key, "err": err}), flush=True)
    time.sleep(interval)
`

func runBotocore(t *testing.T, python string, env []string, url string, d time.Duration) clientRun {
	cmd := exec.Command(python, "-c", botocoreClient, fmt.Sprint(d.Seconds()), "0.5", url)
	cmd.Env = env
	out, err := cmd.Output()
	var run clientRun
	if err != nil {
		run.record("", fmt.Errorf("botocore client: %v", err))
		return run
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var l struct{ Key, Err string }
		if json.Unmarshal([]byte(line), &l) != nil {
			continue
		}
		var callErr error
		if l.Err != "" {
			callErr = fmt.Errorf("%s", l.Err)
		}
		run.record(l.Key, callErr)
	}
	return run
}

func runGoClient(t *testing.T, url string, d time.Duration) clientRun {
	ctx := context.Background()
	var run clientRun
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"))
	if err != nil {
		run.record("", err)
		return run
	}
	client := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(url) })
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		// What the client signs with: its own cached credentials provider.
		c, err := cfg.Credentials.Retrieve(ctx)
		if err == nil {
			_, err = client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		}
		run.record(c.AccessKeyID, err)
	}
	return run
}

func TestDeliveryMethodsForLongRunningClients(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: long-running clients across real expiries (about 2 minutes); the full run covers it")
	}
	python := botocorePython()
	w := newWorld(t)
	w.Emulator.SetSessionLifetime(deliveryLifetime)
	imdsPort, _ := freePort()
	containerPort, _ := freePort()
	credsPath := filepath.Join(w.Dir, "credentials")
	tokenPath := filepath.Join(w.Dir, "container.token")
	cfgPath := w.WriteConfig(t, "bridge.hcl", w.Profile("app", "  session_duration = \"15m\"\n", testworld.CredentialsFile(credsPath),
		fmt.Sprintf("  imds {\n    bind_port = %d\n  }\n  container_endpoint {\n    bind_port       = %d\n    auth_token_file = %q\n  }\n", imdsPort, containerPort, tokenPath)))
	startDaemon(t, cfgPath)
	eventually(t, "the credentials file", func() bool { return profileKeys(credsPath, "app") != nil })
	awsConfig := w.WriteFile(t, "aws-config", []byte(fmt.Sprintf("[profile app]\ncredential_process = %s --config %s --profile app\n", leanPath, cfgPath)))
	none := filepath.Join(w.Dir, "none")

	methods := []struct {
		name string
		env  map[string]string
	}{
		{"credentials file", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": credsPath, "AWS_CONFIG_FILE": none, "AWS_PROFILE": "app", "AWS_EC2_METADATA_DISABLED": "true"}},
		{"credential_process", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": none, "AWS_CONFIG_FILE": awsConfig, "AWS_PROFILE": "app", "AWS_EC2_METADATA_DISABLED": "true"}},
		{"IMDSv2 endpoint", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": none, "AWS_CONFIG_FILE": none, "AWS_EC2_METADATA_SERVICE_ENDPOINT": fmt.Sprintf("http://127.0.0.1:%d", imdsPort)}},
		{"container endpoint", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": none, "AWS_CONFIG_FILE": none, "AWS_EC2_METADATA_DISABLED": "true",
			"AWS_CONTAINER_CREDENTIALS_FULL_URI": fmt.Sprintf("http://127.0.0.1:%d/v1/credentials", containerPort), "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tokenPath}},
	}
	// Three refreshes at least: the bridge refreshes every half lifetime, clients reach expiry every lifetime.
	const runFor = 3*deliveryLifetime + 2*time.Second
	measured := map[string][2]clientRun{}
	var table strings.Builder
	fmt.Fprintf(&table, "\n| delivery | long-running aws-sdk-go-v2 | long-running botocore |\n|---|---|---|\n")
	for _, m := range methods {
		var base []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "AWS_") {
				base = append(base, kv)
			}
		}
		for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE",
			"AWS_CONFIG_FILE", "AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
			"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"} {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
		env := append([]string(nil), base...)
		for k, v := range m.env {
			t.Setenv(k, v)
			env = append(env, k+"="+v)
		}
		var goRun, pyRun clientRun
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); goRun = runGoClient(t, w.Emulator.URL, runFor) }()
		if python != "" {
			pyRun = runBotocore(t, python, env, w.Emulator.URL, runFor)
		}
		wg.Wait()
		measured[m.name] = [2]clientRun{goRun, pyRun}
		py := "not measured: no python3 with botocore"
		if python != "" {
			py = pyRun.String()
		}
		fmt.Fprintf(&table, "| %s | %s | %s |\n", m.name, goRun, py)
		for _, r := range []clientRun{goRun, pyRun} {
			if len(r.errs) > 0 {
				t.Logf("%s: first errors: %q", m.name, r.errs)
			}
		}
	}
	t.Log(table.String())
	if python == "" {
		t.Log("botocore column skipped: no python3 with botocore (CI installs Debian's awscli / python3-botocore)")
	}

	// The README's table must say what was measured.
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^\| (credentials file|credential_process|IMDSv2 endpoint|container endpoint) \| (yes|no)\b[^|]*\| (yes|no)\b[^|]*\|$`)
	rows := row.FindAllStringSubmatch(string(readme), -1)
	if len(rows) != len(methods) {
		t.Fatalf("the README's long-running client table has %d of the %d rows", len(rows), len(methods))
	}
	for _, r := range rows {
		got := measured[r[1]]
		for i, client := range []string{"aws-sdk-go-v2", "botocore"} {
			if client == "botocore" && python == "" {
				continue
			}
			if want := r[2+i] == "yes"; got[i].pickedUp() != want {
				t.Errorf("README says %s with a long-running %s client: %s; measured %s", r[1], client, r[2+i], got[i])
			}
		}
	}
}
