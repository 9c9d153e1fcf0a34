package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	ta      = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0f0e0d0c-0b0a-4909-8807-060504030201"
	pa      = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/01020304-0506-4708-8900-0a0b0c0d0e0f"
	ra      = "arn:aws:iam::123456789012:role/app"
	paWest  = "arn:aws:rolesanywhere:us-west-2:123456789012:profile/01020304-0506-4708-8900-0a0b0c0d0e0f"
	paOther = "arn:aws:rolesanywhere:us-east-1:210987654321:profile/01020304-0506-4708-8900-0a0b0c0d0e0f"
)

// prof is a valid profile "name" whose attribute values all start at column 22 (lines 2-5) and whose
// extra lines start at line 6; the block ends with "}" on the line after extra. Without extra lines it
// has 7 lines (an empty line 6).
func prof(name, extra string) string {
	return `profile "` + name + `" {
  trust_anchor_arn = "` + ta + `"
  profile_arn      = "` + pa + `"
  role_arn         = "` + ra + `"
  spiffe_id        = "spiffe://example.org/app"
` + extra + `
}
`
}

const full = `agent_address = "unix:///run/spire/sockets/agent.sock"
log_level     = "DEBUG"
log_format    = "json"

health_checks {
  bind_port  = 8080
}

telemetry {
  Prometheus {
    port = 9090
  }
}

profile "web" {
  spiffe_id         = "spiffe://example.org/ns/prod/web"
  trust_anchor_arn  = "` + ta + `"
  profile_arn       = "` + pa + `"
  role_arn          = "arn:aws:iam::123456789012:role/web"
  region            = "us-east-1"
  session_duration  = "2h"
  role_session_name = "web@host-1"
  endpoint          = "http://127.0.0.1:8443"
  insecure_endpoint = true
  on_identity_loss  = "withdraw"

  refresh {
    rotation_spread = "0s"
    jitter_fraction = 0.25
  }
  credentials_file {
    path         = "/home/web/.aws/credentials"
    profile_name = "default"
  }
  imds {
    bind_address    = "0.0.0.0"
    bind_port       = 19911
    allow_remote    = true
    allowed_clients = ["172.17.0.0/16", "10.1.2.3", "fd00::/64"]
  }
  container_endpoint {
    bind_address    = "::1"
    bind_port       = 19912
    path            = "/creds"
    auth_token_file = "/run/bridge/web.token"
  }
  on_refresh {
    command = ["/usr/local/bin/reload", "--web"]
    timeout = "5s"
  }
  signal {
    pid_file = "/run/web.pid"
    signal   = "usr1"
  }
}

profile "reports" {
  hint             = "reports"
  trust_anchor_arn = "` + ta + `"
  profile_arn      = "` + pa + `"
  role_arn         = "arn:aws:iam::123456789012:role/reports"

  credentials_file {
    path = "/home/web/.aws/credentials"
  }
  imds {}
  container_endpoint {
    auth_token_file = "/run/bridge/reports.token"
  }
  on_refresh {
    command = ["/bin/true"]
  }
  signal {
    pid_file = "/run/reports.pid"
  }
}
`

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	c, err := Parse([]byte(src), "test.hcl")
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, src)
	}
	return c
}

func TestFullConfig(t *testing.T) {
	c := mustParse(t, full)
	if c.AgentAddress != "unix:///run/spire/sockets/agent.sock" || c.LogLevel != "debug" || c.LogFormat != "json" {
		t.Errorf("top level: %q %q %q", c.AgentAddress, c.LogLevel, c.LogFormat)
	}
	if h := c.HealthChecks; h == nil || !reflect.DeepEqual(*h, HealthChecks{BindAddress: "localhost", BindPort: 8080, LivePath: "/live", ReadyPath: "/ready"}) {
		t.Errorf("health_checks: %+v", h)
	}
	if c.Telemetry == nil || c.Telemetry.Prometheus == nil || !reflect.DeepEqual(*c.Telemetry.Prometheus, Prometheus{Host: "localhost", Port: 9090}) {
		t.Errorf("telemetry: %+v", c.Telemetry)
	}
	if len(c.Profiles) != 2 {
		t.Fatalf("got %d profiles", len(c.Profiles))
	}

	web := Profile{
		Name:             "web",
		SpiffeID:         "spiffe://example.org/ns/prod/web",
		TrustAnchorARN:   ta,
		ProfileARN:       pa,
		RoleARN:          "arn:aws:iam::123456789012:role/web",
		Region:           "us-east-1",
		SessionDuration:  2 * time.Hour,
		RoleSessionName:  "web@host-1",
		Endpoint:         "http://127.0.0.1:8443",
		InsecureEndpoint: true,
		OnIdentityLoss:   "withdraw",
		Refresh:          Refresh{RotationSpread: 0, JitterFraction: 0.25},
		CredentialsFile:  &CredentialsFile{Path: "/home/web/.aws/credentials", ProfileName: "default", Mode: 0o600},
		IMDS: &IMDS{BindAddress: "0.0.0.0", BindPort: 19911, AllowRemote: true, AllowedClients: []netip.Prefix{
			netip.MustParsePrefix("172.17.0.0/16"), netip.MustParsePrefix("10.1.2.3/32"), netip.MustParsePrefix("fd00::/64"),
		}},
		ContainerEndpoint: &ContainerEndpoint{
			BindAddress: "::1", BindPort: 19912, Path: "/creds", AuthTokenFile: "/run/bridge/web.token", AuthTokenMode: 0o600,
		},
		OnRefresh: &OnRefresh{Command: []string{"/usr/local/bin/reload", "--web"}, Timeout: 5 * time.Second},
		Signal:    &Signal{PIDFile: "/run/web.pid", Signal: syscall.SIGUSR1},
	}
	if !c.Profiles[0].Equal(web) {
		t.Errorf("profile web:\n got %+v\nwant %+v", c.Profiles[0], web)
	}

	// The second profile is mostly defaults.
	reports := Profile{
		Name:            "reports",
		Hint:            "reports",
		TrustAnchorARN:  ta,
		ProfileARN:      pa,
		RoleARN:         "arn:aws:iam::123456789012:role/reports",
		Region:          "us-east-1",
		SessionDuration: time.Hour,
		OnIdentityLoss:  "keep_until_expiry",
		Refresh:         Refresh{RotationSpread: 28 * time.Minute, JitterFraction: 0.1},
		CredentialsFile: &CredentialsFile{Path: "/home/web/.aws/credentials", ProfileName: "reports", Mode: 0o600},
		IMDS:            &IMDS{BindAddress: "127.0.0.1", BindPort: 9911},
		ContainerEndpoint: &ContainerEndpoint{
			BindAddress: "127.0.0.1", BindPort: 9912, Path: "/v1/credentials", AuthTokenFile: "/run/bridge/reports.token", AuthTokenMode: 0o600,
		},
		OnRefresh: &OnRefresh{Command: []string{"/bin/true"}, Timeout: 30 * time.Second},
		Signal:    &Signal{PIDFile: "/run/reports.pid", Signal: syscall.SIGHUP},
	}
	if !c.Profiles[1].Equal(reports) {
		t.Errorf("profile reports:\n got %+v\nwant %+v", c.Profiles[1], reports)
	}
}

