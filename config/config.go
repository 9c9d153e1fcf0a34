// Package config turns the spiffe-aws-bridge daemon's HCL configuration file into a typed, defaulted and
// validated Config.
//
// The file follows SPIRE's conventions (log_level, log_format, a health_checks block, telemetry {
// Prometheus { … } }) plus one profile "<name>" { … } block per Roles Anywhere session. Unknown keys are
// errors. Every problem found is reported at once, each as "file:line:col: message", so that an operator
// can fix a file in one pass. The README's "Configuration reference" is the contract this package
// implements.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/zclconf/go-cty/cty"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/agentaddr"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/awsarn"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/duration"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/ininame"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/netutil"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/selector"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/signame"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/trusted"
)

// Defaults and limits of the configuration, as documented in the README.
const (
	DefaultLogLevel  = "info"
	DefaultLogFormat = "text"

	DefaultHealthBindAddress = "localhost"
	DefaultHealthBindPort    = 80
	DefaultLivePath          = "/live"
	DefaultReadyPath         = "/ready"

	DefaultPrometheusHost = "localhost"

	DefaultSessionDuration = time.Hour
	MinSessionDuration     = 15 * time.Minute
	MaxSessionDuration     = 12 * time.Hour

	DefaultRotationSpread = 28 * time.Minute
	MaxRotationSpread     = 12 * time.Hour
	DefaultJitterFraction = 0.1
	// DefaultOnIdentityLoss keeps delivered credentials until they expire when the identity is lost.
	DefaultOnIdentityLoss = "keep_until_expiry"
	MaxJitterFraction     = 0.5

	DefaultIMDSBindAddress      = "127.0.0.1"
	DefaultIMDSBindPort         = 9911
	DefaultContainerBindAddress = "127.0.0.1"
	DefaultContainerBindPort    = 9912
	DefaultContainerPath        = "/v1/credentials"

	// DefaultStartupGrace is how long the Workload API may answer "no identity issued" before the
	// first SVID without an ERROR: the normal wait for SPIRE's registration entry to reach the agent.
	DefaultStartupGrace = time.Minute
	MaxStartupGrace     = time.Hour

	DefaultHookTimeout = 30 * time.Second
	MaxHookTimeout     = 10 * time.Minute
	DefaultSignal      = "SIGHUP"
)

// Config is a validated daemon configuration.
type Config struct {
	// AgentAddress is the Workload API address as configured; "" means resolve it later from
	// $SPIFFE_ENDPOINT_SOCKET or the default (as the svid source resolves it).
	AgentAddress string
	// LogLevel is one of trace, debug, info, warn, error (lower case).
	LogLevel string
	// LogFormat is text or json (lower case).
	LogFormat string
	// StartupGrace is how long after start a "no identity issued" answer of the Workload API, before
	// the first SVID, is logged as the normal wait (INFO) rather than an ERROR; read at start only.
	StartupGrace time.Duration
	// HealthChecks configures the /live and /ready server; nil when the block is absent.
	HealthChecks *HealthChecks
	// Telemetry configures metrics; nil when the block is absent.
	Telemetry *Telemetry
	// DelegatedIdentity is the delegated_identity block (node mode); nil when absent.
	DelegatedIdentity *DelegatedIdentity
	// PodIdentity is the pod_identity block (Kubernetes pod identity mode); nil when absent.
	PodIdentity *PodIdentity
	// Profiles are the profile blocks in file order; there is at least one unless PodIdentity is set.
	Profiles []Profile
}

// DelegatedIdentity is the delegated_identity block: where the SPIRE agent's admin API serves the
// Delegated Identity API, from which profiles with workload_selectors get other workloads' SVIDs.
type DelegatedIdentity struct {
	// AdminAddress is the agent's admin socket, unix:///path (the agent's admin_socket_path).
	AdminAddress string
}

// HealthChecks is the health_checks block, with SPIRE's names and defaults.
type HealthChecks struct {
	// BindAddress is the host to listen on (default "localhost").
	BindAddress string
	// BindPort is the port to listen on (default 80; 0 picks a free one).
	BindPort int
	// LivePath is the liveness path (default "/live").
	LivePath string
	// ReadyPath is the readiness path (default "/ready").
	ReadyPath string
	// AllowRemote permits a non-loopback BindAddress.
	AllowRemote bool
	// AllowedHosts are Host values accepted besides the bound address: "name" (any port) or "name:port";
	// ["*"] turns the Host check off. Requests from web pages are refused regardless.
	AllowedHosts []string
}

// Telemetry is the telemetry block.
type Telemetry struct {
	// Prometheus is the prometheus (or, as SPIRE spells it, Prometheus) block; nil when absent.
	Prometheus *Prometheus
}

// Prometheus configures the /metrics server.
type Prometheus struct {
	// Host is the host to listen on (default "localhost").
	Host string
	// Port is the port to listen on; the attribute is required (0 picks a free port).
	Port int
	// AllowRemote permits a non-loopback Host.
	AllowRemote bool
	// AllowedHosts are Host values accepted besides the bound address: "name" (any port) or "name:port";
	// ["*"] turns the Host check off. Requests from web pages are refused regardless.
	AllowedHosts []string
}

// Profile is one profile "<name>" block: a Roles Anywhere session and where its credentials go.
type Profile struct {
	// Name is the block's label, unique in the file, of [A-Za-z0-9_.-].
	Name string
	// SpiffeID selects the X.509-SVID with this SPIFFE ID; exclusive with Hint. Both empty means the
	// first SVID offered.
	SpiffeID string
	// Hint selects the X.509-SVID with this hint; exclusive with SpiffeID.
	Hint string
	// WorkloadSelectors, when set, make this a node-mode profile: its SVIDs are another workload's,
	// those the SPIRE agent's Delegated Identity API issues for these selectors ("type:value", e.g.
	// "unix:uid:1001"), instead of the bridge's own from the Workload API. SpiffeID and Hint choose among
	// that workload's SVIDs.
	WorkloadSelectors []string
	// TrustAnchorARN is the Roles Anywhere trust anchor.
	TrustAnchorARN string
	// ProfileARN is the Roles Anywhere profile (same partition, account and region as the trust anchor).
	ProfileARN string
	// RoleARN is the IAM role to assume.
	RoleARN string
	// Region is the Roles Anywhere region: the trust anchor's (a different configured one is an error).
	Region string
	// SessionDuration is the requested session length, 15m to 12h (default 1h).
	SessionDuration time.Duration
	// RoleSessionName is the optional custom role session name.
	RoleSessionName string
	// Endpoint overrides the Roles Anywhere endpoint URL; "" means the regional default.
	Endpoint string
	// InsecureEndpoint allows a plain http:// Endpoint to a host that is not loopback (plain http to a
	// loopback address, the local emulator, needs no flag: netutil.PlainHTTPAllowed).
	InsecureEndpoint bool
	// OnIdentityLoss is what happens to delivered credentials when the profile's identity is lost (the
	// Workload API no longer issues its SVID, or the SVID is past NotAfter): "keep_until_expiry" (the
	// default) or "withdraw". Either way no new session is created until the identity returns.
	OnIdentityLoss string
	// Pos is where the profile block starts, "file:line", for messages about it (not compared by Equal).
	Pos string
	// Refresh is the refresh timing, always filled with defaults.
	Refresh Refresh
	// CredentialsFile writes a named profile of a shared credentials file; nil when absent.
	CredentialsFile *CredentialsFile
	// IMDS serves an IMDSv2 endpoint; nil when absent.
	IMDS *IMDS
	// ContainerEndpoint serves a container-credentials endpoint; nil when absent.
	ContainerEndpoint *ContainerEndpoint
	// OnRefresh runs a command after each refresh; nil when absent.
	OnRefresh *OnRefresh
	// Signal signals a process after each refresh; nil when absent.
	Signal *Signal
	// AssumeRole are the role-chaining hops after the Roles Anywhere session, in order: each assume_role
	// block is one STS AssumeRole signed with the previous hop's credentials. The sinks get the last
	// hop's credentials.
	AssumeRole []AssumeRole
}

