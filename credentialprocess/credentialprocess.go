// Package credentialprocess is the Roles Anywhere credential_process one-shot: its flags
// (aws_signing_helper's), the signing identity from key files or the SPIFFE Workload API, one
// CreateSession, and the credential_process JSON on stdout.
//
// Two binaries share it: `spiffe-aws-bridge credential-process` and the lean
// `spiffe-aws-credential-process`, which links this package and nothing of the daemon (Prometheus, the
// aws-sdk, the emulator), so that an AWS SDK that runs it on every credential refresh pays as little
// process start-up as a Go program can. The end-to-end tests in cmd/spiffe-aws-bridge run every case
// against both binaries.
package credentialprocess

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/chain"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/awsarn"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/cli"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/duration"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/netutil"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer/keyfile"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/wiring"
)

// Timeout bounds a one-shot command: the AWS CLI waits for credential_process without a limit.
const Timeout = 60 * time.Second

// Options are the inputs of one Roles Anywhere CreateSession from the command line.
type Options struct {
	// Identity from files (aws_signing_helper's flags) …
	certificate, privateKey, intermediates string
	// … or from the Workload API.
	workloadSocket, spiffeID, hint string

	trustAnchorARN, profileARN, roleARN, region, endpoint string
	insecureEndpoint                                      bool
	durationSeconds                                       int
	sessionDuration                                       *duration.Value // the --session-duration flag
	roleSessionName                                       string
	withProxy, noVerifySSL                                bool

	configPath, profile string
	// socketFrom says where workloadSocket came from when not from its flag (the config's key).
	socketFrom string

	// Role chaining after the Roles Anywhere session (package chain).
	assumeRoleARNs, externalIDs, assumeRoleSessionNames, assumeRoleDurations []string
	stsEndpoint, stsRegion                                                   string
	spiffeIDTag                                                              string
	hops                                                                     []chain.Hop // from --config, unless --assume-role-arn
	// Output is where the logs go and whether they include debug lines.
	Output Output
}

// AddFlags registers the flags every Roles Anywhere one-shot shares (all but --session-duration, whose
// default is written differently for aws_signing_helper and spiffe-aws-assume-role users: see
// AddSessionDurationFlag).
func (o *Options) AddFlags(f *pflag.FlagSet) {
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
	f.StringArrayVar(&o.assumeRoleARNs, "assume-role-arn", nil, "after Roles Anywhere, assume this role with STS AssumeRole (repeat for a chain of hops, in order)")
	f.StringArrayVar(&o.externalIDs, "external-id", nil, "ExternalId for the hops: once for every hop, or once per --assume-role-arn in order (\"\" for none)")
	f.StringArrayVar(&o.assumeRoleSessionNames, "assume-role-session-name", nil, "role session name for the hops (default derived from the SPIFFE ID): once for every hop, or once per hop")
	f.StringArrayVar(&o.assumeRoleDurations, "assume-role-duration", nil, "session duration of the hops, 15m to 1h (AWS caps chained sessions at 1h), e.g. 1h, 3600 or PT1H: once for every hop, or once per hop")
	f.StringVar(&o.stsEndpoint, "sts-endpoint", "", "STS endpoint URL of the hops (default the regional https://sts.<region>.amazonaws.com; plain http to loopback only)")
	f.StringVar(&o.stsRegion, "sts-region", "", "STS region of the hops (default the trust anchor's)")
	f.StringVar(&o.spiffeIDTag, "spiffe-id-tag", chain.DefaultSPIFFEIDTag, "session tag key carrying the SPIFFE ID on each hop (\"\" for none)")
	o.Output.AddFlags(f)
}

// SessionRange is what --session-duration accepts: Roles Anywhere's 900 to 43200 seconds.
var SessionRange = duration.Range{Min: minDurationSeconds * time.Second, Max: maxDurationSeconds * time.Second, Example: "3600, 1h or PT1H"}

// AddSessionDurationFlag registers --session-duration with the default def, written in the form the
// command's users know ("3600" for aws_signing_helper's, "PT1H" for spiffe-aws-assume-role's); every
// form of package duration is accepted.
func (o *Options) AddSessionDurationFlag(f *pflag.FlagSet, def string) {
	o.sessionDuration = duration.NewValue(def, SessionRange)
	f.Var(o.sessionDuration, "session-duration", "session duration: seconds (3600), a Go duration (1h) or ISO 8601 (PT1H); 15m to 12h")
}

