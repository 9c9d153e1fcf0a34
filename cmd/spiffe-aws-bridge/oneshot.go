package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/keyfile"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/netutil"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
)

// oneShotTimeout bounds a one-shot command: the AWS CLI waits for credential_process without a limit.
const oneShotTimeout = 60 * time.Second

// rolesAnywhereOptions are the inputs of one Roles Anywhere CreateSession from the command line.
type rolesAnywhereOptions struct {
	// Identity from files (aws_signing_helper's flags) …
	certificate, privateKey, intermediates string
	// … or from the Workload API.
	workloadSocket, spiffeID, hint string

	trustAnchorARN, profileARN, roleARN, region, endpoint string
	insecureEndpoint                                      bool
	durationSeconds                                       int
	roleSessionName                                       string
	withProxy, noVerifySSL                                bool

	configPath, profile string
	debug               bool
	logFile             string
}

// addFlags registers the flags both Roles Anywhere commands share.
func (o *rolesAnywhereOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.certificate, "certificate", "", "PEM file with the leaf certificate (and optionally its chain); default: the X.509-SVID from the Workload API")
	f.StringVar(&o.privateKey, "private-key", "", "PEM file with the private key (PKCS#1, PKCS#8 or SEC 1) of --certificate")
	f.StringVar(&o.intermediates, "intermediates", "", "PEM file with intermediate certificates sent in X-Amz-X509-Chain")
	f.StringVar(&o.workloadSocket, "workload-socket", "", "Workload API address (unix:///path or tcp://ip:port); default $SPIFFE_ENDPOINT_SOCKET, then unix:///tmp/spire-agent/public/api.sock")
	f.StringVar(&o.spiffeID, "spiffe-id", "", "use the X.509-SVID with this SPIFFE ID (default: the first one offered)")
	f.StringVar(&o.hint, "hint", "", "use the X.509-SVID with this hint")
	f.StringVar(&o.trustAnchorARN, "trust-anchor-arn", "", "Roles Anywhere trust anchor ARN")
	f.StringVar(&o.profileARN, "profile-arn", "", "Roles Anywhere profile ARN")
	f.StringVar(&o.roleARN, "role-arn", "", "IAM role ARN to assume")
	f.StringVar(&o.region, "region", "", "AWS region (default: the trust anchor ARN's)")
	f.StringVar(&o.endpoint, "endpoint", "", "Roles Anywhere endpoint URL (default https://rolesanywhere.<region>.amazonaws.com); plain http is allowed to loopback addresses only, unless --insecure-endpoint")
	f.BoolVar(&o.insecureEndpoint, "insecure-endpoint", false, "allow a plain-http --endpoint on a non-loopback address")
	f.StringVar(&o.roleSessionName, "role-session-name", "", "role session name (the profile must accept custom names)")
	f.BoolVar(&o.withProxy, "with-proxy", false, "send the request through the proxy of HTTPS_PROXY/NO_PROXY")
	f.BoolVar(&o.noVerifySSL, "no-verify-ssl", false, "do not verify the endpoint's TLS certificate (testing only)")
	f.StringVar(&o.configPath, "config", "", "take the profile's settings from a spiffe-aws-bridge config file (with --profile)")
	f.StringVar(&o.profile, "profile", "", "profile block of --config to use")
	f.BoolVar(&o.debug, "debug", false, "log debug information to stderr (never secrets)")
	f.StringVar(&o.logFile, "log-file-path", "", "append logs to this file instead of stderr")
}

// oneShotLogger builds the one-shot logger: warnings and errors on stderr (or the log file), debug with --debug.
func oneShotLogger(stderr io.Writer, debug bool, logFile string) (hclog.Logger, func(), error) {
	out, closer := stderr, func() {}
	if logFile != "" {
		f, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("--log-file-path: %w", err)
		}
		out, closer = f, func() { f.Close() }
	}
	level := hclog.Warn
	if debug {
		level = hclog.Debug
	}
	return hclog.New(&hclog.LoggerOptions{Name: "spiffe-aws-bridge", Level: level, Output: out}), closer, nil
}