// AssumeRole is one assume_role block of a profile: an STS AssumeRole hop into a role, usually of
// another account (role chaining).
type AssumeRole struct {
	// RoleARN is the role to assume (required).
	RoleARN string
	// ExternalID is sent as ExternalId when set.
	ExternalID string
	// RoleSessionName defaults to one derived from the SPIFFE ID.
	RoleSessionName string
	// Duration of the session, 15m to 1h (AWS caps chained sessions at one hour); default 1h.
	Duration time.Duration
	// SessionTags are session tags to add (the target role must allow sts:TagSession).
	SessionTags map[string]string
	// TransitiveTagKeys are keys of SessionTags (or SPIFFEIDTag) that pass to later hops.
	TransitiveTagKeys []string
	// Policy is an inline session policy (JSON); PolicyARNs are managed session policies (at most 10).
	Policy     string
	PolicyARNs []string
	// STSRegion is the regional STS endpoint's region (default: the previous hop's, first the trust
	// anchor's); STSEndpoint overrides the URL (the global endpoint only when named here).
	STSRegion   string
	STSEndpoint string
	// SPIFFEIDTag is the session tag key carrying the SPIFFE ID (default "spiffe-id"; "" sends none).
	SPIFFEIDTag string
}

// Delegated reports whether the profile serves another workload's identity (node mode).
func (p Profile) Delegated() bool { return len(p.WorkloadSelectors) > 0 }

// Equal reports whether c and o configure the same thing: every field equal, positions (Profile.Pos)
// aside.
func (c *Config) Equal(o *Config) bool {
	if c == nil || o == nil {
		return c == o
	}
	strip := func(cfg *Config) Config {
		out := *cfg
		out.Profiles = append([]Profile(nil), cfg.Profiles...)
		for i := range out.Profiles {
			out.Profiles[i].Pos = ""
		}
		if cfg.PodIdentity != nil {
			out.PodIdentity = cfg.PodIdentity.withoutPos()
		}
		return out
	}
	return reflect.DeepEqual(strip(c), strip(o))
}

// Equal reports whether p and o are the same configuration in every field but Pos.
func (p Profile) Equal(o Profile) bool {
	p.Pos, o.Pos = "", ""
	return reflect.DeepEqual(p, o)
}

// Refresh is a profile's refresh block.
type Refresh struct {
	// RotationSpread bounds the random delay before refreshing after a new SVID (default 28m; 0 refreshes
	// at once; at most 12h). The refresher bounds it further by the new SVID's half-life
	// (schedule.SVID.SpreadBound).
	RotationSpread time.Duration
	// JitterFraction is the fraction of the session before the deadline from which timer refreshes are
	// drawn (default 0.1; 0 < x ≤ 0.5).
	JitterFraction float64
	// TimerOnly is on_rotation = false: refresh only on the session's own schedule, with whichever SVID
	// is current then, instead of also when a new SVID arrives (the default, on_rotation = true). One
	// call per session instead of one per rotation, for fleets too large for the account's quota
	// (docs/fleet-simulation.md).
	TimerOnly bool
}

// CredentialsFile is a profile's credentials_file block.
type CredentialsFile struct {
	// Path is the absolute path of the shared credentials file.
	Path string
	// ProfileName is the INI section to own (default: the profile's Name).
	ProfileName string
	// Owner is the user (name or numeric id, not looked up here) who owns the file and the directories
	// created for it, and who is trusted as the owner of the directories on the path; "" when unset.
	Owner string
	// Group is the group (name or numeric id) of the file and created directories, trusted as the group
	// of group-writable ones; "" when unset.
	Group string
	// Mode is the file's mode: 0600 (default), 0640 or 0660.
	Mode fs.FileMode
	// FollowSymlinks resolves symbolic links in Path instead of refusing them (only those owned by root or
	// the bridge's user where no one else can write: the sink decides).
	FollowSymlinks bool
	// AllowSharedDirectory accepts directories on the path that other users can write.
	AllowSharedDirectory bool
}

// IMDS is a profile's imds block.
type IMDS struct {
	// BindAddress is the host to listen on (default "127.0.0.1").
	BindAddress string
	// BindPort is the port to listen on (default 9911; 0 picks a free one).
	BindPort int
	// AllowRemote permits a non-loopback BindAddress.
	AllowRemote bool
	// AllowedHosts are Host values accepted besides the bound address: "name" (any port) or "name:port";
	// ["*"] turns the Host check off. Requests from web pages are refused regardless.
	AllowedHosts []string
	// AllowedClients are the client networks (allowed_clients: CIDR notation, or single addresses) that
	// may use the endpoint besides loopback clients; required when BindAddress is not a loopback address.
	AllowedClients []netip.Prefix
}

// ContainerEndpoint is a profile's container_endpoint block.
type ContainerEndpoint struct {
	// BindAddress is the host to listen on (default "127.0.0.1").
	BindAddress string
	// BindPort is the port to listen on (default 9912; 0 picks a free one).
	BindPort int
	// Path is the URL path credentials are served at (default "/v1/credentials").
	Path string
	// AuthTokenFile is the absolute path of the file holding the token clients must send.
	AuthTokenFile string
	// AllowRemote permits a non-loopback BindAddress.
	AllowRemote bool
	// AllowedHosts are Host values accepted besides the bound address: "name" (any port) or "name:port";
	// ["*"] turns the Host check off. Requests from web pages are refused regardless.
	AllowedHosts []string
	// AuthTokenOwner is the user (name or numeric id) who owns a created token file and its directories,
	// trusted as the owner of existing ones; "" when unset.
	AuthTokenOwner string
	// AuthTokenGroup is the group (name or numeric id) of a created token file; "" when unset.
	AuthTokenGroup string
	// AuthTokenMode is the mode of a created token file: 0600 (default), 0640 or 0660.
	AuthTokenMode fs.FileMode
	// FollowSymlinks resolves symbolic links in AuthTokenFile instead of refusing them (only those owned by
	// root or the bridge's user where no one else can write: the endpoint decides).
	FollowSymlinks bool
	// AllowSharedDirectory accepts directories on AuthTokenFile's path that other users can write.
	AllowSharedDirectory bool
}

// OnRefresh is a profile's on_refresh block.
type OnRefresh struct {
	// Command is the argv to run (no shell); never empty.
	Command []string
	// Timeout bounds each run (default 30s; at most 10m).
	Timeout time.Duration
}

// Signal is a profile's signal block.
type Signal struct {
	// PIDFile is the absolute path of the file holding the process ID to signal.
	PIDFile string
	// Signal is the signal to send (default SIGHUP).
	Signal syscall.Signal
}

// Error is an invalid configuration: every problem found, each with its position in the file.
type Error struct {
	// Diagnostics are the problems, in file order.
	Diagnostics hcl.Diagnostics
}

// Error lists every problem, one "file:line:col: message" per line.
func (e *Error) Error() string {
	lines := make([]string, 0, len(e.Diagnostics))
	for _, d := range e.Diagnostics {
		if d.Severity != hcl.DiagError {
			continue
		}
		lines = append(lines, formatDiag(d))
	}
	return strings.Join(lines, "\n")
}

func formatDiag(d *hcl.Diagnostic) string {
	msg := d.Summary
	if d.Detail != "" {
		msg += "; " + d.Detail
	}
	if d.Subject == nil {
		return msg
	}
	return fmt.Sprintf("%s:%d:%d: %s", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, msg)
}

// MaxFileSize bounds the configuration file: 64 MiB, over a hundred times what a thousand node-mode
// profiles take, so that no real config meets it.
const MaxFileSize = 64 << 20