// Run fills the options from --config (explicit flags win), signs one CreateSession and prints the
// credentials as credential_process JSON.
func (o *Options) Run(ctx context.Context, flags *pflag.FlagSet) error {
	if o.sessionDuration != nil {
		o.durationSeconds = int(o.sessionDuration.Duration() / time.Second)
	}
	if err := o.applyConfig(flags); err != nil {
		return &cli.ExitError{Code: 2, Err: err}
	}
	if err := o.validate(); err != nil {
		return err
	}
	return o.Output.Print(ctx, o.CreateSession)
}

// Session durations Roles Anywhere accepts, in seconds.
const (
	minDurationSeconds = 900
	maxDurationSeconds = 43200
)

// validate checks every flag value before anything is fetched, naming the flag as the user wrote it;
// its errors are usage errors (exit status 2). All missing required flags are listed at once.
func (o *Options) validate() error {
	if err := cli.MissingFlags([]string{"trust-anchor-arn", "profile-arn", "role-arn"},
		[]string{o.trustAnchorARN, o.profileARN, o.roleARN}); err != nil {
		return err
	}
	if _, err := awsarn.CheckSession(o.trustAnchorARN, o.profileARN, o.roleARN, o.region); err != nil {
		var ae *awsarn.Error
		if errors.As(err, &ae) {
			return cli.Usagef("--%s %q: %s", strings.ReplaceAll(strings.TrimSuffix(ae.Field, "_arn"), "_", "-")+arnSuffix(ae.Field), ae.Value, ae.Reason)
		}
		return cli.Usage(err)
	}
	if _, err := SessionRange.Check(strconv.Itoa(o.durationSeconds)); err != nil {
		return cli.Usagef("--session-duration %w", err)
	}
	if _, err := o.chainHops(); err != nil {
		return cli.Usage(err)
	}
	if (o.certificate == "") != (o.privateKey == "") {
		return cli.Usagef("--certificate and --private-key go together: give both, or neither to use the Workload API's X.509-SVID")
	}
	if o.certificate == "" && o.spiffeID != "" && o.hint != "" {
		return cli.Usagef("--spiffe-id and --hint are exclusive: select the SVID by one of them")
	}
	if o.endpoint != "" {
		u, err := url.Parse(o.endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return cli.Usagef("--endpoint %q is not an http(s) URL, e.g. https://rolesanywhere.us-east-1.amazonaws.com", o.endpoint)
		}
		if !netutil.PlainHTTPAllowed(u, o.insecureEndpoint) {
			return cli.Usagef("--endpoint %q is plain http to a host that is not loopback: use https, or add --insecure-endpoint", o.endpoint)
		}
	}
	return nil
}

// arnSuffix restores the "-arn" of an ARN field's flag name.
func arnSuffix(field string) string {
	if strings.HasSuffix(field, "_arn") {
		return "-arn"
	}
	return ""
}

// applyConfig fills o from a daemon config's profile; flags given explicitly win.
func (o *Options) applyConfig(flags *pflag.FlagSet) error {
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
	if !flags.Changed("workload-socket") && cfg.AgentAddress != "" {
		o.socketFrom = "the agent_address key of " + o.configPath
	}
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
	if !flags.Changed("assume-role-arn") {
		o.hops = wiring.Hops(p.AssumeRole)
	}
	return nil
}

// chainHops are the role-chaining hops: from the --assume-role-* flags, else from --config.
func (o *Options) chainHops() ([]chain.Hop, error) {
	if len(o.assumeRoleARNs) == 0 {
		for _, f := range [][]string{o.externalIDs, o.assumeRoleSessionNames, o.assumeRoleDurations} {
			if len(f) > 0 {
				return nil, errors.New("--external-id, --assume-role-session-name and --assume-role-duration need --assume-role-arn")
			}
		}
		return o.hops, nil
	}
	n := len(o.assumeRoleARNs)
	pick := func(flag string, vals []string, i int) (string, error) {
		switch len(vals) {
		case 0:
			return "", nil
		case 1:
			return vals[0], nil
		case n:
			return vals[i], nil
		}
		return "", fmt.Errorf("--%s is given %d times for %d --assume-role-arn: give it once (every hop) or once per hop", flag, len(vals), n)
	}
	var hops []chain.Hop
	for i, arn := range o.assumeRoleARNs {
		h := chain.Hop{RoleARN: arn, STSEndpoint: o.stsEndpoint, STSRegion: o.stsRegion, SPIFFEIDTag: o.spiffeIDTag}
		var err error
		if h.ExternalID, err = pick("external-id", o.externalIDs, i); err != nil {
			return nil, err
		}
		if h.RoleSessionName, err = pick("assume-role-session-name", o.assumeRoleSessionNames, i); err != nil {
			return nil, err
		}
		d, err := pick("assume-role-duration", o.assumeRoleDurations, i)
		if err != nil {
			return nil, err
		}
		if d != "" {
			if h.Duration, err = hopRange.Check(d); err != nil {
				return nil, fmt.Errorf("--assume-role-duration %w", err)
			}
		}
		hops = append(hops, h)
	}
	if err := chain.Validate(hops); err != nil {
		return nil, err
	}
	return hops, nil
}