// applyConfig fills o from a daemon config's profile; flags given explicitly win.
func (o *rolesAnywhereOptions) applyConfig(flags *pflag.FlagSet) error {
	if o.configPath == "" {
		if o.profile != "" {
			return errors.New("--profile needs --config")
		}
		return nil
	}
	if o.profile == "" {
		return errors.New("--config needs --profile NAME (one of the config's profile blocks)")
	}
	cfg, err := config.Load(o.configPath)
	if err != nil {
		return err
	}
	var p *config.Profile
	var names []string
	for i := range cfg.Profiles {
		names = append(names, cfg.Profiles[i].Name)
		if cfg.Profiles[i].Name == o.profile {
			p = &cfg.Profiles[i]
		}
	}
	if p == nil {
		return fmt.Errorf("%s has no profile %q (it has %q)", o.configPath, o.profile, names)
	}
	set := func(name string, dst *string, v string) {
		if !flags.Changed(name) {
			*dst = v
		}
	}
	set("workload-socket", &o.workloadSocket, cfg.AgentAddress)
	set("spiffe-id", &o.spiffeID, p.SpiffeID)
	set("hint", &o.hint, p.Hint)
	set("trust-anchor-arn", &o.trustAnchorARN, p.TrustAnchorARN)
	set("profile-arn", &o.profileARN, p.ProfileARN)
	set("role-arn", &o.roleARN, p.RoleARN)
	set("region", &o.region, p.Region)
	set("endpoint", &o.endpoint, p.Endpoint)
	set("role-session-name", &o.roleSessionName, p.RoleSessionName)
	if !flags.Changed("insecure-endpoint") {
		o.insecureEndpoint = p.InsecureEndpoint
	}
	if !flags.Changed("session-duration") && p.SessionDuration > 0 {
		o.durationSeconds = int(p.SessionDuration / time.Second)
	}
	return nil
}

// createSession runs one CreateSession with the identity from files or from the Workload API.
func (o *rolesAnywhereOptions) createSession(ctx context.Context, log hclog.Logger) (creds.Credentials, error) {
	for _, req := range []struct{ flag, v string }{{"--trust-anchor-arn", o.trustAnchorARN}, {"--profile-arn", o.profileARN}, {"--role-arn", o.roleARN}} {
		if req.v == "" {
			return creds.Credentials{}, fmt.Errorf("%s is required", req.flag)
		}
	}
	id, source, err := o.identity(ctx)
	if err != nil {
		return creds.Credentials{}, err
	}
	log.Debug("signing with", "source", source, "serial", id.Leaf.SerialNumber.String(), "not_after", id.Leaf.NotAfter.UTC().Format(time.RFC3339))
	client := signer.New(signer.Options{HTTPClient: o.httpClient(), Logger: log.Named("signer")})
	return client.CreateSession(ctx, signer.CreateSessionInput{
		Identity:        id,
		TrustAnchorARN:  o.trustAnchorARN,
		ProfileARN:      o.profileARN,
		RoleARN:         o.roleARN,
		Region:          o.region,
		Endpoint:        o.endpoint,
		AllowHTTP:       o.insecureEndpoint || isLoopbackURL(o.endpoint),
		DurationSeconds: o.durationSeconds,
		RoleSessionName: o.roleSessionName,
	})
}

// identity loads the signing identity: key files when --certificate is given, else the Workload API.
func (o *rolesAnywhereOptions) identity(ctx context.Context) (signer.Identity, string, error) {
	if o.certificate != "" || o.privateKey != "" {
		if o.certificate == "" || o.privateKey == "" {
			return signer.Identity{}, "", errors.New("--certificate and --private-key go together")
		}
		id, err := keyfile.Load(o.certificate, o.privateKey, o.intermediates)
		return id, "files", err
	}
	if o.spiffeID != "" && o.hint != "" {
		return signer.Identity{}, "", errors.New("--spiffe-id and --hint are exclusive: select the SVID by one of them")
	}
	addr, err := svid.ResolveAddress(o.workloadSocket)
	if err != nil {
		return signer.Identity{}, "", err
	}
	s, err := svid.FetchX509(ctx, addr, svid.Selector{ID: o.spiffeID, Hint: o.hint})
	if err != nil {
		return signer.Identity{}, "", fmt.Errorf("Workload API %s: %w", addr, err)
	}
	return signer.Identity{Leaf: s.Leaf(), Intermediates: s.Intermediates(), Key: s.PrivateKey}, "workload API " + s.ID.String(), nil
}

// httpClient honors --with-proxy and --no-verify-ssl.
func (o *rolesAnywhereOptions) httpClient() *http.Client {
	c := signer.DefaultHTTPClient(o.withProxy)
	if o.noVerifySSL {
		t := c.Transport.(*http.Transport)
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true} //nolint:gosec // explicit user request
	}
	return c
}

// isLoopbackURL reports whether u is an http URL to a loopback host (the local emulator).
func isLoopbackURL(u string) bool {
	p, err := url.Parse(u)
	return u != "" && err == nil && p.Scheme == "http" && netutil.IsLoopbackHost(p.Hostname())
}