// Load reads and parses the configuration file at path.
//
// When the process runs as root, the file and every directory above it must be owned by root and
// writable by no one else (internal/trusted: sshd's StrictModes rule, with root-owned sticky directories
// such as /tmp accepted): whoever can write a root bridge's config can make it run commands as root. A
// refusal wraps trusted.ErrUntrusted and names the file, its owner and mode, and the chown/chmod that
// fixes it. A bridge that does not run as root reads the file as before.
func Load(path string) (*Config, error) {
	src, err := trusted.ReadFile(path, trusted.Options{What: "config file", MaxSize: MaxFileSize})
	if errors.Is(err, trusted.ErrUntrusted) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("reading config file %s: %w", path, unwrapPathError(err))
	}
	return Parse(src, path)
}

// unwrapPathError drops the *fs.PathError wrapper (which repeats the path) from err.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Parse parses and validates a configuration; filename is used in error positions only.
func Parse(src []byte, filename string) (*Config, error) {
	f, diags := hclparse.NewParser().ParseHCL(src, filename)
	if diags.HasErrors() {
		return nil, newError(diags)
	}
	d := &decoder{filename: filename, src: src}
	cfg := d.decodeFile(f.Body)
	if d.diags.HasErrors() {
		return nil, newError(d.diags)
	}
	return cfg, nil
}

func newError(diags hcl.Diagnostics) *Error {
	errs := make(hcl.Diagnostics, 0, len(diags))
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			errs = append(errs, d)
		}
	}
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i].Subject, errs[j].Subject
		switch {
		case a == nil || b == nil:
			return a != nil && b == nil
		case a.Start.Line != b.Start.Line:
			return a.Start.Line < b.Start.Line
		default:
			return a.Start.Column < b.Start.Column
		}
	})
	return &Error{Diagnostics: errs}
}

var (
	profileName     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_.-]+$`) })
	roleSessionName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_+=,.@-]{2,64}$`) })
	externalID      = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_+=,.@:/-]+$`) })
	tagKey          = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$`) })
	logLevels       = []string{"trace", "debug", "info", "warn", "error"}
	logFormats      = []string{"text", "json"}
)

var (
	rootSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "agent_address"}, {Name: "log_level"}, {Name: "log_format"}, {Name: "startup_grace"}},
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "delegated_identity"},
			{Type: "pod_identity"},
			{Type: "health_checks"},
			{Type: "telemetry"},
			{Type: "profile", LabelNames: []string{"name"}},
		},
	}
	healthSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "bind_address"}, {Name: "bind_port"}, {Name: "live_path"}, {Name: "ready_path"}, {Name: "allow_remote"}, {Name: "allowed_hosts"},
		},
	}
	telemetrySchema = &hcl.BodySchema{
		Blocks: []hcl.BlockHeaderSchema{{Type: "prometheus"}, {Type: "Prometheus"}},
	}
	prometheusSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "host"}, {Name: "port"}, {Name: "allow_remote"}, {Name: "allowed_hosts"}},
	}
	profileSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "spiffe_id"}, {Name: "hint"}, {Name: "workload_selectors"},
			{Name: "trust_anchor_arn"}, {Name: "profile_arn"}, {Name: "role_arn"}, {Name: "region"},
			{Name: "session_duration"}, {Name: "role_session_name"},
			{Name: "endpoint"}, {Name: "insecure_endpoint"}, {Name: "on_identity_loss"},
		},
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "refresh"}, {Type: "credentials_file"}, {Type: "imds"}, {Type: "container_endpoint"},
			{Type: "on_refresh"}, {Type: "signal"}, {Type: "assume_role"},
		},
	}
	assumeRoleSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "role_arn"}, {Name: "external_id"}, {Name: "role_session_name"}, {Name: "duration"},
			{Name: "session_tags"}, {Name: "transitive_tag_keys"}, {Name: "policy"}, {Name: "policy_arns"},
			{Name: "sts_endpoint"}, {Name: "sts_region"}, {Name: "spiffe_id_tag"},
		},
	}
	refreshSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "rotation_spread"}, {Name: "jitter_fraction"}, {Name: "on_rotation"}},
	}
	credentialsFileSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "path"}, {Name: "profile_name"},
			{Name: "owner"}, {Name: "group"}, {Name: "mode"}, {Name: "follow_symlinks"}, {Name: "allow_shared_directory"},
		},
	}
	imdsSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "bind_address"}, {Name: "bind_port"}, {Name: "allow_remote"}, {Name: "allowed_hosts"}, {Name: "allowed_clients"}},
	}
	containerSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "bind_address"}, {Name: "bind_port"}, {Name: "path"}, {Name: "auth_token_file"}, {Name: "allow_remote"}, {Name: "allowed_hosts"},
			// The token file's ownership and path rules (internal/safefs).
			{Name: "auth_token_owner"}, {Name: "auth_token_group"}, {Name: "auth_token_mode"},
			{Name: "follow_symlinks"}, {Name: "allow_shared_directory"},
		},
	}
	onRefreshSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "command"}, {Name: "timeout"}},
	}
	delegatedSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "admin_address"}},
	}
	signalSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "pid_file"}, {Name: "signal"}},
	}
)

// decoder accumulates diagnostics and what the cross-profile checks need.
type decoder struct {
	filename string
	src      []byte // the file, for quoting values as written
	diags    hcl.Diagnostics
	files    []fileUse
	binds    []bindUse
	// delegated is the delegated_identity block, decoded before the profiles.
	delegated *DelegatedIdentity
	// rule is set while a pod_identity rule block is decoded: its ARNs and session names are templates.
	rule *ruleScope
}

// fileUse is a credentials file section some profile writes.
type fileUse struct {
	path, section, owner string
	// user is the file's configured owner of a node-mode profile ("" otherwise): one file may not hold
	// two workloads' credentials.
	user string
	rng  hcl.Range
}

// bindUse is an address some server listens on.
type bindUse struct {
	host   string
	port   int
	prefix string // the message prefix of the block's scope, e.g. `profile "app": `
	block  string // e.g. "imds", "health_checks"
	rng    hcl.Range
}

// who names the server in a message about another one, e.g. `profile "app" imds`.
func (b bindUse) who() string {
	if b.prefix == "" {
		return b.block
	}
	return strings.TrimSuffix(b.prefix, ": ") + " " + b.block
}

func (d *decoder) errorf(rng hcl.Range, format string, args ...any) {
	r := rng
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf(format, args...),
		Subject:  &r,
	})
}

// scope is one block's decoded content plus how its messages are worded.
type scope struct {
	d      *decoder
	prefix string // message prefix, e.g. `profile "app": `
	path   string // attribute name prefix, e.g. "credentials_file."
	rng    hcl.Range
	attrs  hcl.Attributes
	blocks hcl.Blocks
}

func (d *decoder) content(body hcl.Body, schema *hcl.BodySchema, prefix, path string, rng hcl.Range) *scope {
	c, diags := body.Content(schema)
	d.diags = append(d.diags, diags...)
	s := &scope{d: d, prefix: prefix, path: path, rng: rng}
	if c != nil {
		s.attrs, s.blocks = c.Attributes, c.Blocks
	}
	return s
}

// name is the attribute's full name, e.g. "credentials_file.path".
func (s *scope) name(attr string) string { return s.path + attr }

// errAt reports a problem with attribute attr's value, at the value.
func (s *scope) errAt(a *hcl.Attribute, format string, args ...any) {
	s.d.errorf(a.Expr.Range(), "%s%s", s.prefix, fmt.Sprintf(format, args...))
}

// required reports a missing required attribute at the block's header.
func (s *scope) required(attr string) {
	s.d.errorf(s.rng, "%s%s is required", s.prefix, s.name(attr))
}

// value evaluates attribute name; it returns nil when the attribute is absent, null or broken (the last
// reported).
func (s *scope) value(name string) (cty.Value, *hcl.Attribute) {
	a, ok := s.attrs[name]
	if !ok {
		return cty.NilVal, nil
	}
	v, diags := safeValue(a.Expr)
	s.d.diags = append(s.d.diags, diags...)
	if diags.HasErrors() {
		return cty.NilVal, nil
	}
	if v.IsNull() {
		return cty.NilVal, nil
	}
	if !v.IsWhollyKnown() {
		s.errAt(a, "%s must be a constant value", s.name(name))
		return cty.NilVal, nil
	}
	v, _ = v.Unmark()
	return v, a
}

