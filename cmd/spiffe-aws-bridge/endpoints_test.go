package main

// End-to-end tests of the endpoint sinks and the side servers: the daemon as a process serving IMDSv2,
// a container-credentials endpoint, health checks and Prometheus metrics, consumed by the aws CLI and
// aws-sdk-go-v2.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

type endpointsWorld struct {
	*world
	d                                   *daemonProc
	credsPath, tokenPath                string
	imdsPort, containerPort, healthPort int
	metricsPort                         int
}

func startEndpointsDaemon(t *testing.T) *endpointsWorld {
	t.Helper()
	e := &endpointsWorld{world: newWorld(t)}
	ports := make([]int, 4)
	for i := range ports {
		p, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	e.imdsPort, e.containerPort, e.healthPort, e.metricsPort = ports[0], ports[1], ports[2], ports[3]
	e.credsPath = filepath.Join(e.Dir, "credentials")
	e.tokenPath = filepath.Join(e.Dir, "tokens", "container.token")
	extra := testworld.HealthChecks(e.healthPort) + testworld.Telemetry(e.metricsPort) + e.Profile("served", "  session_duration  = \"15m\"\n",
		fmt.Sprintf("  imds {\n    bind_port = %d\n  }\n  container_endpoint {\n    bind_port       = %d\n    auth_token_file = %q\n  }\n", e.imdsPort, e.containerPort, e.tokenPath))
	e.d = startDaemon(t, e.bridgeConfig(t, "bridge.hcl", e.credsPath, extra))
	eventually(t, "ready", func() bool { return httpStatus(fmt.Sprintf("http://127.0.0.1:%d/ready", e.healthPort)) == 200 })
	return e
}

func httpStatus(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func httpBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (e *endpointsWorld) containerURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d/v1/credentials", e.containerPort)
}

// served fetches the container endpoint's document with the token.
func (e *endpointsWorld) served(t *testing.T) map[string]string {
	t.Helper()
	token, err := os.ReadFile(e.tokenPath)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", e.containerURL(), nil)
	req.Header.Set("Authorization", strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != 200 {
		t.Fatalf("container endpoint: %d %v", resp.StatusCode, err)
	}
	return doc
}

func TestEndpointsServeTheAWSCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the aws CLI (a Python start-up per call) through both endpoints (about 20 s); the full run covers it")
	}
	e := startEndpointsDaemon(t)
	want := "arn:aws:sts::123456789012:assumed-role/app/"
	// IMDSv2, as on EC2.
	arn := awsCallerIdentity(t, e.world, []string{fmt.Sprintf("AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:%d/", e.imdsPort), "AWS_EC2_METADATA_DISABLED=false"})
	if !strings.HasPrefix(arn, want) {
		t.Fatalf("through IMDS: %q", arn)
	}
	// The container endpoint, as on ECS/EKS (the token by value: Debian's awscli predates the token file).
	token, _ := os.ReadFile(e.tokenPath)
	arn = awsCallerIdentity(t, e.world, []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI=" + e.containerURL(),
		"AWS_CONTAINER_AUTHORIZATION_TOKEN=" + strings.TrimSpace(string(token)), "AWS_EC2_METADATA_DISABLED=true"})
	if !strings.HasPrefix(arn, want) {
		t.Fatalf("through the container endpoint: %q", arn)
	}
}