func TestStartupGrace(t *testing.T) {
	for src, want := range map[string]time.Duration{`"0s"`: 0, `"30s"`: 30 * time.Second, `300`: 5 * time.Minute, `"1h"`: time.Hour} {
		if got := mustParse(t, prof("app", "")+"startup_grace = "+src).StartupGrace; got != want {
			t.Errorf("startup_grace = %s: got %v, want %v", src, got, want)
		}
	}
}

func TestMinimalConfigGetsDefaults(t *testing.T) {
	c := mustParse(t, prof("app", ""))
	if c.AgentAddress != "" || c.LogLevel != "info" || c.LogFormat != "text" || c.StartupGrace != time.Minute || c.HealthChecks != nil || c.Telemetry != nil {
		t.Errorf("top level defaults: %+v", c)
	}
	want := Profile{
		Name: "app", SpiffeID: "spiffe://example.org/app",
		TrustAnchorARN: ta, ProfileARN: pa, RoleARN: ra, Region: "us-east-1",
		SessionDuration: time.Hour,
		OnIdentityLoss:  "keep_until_expiry",
		Refresh:         Refresh{RotationSpread: 28 * time.Minute, JitterFraction: 0.1},
	}
	if len(c.Profiles) != 1 || !c.Profiles[0].Equal(want) {
		t.Errorf("got %+v\nwant %+v", c.Profiles, want)
	}
	if got := c.Profiles[0].Pos; got != "test.hcl:1" {
		t.Errorf("Pos = %q, want test.hcl:1", got)
	}
	// A plain-http loopback endpoint (the local emulator) needs no insecure_endpoint: the one rule of
	// flags and config (netutil.PlainHTTPAllowed).
	c = mustParse(t, prof("app", `  endpoint = "http://127.0.0.1:8443"`))
	if c.Profiles[0].InsecureEndpoint || c.Profiles[0].Endpoint != "http://127.0.0.1:8443" {
		t.Errorf("got %+v\nwant %+v", c.Profiles, want)
	}
}

func TestBlockDefaults(t *testing.T) {
	c := mustParse(t, prof("app", "")+`
health_checks {}
telemetry {
  prometheus {
    port = 0
  }
}
`)
	if h := c.HealthChecks; !reflect.DeepEqual(*h, HealthChecks{BindAddress: "localhost", BindPort: 80, LivePath: "/live", ReadyPath: "/ready"}) {
		t.Errorf("health_checks: %+v", h)
	}
	if p := c.Telemetry.Prometheus; !reflect.DeepEqual(*p, Prometheus{Host: "localhost", Port: 0}) {
		t.Errorf("prometheus: %+v", p)
	}
	c = mustParse(t, prof("app", "")+"telemetry {}\n")
	if c.Telemetry == nil || c.Telemetry.Prometheus != nil {
		t.Errorf("empty telemetry: %+v", c.Telemetry)
	}
}

func TestNullIsUnset(t *testing.T) {
	c := mustParse(t, prof("app", `  session_duration = null
  hint = null`))
	if c.Profiles[0].SessionDuration != time.Hour {
		t.Errorf("session_duration = null: got %v", c.Profiles[0].SessionDuration)
	}
}