// safeValue evaluates e without variables or functions, turning a panic (cty refuses some big-number
// arithmetic that way) into a diagnostic.
func safeValue(e hcl.Expression) (v cty.Value, diags hcl.Diagnostics) {
	defer func() {
		if r := recover(); r != nil {
			rng := e.Range()
			v, diags = cty.NilVal, hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("cannot evaluate this expression: %v", r),
				Subject:  &rng,
			}}
		}
	}()
	return e.Value(nil)
}

// present reports whether attribute name is set (even to a bad value), null counting as unset.
func (s *scope) present(name string) bool {
	a, ok := s.attrs[name]
	if !ok {
		return false
	}
	v, diags := safeValue(a.Expr)
	return diags.HasErrors() || !v.IsNull()
}

func typeName(v cty.Value) string {
	return v.Type().FriendlyName()
}

// str decodes a string attribute into dst; it reports whether a valid value was set.
func (s *scope) str(name string, dst *string) (*hcl.Attribute, bool) {
	v, a := s.value(name)
	if a == nil {
		return nil, false
	}
	if v.Type() != cty.String {
		s.errAt(a, "%s must be a string, not a %s", s.name(name), typeName(v))
		return a, false
	}
	*dst = v.AsString()
	return a, true
}

// boolean decodes a bool attribute into dst.
func (s *scope) boolean(name string, dst *bool) {
	v, a := s.value(name)
	if a == nil {
		return
	}
	if v.Type() != cty.Bool {
		s.errAt(a, "%s must be true or false, not a %s", s.name(name), typeName(v))
		return
	}
	*dst = v.True()
}

// port decodes a TCP port attribute (0..65535) into dst.
func (s *scope) port(name string, dst *int) (*hcl.Attribute, bool) {
	v, a := s.value(name)
	if a == nil {
		return nil, false
	}
	if v.Type() != cty.Number {
		s.errAt(a, "%s must be a number, not a %s", s.name(name), typeName(v))
		return a, false
	}
	bf := v.AsBigFloat()
	if bf.IsInf() || !bf.IsInt() {
		s.errAt(a, "%s %s is not a whole number", s.name(name), s.d.written(a.Expr))
		return a, false
	}
	n, _ := bf.Int64()
	if bf.Sign() < 0 || n > 65535 {
		s.errAt(a, "%s %s is out of range (0–65535)", s.name(name), s.d.written(a.Expr))
		return a, false
	}
	*dst = int(n)
	return a, true
}

// written is expr as the file spells it, shortened to 40 characters, for error messages. Formatting the
// number instead would be unsafe: big.Float prints 1e40010200 in full, which takes about a minute
// (found by FuzzParse).
func (d *decoder) written(expr hcl.Expression) string {
	text := strings.TrimSpace(string(expr.Range().SliceBytes(d.src)))
	if r := []rune(text); len(r) > 40 {
		text = string(r[:40]) + "…"
	}
	return text
}

// float decodes a number attribute into dst.
func (s *scope) float(name string, dst *float64) (*hcl.Attribute, bool) {
	v, a := s.value(name)
	if a == nil {
		return nil, false
	}
	if v.Type() != cty.Number {
		s.errAt(a, "%s must be a number, not a %s", s.name(name), typeName(v))
		return a, false
	}
	*dst, _ = v.AsBigFloat().Float64()
	return a, true
}

// duration decodes a duration attribute into dst, checking it against [lo, hi]: a string in any form of
// package duration ("90m", "3600", "PT1H"), or a number of seconds.
func (s *scope) duration(name string, dst *time.Duration, lo, hi time.Duration, rangeText string) {
	v, a := s.value(name)
	if a == nil {
		return
	}
	var text string
	switch {
	case v.Type() == cty.Number:
		f, _ := v.AsBigFloat().Float64()
		if f != float64(int64(f)) || f < 0 {
			s.errAt(a, `%s %v is not a whole number of seconds: write %s, as a string such as "1h", or seconds such as 3600; accepted: %s`,
				s.name(name), f, duration.Forms, rangeText)
			return
		}
		text = strconv.FormatInt(int64(f), 10)
	case v.Type() == cty.String:
		text = v.AsString()
	default:
		s.errAt(a, `%s must be a duration such as "1h", "3600" or "PT1H", not a %s`, s.name(name), typeName(v))
		return
	}
	dur, err := duration.Parse(text)
	if err != nil {
		s.errAt(a, `%s %q is not a duration: write %s; accepted: %s`, s.name(name), text, duration.Forms, rangeText)
		return
	}
	if dur < lo || dur > hi {
		s.errAt(a, "%s %q is out of range (%s)", s.name(name), text, rangeText)
		return
	}
	*dst = dur
}

// strList decodes a list of strings into dst; example is one for the error, e.g. ["/path/to/cmd", "arg"].
func (s *scope) strList(name, example string, dst *[]string) (*hcl.Attribute, bool) {
	v, a := s.value(name)
	if a == nil {
		return nil, false
	}
	t := v.Type()
	if !t.IsTupleType() && !t.IsListType() && !t.IsSetType() {
		s.errAt(a, `%s must be a list of strings such as %s, not a %s`, s.name(name), example, typeName(v))
		return a, false
	}
	var out []string
	i := 0
	for it := v.ElementIterator(); it.Next(); i++ {
		_, e := it.Element()
		if e.IsNull() || e.Type() != cty.String {
			s.errAt(a, "%s[%d] must be a string", s.name(name), i)
			return a, false
		}
		out = append(out, e.AsString())
	}
	*dst = out
	return a, true
}

// absPath decodes a required absolute path attribute into dst.
func (s *scope) absPath(name string, dst *string) (*hcl.Attribute, bool) {
	if !s.present(name) {
		s.required(name)
		return nil, false
	}
	a, ok := s.str(name, dst)
	if !ok {
		return a, false
	}
	if !filepath.IsAbs(*dst) {
		s.errAt(a, "%s %q must be an absolute path", s.name(name), *dst)
		return a, false
	}
	*dst = filepath.Clean(*dst)
	return a, true
}

// fileRules decodes the ownership and path settings of a file the bridge writes (internal/safefs's
// rules): owner and group (names or numeric ids: their form only; they are looked up when the sink is
// built, since a config is often checked on another machine), mode, follow_symlinks and
// allow_shared_directory.
func (s *scope) fileRules(ownerName, groupName, modeName string, owner, group *string, mode *fs.FileMode, follow, shared *bool) {
	s.ownerID(ownerName, owner, "user")
	s.ownerID(groupName, group, "group")
	var text string
	if a, ok := s.str(modeName, &text); ok {
		if m, err := safefs.ParseMode(text); err != nil {
			s.errAt(a, "%s %v", s.name(modeName), err)
		} else {
			*mode = m
		}
	}
	s.boolean("follow_symlinks", follow)
	s.boolean("allow_shared_directory", shared)
}

// ownerID decodes a user or group: a name, or a numeric id as a string or a whole number.
func (s *scope) ownerID(name string, dst *string, kind string) {
	v, a := s.value(name)
	if a == nil {
		return
	}
	var text string
	switch v.Type() {
	case cty.String:
		text = v.AsString()
	case cty.Number:
		bf := v.AsBigFloat()
		if bf.IsInf() || !bf.IsInt() || bf.Sign() < 0 || bf.Cmp(big.NewFloat(1<<32-2)) > 0 {
			s.errAt(a, "%s %s is not a %s id (0 to 4294967294)", s.name(name), s.d.written(a.Expr), kind)
			return
		}
		n, _ := bf.Uint64()
		text = strconv.FormatUint(n, 10)
	default:
		s.errAt(a, "%s must be a %s name or numeric id, not a %s", s.name(name), kind, typeName(v))
		return
	}
	if err := safefs.ValidateName(text); err != nil {
		s.errAt(a, "%s %q %v", s.name(name), text, err)
		return
	}
	*dst = text
}

