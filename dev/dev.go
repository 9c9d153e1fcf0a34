// Package dev is `spiffe-aws-bridge dev`: the whole system on one machine with no SPIRE and no AWS
// account. An in-memory SPIFFE CA serves a real Workload API socket (svid/svidtest) and rotates the
// workload's X.509-SVID; a local Roles Anywhere + STS emulator (package emulator) trusts that CA and
// verifies every signature as AWS does; and the bridge daemon (package daemon), configured by a file like
// any deployment, keeps a credentials file and a container endpoint fresh. With Node it also serves node
// mode's Delegated Identity API; with Chain, a role chain into a second account.
//
// The fake account, trust anchor, profile, roles and SPIFFE IDs are fixed (the constants below), so
// that the commands it prints can be pasted.
package dev

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/daemon"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/cli"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/duration"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
)

// The dev environment's fixed names: a fake account, trust anchor, profile and role.
const (
	Account        = "123456789012"
	Region         = "us-east-1"
	TrustAnchorARN = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/00000000-0000-4000-8000-000000000001"
	ProfileARN     = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/00000000-0000-4000-8000-000000000002"
	RoleARN        = "arn:aws:iam::123456789012:role/dev-workload"
	SPIFFEID       = "spiffe://example.org/dev/workload"
	Profile        = "dev"

	// dev --chain: a workload account B whose role trusts account A's dev role (role chaining).
	AccountB     = "210987654321"
	RoleB        = "arn:aws:iam::210987654321:role/dev-workload-b"
	ExternalID   = "dev-external-id"
	ChainProfile = "dev-cross-account"
)

// Options are dev mode's settings, the flags of `spiffe-aws-bridge dev`.
type Options struct {
	// Dir holds the socket, configs and credentials file, kept on exit; empty: a new temporary
	// directory, removed on exit.
	Dir string
	// RotateEvery is how often the fake SPIRE agent rotates the X.509-SVID (at least 1s).
	RotateEvery time.Duration
	// Duration stops dev mode after this long; 0 runs until ctx ends.
	Duration time.Duration
	// Session is the AWS session duration (config.MinSessionDuration to config.MaxSessionDuration).
	Session time.Duration
	// LogLevel is the bridge's log level: trace, debug, info, warn or error.
	LogLevel string
	// Node also shows node mode: a fake SPIRE agent admin API (Delegated Identity API) serving two more
	// workloads (Workloads), each with its own SVID, credentials file and container endpoint.
	Node bool
	// Chain adds a second profile, ChainProfile, that chains from the Roles Anywhere role into a role of
	// a second account (AccountB) with STS AssumeRole.
	Chain bool
	// Stdout receives the banner (what runs where, and commands to paste); Stderr the logs.
	Stdout, Stderr io.Writer
}

// Workloads are the services dev mode with Node serves through the fake Delegated Identity API.
func Workloads() []string { return []string{"billing", "reports"} }

// Validate checks every setting before anything starts, naming the flag and the accepted range; its
// errors are usage errors (cli.Usagef).
func (o Options) Validate() error {
	switch {
	case o.RotateEvery < time.Second:
		return cli.Usagef("--rotate-every %s is too short: give at least 1s, e.g. 30s", o.RotateEvery)
	case o.Duration < 0:
		return cli.Usagef("--duration %s is negative: give how long to run, e.g. 2m (0 runs until interrupted)", o.Duration)
	case o.Session < config.MinSessionDuration || o.Session > config.MaxSessionDuration:
		return cli.Usagef("--session-duration %s is out of range: give %s to %s, e.g. 1h", o.Session, config.MinSessionDuration, config.MaxSessionDuration)
	case !slices.Contains(logLevels, o.LogLevel):
		return cli.Usagef("--log-level %q is not a log level: use one of %s", o.LogLevel, strings.Join(logLevels, ", "))
	}
	return nil
}

// logLevels are the levels LogLevel accepts, the config's log_level values.
var logLevels = []string{"trace", "debug", "info", "warn", "error"}

// Run validates o, then runs dev mode until ctx ends or o.Duration has passed: the fake SPIRE agent, the
// emulator and the bridge daemon, configured by files in o.Dir like any deployment.
func Run(ctx context.Context, o Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	return run(ctx, o, o.Stdout, o.Stderr)
}