// TestDurationKeysTakeTheThreeForms: a config duration is a Go duration, seconds (a string or a number)
// or ISO 8601, as every duration flag of the binaries.
func TestDurationKeysTakeTheThreeForms(t *testing.T) {
	for src, want := range map[string]time.Duration{
		`"90m"`: 90 * time.Minute, `"1h"`: time.Hour, `"3600"`: time.Hour, `3600`: time.Hour, `"PT1H"`: time.Hour, `"PT2H30M"`: 150 * time.Minute,
	} {
		c := mustParse(t, prof("app", "  session_duration = "+src+"\n  refresh {\n    rotation_spread = "+src+"\n  }"))
		if got := c.Profiles[0].SessionDuration; got != want {
			t.Errorf("session_duration = %s: got %v, want %v", src, got, want)
		}
		if got := c.Profiles[0].Refresh.RotationSpread; got != want {
			t.Errorf("rotation_spread = %s: got %v, want %v", src, got, want)
		}
	}
}

func TestReadmeExampleParses(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Skip("README not found:", err)
	}
	blocks := regexp.MustCompile("(?ms)^```hcl\\n(.*?)^```").FindAllStringSubmatch(string(data), -1)
	if len(blocks) == 0 {
		t.Skip("no hcl blocks in the README")
	}
	for i, m := range blocks {
		if _, err := Parse([]byte(m[1]), "README.md"); err != nil {
			t.Errorf("README hcl block %d: %v", i+1, err)
		}
	}
}