// oneOf decodes a case-insensitive enumeration into dst (lower case).
func (s *scope) oneOf(name string, dst *string, allowed []string) {
	var text string
	a, ok := s.str(name, &text)
	if !ok {
		return
	}
	lower := strings.ToLower(strings.TrimSpace(text))
	for _, x := range allowed {
		if lower == x {
			*dst = x
			return
		}
	}
	s.errAt(a, "%s %q is not one of %s", s.name(name), text, strings.Join(allowed, ", "))
}

// urlPath decodes a URL path attribute (must start with "/") into dst.
func (s *scope) urlPath(name string, dst *string) {
	var p string
	a, ok := s.str(name, &p)
	if !ok {
		return
	}
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?# \t\r\n") {
		s.errAt(a, `%s %q must be a URL path starting with "/"`, s.name(name), p)
		return
	}
	*dst = p
}

// listener decodes bind address, port, allow_remote and allowed_hosts, checks the address against
// allow_remote and records it for the duplicate check.
func (s *scope) listener(addrName, portName string, host *string, port *int, allowRemote *bool, allowedHosts *[]string) {
	addrAttr, addrOK := s.str(addrName, host)
	portAttr, _ := s.port(portName, port)
	s.boolean("allow_remote", allowRemote)
	s.allowedHosts(allowedHosts)
	if addrOK && !*allowRemote && !isLoopbackHost(*host) {
		s.errAt(addrAttr, "%s %q is not a loopback address; set allow_remote = true to listen on it",
			s.name(addrName), *host)
	}
	rng := s.rng
	if portAttr != nil {
		rng = portAttr.Expr.Range()
	}
	if *port != 0 {
		block := strings.TrimSuffix(s.path, ".")
		s.d.binds = append(s.d.binds, bindUse{host: normalizeHost(*host), port: *port, prefix: s.prefix, block: block, rng: rng})
	}
}

// allowedClients decodes allowed_clients (netutil.ParseClientNetwork's rule) into dst; it reports false
// when the attribute was present but wrong (already reported).
func (s *scope) allowedClients(dst *[]netip.Prefix) bool {
	var entries []string
	a, ok := s.strList("allowed_clients", `["10.0.0.0/24", "172.17.0.5"]`, &entries)
	if a == nil {
		return true
	}
	if !ok {
		return false
	}
	if len(entries) == 0 {
		s.errAt(a, "%s is empty: list the client networks that may get credentials, e.g. [\"172.17.0.0/16\"]", s.name("allowed_clients"))
		return false
	}
	var out []netip.Prefix
	for i, e := range entries {
		p, err := netutil.ParseClientNetwork(e)
		if err != nil {
			s.errAt(a, "%s[%d]: %v", s.name("allowed_clients"), i, err)
			return false
		}
		out = append(out, p)
	}
	*dst = out
	return true
}

// allowedHosts decodes allowed_hosts with the servers' own rule (netutil.ValidateAllowedHosts).
func (s *scope) allowedHosts(dst *[]string) {
	var hosts []string
	a, ok := s.strList("allowed_hosts", `["bridge.internal", "emulator:8443"]`, &hosts)
	if !ok {
		return
	}
	if err := netutil.ValidateAllowedHosts(hosts); err != nil {
		// The servers' error starts with "allowed_hosts entry …": give it the block's path.
		s.errAt(a, "%s%v", s.path, err)
		return
	}
	*dst = hosts
}

// isLoopbackHost is the servers' own check (netutil.IsLoopbackHost), also for a bracketed IPv6 host.
func isLoopbackHost(h string) bool {
	return netutil.IsLoopbackHost(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
}

func normalizeHost(h string) string {
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if ip := net.ParseIP(h); ip != nil {
		if ip.IsUnspecified() {
			return ""
		}
		return ip.String()
	}
	return strings.ToLower(h)
}

// single returns the only block of type t, reporting any further ones.
func (s *scope) single(t string) *hcl.Block {
	var first *hcl.Block
	for _, b := range s.blocks {
		if b.Type != t {
			continue
		}
		if first != nil {
			s.d.errorf(b.DefRange, "%sonly one %s%s block is allowed (the first is at line %d)",
				s.prefix, s.path, t, first.DefRange.Start.Line)
			continue
		}
		first = b
	}
	return first
}

func (d *decoder) decodeFile(body hcl.Body) *Config {
	fileStart := hcl.Range{Filename: d.filename, Start: hcl.InitialPos, End: hcl.InitialPos}
	root := d.content(body, rootSchema, "", "", fileStart)
	cfg := &Config{LogLevel: DefaultLogLevel, LogFormat: DefaultLogFormat, StartupGrace: DefaultStartupGrace}

	if a, ok := root.str("agent_address", &cfg.AgentAddress); ok && cfg.AgentAddress != "" {
		if _, err := agentaddr.Resolve(cfg.AgentAddress); err != nil {
			if inner := errors.Unwrap(err); inner != nil {
				err = inner
			}
			root.errAt(a, "agent_address %q: %v", cfg.AgentAddress, err)
		}
	}
	root.oneOf("log_level", &cfg.LogLevel, logLevels)
	root.oneOf("log_format", &cfg.LogFormat, logFormats)
	root.duration("startup_grace", &cfg.StartupGrace, 0, MaxStartupGrace, "0s–1h")

	if b := root.single("delegated_identity"); b != nil {
		ds := d.content(b.Body, delegatedSchema, "", "delegated_identity.", b.DefRange)
		di := &DelegatedIdentity{}
		if !ds.present("admin_address") {
			ds.d.errorf(b.DefRange, "delegated_identity.admin_address is required: the SPIRE agent's admin_socket_path, e.g. \"unix:///run/spire/admin/admin.sock\"")
		} else if a, ok := ds.str("admin_address", &di.AdminAddress); ok {
			if strings.HasPrefix(di.AdminAddress, "/") {
				di.AdminAddress = "unix://" + di.AdminAddress
			}
			if err := agentaddr.CheckAdmin(di.AdminAddress); err != nil {
				ds.errAt(a, "delegated_identity.admin_address %q: %v", di.AdminAddress, err)
			}
		}
		cfg.DelegatedIdentity = di
		d.delegated = di
	}
	if b := root.single("health_checks"); b != nil {
		cfg.HealthChecks = d.healthChecks(b)
	}
	if b := root.single("telemetry"); b != nil {
		cfg.Telemetry = d.telemetry(b)
	}

	seen := map[string]*hcl.Block{}
	for _, b := range root.blocks {
		if b.Type != "profile" {
			continue
		}
		name := b.Labels[0]
		labelRng := b.DefRange
		if len(b.LabelRanges) > 0 {
			labelRng = b.LabelRanges[0]
		}
		if !profileName().MatchString(name) {
			d.errorf(labelRng, "profile name %q must be one or more of [A-Za-z0-9_.-]", name)
		} else if first, dup := seen[name]; dup {
			d.errorf(labelRng, "profile %q is defined twice (first at line %d)", name, first.DefRange.Start.Line)
		} else {
			seen[name] = b
		}
		cfg.Profiles = append(cfg.Profiles, d.profile(b, name))
	}
	if b := root.single("pod_identity"); b != nil {
		cfg.PodIdentity = d.podIdentity(b)
	}
	if len(cfg.Profiles) == 0 && !hasBlock(body, "profile") && cfg.PodIdentity == nil {
		d.errorf(fileStart, `at least one profile "<name>" { … } block is required (or a pod_identity block)`)
	}
	d.crossChecks()
	return cfg
}

// hasBlock reports whether body has a block of type t, even one HCL rejected (a profile without a name),
// so that "no profile" is not reported on top of that.
func hasBlock(body hcl.Body, t string) bool {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return false
	}
	for _, b := range sb.Blocks {
		if b.Type == t {
			return true
		}
	}
	return false
}