// printProcessJSON writes the credential_process document, and only that, to stdout.
func printProcessJSON(stdout io.Writer, c creds.Credentials) error {
	b, err := creds.ProcessJSON(c)
	if err != nil {
		return err
	}
	_, err = stdout.Write(append(b, '\n'))
	return err
}

func newCredentialProcessCommand(stdout, stderr io.Writer) *cobra.Command {
	var o rolesAnywhereOptions
	cmd := &cobra.Command{
		Use:   "credential-process",
		Short: "Print Roles Anywhere credentials as credential_process JSON (aws_signing_helper compatible)",
		Long: `Sign one IAM Roles Anywhere CreateSession and print the credentials in the credential_process
format on stdout. A drop-in for "aws_signing_helper credential-process": the same flags work, and
without --certificate/--private-key the X.509-SVID comes from the SPIFFE Workload API, its key never
written to disk.

  [profile app]
  credential_process = spiffe-aws-bridge credential-process --trust-anchor-arn TA --profile-arn P --role-arn R`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd, stdout, stderr)
		},
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().IntVar(&o.durationSeconds, "session-duration", 3600, "session duration in seconds (900 to 43200)")
	return cmd
}

// run executes a Roles Anywhere one-shot and prints the JSON.
func (o *rolesAnywhereOptions) run(cmd *cobra.Command, stdout, stderr io.Writer) error {
	if err := o.applyConfig(cmd.Flags()); err != nil {
		return &exitError{code: 2, err: err}
	}
	return runOneShot(cmd.Context(), stdout, stderr, o.debug, o.logFile, o.createSession)
}

// runOneShot runs fetch with the one-shot logger and timeout, and prints its credentials as
// credential_process JSON: the shared tail of every one-shot command.
func runOneShot(ctx context.Context, stdout, stderr io.Writer, debug bool, logFile string,
	fetch func(context.Context, hclog.Logger) (creds.Credentials, error)) error {
	log, closeLog, err := oneShotLogger(stderr, debug, logFile)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer closeLog()
	ctx, cancel := context.WithTimeout(ctx, oneShotTimeout)
	defer cancel()
	c, err := fetch(ctx, log)
	if err != nil {
		return err
	}
	return printProcessJSON(stdout, c)
}

func newRolesAnywhereCommand(stdout, stderr io.Writer) *cobra.Command {
	var o rolesAnywhereOptions
	var duration string
	var ignored ignoredFlags
	cmd := &cobra.Command{
		Use:   "rolesanywhere",
		Short: "spiffe-aws-assume-role's rolesanywhere command: Roles Anywhere credentials as credential_process JSON",
		Long: `Drop-in for "spiffe-aws-assume-role rolesanywhere": the same flags, including --session-duration in
ISO 8601 (PT1H). Without --certificate/--private-key the X.509-SVID comes from the Workload API.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ignored.warn(stderr)
			d, err := parseISODuration(duration)
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("--session-duration: %w", err)}
			}
			o.durationSeconds = int(d / time.Second)
			return o.run(cmd, stdout, stderr)
		},
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&duration, "session-duration", "PT1H", "session duration, ISO 8601 (PT15M to PT12H)")
	ignored.addFlags(cmd.Flags())
	return cmd
}

// ignoredFlags are spiffe-aws-assume-role's telemetry and Sentry flags, accepted so that no existing
// config breaks, and ignored.
type ignoredFlags struct {
	telemetrySocket, telemetryName, sentryDSN string
	flags                                     *pflag.FlagSet
}

func (i *ignoredFlags) addFlags(f *pflag.FlagSet) {
	i.flags = f
	f.StringVar(&i.telemetrySocket, "telemetry-socket", "", "accepted for spiffe-aws-assume-role compatibility; ignored")
	f.StringVar(&i.telemetryName, "telemetry-name", "", "accepted for spiffe-aws-assume-role compatibility; ignored")
	f.StringVar(&i.sentryDSN, "sentry-dsn", "", "accepted for spiffe-aws-assume-role compatibility; ignored")
}

// warn prints one warning when any ignored flag was given.
func (i *ignoredFlags) warn(stderr io.Writer) {
	var set []string
	for _, n := range []string{"telemetry-socket", "telemetry-name", "sentry-dsn"} {
		if i.flags.Changed(n) {
			set = append(set, "--"+n)
		}
	}
	if len(set) > 0 {
		fmt.Fprintf(stderr, "spiffe-aws-bridge: warning: %v accepted for compatibility and ignored (use the daemon's Prometheus metrics)\n", set)
	}
}