func TestErrors(t *testing.T) {
	two := func(a, b string) string { return a + b } // the second profile starts after prof's 6+n lines
	cases := []struct {
		name, src, want string
	}{
		{"unknown attribute", prof("app", "  bogus = 1"), `test.hcl:6:3: Unsupported argument; An argument named "bogus"`},
		{"unknown block", prof("app", "  bogus {\n  }"), `test.hcl:6:3: Unsupported block type; Blocks of type "bogus"`},
		{"unknown top-level attribute", "bogus = 1\n" + prof("app", ""), `test.hcl:1:1: Unsupported argument`},
		{"unknown nested attribute", prof("app", "  imds {\n    port = 1\n  }"), `test.hcl:7:5: Unsupported argument; An argument named "port"`},
		{"no profiles", `log_level = "info"`, `test.hcl:1:1: at least one profile "<name>" { … } block is required`},
		{"empty file", ``, `test.hcl:1:1: at least one profile`},
		{"profile without a name", "profile {\n}\n", `test.hcl:1:9: Missing name for profile`},
		{"bad profile name", prof("a b", ""), `test.hcl:1:9: profile name "a b" must be one or more of [A-Za-z0-9_.-]`},
		{"duplicate profile name", two(prof("app", ""), prof("app", "")), `test.hcl:8:9: profile "app" is defined twice (first at line 1)`},
		{"spiffe_id and hint", prof("app", `  hint = "x"`), `test.hcl:6:10: profile "app": spiffe_id and hint are exclusive`},
		{"empty hint", prof("app", `  hint = ""`), `test.hcl:6:10: profile "app": hint must not be empty`},
		{"bad spiffe_id", strings.Replace(prof("app", ""), "spiffe://example.org/app", "http://x", 1), `test.hcl:5:22: profile "app": spiffe_id "http://x" is not a valid SPIFFE ID`},
		{"missing trust_anchor_arn", strings.Replace(prof("app", ""), "  trust_anchor_arn", "  # trust_anchor_arn", 1), `test.hcl:1:1: profile "app": trust_anchor_arn is required`},
		{"missing role_arn", strings.Replace(prof("app", ""), "  role_arn", "  # role_arn", 1), `test.hcl:1:1: profile "app": role_arn is required`},
		{"malformed ARN", strings.Replace(prof("app", ""), ta, "nope", 1), `test.hcl:2:3: profile "app": trust_anchor_arn "nope": is not an ARN`},
		{"bad role ARN", strings.Replace(prof("app", ""), ra, "arn:aws:iam::123456789012:user/app", 1), `test.hcl:4:3: profile "app": role_arn "arn:aws:iam::123456789012:user/app": resource "user/app" is not a role`},
		{"ARN not a string", strings.Replace(prof("app", ""), `"`+ra+`"`, "42", 1), `test.hcl:4:22: profile "app": role_arn must be a string, not a number`},
		{"region mismatch", strings.Replace(prof("app", ""), pa, paWest, 1), `test.hcl:3:3: profile "app": profile_arn "` + paWest + `": region "us-west-2" differs from the trust anchor's "us-east-1"`},
		{"account mismatch", strings.Replace(prof("app", ""), pa, paOther, 1), `test.hcl:3:3: profile "app": profile_arn "` + paOther + `": account "210987654321" differs from the trust anchor's "123456789012"`},
		{"region attribute mismatch", prof("app", `  region = "eu-west-1"`), `test.hcl:6:3: profile "app": region "eu-west-1": differs from the trust anchor's region "us-east-1"`},
		{"session_duration too short", prof("app", `  session_duration = "10m"`), `test.hcl:6:22: profile "app": session_duration "10m" is out of range (15m–12h)`},
		{"session_duration too long", prof("app", `  session_duration = "20h"`), `test.hcl:6:22: profile "app": session_duration "20h" is out of range (15m–12h)`},
		{"session_duration unparsable", prof("app", `  session_duration = "forever"`), `test.hcl:6:22: profile "app": session_duration "forever" is not a duration: write a Go duration (90m, 1h), seconds (3600) or ISO 8601 (PT1H); accepted: 15m–12h`},
		{"session_duration fractional seconds", prof("app", `  session_duration = 3600.5`), `test.hcl:6:22: profile "app": session_duration 3600.5 is not a whole number of seconds`},
		{"session_duration 5m", prof("app", `  session_duration = "5m"`), `test.hcl:6:22: profile "app": session_duration "5m" is out of range (15m–12h)`},
		{"session_duration bool", prof("app", `  session_duration = true`), `test.hcl:6:22: profile "app": session_duration must be a duration such as "1h", "3600" or "PT1H", not a bool`},
		{"bad role_session_name", prof("app", `  role_session_name = "a"`), `test.hcl:6:23: profile "app": role_session_name "a" must be 2–64 of [A-Za-z0-9_+=,.@-]`},
		{"role_session_name bad char", prof("app", `  role_session_name = "a/b"`), `test.hcl:6:23: profile "app": role_session_name "a/b"`},
		{"http endpoint not loopback", prof("app", `  endpoint = "http://emulator.internal:8080"`), `test.hcl:6:14: profile "app": endpoint "http://emulator.internal:8080" is plain http to a host that is not loopback; use https, or set insecure_endpoint = true`},
		{"bad on_identity_loss", prof("app", `  on_identity_loss = "ignore"`), `test.hcl:6:22: profile "app": on_identity_loss "ignore" must be "keep_until_expiry" or "withdraw"`},
		{"profile_name with a space (the credentials file sink refuses it)", prof("app", "  credentials_file {\n    path = \"/c\"\n    profile_name = \"my app\"\n  }"), `test.hcl:8:20: profile "app": credentials_file.profile_name: profile name "my app" contains ' '`},
		{"endpoint not a URL", prof("app", `  endpoint = "rolesanywhere.example"`), `test.hcl:6:14: profile "app": endpoint "rolesanywhere.example" must be an absolute https:// URL`},
		{"endpoint unparsable", prof("app", `  endpoint = "https://[::1"`), `test.hcl:6:14: profile "app": endpoint "https://[::1" is not a URL`},
		{"endpoint with user info", prof("app", `  endpoint = "https://u:p@example.com"`), `test.hcl:6:14: profile "app": endpoint "https://u:p@example.com" must not carry user information`},
		{"live and ready paths equal", prof("app", "") + "health_checks {\n  ready_path = \"/live\"\n}", `test.hcl:9:16: health_checks.ready_path "/live" must differ from live_path`},
		{
			"wildcard bind clashes with loopback",
			prof("app", "  imds {\n    bind_address = \"0.0.0.0\"\n    allow_remote = true\n    allowed_clients = [\"10.0.0.0/8\"]\n  }") + "telemetry {\n  prometheus {\n    port = 9911\n  }\n}",
			`test.hcl:14:12: telemetry.prometheus port 9911 is already used by profile "app" imds (bind addresses "localhost" and "")`,
		},
		{"insecure_endpoint not bool", prof("app", `  insecure_endpoint = "yes"`), `test.hcl:6:23: profile "app": insecure_endpoint must be true or false, not a string`},
		{"relative credentials_file path", prof("app", "  credentials_file {\n    path = \"creds\"\n  }"), `test.hcl:7:12: profile "app": credentials_file.path "creds" must be an absolute path`},
		{"credentials_file without path", prof("app", "  credentials_file {\n  }"), `test.hcl:6:3: profile "app": credentials_file.path is required`},
		{"bad profile_name", prof("app", "  credentials_file {\n    path = \"/c\"\n    profile_name = \"a]b\"\n  }"), `test.hcl:8:20: profile "app": credentials_file.profile_name: profile name "a]b" contains ']'`},
		{"container without auth_token_file", prof("app", "  container_endpoint {\n  }"), `test.hcl:6:3: profile "app": container_endpoint.auth_token_file is required`},
		{"container path without slash", prof("app", "  container_endpoint {\n    path = \"creds\"\n    auth_token_file = \"/t\"\n  }"), `test.hcl:7:12: profile "app": container_endpoint.path "creds" must be a URL path starting with "/"`},
		{"bad signal name", prof("app", "  signal {\n    pid_file = \"/run/app.pid\"\n    signal = \"SIGKILL\"\n  }"), `test.hcl:8:14: profile "app": signal.signal: unknown signal "SIGKILL"`},
		{"signal without pid_file", prof("app", "  signal {\n  }"), `test.hcl:6:3: profile "app": signal.pid_file is required`},
		{"empty on_refresh command", prof("app", "  on_refresh {\n    command = []\n  }"), `test.hcl:7:15: profile "app": on_refresh.command must name a program`},
		{"on_refresh command not a list", prof("app", "  on_refresh {\n    command = \"/bin/true\"\n  }"), `test.hcl:7:15: profile "app": on_refresh.command must be a list of strings`},
		{"on_refresh command element", prof("app", "  on_refresh {\n    command = [\"/bin/x\", 1]\n  }"), `test.hcl:7:15: profile "app": on_refresh.command[1] must be a string`},
		{"on_refresh without command", prof("app", "  on_refresh {\n  }"), `test.hcl:6:3: profile "app": on_refresh.command is required`},
		{"on_refresh timeout zero", prof("app", "  on_refresh {\n    command = [\"/bin/true\"]\n    timeout = \"0s\"\n  }"), `test.hcl:8:15: profile "app": on_refresh.timeout "0s" is out of range (greater than 0, at most 10m)`},
		{"bad log_level", prof("app", "") + `log_level = "loud"`, `test.hcl:8:13: log_level "loud" is not one of trace, debug, info, warn, error`},
		{"bad log_format", prof("app", "") + `log_format = "xml"`, `test.hcl:8:14: log_format "xml" is not one of text, json`},
		{"startup_grace too long", prof("app", "") + `startup_grace = "2h"`, `test.hcl:8:17: startup_grace "2h" is out of range (0s–1h)`},
		{"bad agent_address", prof("app", "") + `agent_address = "http://x"`, `test.hcl:8:17: agent_address "http://x": scheme "http" is not unix or tcp: want unix:///path/to/socket or tcp://IP:port`},
		{"unix agent_address with two slashes", prof("app", "") + `agent_address = "unix://tmp/agent.sock"`, `test.hcl:8:17: agent_address "unix://tmp/agent.sock": "tmp" is read as a host name, not as the start of the path (two slashes): use "unix:///tmp/agent.sock"`},
		{"unix agent_address with a relative path", prof("app", "") + `agent_address = "unix:tmp/agent.sock"`, `test.hcl:8:17: agent_address "unix:tmp/agent.sock": a unix socket address needs an absolute path after three slashes: use "unix:///tmp/agent.sock"`},
		{"tcp agent_address with a host name", prof("app", "") + `agent_address = "tcp://agent:8081"`, `test.hcl:8:17: agent_address "tcp://agent:8081": host "agent" is not an IP address: want tcp://IP:port`},
		{"tcp agent_address without a port", prof("app", "") + `agent_address = "tcp://127.0.0.1"`, `test.hcl:8:17: agent_address "tcp://127.0.0.1": want tcp://IP:port`},
		{"jitter_fraction too big", prof("app", "  refresh {\n    jitter_fraction = 0.9\n  }"), `test.hcl:7:23: profile "app": refresh.jitter_fraction 0.9 is out of range (greater than 0, at most 0.5)`},
		{"jitter_fraction zero", prof("app", "  refresh {\n    jitter_fraction = 0\n  }"), `test.hcl:7:23: profile "app": refresh.jitter_fraction 0 is out of range`},
		{"negative rotation_spread", prof("app", "  refresh {\n    rotation_spread = \"-1m\"\n  }"), `test.hcl:7:23: profile "app": refresh.rotation_spread "-1m" is out of range (0s–12h)`},
		{"two imds blocks", prof("app", "  imds {}\n  imds {}"), `test.hcl:7:3: profile "app": only one imds block is allowed (the first is at line 6)`},
		{"port out of range", prof("app", "  imds {\n    bind_port = 70000\n  }"), `test.hcl:7:17: profile "app": imds.bind_port 70000 is out of range (0–65535)`},
		{"port not whole", prof("app", "  imds {\n    bind_port = 1.5\n  }"), `test.hcl:7:17: profile "app": imds.bind_port 1.5 is not a whole number`},
		{"port negative", prof("app", "  imds {\n    bind_port = -1\n  }"), `test.hcl:7:17: profile "app": imds.bind_port -1 is out of range (0–65535)`},
		// Huge exponents are quoted as written: printing the number itself takes about a minute (FuzzParse).
		{"port with a huge exponent", prof("app", "  imds {\n    bind_port = 1e40010200\n  }"), `test.hcl:7:17: profile "app": imds.bind_port 1e40010200 is out of range (0–65535)`},
		{"port with a tiny exponent", prof("app", "  imds {\n    bind_port = 1e-40010200\n  }"), `test.hcl:7:17: profile "app": imds.bind_port 1e-40010200 is not a whole number`},
		{"port as a long expression", prof("app", "  imds {\n    bind_port = 1000000 * 1000000 * 1000000 * 1000000 * 1000000\n  }"),
			`test.hcl:7:17: profile "app": imds.bind_port 1000000 * 1000000 * 1000000 * 1000000 * … is out of range (0–65535)`},
		{"non-loopback without allow_remote", prof("app", "  imds {\n    bind_address = \"0.0.0.0\"\n  }"), `test.hcl:7:20: profile "app": imds.bind_address "0.0.0.0" is not a loopback address; set allow_remote = true`},
		{"imds off loopback without allowed_clients", prof("app", "  imds {\n    bind_address = \"0.0.0.0\"\n    allow_remote = true\n  }"), `test.hcl:7:20: profile "app": imds.bind_address "0.0.0.0" is not a loopback address: set imds.allowed_clients to the client networks that may get these credentials, e.g. ["172.17.0.0/16"]`},
		{"imds allowed_clients empty", prof("app", "  imds {\n    bind_address = \"0.0.0.0\"\n    allow_remote = true\n    allowed_clients = []\n  }"), `test.hcl:9:23: profile "app": imds.allowed_clients is empty: list the client networks`},
		{"imds allowed_clients not a network", prof("app", "  imds {\n    allowed_clients = [\"10.0.0.0/8\", \"docker0\"]\n  }"), `test.hcl:7:23: profile "app": imds.allowed_clients[1]: "docker0" is not an IP address or a network in CIDR notation such as "10.0.0.0/24"`},
		{"imds allowed_clients with host bits", prof("app", "  imds {\n    allowed_clients = [\"172.17.0.5/16\"]\n  }"), `test.hcl:7:23: profile "app": imds.allowed_clients[0]: "172.17.0.5/16" has bits set after its /16 prefix: write the network, "172.17.0.0/16"`},
		{"imds allowed_clients bad prefix", prof("app", "  imds {\n    allowed_clients = [\"10.0.0.0/33\"]\n  }"), `test.hcl:7:23: profile "app": imds.allowed_clients[0]: "10.0.0.0/33" is not a network in CIDR notation`},
		{"imds allowed_clients not a list", prof("app", "  imds {\n    allowed_clients = \"10.0.0.0/8\"\n  }"), `test.hcl:7:23: profile "app": imds.allowed_clients must be a list of strings such as ["10.0.0.0/24", "172.17.0.5"], not a string`},
		{"health non-loopback", prof("app", "") + "health_checks {\n  bind_address = \"\"\n}", `test.hcl:9:18: health_checks.bind_address "" is not a loopback address`},
		{"health bad path", prof("app", "") + "health_checks {\n  live_path = \"live\"\n}", `test.hcl:9:15: health_checks.live_path "live" must be a URL path starting with "/"`},
		{"prometheus without port", prof("app", "") + "telemetry {\n  prometheus {\n  }\n}", `test.hcl:9:3: telemetry.prometheus.port is required`},
		{"two prometheus blocks", prof("app", "") + "telemetry {\n  prometheus {\n    port = 1\n  }\n  Prometheus {\n    port = 2\n  }\n}", `test.hcl:12:3: only one telemetry.prometheus block is allowed (the first is at line 9)`},
		{"unknown telemetry block", prof("app", "") + "telemetry {\n  DogStatsd {}\n}", `test.hcl:9:3: Unsupported block type`},
		{"variables", prof("app", "  session_duration = one_hour"), `test.hcl:6:22: Variables not allowed`},
		{
			"duplicate credentials file target",
			two(prof("app", "  credentials_file {\n    path = \"/c\"\n    profile_name = \"x\"\n  }"),
				prof("b", "  credentials_file {\n    path = \"/c\"\n    profile_name = \"x\"\n  }")),
			`test.hcl:17:12: profile "b": credentials_file /c section [x] is already written by profile "app"`,
		},
		{
			"duplicate credentials file via default section name",
			two(prof("app", "  credentials_file {\n    path = \"/c\"\n  }"),
				prof("b", "  credentials_file {\n    path = \"/x/../c\"\n    profile_name = \"app\"\n  }")),
			`test.hcl:16:12: profile "b": credentials_file /c section [app] is already written by profile "app"`,
		},
		{
			"duplicate endpoint port",
			two(prof("app", "  imds {}"), prof("b", "  container_endpoint {\n    bind_port = 9911\n    auth_token_file = \"/t\"\n  }")),
			`test.hcl:14:17: profile "b": container_endpoint port 9911 is already used by profile "app" imds`,
		},
		{
			"duplicate default endpoint port",
			two(prof("app", "  imds {}"), prof("b", "  imds {}")),
			`test.hcl:13:3: profile "b": imds port 9911 is already used by profile "app" imds`,
		},
		{
			"endpoint port clashes with health checks",
			prof("app", "  imds {\n    bind_address = \"localhost\"\n    bind_port = 8080\n  }") + "health_checks {\n  bind_port = 8080\n}",
			`test.hcl:12:15: health_checks port 8080 is already used by profile "app" imds`,
		},
		{"HCL syntax error", `profile "app" {`, `test.hcl:1:15: Unclosed configuration block`},
		{"HCL syntax error in attribute", prof("app", `  hint = "unterminated`), `test.hcl:6:`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.src), "test.hcl")
			if err == nil {
				t.Fatalf("no error, got %+v\n%s", c, tc.src)
			}
			if c != nil {
				t.Errorf("a config was returned with the error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error\n%s\ndoes not contain\n%s\nsource:\n%s", err, tc.want, tc.src)
			}
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Diagnostics) == 0 {
				t.Errorf("error is not a *config.Error with diagnostics: %T", err)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "test.hcl:") {
					t.Errorf("error line without a position: %q", line)
				}
			}
		})
	}
}