func (d *decoder) healthChecks(b *hcl.Block) *HealthChecks {
	s := d.content(b.Body, healthSchema, "", "health_checks.", b.DefRange)
	h := &HealthChecks{
		BindAddress: DefaultHealthBindAddress, BindPort: DefaultHealthBindPort,
		LivePath: DefaultLivePath, ReadyPath: DefaultReadyPath,
	}
	s.listener("bind_address", "bind_port", &h.BindAddress, &h.BindPort, &h.AllowRemote, &h.AllowedHosts)
	s.urlPath("live_path", &h.LivePath)
	s.urlPath("ready_path", &h.ReadyPath)
	if h.LivePath == h.ReadyPath {
		if a, ok := s.attrs["ready_path"]; ok {
			s.errAt(a, "health_checks.ready_path %q must differ from live_path", h.ReadyPath)
		} else if a, ok := s.attrs["live_path"]; ok {
			s.errAt(a, "health_checks.live_path %q must differ from ready_path", h.LivePath)
		}
	}
	return h
}

func (d *decoder) telemetry(b *hcl.Block) *Telemetry {
	s := d.content(b.Body, telemetrySchema, "", "telemetry.", b.DefRange)
	t := &Telemetry{}
	var first *hcl.Block
	for _, pb := range s.blocks {
		if first != nil {
			d.errorf(pb.DefRange, "only one telemetry.prometheus block is allowed (the first is at line %d)", first.DefRange.Start.Line)
			continue
		}
		first = pb
	}
	if first == nil {
		return t
	}
	ps := d.content(first.Body, prometheusSchema, "", "telemetry.prometheus.", first.DefRange)
	p := &Prometheus{Host: DefaultPrometheusHost}
	if !ps.present("port") {
		ps.required("port")
	}
	ps.listener("host", "port", &p.Host, &p.Port, &p.AllowRemote, &p.AllowedHosts)
	t.Prometheus = p
	return t
}

func (d *decoder) profile(b *hcl.Block, name string) Profile {
	prefix := fmt.Sprintf("profile %q: ", name)
	s := d.content(b.Body, profileSchema, prefix, "", b.DefRange)
	p := Profile{
		Name:            name,
		SessionDuration: DefaultSessionDuration,
		Refresh:         Refresh{RotationSpread: DefaultRotationSpread, JitterFraction: DefaultJitterFraction},
		OnIdentityLoss:  DefaultOnIdentityLoss,
		Pos:             fmt.Sprintf("%s:%d", b.DefRange.Filename, b.DefRange.Start.Line),
	}

	// Identity selection.
	if a, ok := s.str("spiffe_id", &p.SpiffeID); ok {
		if _, err := spiffeid.FromString(p.SpiffeID); err != nil {
			s.errAt(a, "spiffe_id %q is not a valid SPIFFE ID: %v", p.SpiffeID, err)
		}
	}
	if a, ok := s.str("hint", &p.Hint); ok && p.Hint == "" {
		s.errAt(a, "hint must not be empty")
	}
	if s.present("spiffe_id") && s.present("hint") {
		s.errAt(s.attrs["hint"], "spiffe_id and hint are exclusive; set only one")
	}

	selAttr := d.workloadSelectors(s, &p)
	d.sessionSettings(s, prefix, &p)

	// Blocks.
	if cb := s.single("credentials_file"); cb != nil {
		p.CredentialsFile = d.credentialsFile(cb, prefix, name)
	}
	if ib := s.single("imds"); ib != nil {
		is := d.content(ib.Body, imdsSchema, prefix, "imds.", ib.DefRange)
		m := &IMDS{BindAddress: DefaultIMDSBindAddress, BindPort: DefaultIMDSBindPort}
		is.listener("bind_address", "bind_port", &m.BindAddress, &m.BindPort, &m.AllowRemote, &m.AllowedHosts)
		clientsOK := is.allowedClients(&m.AllowedClients)
		if clientsOK && len(m.AllowedClients) == 0 && m.AllowRemote && !isLoopbackHost(m.BindAddress) {
			rng := is.rng
			if a, ok := is.attrs["bind_address"]; ok {
				rng = a.Expr.Range()
			}
			d.errorf(rng, `%simds.bind_address %q is not a loopback address: set imds.allowed_clients to the client networks that may get these credentials, e.g. ["172.17.0.0/16"] (the IP TTL of 1 on token answers does not keep a container or network namespace attached to this host out)`, prefix, m.BindAddress)
		}
		p.IMDS = m
	}
	if cb := s.single("container_endpoint"); cb != nil {
		cs := d.content(cb.Body, containerSchema, prefix, "container_endpoint.", cb.DefRange)
		c := &ContainerEndpoint{BindAddress: DefaultContainerBindAddress, BindPort: DefaultContainerBindPort, Path: DefaultContainerPath}
		cs.listener("bind_address", "bind_port", &c.BindAddress, &c.BindPort, &c.AllowRemote, &c.AllowedHosts)
		cs.urlPath("path", &c.Path)
		cs.absPath("auth_token_file", &c.AuthTokenFile)
		c.AuthTokenMode = safefs.DefaultMode
		cs.fileRules("auth_token_owner", "auth_token_group", "auth_token_mode",
			&c.AuthTokenOwner, &c.AuthTokenGroup, &c.AuthTokenMode, &c.FollowSymlinks, &c.AllowSharedDirectory)
		p.ContainerEndpoint = c
	}
	if ob := s.single("on_refresh"); ob != nil {
		hs := d.content(ob.Body, onRefreshSchema, prefix, "on_refresh.", ob.DefRange)
		h := &OnRefresh{Timeout: DefaultHookTimeout}
		if !hs.present("command") {
			hs.required("command")
		} else if a, ok := hs.strList("command", `["/path/to/cmd", "arg"]`, &h.Command); ok {
			if len(h.Command) == 0 || h.Command[0] == "" {
				hs.errAt(a, "on_refresh.command must name a program: a non-empty list such as [\"/path/to/cmd\", \"arg\"]")
			}
		}
		hs.duration("timeout", &h.Timeout, time.Nanosecond, MaxHookTimeout, "greater than 0, at most 10m")
		p.OnRefresh = h
	}
	if sb := s.single("signal"); sb != nil {
		ss := d.content(sb.Body, signalSchema, prefix, "signal.", sb.DefRange)
		sg := &Signal{Signal: syscall.SIGHUP}
		ss.absPath("pid_file", &sg.PIDFile)
		var name string
		if a, ok := ss.str("signal", &name); ok {
			if sig, err := signame.Parse(name); err != nil {
				ss.errAt(a, "signal.signal: %v", err)
			} else {
				sg.Signal = sig
			}
		}
		p.Signal = sg
	}
	if p.Delegated() {
		d.workloadDelivery(s, b, selAttr, &p)
	}
	return p
}

// sessionSettings decodes what a profile and a pod_identity rule share: the session's ARNs, region,
// duration, name and endpoint, on_identity_loss, the refresh block and the assume_role hops.
func (d *decoder) sessionSettings(s *scope, prefix string, p *Profile) {
	d.session(s, p)
	s.duration("session_duration", &p.SessionDuration, MinSessionDuration, MaxSessionDuration, "15m–12h")
	if a, ok := s.str("role_session_name", &p.RoleSessionName); ok {
		if sample, ok := d.template(s, a, p.RoleSessionName); ok && !roleSessionName().MatchString(sample) {
			s.errAt(a, "role_session_name %q must be 2–64 of [A-Za-z0-9_+=,.@-]", p.RoleSessionName)
		}
	}
	s.boolean("insecure_endpoint", &p.InsecureEndpoint)
	if a, ok := s.str("on_identity_loss", &p.OnIdentityLoss); ok && p.OnIdentityLoss != "keep_until_expiry" && p.OnIdentityLoss != "withdraw" {
		s.errAt(a, "on_identity_loss %q must be \"keep_until_expiry\" or \"withdraw\"", p.OnIdentityLoss)
	}
	if a, ok := s.str("endpoint", &p.Endpoint); ok {
		checkEndpoint(s, a, p.Endpoint, p.InsecureEndpoint)
	}
	if rb := s.single("refresh"); rb != nil {
		rs := d.content(rb.Body, refreshSchema, prefix, "refresh.", rb.DefRange)
		rs.duration("rotation_spread", &p.Refresh.RotationSpread, 0, MaxRotationSpread, "0s–12h")
		onRotation := true
		rs.boolean("on_rotation", &onRotation)
		p.Refresh.TimerOnly = !onRotation
		var jf float64
		if a, ok := rs.float("jitter_fraction", &jf); ok {
			if jf <= 0 || jf > MaxJitterFraction {
				rs.errAt(a, "refresh.jitter_fraction %g is out of range (greater than 0, at most 0.5)", jf)
			} else {
				p.Refresh.JitterFraction = jf
			}
		}
	}
	for _, ab := range s.blocks {
		if ab.Type == "assume_role" {
			p.AssumeRole = append(p.AssumeRole, d.assumeRole(ab, prefix, len(p.AssumeRole), p.InsecureEndpoint))
		}
	}
}

