// Package chain is role chaining: the STS AssumeRole hops between the Roles Anywhere session (package
// signer) and the sinks. Roles Anywhere only assumes roles in the trust anchor's own account; a chain
// of hops takes its session into roles of other accounts, one STS AssumeRole per hop, each signed with
// the previous hop's credentials. The sinks get the last hop's credentials, and the refresh schedule
// follows their expiry.
//
// The package speaks STS through the small STS interface. Query is a standard-library SigV4 client for
// the lean credential-process binary (which must not link the aws-sdk); package chain/sdksts wraps
// aws-sdk-go-v2's STS client for the daemon and the other commands.
package chain

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/errtype"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/netutil"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/sessionname"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
)

// MaxDuration is AWS's cap on a chained role session: one hour, whatever the role's maximum.
const MaxDuration = time.Hour

// DefaultSPIFFEIDTag is the session tag key that carries the workload's SPIFFE ID by default.
const DefaultSPIFFEIDTag = "spiffe-id"

// Hop is one STS AssumeRole in a chain.
type Hop struct {
	// RoleARN is the role to assume (required).
	RoleARN string
	// ExternalID is sent as ExternalId when set (the target trust policy's sts:ExternalId condition).
	ExternalID string
	// RoleSessionName defaults to SessionName(SPIFFE ID).
	RoleSessionName string
	// Duration of the session, 15 min to MaxDuration; 0 means MaxDuration.
	Duration time.Duration
	// SessionTags are added to the session (the target must grant sts:TagSession).
	SessionTags map[string]string
	// TransitiveTagKeys are keys of SessionTags (or the SPIFFE ID tag) that pass on to later hops.
	TransitiveTagKeys []string
	// Policy is an inline session policy (JSON) and PolicyARNs managed session policies.
	Policy     string
	PolicyARNs []string
	// SPIFFEIDTag is the session tag key that carries the SPIFFE ID; empty sends no such tag.
	SPIFFEIDTag string
	// STSRegion is the region of the regional STS endpoint (default: the previous hop's region, first
	// the trust anchor's). STSEndpoint overrides the URL; the global https://sts.amazonaws.com is used
	// only when named here.
	STSRegion   string
	STSEndpoint string
}

// Input is one AssumeRole call, as an STS implementation receives it.
type Input struct {
	// Caller signs the request.
	Caller creds.Credentials
	// Endpoint is the STS base URL and Region the SigV4 scope's region.
	Endpoint, Region                     string
	RoleARN, RoleSessionName, ExternalID string
	DurationSeconds                      int
	Policy                               string
	PolicyARNs                           []string
	Tags                                 []Tag
	TransitiveTagKeys                    []string
}

// Tag is one session tag.
type Tag struct{ Key, Value string }

// STS calls AssumeRole. Implementations return *APIError for an answer of STS.
type STS interface {
	AssumeRole(ctx context.Context, in Input) (creds.Credentials, error)
}

// APIError is STS's error answer: HTTP status, error code (e.g. "AccessDenied") and message.
type APIError struct {
	StatusCode int
	Code       string
	Message    string
	RequestID  string
}

// Error implements error.
func (e *APIError) Error() string {
	s := fmt.Sprintf("sts: %s (%d): %s", e.Code, e.StatusCode, e.Message)
	if e.RequestID != "" {
		s += " (request id " + e.RequestID + ")"
	}
	return s
}

// Retryable reports whether the same call may succeed later (throttling, server faults).
func (e *APIError) Retryable() bool {
	return e.StatusCode == 429 || e.StatusCode >= 500 || e.Code == "Throttling" || e.Code == "ThrottlingException" ||
		e.Code == "RequestLimitExceeded"
}

// HopError is a failure of hop Hop (1-based) assuming RoleARN. It wraps the STS error (an *APIError
// when STS answered) and explains it.
type HopError struct {
	Hop     int
	RoleARN string
	// Caller is the assumed-role ARN that made the call (the previous hop's), when known.
	Caller string
	Err    error
}

// Error implements error: the hop, its role, the STS error and advice.
func (e *HopError) Error() string {
	s := fmt.Sprintf("role chain hop %d (%s): %v", e.Hop, e.RoleARN, e.Err)
	if advice := e.Advice(); advice != "" {
		s += ": " + advice
	}
	return s
}

// Unwrap returns the STS error.
func (e *HopError) Unwrap() error { return e.Err }

// HopRole is the role the failing hop assumes (bridge.HopFailure).
func (e *HopError) HopRole() string { return e.RoleARN }

// HopIndex is the hop's 0-based position in the chain (bridge.HopFailure).
func (e *HopError) HopIndex() int { return e.Hop - 1 }

// Code is the error-type label of the failure, one of package errtype's: the STS error code when STS
// documents it (e.g. "AccessDenied", "ValidationError"), else signer.Classify's ("network", "tls",
// "dns", "other").
func (e *HopError) Code() string {
	var api *APIError
	if errors.As(e.Err, &api) {
		return errtype.Label(api.Code)
	}
	_, label := signer.Classify(e.Err)
	return label
}