// The ownership and path rules of the files the bridge writes: names and ids are checked for form only
// (they are looked up when the daemon starts, on the machine that runs it).
func TestFileOwnershipSettings(t *testing.T) {
	c := mustParse(t, prof("app", `  credentials_file {
    path                   = "/home/app/.aws/credentials"
    owner                  = "app"
    group                  = "1000"
    mode                   = "0640"
    follow_symlinks        = true
    allow_shared_directory = true
  }
  container_endpoint {
    auth_token_file        = "/aws/token"
    auth_token_owner       = 65534
    auth_token_group       = "nogroup"
    auth_token_mode        = "660"
    follow_symlinks        = false
    allow_shared_directory = true
  }`))
	p := c.Profiles[0]
	wantFile := CredentialsFile{
		Path: "/home/app/.aws/credentials", ProfileName: "app", Owner: "app", Group: "1000", Mode: 0o640,
		FollowSymlinks: true, AllowSharedDirectory: true,
	}
	if *p.CredentialsFile != wantFile {
		t.Errorf("credentials_file:\n got %+v\nwant %+v", *p.CredentialsFile, wantFile)
	}
	wantEndpoint := ContainerEndpoint{
		BindAddress: "127.0.0.1", BindPort: 9912, Path: "/v1/credentials", AuthTokenFile: "/aws/token",
		AuthTokenOwner: "65534", AuthTokenGroup: "nogroup", AuthTokenMode: 0o660, AllowSharedDirectory: true,
	}
	if !reflect.DeepEqual(*p.ContainerEndpoint, wantEndpoint) {
		t.Errorf("container_endpoint:\n got %+v\nwant %+v", *p.ContainerEndpoint, wantEndpoint)
	}
}