// workloadSelectors decodes workload_selectors: a non-empty list of SPIRE selectors, each "type:value",
// reported at the element that is wrong; it needs the delegated_identity block.
func (d *decoder) workloadSelectors(s *scope, p *Profile) *hcl.Attribute {
	var sels []string
	a, ok := s.strList("workload_selectors", `["unix:uid:1001"]`, &sels)
	if !ok {
		return a
	}
	if len(sels) == 0 {
		s.errAt(a, `workload_selectors must name at least one selector, e.g. ["unix:uid:1001"]; remove it to use the bridge's own identity`)
		return a
	}
	var elems []hclsyntax.Expression
	if t, isTuple := a.Expr.(*hclsyntax.TupleConsExpr); isTuple && len(t.Exprs) == len(sels) {
		elems = t.Exprs
	}
	good := true
	for i, sel := range sels {
		if _, _, err := selector.Parse(sel); err != nil {
			rng := a.Expr.Range()
			if elems != nil {
				rng = elems[i].Range()
			}
			d.errorf(rng, "%sworkload_selectors[%d]: %v", s.prefix, i, err)
			good = false
		}
	}
	if d.delegated == nil {
		s.errAt(a, `workload_selectors needs the SPIRE agent's admin API: add a top-level delegated_identity { admin_address = "unix:///run/spire/admin/admin.sock" } block (the agent's admin_socket_path)`)
	}
	if good {
		p.WorkloadSelectors = sels
	}
	return a
}

// selectorUser is the workload's user named by a unix:uid:N or unix:user:NAME selector; "" when there is
// none, or when two selectors name different users.
func selectorUser(sels []string) string {
	user := ""
	for _, sel := range sels {
		v, ok := strings.CutPrefix(sel, "unix:uid:")
		if !ok {
			v, ok = strings.CutPrefix(sel, "unix:user:")
		}
		if !ok || safefs.ValidateName(v) != nil {
			continue
		}
		if user != "" && user != v {
			return ""
		}
		user = v
	}
	return user
}

// workloadDelivery applies node mode's delivery rule: a delegated profile's credentials reach its
// workload's user only. Files default to that user when a unix:uid or unix:user selector names it, and
// need an explicit owner otherwise; imds, which any local user can query, is refused.
func (d *decoder) workloadDelivery(s *scope, b *hcl.Block, selAttr *hcl.Attribute, p *Profile) {
	user := selectorUser(p.WorkloadSelectors)
	selRng := b.DefRange
	if selAttr != nil {
		selRng = selAttr.Expr.Range()
	}
	if p.IMDS != nil {
		rng := b.DefRange
		for _, ib := range s.blocks {
			if ib.Type == "imds" {
				rng = ib.DefRange
				break
			}
		}
		d.errorf(rng, "%simds cannot serve a profile with workload_selectors: any local user can query an IMDS endpoint, so another workload could take these credentials; use container_endpoint (its auth token file is owned by the workload's user) or credentials_file", s.prefix)
	}
	if f := p.CredentialsFile; f != nil {
		if f.Owner == "" {
			if user == "" {
				d.errorf(selRng, "%scredentials_file.owner is required with these workload_selectors: the file must belong to the workload's user, and no unix:uid:N or unix:user:NAME selector names it", s.prefix)
			}
			f.Owner = user
		}
		for i := range d.files {
			if d.files[i].owner == p.Name {
				d.files[i].user = f.Owner
			}
		}
	}
	if c := p.ContainerEndpoint; c != nil && c.AuthTokenOwner == "" {
		if user == "" {
			d.errorf(selRng, "%scontainer_endpoint.auth_token_owner is required with these workload_selectors: the token file must belong to the workload's user, and no unix:uid:N or unix:user:NAME selector names it", s.prefix)
		}
		c.AuthTokenOwner = user
	}
}

// DefaultSPIFFEIDTag is the session tag key that carries the SPIFFE ID on each assume_role hop.
const DefaultSPIFFEIDTag = "spiffe-id"

// MaxChainedDuration is AWS's cap on a role-chaining session.
const MaxChainedDuration = time.Hour

// assumeRole decodes the i-th assume_role block.
func (d *decoder) assumeRole(b *hcl.Block, prefix string, i int, insecure bool) AssumeRole {
	path := fmt.Sprintf("assume_role[%d].", i)
	s := d.content(b.Body, assumeRoleSchema, prefix, path, b.DefRange)
	h := AssumeRole{Duration: MaxChainedDuration, SPIFFEIDTag: DefaultSPIFFEIDTag}
	if !s.present("role_arn") {
		s.required("role_arn")
	} else if a, ok := s.str("role_arn", &h.RoleARN); ok {
		if sample, ok := d.template(s, a, h.RoleARN); ok {
			if _, err := awsarn.Role(s.name("role_arn"), sample); err != nil {
				s.d.errorf(a.Range, "%s%v", s.prefix, err)
			}
		}
	}
	if a, ok := s.str("external_id", &h.ExternalID); ok && (!externalID().MatchString(h.ExternalID) || len(h.ExternalID) < 2 || len(h.ExternalID) > 1224) {
		s.errAt(a, "%s must be 2–1224 of [A-Za-z0-9_+=,.@:/-]", s.name("external_id"))
	}
	if a, ok := s.str("role_session_name", &h.RoleSessionName); ok {
		if sample, ok := d.template(s, a, h.RoleSessionName); ok && !roleSessionName().MatchString(sample) {
			s.errAt(a, "%s %q must be 2–64 of [A-Za-z0-9_+=,.@-]", s.name("role_session_name"), h.RoleSessionName)
		}
	}
	s.duration("duration", &h.Duration, MinSessionDuration, MaxChainedDuration, "15m–1h: AWS caps sessions assumed by role chaining at one hour")
	if a, ok := s.strMap("session_tags", &h.SessionTags); ok {
		if len(h.SessionTags) > 49 {
			s.errAt(a, "%s has %d tags; STS allows 50 per session, one of them the SPIFFE ID tag", s.name("session_tags"), len(h.SessionTags))
		}
		for k, v := range h.SessionTags {
			if !tagKey().MatchString(k) || len(v) > 256 {
				s.errAt(a, "%s: tag %q must have a key of 1–128 and a value of at most 256 letters, digits, spaces and _.:/=+-@", s.name("session_tags"), k)
			}
		}
	}
	if a, ok := s.str("spiffe_id_tag", &h.SPIFFEIDTag); ok && h.SPIFFEIDTag != "" {
		if !tagKey().MatchString(h.SPIFFEIDTag) {
			s.errAt(a, "%s %q is not a valid session tag key", s.name("spiffe_id_tag"), h.SPIFFEIDTag)
		}
		for k := range h.SessionTags {
			if strings.EqualFold(k, h.SPIFFEIDTag) {
				s.errAt(a, "%s %q is also a key of session_tags (tag keys are case-insensitive)", s.name("spiffe_id_tag"), h.SPIFFEIDTag)
			}
		}
	}
	if a, ok := s.strList("transitive_tag_keys", `["team"]`, &h.TransitiveTagKeys); ok {
		for _, k := range h.TransitiveTagKeys {
			_, inTags := h.SessionTags[k]
			if !inTags && !(h.SPIFFEIDTag != "" && k == h.SPIFFEIDTag) {
				s.errAt(a, "%s: %q is not a key of session_tags nor spiffe_id_tag", s.name("transitive_tag_keys"), k)
			}
		}
	}
	if a, ok := s.str("policy", &h.Policy); ok {
		if !json.Valid([]byte(h.Policy)) || len(h.Policy) > 2048 {
			s.errAt(a, "%s must be a JSON policy document of at most 2048 characters", s.name("policy"))
		}
	}
	if a, ok := s.strList("policy_arns", `["arn:aws:iam::aws:policy/ReadOnlyAccess"]`, &h.PolicyARNs); ok {
		if len(h.PolicyARNs) > 10 {
			s.errAt(a, "%s has %d ARNs; STS allows at most 10", s.name("policy_arns"), len(h.PolicyARNs))
		}
		for _, arn := range h.PolicyARNs {
			if p := strings.Split(arn, ":"); len(p) != 6 || p[0] != "arn" || p[2] != "iam" || !strings.HasPrefix(p[5], "policy/") {
				s.errAt(a, "%s: %q is not an IAM policy ARN", s.name("policy_arns"), arn)
			}
		}
	}
	if a, ok := s.str("sts_region", &h.STSRegion); ok && !awsarn.ValidRegion(h.STSRegion) {
		s.errAt(a, "%s %q is not a valid AWS region", s.name("sts_region"), h.STSRegion)
	}
	if a, ok := s.str("sts_endpoint", &h.STSEndpoint); ok {
		checkEndpoint(s, a, h.STSEndpoint, insecure)
	}
	return h
}