// TestLongRunningSDKClientAcrossRotations keeps one aws-sdk-go-v2 client for the whole test. Its credential
// cache treats 15-minute sessions as always due (expiry window 15m), so every call goes back to the
// container endpoint (via AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE), as a client near expiry would.
func TestLongRunningSDKClientAcrossRotations(t *testing.T) {
	e := startEndpointsDaemon(t)
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", e.containerURL())
	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", e.tokenPath)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"} {
		t.Setenv(k, "")
	}
	ctx := context.Background()
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"),
		awsconfig.WithSharedConfigFiles([]string{filepath.Join(e.Dir, "none")}),
		awsconfig.WithSharedCredentialsFiles([]string{filepath.Join(e.Dir, "none")}),
		awsconfig.WithCredentialsCacheOptions(func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = 15 * time.Minute }))
	if err != nil {
		t.Fatal(err)
	}
	client := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(e.Emulator.URL) })
	metrics := fmt.Sprintf("http://127.0.0.1:%d/metrics", e.metricsPort)
	seen := map[string]bool{}
	var secrets []string
	for round := 0; round < 3; round++ {
		served := e.served(t)
		if seen[served["AccessKeyId"]] {
			t.Fatalf("round %d: the endpoint still serves the previous credentials", round)
		}
		seen[served["AccessKeyId"]] = true
		secrets = append(secrets, served["SecretAccessKey"], served["Token"])
		out, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if !strings.HasPrefix(aws.ToString(out.Arn), "arn:aws:sts::123456789012:assumed-role/app/") {
			t.Fatalf("round %d: %s", round, aws.ToString(out.Arn))
		}
		before := refreshes(t, metrics, "served")
		if err := e.Agent.Rotate(); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the refresh after rotation", func() bool { return e.served(t)["AccessKeyId"] != served["AccessKeyId"] })
		if after := refreshes(t, metrics, "served"); after <= before {
			t.Fatalf("refreshes_total did not move: %v → %v", before, after)
		}
	}
	// The side servers and logs never show a secret.
	scrape := httpBody(t, metrics)
	health := httpBody(t, fmt.Sprintf("http://127.0.0.1:%d/ready", e.healthPort))
	for _, s := range secrets {
		for where, text := range map[string]string{"metrics": scrape, "health": health, "logs": e.d.Logs()} {
			if strings.Contains(text, s) {
				t.Fatalf("a secret appears in the %s", where)
			}
		}
	}
	for _, series := range []string{
		`spiffe_aws_bridge_credentials_expiry_timestamp_seconds{profile="served"}`,
		`spiffe_aws_bridge_svid_expiry_timestamp_seconds{profile="served"}`,
		`spiffe_aws_bridge_create_session_duration_seconds_count{profile="served"}`,
		`spiffe_aws_bridge_endpoint_requests_total{code="200",endpoint="container",profile="served"}`,
		`spiffe_aws_bridge_workload_api_connected 1`,
		`spiffe_aws_bridge_build_info{version="` + e2eVersion + `"} 1`,
	} {
		if !strings.Contains(scrape, series) {
			t.Errorf("scrape lacks %s", series)
		}
	}
	var report struct {
		Ready    bool `json:"ready"`
		Profiles []struct {
			Profile string `json:"profile"`
			Ready   bool   `json:"ready"`
		} `json:"profiles"`
	}
	if err := json.Unmarshal([]byte(health), &report); err != nil || !report.Ready || len(report.Profiles) != 2 {
		t.Fatalf("health report %s (%v)", health, err)
	}
}

var refreshesRE = regexp.MustCompile(`(?m)^spiffe_aws_bridge_refreshes_total\{profile="([^"]+)",result="success"\} ([0-9.e+]+)$`)

func refreshes(t *testing.T, url, profile string) float64 {
	t.Helper()
	for _, m := range refreshesRE.FindAllStringSubmatch(httpBody(t, url), -1) {
		if m[1] == profile {
			v, _ := strconv.ParseFloat(m[2], 64)
			return v
		}
	}
	return 0
}

// TestHealthReportsDeniedRefreshes: a denied refresh shows in the health report (type and AWS message)
// while the last good credentials keep the profile ready and keep being served.
func TestHealthReportsDeniedRefreshes(t *testing.T) {
	e := startEndpointsDaemon(t)
	e.Emulator.FailNext(1000, 403, "AccessDeniedException")
	if err := e.Agent.Rotate(); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/ready", e.healthPort)
	eventually(t, "the denied refresh in the health report", func() bool {
		return strings.Contains(httpBody(t, url), "AccessDeniedException")
	})
	if code := httpStatus(url); code != 200 {
		t.Fatalf("/ready = %d while the last good credentials are fresh", code)
	}
	before := e.served(t)["AccessKeyId"]
	if err := e.Agent.Rotate(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if got := e.served(t)["AccessKeyId"]; got != before {
		t.Fatalf("served credentials changed although AWS denied the refresh")
	}
}

// TestRemoteBindsWithAllowRemote: health checks and metrics on all interfaces, as in the compose demo and
// Kubernetes, start when allow_remote is set (and config refuses them otherwise, see package config).
func TestRemoteBindsWithAllowRemote(t *testing.T) {
	w := newWorld(t)
	healthPort, _ := freePort()
	metricsPort, _ := freePort()
	extra := fmt.Sprintf(`
health_checks {
  bind_address = "0.0.0.0"
  bind_port    = %d
  allow_remote = true
}
telemetry {
  prometheus {
    host         = "0.0.0.0"
    port         = %d
    allow_remote = true
  }
}`, healthPort, metricsPort)
	startDaemon(t, w.bridgeConfig(t, "bridge.hcl", filepath.Join(w.Dir, "credentials"), extra))
	eventually(t, "ready on all interfaces", func() bool { return httpStatus(fmt.Sprintf("http://127.0.0.1:%d/ready", healthPort)) == 200 })
	if code := httpStatus(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)); code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
}

// imdsKey fetches the access key id the IMDSv2 endpoint on port serves for role, "" when none.
func imdsKey(port int, role string) string {
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	req, _ := http.NewRequest(http.MethodPut, base+"/latest/api/token", nil)
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	token, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	req, _ = http.NewRequest(http.MethodGet, base+"/latest/meta-data/iam/security-credentials/"+role, nil)
	req.Header.Set("X-aws-ec2-metadata-token", string(token))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var doc struct{ AccessKeyId string }
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&doc) != nil {
		return ""
	}
	return doc.AccessKeyId
}