func run(ctx context.Context, o Options, stdout, stderr io.Writer) error {
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "spiffe-aws-bridge-dev-")
		if err != nil {
			return fmt.Errorf("dev: creating a temporary directory: %w", err)
		}
		dir = d
		// Deferred first, so it runs last: after the agent, emulator and bridge have stopped.
		defer os.RemoveAll(d)
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("dev: --dir: %w", err)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	log := daemon.NewLogger(stderr, o.LogLevel, "text")

	// 1. The fake SPIRE agent.
	agent, err := svidtest.Start(svidtest.ServerOptions{
		SocketPath:  filepath.Join(dir, "agent.sock"),
		Entries:     []svidtest.Entry{{ID: spiffeid.RequireFromString(SPIFFEID)}},
		RotateEvery: o.RotateEvery,
		Logger:      log.Named("fake-spire-agent"),
	})
	if err != nil {
		return fmt.Errorf("dev: starting the fake SPIRE agent: %w", err)
	}
	defer agent.Close()
	caPath := filepath.Join(dir, "trust-bundle.pem")
	if err := os.WriteFile(caPath, agent.CA().BundlePEM(), 0o644); err != nil {
		return err
	}

	// 2. The Roles Anywhere emulator, trusting the fake agent's CA.
	emuConfig := filepath.Join(dir, "emulator.hcl")
	if err := os.WriteFile(emuConfig, []byte(emulatorHCL(caPath)), 0o644); err != nil {
		return err
	}
	ecfg, err := emulator.LoadConfig(emuConfig)
	if err != nil {
		return fmt.Errorf("dev: emulator config: %w", err)
	}
	emu, err := emulator.NewServer(emulator.Options{Config: ecfg, Logger: log.Named("emulator")})
	if err != nil {
		return fmt.Errorf("dev: starting the emulator: %w", err)
	}
	defer emu.Close()

	// 3. The bridge, configured by a file like any deployment.
	port, err := freePort()
	if err != nil {
		return err
	}
	credsPath := filepath.Join(dir, "credentials")
	tokenPath := filepath.Join(dir, "container-token")
	bridgeConfig := filepath.Join(dir, "bridge.hcl")
	// Every run starts with an empty credentials file: a --dir kept from an earlier run (with --chain, say)
	// must not leave sections no profile of this run refreshes.
	if err := os.Remove(credsPath); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("dev: removing the credentials file of an earlier run: %w", err)
	}
	src := bridgeHCL(agent.Addr(), emu.URL, o.Session, credsPath, port, tokenPath, o.LogLevel)
	nodeBanner := ""
	if o.Node {
		extra, banner, stop, err := startNode(dir, agent.CA(), emu.URL, o, log)
		if err != nil {
			return err
		}
		defer stop()
		src += extra
		nodeBanner = banner
	}
	if o.Chain {
		src += chainProfileHCL(emu.URL, credsPath)
	}
	if err := os.WriteFile(bridgeConfig, []byte(src), 0o644); err != nil {
		return err
	}
	cfg, err := config.Load(bridgeConfig)
	if err != nil {
		return fmt.Errorf("dev: bridge config: %w", err)
	}

	fmt.Fprintf(stdout, `spiffe-aws-bridge dev: everything runs locally; nothing talks to AWS.

  directory          %[1]s
  Workload API       %[2]s  (fake SPIRE agent, rotates every %[3]s)
  SPIFFE ID          %[4]s
  Roles Anywhere/STS %[5]s  (emulator)
  bridge config      %[6]s
  credentials file   %[7]s  (profile [%[8]s])
  container endpoint http://127.0.0.1:%[9]d/v1/credentials

Use the credentials from another terminal:

  # the aws CLI, through the credentials file
  AWS_SHARED_CREDENTIALS_FILE=%[7]s AWS_PROFILE=%[8]s aws sts get-caller-identity --region %[10]s --endpoint-url %[5]s

  # the aws CLI or any AWS SDK, through the container endpoint (re-read on expiry)
  export AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:%[9]d/v1/credentials
  export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=%[11]s
  export AWS_CONTAINER_AUTHORIZATION_TOKEN="$(cat %[11]s)"   # for clients without _FILE support (aws CLI 2.9)
  export AWS_REGION=%[10]s AWS_DEFAULT_REGION=%[10]s
  aws sts get-caller-identity --endpoint-url %[5]s

%[13]sStop with Ctrl-C.%[12]s

`, dir, agent.Addr(), o.RotateEvery, SPIFFEID, emu.URL, bridgeConfig, credsPath, Profile, port, Region, tokenPath, keptNote(o.Dir),
		chainBanner(o.Chain, credsPath, emu.URL, bridgeConfig)+nodeBanner)

	return daemon.Run(ctx, bridgeConfig, cfg, log, daemon.Options{Logger: log})
}