func TestFileOwnershipErrors(t *testing.T) {
	cf := func(line string) string {
		return prof("app", "  credentials_file {\n    path = \"/c\"\n    "+line+"\n  }")
	}
	ce := func(line string) string {
		return prof("app", "  container_endpoint {\n    auth_token_file = \"/t\"\n    "+line+"\n  }")
	}
	cases := []struct{ name, src, want string }{
		{"mode with execute bits", cf(`mode = "0700"`), `test.hcl:8:12: profile "app": credentials_file.mode "0700": must be 0600, 0640 or 0660: a file holding a secret has no execute bits and no permission for others`},
		{"mode readable by others", cf(`mode = "0644"`), `test.hcl:8:12: profile "app": credentials_file.mode "0644": must be 0600, 0640 or 0660`},
		{"mode not octal", cf(`mode = "rw-------"`), `test.hcl:8:12: profile "app": credentials_file.mode "rw-------" is not an octal file mode such as "0600"`},
		{"mode as a number", cf(`mode = 600`), `test.hcl:8:12: profile "app": credentials_file.mode must be a string, not a number`},
		{"owner not a name", cf(`owner = "a b"`), `test.hcl:8:13: profile "app": credentials_file.owner "a b" is not a user or group name or a numeric id`},
		{"owner id out of range", cf(`owner = "4294967295"`), `test.hcl:8:13: profile "app": credentials_file.owner "4294967295" is out of range for an id (0 to 4294967294)`},
		{"owner negative number", cf(`owner = -1`), `test.hcl:8:13: profile "app": credentials_file.owner -1 is not a user id (0 to 4294967294)`},
		{"owner a bool", cf(`owner = true`), `test.hcl:8:13: profile "app": credentials_file.owner must be a user name or numeric id, not a bool`},
		{"group empty", cf(`group = ""`), `test.hcl:8:13: profile "app": credentials_file.group "" is not a user or group name or a numeric id`},
		{"follow_symlinks not bool", cf(`follow_symlinks = "yes"`), `test.hcl:8:23: profile "app": credentials_file.follow_symlinks must be true or false, not a string`},
		{"allow_shared_directory not bool", cf(`allow_shared_directory = 1`), `test.hcl:8:30: profile "app": credentials_file.allow_shared_directory must be true or false, not a number`},
		{"unknown key", cf(`owner_id = 1`), `test.hcl:8:5: Unsupported argument; An argument named "owner_id"`},
		{"token mode", ce(`auth_token_mode = "0666"`), `test.hcl:8:23: profile "app": container_endpoint.auth_token_mode "0666": must be 0600, 0640 or 0660`},
		{"token owner", ce(`auth_token_owner = "-x"`), `test.hcl:8:24: profile "app": container_endpoint.auth_token_owner "-x" is not a user or group name or a numeric id`},
		{"token group", ce(`auth_token_group = 1.5`), `test.hcl:8:24: profile "app": container_endpoint.auth_token_group 1.5 is not a group id (0 to 4294967294)`},
		{"token follow_symlinks", ce(`follow_symlinks = "no"`), `test.hcl:8:23: profile "app": container_endpoint.follow_symlinks must be true or false, not a string`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "test.hcl")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error\n%v\ndoes not contain\n%s\nsource:\n%s", err, tc.want, tc.src)
			}
		})
	}
}