// hopRange is what --assume-role-duration accepts: STS's minimum, and AWS's one-hour cap on chained sessions.
var hopRange = duration.Range{Min: 15 * time.Minute, Max: chain.MaxDuration, Example: "1h, 3600 or PT1H"}

// CreateSession runs one CreateSession with the identity from files or from the Workload API.
func (o *Options) CreateSession(ctx context.Context, log hclog.Logger) (creds.Credentials, error) {
	if err := cli.MissingFlags([]string{"trust-anchor-arn", "profile-arn", "role-arn"},
		[]string{o.trustAnchorARN, o.profileARN, o.roleARN}); err != nil {
		return creds.Credentials{}, err
	}
	id, source, err := o.identity(ctx)
	if err != nil {
		return creds.Credentials{}, err
	}
	hops, err := o.chainHops()
	if err != nil {
		return creds.Credentials{}, &cli.ExitError{Code: 2, Err: err}
	}
	log.Debug("signing with", "source", source, "serial", id.Leaf.SerialNumber.String(), "not_after", id.Leaf.NotAfter.UTC().Format(time.RFC3339))
	client := signer.New(signer.Options{HTTPClient: o.httpClient(), Logger: log.Named("signer")})
	var sc chain.SessionCreator = client
	if len(hops) > 0 {
		region := o.region
		if p := strings.Split(o.trustAnchorARN, ":"); region == "" && len(p) == 6 {
			region = p[3]
		}
		allowHTTP := o.insecureEndpoint // plain http to loopback needs no flag (netutil.PlainHTTPAllowed)
		// The lean binary must not link aws-sdk-go-v2: the hops use chain's standard-library SigV4 client.
		sc = &chain.Creator{RolesAnywhere: client, Chain: &chain.Chain{Hops: hops, Region: region, AllowHTTP: allowHTTP,
			STS: &chain.Query{HTTPClient: o.httpClient()}}}
	}
	return sc.CreateSession(ctx, signer.CreateSessionInput{
		Identity:        id,
		TrustAnchorARN:  o.trustAnchorARN,
		ProfileARN:      o.profileARN,
		RoleARN:         o.roleARN,
		Region:          o.region,
		Endpoint:        o.endpoint,
		AllowHTTP:       o.insecureEndpoint, // plain http to loopback needs no flag (netutil.PlainHTTPAllowed)
		DurationSeconds: o.durationSeconds,
		RoleSessionName: o.roleSessionName,
	})
}

// identity loads the signing identity: key files when --certificate is given, else the Workload API.
func (o *Options) identity(ctx context.Context) (signer.Identity, string, error) {
	if o.certificate != "" || o.privateKey != "" {
		if o.certificate == "" || o.privateKey == "" {
			return signer.Identity{}, "", &cli.ExitError{Code: 2, Err: errors.New("--certificate and --private-key go together")}
		}
		id, err := keyfile.Load(o.certificate, o.privateKey, o.intermediates)
		if err != nil {
			return id, "", cli.Usagef("--certificate %s / --private-key %s: %w", o.certificate, o.privateKey, err)
		}
		return id, "files", nil
	}
	if o.spiffeID != "" && o.hint != "" {
		return signer.Identity{}, "", &cli.ExitError{Code: 2, Err: errors.New("--spiffe-id and --hint are exclusive: select the SVID by one of them")}
	}
	from := o.socketFrom
	if from == "" {
		from = "--workload-socket"
	}
	addr, err := svid.Locate(o.workloadSocket, from)
	if err != nil {
		return signer.Identity{}, "", cli.Usage(err)
	}
	s, err := svid.FetchX509(ctx, addr.Addr, svid.Selector{ID: o.spiffeID, Hint: o.hint})
	if err != nil {
		return signer.Identity{}, "", svid.Diagnose(addr, err)
	}
	return signer.Identity{Leaf: s.Leaf(), Intermediates: s.Intermediates(), Key: s.PrivateKey}, "workload API " + s.ID.String(), nil
}