// keptNote says what becomes of the directory on exit.
func keptNote(dirFlag string) string {
	if dirFlag == "" {
		return " The directory is removed on exit (keep it with --dir)."
	}
	return " The directory is kept on exit."
}

func emulatorHCL(caPath string) string {
	return fmt.Sprintf(`# Generated by spiffe-aws-bridge dev.
account_id = %q

trust_anchor %q {
  ca_bundle_file = %q
}

profile %q {
  role_arns        = [%q]
  duration_seconds = 43200
  # Trusted identity propagation: every session carries the SPIFFE ID as aws:OriginIdentity/Subject.
  tip {
    status         = "ENABLED"
    subject_source = "x509SAN/URI"
    subject_type   = "workload"
  }
}

role %q {
  condition {
    tag    = "x509SAN/URI"
    values = ["spiffe://example.org/dev/*"]
  }
}

# Account %s's workload role: trusts account %s's dev role (dev --chain).
role %q {
  sts_trust {
    principals          = [%q]
    external_id         = %q
    tag_session         = true
    set_source_identity = true
    # Only the dev workload's chain: its SPIFFE ID as the origin identity, which no caller can set.
    condition {
      test   = "StringEquals"
      key    = "aws:OriginIdentity/Subject"
      values = [%q]
    }
  }
}
`, Account, TrustAnchorARN, caPath, ProfileARN, RoleARN, RoleARN, AccountB, Account, RoleB, RoleARN, ExternalID, SPIFFEID)
}

// chainProfileConfig is dev --chain's second profile: account A's Roles Anywhere session, then STS
// AssumeRole into account B's role, written to its own section of the credentials file.
func chainProfileHCL(endpoint, credsPath string) string {
	return fmt.Sprintf(`
profile %q {
  spiffe_id         = %q
  trust_anchor_arn  = %q
  profile_arn       = %q
  role_arn          = %q
  endpoint          = %q # the local emulator: plain http is allowed to loopback

  refresh {
    rotation_spread = "0s"
  }

  # Role chaining: from account %s's role into account %s's (the emulator's STS stands in for
  # https://sts.%s.amazonaws.com).
  assume_role {
    role_arn     = %q
    external_id  = %q
    sts_endpoint = %q
  }

  credentials_file {
    path = %q
  }
}
`, ChainProfile, SPIFFEID, TrustAnchorARN, ProfileARN, RoleARN, endpoint, Account, AccountB, Region, RoleB, ExternalID, endpoint, credsPath)
}

func chainBanner(on bool, credsPath, endpoint, bridgeConfig string) string {
	if !on {
		return ""
	}
	return fmt.Sprintf(`  # role chaining (--chain): account %s's role, reached from account %s's Roles Anywhere session
  AWS_SHARED_CREDENTIALS_FILE=%s AWS_PROFILE=%s aws sts get-caller-identity --region %s --endpoint-url %s
  curl -s "%s/_emulator/sessions?access_key_id=$(AWS_SHARED_CREDENTIALS_FILE=%s aws configure get aws_access_key_id --profile %s)"
      # account B's session: origin_identity (the SPIFFE ID, set by Roles Anywhere, kept across the hop), chain, spiffe-id tag
  spiffe-aws-bridge check --config %s   # walks both hops and prints each trust policy

`, AccountB, Account, credsPath, ChainProfile, Region, endpoint, endpoint, credsPath, ChainProfile, bridgeConfig)
}