// strMap decodes a map (or object) of strings into dst.
func (s *scope) strMap(name string, dst *map[string]string) (*hcl.Attribute, bool) {
	v, a := s.value(name)
	if a == nil {
		return nil, false
	}
	t := v.Type()
	if !t.IsObjectType() && !t.IsMapType() {
		s.errAt(a, `%s must be a map of strings such as { team = "payments" }, not a %s`, s.name(name), typeName(v))
		return a, false
	}
	out := map[string]string{}
	for it := v.ElementIterator(); it.Next(); {
		k, e := it.Element()
		if e.IsNull() || e.Type() != cty.String {
			s.errAt(a, "%s[%q] must be a string", s.name(name), k.AsString())
			return a, false
		}
		out[k.AsString()] = e.AsString()
	}
	*dst = out
	return a, true
}

// session checks the three ARNs and the region, filling p.Region with the trust anchor's.
func (d *decoder) session(s *scope, p *Profile) {
	fields := []struct {
		name string
		dst  *string
		kind string // "trust-anchor", "profile" or "" for a role
	}{
		{"trust_anchor_arn", &p.TrustAnchorARN, "trust-anchor"},
		{"profile_arn", &p.ProfileARN, "profile"},
		{"role_arn", &p.RoleARN, ""},
	}
	complete := true
	roleSample := ""
	for _, f := range fields {
		if !s.present(f.name) {
			s.required(f.name)
			complete = false
			continue
		}
		a, ok := s.str(f.name, f.dst)
		if !ok {
			complete = false
			continue
		}
		// Check each ARN on its own, so that every malformed one is reported.
		var err error
		if f.kind == "" {
			var ok bool
			if roleSample, ok = d.template(s, a, *f.dst); !ok {
				complete = false
				continue
			}
			_, err = awsarn.Role(f.name, roleSample)
		} else {
			_, err = awsarn.RolesAnywhere(f.name, *f.dst, f.kind)
		}
		if err != nil {
			s.d.errorf(a.Range, "%s%v", s.prefix, err)
			complete = false
		}
	}
	regionAttr, regionOK := s.str("region", &p.Region)
	if !complete || (regionAttr != nil && !regionOK) {
		return
	}
	sess, err := awsarn.CheckSession(p.TrustAnchorARN, p.ProfileARN, roleSample, p.Region)
	if err != nil {
		rng := s.rng
		if ae, ok := err.(*awsarn.Error); ok {
			if a, ok := s.attrs[ae.Field]; ok {
				rng = a.Range
			}
		}
		s.d.errorf(rng, "%s%v", s.prefix, err)
		return
	}
	p.Region = sess.Region
}

// checkEndpoint validates a Roles Anywhere endpoint override.
func checkEndpoint(s *scope, a *hcl.Attribute, endpoint string, insecure bool) {
	u, err := url.Parse(endpoint)
	switch {
	case err != nil:
		s.errAt(a, "%s %q is not a URL: %v", s.name(a.Name), endpoint, unwrapURLError(err))
	case u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		s.errAt(a, "%s %q must be an absolute https:// URL", s.name(a.Name), endpoint)
	case u.Scheme == "http" && !netutil.PlainHTTPAllowed(u, insecure):
		s.errAt(a, "%s %q is plain http to a host that is not loopback; use https, or set insecure_endpoint = true", s.name(a.Name), endpoint)
	case u.User != nil:
		s.errAt(a, "%s %q must not carry user information", s.name(a.Name), endpoint)
	}
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

func (d *decoder) credentialsFile(b *hcl.Block, prefix, profile string) *CredentialsFile {
	s := d.content(b.Body, credentialsFileSchema, prefix, "credentials_file.", b.DefRange)
	c := &CredentialsFile{ProfileName: profile, Mode: safefs.DefaultMode}
	pathAttr, pathOK := s.absPath("path", &c.Path)
	s.fileRules("owner", "group", "mode", &c.Owner, &c.Group, &c.Mode, &c.FollowSymlinks, &c.AllowSharedDirectory)
	sectionOK := true
	if a, ok := s.str("profile_name", &c.ProfileName); ok {
		if err := ininame.Validate(c.ProfileName); err != nil {
			s.errAt(a, "credentials_file.profile_name: %v", err)
			sectionOK = false
		}
	} else if a != nil {
		sectionOK = false
	}
	if pathOK && sectionOK {
		d.files = append(d.files, fileUse{path: c.Path, section: c.ProfileName, owner: profile, rng: pathAttr.Expr.Range()})
	}
	return c
}

// crossChecks reports what several blocks claim together: one credentials file section, one address.
func (d *decoder) crossChecks() {
	for i, f := range d.files {
		for _, g := range d.files[:i] {
			if (f.user != "" || g.user != "") && f.user != g.user && (f.path == g.path || sameFile(f.path, g.path)) {
				d.errorf(f.rng, "profile %q: credentials_file %s is also written by profile %q for another user (%q, not %q): one file would hold two workloads' credentials; give each workload its own file",
					f.owner, f.path, g.owner, g.user, f.user)
				break
			}
			if f.path == g.path && f.section == g.section {
				d.errorf(f.rng, "profile %q: credentials_file %s section [%s] is already written by profile %q",
					f.owner, f.path, f.section, g.owner)
				break
			}
			if f.section == g.section && sameFile(f.path, g.path) {
				d.errorf(f.rng, "profile %q: credentials_file %s is the same file as %s (through a symbolic or hard link), "+
					"whose section [%s] profile %q already writes: give one of them another profile_name or file",
					f.owner, f.path, g.path, f.section, g.owner)
				break
			}
		}
	}
	// health_checks and telemetry are decoded before the profiles: report a clash where it happens later
	// in the file.
	sort.SliceStable(d.binds, func(i, j int) bool { return d.binds[i].rng.Start.Byte < d.binds[j].rng.Start.Byte })
	for i, b := range d.binds {
		for _, c := range d.binds[:i] {
			if b.port == c.port && (b.host == c.host || b.host == "" || c.host == "") {
				where := fmt.Sprintf("(bind addresses %q and %q)", b.host, c.host)
				if b.host == c.host {
					where = fmt.Sprintf("(both on %q)", b.host)
				}
				d.errorf(b.rng, "%s%s port %d is already used by %s %s", b.prefix, b.block, b.port, c.who(), where)
				break
			}
		}
	}
}