// Retryable reports whether the hop may succeed later: throttling, server faults and transient network
// failures; not a refusal, a bad input, a TLS verification failure or an unknown host.
func (e *HopError) Retryable() bool {
	var api *APIError
	if errors.As(e.Err, &api) {
		return api.Retryable()
	}
	if errors.Is(e.Err, context.Canceled) {
		return false
	}
	class, _ := signer.Classify(e.Err)
	return class == signer.Transient
}

// Cause describes the failure without its request id, which changes on every call (so that a repeated
// failure is logged once).
func (e *HopError) Cause() string {
	var api *APIError
	if errors.As(e.Err, &api) {
		return fmt.Sprintf("hop %d %s: %s %d %s", e.Hop, e.RoleARN, api.Code, api.StatusCode, api.Message)
	}
	return fmt.Sprintf("hop %d %s: %v", e.Hop, e.RoleARN, e.Err)
}

// Advice explains the STS error in plain words, as `check` does for CreateSession.
func (e *HopError) Advice() string {
	var api *APIError
	if !errors.As(e.Err, &api) {
		return ""
	}
	return Explain(api.Code, api.Message, e.Caller, e.RoleARN)
}

// Explain turns an STS AssumeRole error code into advice.
func Explain(code, message, caller, roleARN string) string {
	if caller == "" {
		caller = "the previous hop's role"
	}
	switch code {
	case "AccessDenied":
		if strings.Contains(message, "session policy") {
			return fmt.Sprintf("a session policy of %s does not allow this call on %s: that is the previous hop's policy/policy_arns, "+
				"or for hop 1 the Roles Anywhere profile's session policy and managed policies (aws rolesanywhere get-profile shows them); "+
				"allow sts:AssumeRole (and sts:TagSession, sts:SetSourceIdentity) on it there", caller, roleARN)
		}
		if strings.Contains(message, "identity-based policy") {
			return fmt.Sprintf("the permission policy of the role of %s must allow sts:AssumeRole (and sts:TagSession, sts:SetSourceIdentity) on %s "+
				"(run `check --config` for the exact policy)", caller, roleARN)
		}
		if strings.Contains(message, "sts:TagSession") {
			return fmt.Sprintf("the trust policy of %s must allow sts:TagSession (session tags, including the SPIFFE ID tag, are sent)", roleARN)
		}
		if strings.Contains(message, "sts:SetSourceIdentity") {
			return fmt.Sprintf("the trust policy of %s must allow sts:SetSourceIdentity (the Roles Anywhere session carries a source identity)", roleARN)
		}
		return fmt.Sprintf("the trust policy of %s must name the role of %s as a Principal for sts:AssumeRole, "+
			"its sts:ExternalId condition (if any) must equal external_id, and its other conditions must hold "+
			"(aws:OriginIdentity/Subject needs trusted identity propagation on the Roles Anywhere profile); the caller's own policy must allow "+
			"sts:AssumeRole on it (run `check --config` for the exact trust policy)", roleARN, caller)
	case "ValidationError":
		if strings.Contains(message, "1 hour") {
			return "AWS caps sessions assumed by role chaining at one hour: set duration to 1h or less"
		}
		return "STS found the request malformed: check role_arn, role_session_name, session_tags and the policies"
	case "RegionDisabledException":
		return "STS is not activated in this region for the account: activate it (IAM account settings) or set sts_region"
	case "ExpiredToken", "InvalidClientTokenId":
		return "the previous hop's credentials were refused by this STS endpoint: is sts_region/sts_endpoint in the same partition, and the clocks right?"
	case "PackedPolicyTooLarge":
		return "the session policies and tags are too large: shorten policy, policy_arns or session_tags"
	case "MalformedPolicyDocument":
		return "the session policy is not a valid IAM policy document"
	}
	return ""
}

// ValidSessionName reports whether s is a valid STS role session name ([\w+=,.@-], 2 to 64 characters).
func ValidSessionName(s string) bool { return sessionname.Valid(s) }

// SessionName derives a role session name from a SPIFFE ID, injectively (internal/sessionname):
// spiffe://example.org/ns/prod/sa/web becomes example.org@ns.prod.sa.web; whenever that form loses
// information (a "." in a path segment, a character STS does not allow, more than 64 characters) "-" and
// 16 hex digits of the SHA-256 of the whole ID are appended.
func SessionName(spiffeID string) string { return sessionname.FromSPIFFEID(spiffeID) }

// Endpoint is the regional STS endpoint of region (https://sts.<region>.amazonaws.com, .com.cn in
// China).
func Endpoint(region string) string {
	if strings.HasPrefix(region, "cn-") {
		return "https://sts." + region + ".amazonaws.com.cn"
	}
	return "https://sts." + region + ".amazonaws.com"
}