func TestNonLoopbackAllowedWithAllowRemote(t *testing.T) {
	c := mustParse(t, prof("app", "  imds {\n    bind_address = \"10.0.0.1\"\n    allow_remote = true\n    allowed_clients = [\"10.0.0.0/24\"]\n  }")+
		"health_checks {\n  bind_address = \"0.0.0.0\"\n  allow_remote = true\n}\n")
	if !c.Profiles[0].IMDS.AllowRemote || !c.HealthChecks.AllowRemote {
		t.Errorf("allow_remote not decoded: %+v %+v", c.Profiles[0].IMDS, c.HealthChecks)
	}
}

func TestSharedFileDifferentSectionsAndPortZeroAreFine(t *testing.T) {
	mustParse(t, prof("a", "  credentials_file {\n    path = \"/c\"\n  }\n  imds {\n    bind_port = 0\n  }")+
		prof("b", "  credentials_file {\n    path = \"/c\"\n  }\n  imds {\n    bind_port = 0\n  }"))
}

func TestEveryProblemIsReported(t *testing.T) {
	src := `log_level = "loud"
profile "app" {
  trust_anchor_arn = "nope"
  profile_arn      = "` + pa + `"
  role_arn         = "` + ra + `"
  session_duration = "20h"
  bogus            = true
}
`
	_, err := Parse([]byte(src), "test.hcl")
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		`test.hcl:1:13: log_level "loud"`,
		`test.hcl:3:3: profile "app": trust_anchor_arn "nope"`,
		`test.hcl:6:22: profile "app": session_duration "20h"`,
		`test.hcl:7:3: Unsupported argument`,
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(lines), len(want), err)
	}
	for i, w := range want { // in file order
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("problem %d: %q does not start with %q", i, lines[i], w)
		}
	}
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Diagnostics) != len(want) {
		t.Errorf("diagnostics: %v", ce)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.hcl")
	_, err := Load(missing)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load of a missing file: %v; want an error naming %s", err, missing)
	}

	path := filepath.Join(dir, "bridge.hcl")
	if err := os.WriteFile(path, []byte(prof("app", "")), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Profiles) != 1 || c.Profiles[0].Name != "app" {
		t.Errorf("Load: %+v", c)
	}

	if err := os.WriteFile(path, []byte(prof("app", `  session_duration = "1m"`)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.HasPrefix(err.Error(), path+":6:22: ") {
		t.Errorf("Load of a bad file: %v; want it to start with %s:6:22", err, path)
	}
}

func TestProfileEqual(t *testing.T) {
	a := mustParse(t, full).Profiles[0]
	b := mustParse(t, full).Profiles[0]
	if !a.Equal(b) {
		t.Error("identical profiles are not Equal")
	}
	changes := []func(p *Profile){
		func(p *Profile) { p.SessionDuration = 3 * time.Hour },
		func(p *Profile) { p.OnRefresh.Command = []string{"/usr/local/bin/reload"} },
		func(p *Profile) { p.CredentialsFile = nil },
		func(p *Profile) { p.Signal.Signal = syscall.SIGTERM },
		func(p *Profile) { p.Refresh.JitterFraction = 0.2 },
	}
	for i, change := range changes {
		c := mustParse(t, full).Profiles[0]
		change(&c)
		if a.Equal(c) {
			t.Errorf("change %d: still Equal", i)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(full))
	f.Add([]byte(prof("app", "")))
	f.Add([]byte(prof("app", "  imds {\n    bind_port = 1e400\n  }")))
	f.Add([]byte(`profile "x" { on_refresh { command = [for s in ["a"]: s] } }`))
	f.Add([]byte("telemetry { prometheus { port = -1 } }\nprofile {}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse(src, "fuzz.hcl")
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v", c, err)
		}
		if err != nil {
			_ = err.Error()
		}
	})
}

func TestAllowedHosts(t *testing.T) {
	c := mustParse(t, prof("app", `  imds {
    allowed_hosts = ["bridge.internal", "Bridge.Lan:9911"]
  }
  container_endpoint {
    auth_token_file = "/t"
    allowed_hosts   = ["[fd00::1]:9912"]
  }`)+`health_checks {
  allowed_hosts = ["*"]
}
telemetry {
  prometheus {
    port          = 9090
    allowed_hosts = ["prometheus.internal", "10.0.0.7"]
  }
}
`)
	for _, tc := range []struct {
		block string
		got   []string
		want  []string
	}{
		{"imds", c.Profiles[0].IMDS.AllowedHosts, []string{"bridge.internal", "Bridge.Lan:9911"}},
		{"container_endpoint", c.Profiles[0].ContainerEndpoint.AllowedHosts, []string{"[fd00::1]:9912"}},
		{"health_checks", c.HealthChecks.AllowedHosts, []string{"*"}},
		{"telemetry.prometheus", c.Telemetry.Prometheus.AllowedHosts, []string{"prometheus.internal", "10.0.0.7"}},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s.allowed_hosts = %q, want %q", tc.block, tc.got, tc.want)
		}
	}
	if c := mustParse(t, prof("app", "  imds {}")); c.Profiles[0].IMDS.AllowedHosts != nil {
		t.Errorf("allowed_hosts defaults to %q, want none", c.Profiles[0].IMDS.AllowedHosts)
	}
}

func TestAllowedHostsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"a scheme is refused", prof("app", "  imds {\n    allowed_hosts = [\"http://bridge.internal\"]\n  }"),
			`test.hcl:7:21: profile "app": imds.allowed_hosts entry "http://bridge.internal": has a scheme; give a host name or name:port`},
		{"a path is refused", prof("app", "  container_endpoint {\n    auth_token_file = \"/t\"\n    allowed_hosts = [\"host/v1\"]\n  }"),
			`test.hcl:8:21: profile "app": container_endpoint.allowed_hosts entry "host/v1": has a path`},
		{"a space is refused", prof("app", "") + "health_checks {\n  allowed_hosts = [\"a b\"]\n}",
			`test.hcl:9:19: health_checks.allowed_hosts entry "a b": has spaces or control characters`},
		{"an unbracketed IPv6 address with a port is refused", prof("app", "") + "telemetry {\n  prometheus {\n    port = 1\n    allowed_hosts = [\"fd00::1:x\"]\n  }\n}",
			`test.hcl:11:21: telemetry.prometheus.allowed_hosts entry "fd00::1:x": not an IPv6 address (an IPv6 address with a port goes in brackets: [fd00::1]:8080)`},
		{"* with other entries is refused", prof("app", "  imds {\n    allowed_hosts = [\"a\", \"*\"]\n  }"),
			`test.hcl:7:21: profile "app": imds.allowed_hosts entry "*" must be the only entry (it accepts any Host)`},
		{"a bad port is refused", prof("app", "  imds {\n    allowed_hosts = [\"a:0x50\"]\n  }"),
			`test.hcl:7:21: profile "app": imds.allowed_hosts entry "a:0x50": not a host name, IP address, name:port or [IPv6]:port`},
		{"a string instead of a list is refused", prof("app", "  imds {\n    allowed_hosts = \"bridge.internal\"\n  }"),
			`test.hcl:7:21: profile "app": imds.allowed_hosts must be a list of strings such as ["bridge.internal", "emulator:8443"], not a string`},
		{"a number in the list is refused", prof("app", "  imds {\n    allowed_hosts = [\"a\", 1]\n  }"),
			`test.hcl:7:21: profile "app": imds.allowed_hosts[1] must be a string`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "test.hcl")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error\n%v\ndoes not contain\n%s", err, tc.want)
			}
		})
	}
}