// httpClient honors --with-proxy and --no-verify-ssl.
func (o *Options) httpClient() *http.Client {
	c := signer.DefaultHTTPClient(o.withProxy)
	if o.noVerifySSL {
		t := c.Transport.(*http.Transport)
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true} //nolint:gosec // explicit user request
	}
	return c
}

// Output is where a one-shot writes: the credential_process JSON, and only that, on Stdout; logs on
// Stderr (or LogFile), warnings and errors only unless Debug.
type Output struct {
	Stdout, Stderr io.Writer
	Debug          bool
	LogFile        string
}

// AddFlags registers --debug and --log-file-path.
func (out *Output) AddFlags(f *pflag.FlagSet) {
	f.BoolVar(&out.Debug, "debug", false, "log debug information (never secrets)")
	f.StringVar(&out.LogFile, "log-file-path", "", "append logs to this file instead of stderr")
}

// Print runs fetch with the one-shot logger under Timeout, and prints its credentials as
// credential_process JSON: the shared tail of every one-shot command.
func (out *Output) Print(ctx context.Context, fetch func(context.Context, hclog.Logger) (creds.Credentials, error)) error {
	log, closeLog, err := out.logger()
	if err != nil {
		return &cli.ExitError{Code: 2, Err: err}
	}
	defer closeLog()
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	c, err := fetch(ctx, log)
	if err != nil {
		return err
	}
	b, err := creds.ProcessJSON(c)
	if err != nil {
		return err
	}
	_, err = out.Stdout.Write(append(b, '\n'))
	return err
}

// logger builds the one-shot logger: warnings and errors on Stderr (or LogFile), debug with Debug.
func (out *Output) logger() (hclog.Logger, func(), error) {
	w, closer := out.Stderr, func() {}
	if out.LogFile != "" {
		// O_NOFOLLOW: run by root, a log path in a directory another user can write must not let that
		// user point it (a symbolic link) at a file of their choosing.
		f, err := os.OpenFile(out.LogFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY|syscall.O_NOFOLLOW, 0o600)
		if errors.Is(err, syscall.ELOOP) {
			return nil, nil, fmt.Errorf("--log-file-path %s is a symbolic link; refusing to follow it (name the file itself)", out.LogFile)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("--log-file-path: %w", err)
		}
		w, closer = f, func() { f.Close() }
	}
	level := hclog.Warn
	if out.Debug {
		level = hclog.Debug
	}
	return hclog.New(&hclog.LoggerOptions{Name: "spiffe-aws-bridge", Level: level, Output: w}), closer, nil
}

// NewCommand returns the credential-process command named use, which users invoke as invocation (the
// binary's name, and the command's when it is a subcommand): aws_signing_helper's flags, with the
// X.509-SVID from the Workload API when no key files are given.
func NewCommand(use, invocation string, stdout, stderr io.Writer) *cobra.Command {
	o := Options{Output: Output{Stdout: stdout, Stderr: stderr}}
	cmd := &cobra.Command{
		Use:   use,
		Short: "Print Roles Anywhere credentials as credential_process JSON (aws_signing_helper compatible)",
		Long: `Sign one IAM Roles Anywhere CreateSession and print the credentials in the credential_process
format on stdout. A drop-in for "aws_signing_helper credential-process": the same flags work, and
without --certificate/--private-key the X.509-SVID comes from the SPIFFE Workload API, its key never
written to disk.

  [profile app]
  credential_process = ` + invocation + ` --trust-anchor-arn TA --profile-arn P --role-arn R

Only the JSON goes to stdout; errors go to stderr. Exit status: 0 success, 1 runtime failure (the
Workload API or AWS said no), 2 usage or configuration error (a flag, its value, or --config).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.Run(cmd.Context(), cmd.Flags())
		},
	}
	o.AddFlags(cmd.Flags())
	o.AddSessionDurationFlag(cmd.Flags(), "3600")
	return cmd
}