// Validate checks the hops as far as can be known without calling STS.
func Validate(hops []Hop) error {
	for i, h := range hops {
		in := func(field string, err error) error {
			return &signer.InputError{Field: fmt.Sprintf("assume_role[%d].%s", i, field), Err: err}
		}
		if p := strings.Split(h.RoleARN, ":"); len(p) != 6 || p[0] != "arn" || p[2] != "iam" || !strings.HasPrefix(p[5], "role/") {
			return in("role_arn", fmt.Errorf("%q is not an IAM role ARN", h.RoleARN))
		}
		if h.RoleSessionName != "" && !ValidSessionName(h.RoleSessionName) {
			return in("role_session_name", fmt.Errorf("%q must be 2-64 characters of [\\w+=,.@-]", h.RoleSessionName))
		}
		if h.Duration != 0 && (h.Duration < 15*time.Minute || h.Duration > 12*time.Hour) {
			return in("duration", fmt.Errorf("%s is outside STS's 15m..12h (and chained sessions are capped at 1h)", h.Duration))
		}
		if h.STSEndpoint != "" {
			u, err := url.Parse(h.STSEndpoint)
			if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
				return in("sts_endpoint", fmt.Errorf("%q is not an http(s) URL", h.STSEndpoint))
			}
		}
	}
	return nil
}

// Chain runs hops with an STS implementation.
type Chain struct {
	Hops []Hop
	STS  STS
	// Region is the starting region (the trust anchor's), the default STS region of the first hop.
	Region string
	// AllowHTTP permits plain-http STS endpoints on hosts that are not loopback (plain http to loopback,
	// the local emulator, is always allowed: netutil.PlainHTTPAllowed).
	AllowHTTP bool
}

// Assume runs every hop in order from start (the Roles Anywhere session), and returns the last hop's
// credentials. A failing hop returns a *HopError; nothing of a partial chain is returned.
func (c *Chain) Assume(ctx context.Context, start creds.Credentials, spiffeID string) (creds.Credentials, error) {
	cur, region := start, c.Region
	for i, h := range c.Hops {
		in, err := c.input(h, cur, region, spiffeID)
		if err != nil {
			return creds.Credentials{}, &HopError{Hop: i + 1, RoleARN: h.RoleARN, Caller: cur.AssumedRoleARN, Err: err}
		}
		next, err := c.STS.AssumeRole(ctx, in)
		if err != nil {
			return creds.Credentials{}, &HopError{Hop: i + 1, RoleARN: h.RoleARN, Caller: cur.AssumedRoleARN, Err: err}
		}
		cur, region = next, in.Region
	}
	return cur, nil
}

func (c *Chain) input(h Hop, caller creds.Credentials, region, spiffeID string) (Input, error) {
	if h.STSRegion != "" {
		region = h.STSRegion
	}
	endpoint := h.STSEndpoint
	if endpoint == "" {
		if region == "" {
			return Input{}, &signer.InputError{Field: "sts_region", Err: errors.New("no STS region: set sts_region or sts_endpoint")}
		}
		endpoint = Endpoint(region)
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return Input{}, &signer.InputError{Field: "sts_endpoint", Err: err}
	}
	if !netutil.PlainHTTPAllowed(u, c.AllowHTTP) {
		return Input{}, &signer.InputError{Field: "sts_endpoint", Err: fmt.Errorf("%q is plain http to a host that is not loopback; use https, or allow http explicitly (insecure_endpoint)", endpoint)}
	}
	if region == "" {
		region = "us-east-1" // an explicit global endpoint signs for us-east-1
	}
	name := h.RoleSessionName
	if name == "" {
		name = SessionName(spiffeID)
	}
	d := h.Duration
	if d == 0 {
		d = MaxDuration
	}
	in := Input{Caller: caller, Endpoint: endpoint, Region: region, RoleARN: h.RoleARN, RoleSessionName: name,
		ExternalID: h.ExternalID, DurationSeconds: int(d / time.Second), Policy: h.Policy, PolicyARNs: h.PolicyARNs,
		TransitiveTagKeys: h.TransitiveTagKeys}
	if h.SPIFFEIDTag != "" && spiffeID != "" {
		in.Tags = append(in.Tags, Tag{h.SPIFFEIDTag, spiffeID})
	}
	for _, k := range slices.Sorted(maps.Keys(h.SessionTags)) {
		in.Tags = append(in.Tags, Tag{k, h.SessionTags[k]})
	}
	return in, nil
}

// SessionCreator is what the refresher calls (bridge.SessionCreator; *signer.Client implements it).
type SessionCreator interface {
	CreateSession(ctx context.Context, in signer.CreateSessionInput) (creds.Credentials, error)
}

// Creator is a SessionCreator that runs the chain after the Roles Anywhere session: the refresher sees
// one session whose credentials and expiry are the last hop's.
type Creator struct {
	RolesAnywhere SessionCreator
	Chain         *Chain
}

// CreateSession implements SessionCreator.
func (c *Creator) CreateSession(ctx context.Context, in signer.CreateSessionInput) (creds.Credentials, error) {
	first, err := c.RolesAnywhere.CreateSession(ctx, in)
	if err != nil || c.Chain == nil || len(c.Chain.Hops) == 0 {
		return first, err
	}
	id := ""
	if in.Identity.Leaf != nil && len(in.Identity.Leaf.URIs) > 0 {
		id = in.Identity.Leaf.URIs[0].String()
	}
	return c.Chain.Assume(ctx, first, id)
}