// TestReloadRefusesWhatASinkWouldRefuse: a SIGHUP reload that cannot be applied in full (a profile name the
// credentials file refuses, a port in use, a path that cannot be used) changes nothing: the old profile
// keeps refreshing and serving, /ready reports the failed reload with the file:line, the process lives
// on. A later good reload that keeps the port hands the listening socket over.
func TestReloadRefusesWhatASinkWouldRefuse(t *testing.T) {
	w := newWorld(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	notADir := filepath.Join(w.Dir, "a-file")
	if err := os.WriteFile(notADir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	healthPort, _ := freePort()
	imdsPort, _ := freePort()
	credsPath := filepath.Join(w.Dir, "credentials")
	config := func(path, section string, port int, extra string) string {
		return w.WriteConfig(t, "bridge.hcl", fmt.Sprintf("health_checks {\n  bind_port = %d\n}\n", healthPort), w.Profile("app", extra,
			fmt.Sprintf("  credentials_file {\n    path         = %q\n    profile_name = %q\n  }\n  imds {\n    bind_port = %d\n  }\n", path, section, port)))
	}
	cfgPath := config(credsPath, "app", imdsPort, "")
	// The errors name the lines of the profile block and of its profile_name in the file.
	src, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	lineOf := func(prefix string) int {
		for i, l := range strings.Split(string(src), "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), prefix) {
				return i + 1
			}
		}
		t.Fatalf("no line %q in %s:\n%s", prefix, cfgPath, src)
		return 0
	}
	profileLine, nameLine := lineOf(`profile "app" {`), lineOf("profile_name =")
	d := startDaemon(t, cfgPath)
	readyURL := fmt.Sprintf("http://127.0.0.1:%d/ready", healthPort)
	eventually(t, "ready", func() bool { return httpStatus(readyURL) == 200 })

	var report struct {
		ConfigReload struct{ Status, Error string } `json:"config_reload"`
	}
	reloads := 0
	for _, tt := range []struct {
		name, path, section string
		port                int
		want                string
	}{
		{"a profile name the credentials file refuses", credsPath, "my app", imdsPort, fmt.Sprintf(`bridge.hcl:%d:20: profile "app": credentials_file.profile_name: profile name "my app" contains ' '`, nameLine)},
		{"a port in use", credsPath, "app", busy.Addr().(*net.TCPAddr).Port, fmt.Sprintf(`profile "app" (%s:%d): imds: listen on`, cfgPath, profileLine)},
		{"a path that cannot be used", filepath.Join(notADir, "credentials"), "app", imdsPort, fmt.Sprintf(`profile "app" (%s:%d): credfile:`, cfgPath, profileLine)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			config(tt.path, tt.section, tt.port, "")
			reloads++
			_ = d.cmd.Process.Signal(syscall.SIGHUP)
			eventually(t, "the refused reload in /ready", func() bool {
				body := httpBody(t, readyURL)
				return json.Unmarshal([]byte(body), &report) == nil && report.ConfigReload.Status == "failed" &&
					strings.Contains(report.ConfigReload.Error, tt.want)
			})
			// The log arrives through a pipe, possibly after /ready already shows the refusal.
			refused := func() int {
				return strings.Count(d.Logs(), "config reload refused; every profile keeps running as before")
			}
			eventually(t, "the refused reload in the log", func() bool { return refused() >= reloads })
			if n := refused(); n != reloads {
				t.Fatalf("%d refused reloads logged, want %d", n, reloads)
			}
			select {
			case <-d.done:
				t.Fatalf("the daemon exited: %v", d.err)
			default:
			}
			if code := httpStatus(readyURL); code != 200 {
				t.Fatalf("/ready = %d: the old profile should still be ready", code)
			}
			// The old profile keeps refreshing, into the old file, on the old port.
			before := profileKeys(credsPath, "app")["aws_access_key_id"]
			if err := w.Agent.Rotate(); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the old profile refreshing", func() bool {
				k := profileKeys(credsPath, "app")["aws_access_key_id"]
				return k != before && imdsKey(imdsPort, "app") == k
			})
		})
	}
	// A good reload that changes the profile but keeps its port: the new version takes the socket over.
	before := profileKeys(credsPath, "app")["aws_access_key_id"]
	config(credsPath, "app", imdsPort, `  session_duration = "20m"`)
	_ = d.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "the reload applied", func() bool {
		return json.Unmarshal([]byte(httpBody(t, readyURL)), &report) == nil && report.ConfigReload.Status == "ok"
	})
	eventually(t, "the new version serving on the same port", func() bool {
		k := profileKeys(credsPath, "app")["aws_access_key_id"]
		return k != "" && k != before && imdsKey(imdsPort, "app") == k
	})
}