func bridgeHCL(agentAddr, endpoint string, session time.Duration, credsPath string, port int, tokenPath, level string) string {
	return fmt.Sprintf(`# Generated by spiffe-aws-bridge dev.
agent_address = %q
log_level     = %q

profile %q {
  spiffe_id         = %q
  trust_anchor_arn  = %q
  profile_arn       = %q
  role_arn          = %q
  session_duration  = %q
  endpoint          = %q # the local emulator: plain http is allowed to loopback

  # A single dev machine has no fleet to spread refreshes over: refresh on every rotation at once.
  refresh {
    rotation_spread = "0s"
  }

  credentials_file {
    path = %q
  }

  container_endpoint {
    bind_port       = %d
    auth_token_file = %q
  }
}
`, agentAddr, level, Profile, SPIFFEID, TrustAnchorARN, ProfileARN, RoleARN, duration.Format(session), endpoint, credsPath, port, tokenPath)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("dev: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startNode starts the fake SPIRE agent admin API for dev --node: two workloads told apart by their
// selectors (dev:service:billing, dev:service:reports; on a real host these would be unix:uid:N of each
// service's user), each rotated every --rotate-every. It returns the bridge config to append (the
// delegated_identity block and one profile per workload, its files owned by the current user, who plays
// every workload here), the banner's lines and a stop function.
func startNode(dir string, ca *svidtest.CA, endpoint string, o Options, log hclog.Logger) (string, string, func(), error) {
	var entries []svidtest.WorkloadEntry
	for _, w := range Workloads() {
		entries = append(entries, svidtest.WorkloadEntry{ID: spiffeid.RequireFromString("spiffe://example.org/dev/" + w), Selectors: []string{"dev:service:" + w}})
	}
	admin, err := svidtest.StartDelegated(svidtest.DelegatedOptions{
		SocketPath: filepath.Join(dir, "admin.sock"), CA: ca, Entries: entries, Logger: log.Named("fake-spire-admin-api"),
	})
	if err != nil {
		return "", "", nil, fmt.Errorf("dev: starting the fake Delegated Identity API: %w", err)
	}
	stopRotate := make(chan struct{})
	rotated := make(chan struct{})
	go func() {
		defer close(rotated)
		t := time.NewTicker(o.RotateEvery)
		defer t.Stop()
		for {
			select {
			case <-stopRotate:
				return
			case <-t.C:
				if err := admin.Rotate(); err != nil {
					log.Error("fake admin API: rotation failed", "error", err)
				}
			}
		}
	}()
	stop := func() {
		close(stopRotate)
		<-rotated
		admin.Close()
	}
	var cfg, banner strings.Builder
	fmt.Fprintf(&cfg, "\n# Node mode: other workloads' identities from the SPIRE agent's Delegated Identity API.\ndelegated_identity {\n  admin_address = %q\n}\n", admin.Addr())
	fmt.Fprintf(&banner, "Node mode (--node): the fake SPIRE agent admin API %s authorises this process as %s\n(as authorized_delegates would) and serves two more workloads by their selectors:\n\n", admin.Addr(), admin.DelegateID())
	for _, w := range Workloads() {
		port, err := freePort()
		if err != nil {
			stop()
			return "", "", nil, err
		}
		creds := filepath.Join(dir, w, "credentials")
		token := filepath.Join(dir, w, "container-token")
		fmt.Fprintf(&cfg, `
profile %q {
  workload_selectors = [%q]
  trust_anchor_arn   = %q
  profile_arn        = %q
  role_arn           = %q
  session_duration   = %q
  endpoint           = %q
  refresh {
    rotation_spread = "0s"
  }
  # On a real host each workload's files belong to its own user (the default with a unix:uid selector).
  credentials_file {
    path  = %q
    owner = %d
  }
  container_endpoint {
    bind_port        = %d
    auth_token_file  = %q
    auth_token_owner = %d
  }
}
`, w, "dev:service:"+w, TrustAnchorARN, ProfileARN, RoleARN, duration.Format(o.Session), endpoint, creds, os.Getuid(), port, token, os.Getuid())
		fmt.Fprintf(&banner, "  %-8s spiffe://example.org/dev/%s  selector dev:service:%s\n           AWS_SHARED_CREDENTIALS_FILE=%s AWS_PROFILE=%s aws sts get-caller-identity --region %s --endpoint-url %s\n           container endpoint http://127.0.0.1:%d/v1/credentials (token %s)\n",
			w, w, w, creds, w, Region, endpoint, port, token)
	}
	banner.WriteString("\n")
	return cfg.String(), banner.String(), stop, nil
}
