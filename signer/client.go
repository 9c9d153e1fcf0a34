package signer

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/awsarn"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/buildinfo"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/netutil"
)

// Session duration bounds of CreateSession, in seconds.
const (
	MinDurationSeconds     = 900
	MaxDurationSeconds     = 43200
	DefaultDurationSeconds = 3600
)

// maxResponseBytes bounds how much of a response body is read.
const maxResponseBytes = 1 << 20

// RetryPolicy bounds the retries of transient failures (network errors, 429, 5xx) within one
// CreateSession call. Waits grow exponentially from BaseDelay, are capped at MaxDelay, and are drawn
// uniformly from [0, cap) ("full jitter") so that many clients throttled together spread out.
type RetryPolicy struct {
	// MaxAttempts counts the first try; 1 disables retries. Default 4.
	MaxAttempts int
	// BaseDelay is the cap of the first wait; default 200ms.
	BaseDelay time.Duration
	// MaxDelay caps every wait; default 5s.
	MaxDelay time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 4
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = 200 * time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 5 * time.Second
	}
	if p.MaxDelay < p.BaseDelay {
		p.MaxDelay = p.BaseDelay
	}
	return p
}

// Options configures a Client. Every field is optional.
type Options struct {
	// HTTPClient sends the requests. Default: TLS 1.2 or later, proxies from the environment
	// (HTTPS_PROXY, NO_PROXY) unless DisableProxy, bounded connect, handshake and response timeouts.
	HTTPClient *http.Client
	// DisableProxy ignores proxy environment variables (only used with the default HTTPClient).
	DisableProxy bool
	// Now is the clock that dates signatures; default time.Now.
	Now func() time.Time
	// Retry bounds the retries of transient failures.
	Retry RetryPolicy
	// UserAgent is sent as User-Agent; default "spiffe-aws-bridge/<version>".
	UserAgent string
	// Logger receives one debug line per attempt (never a secret); default: discard.
	Logger hclog.Logger
	// Sleep waits between attempts; default a timer honoring ctx. Tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a uniformly random duration in [0, n); default math/rand/v2. Tests replace it.
	Jitter func(n time.Duration) time.Duration
}

// Client calls Roles Anywhere CreateSession. It is safe for concurrent use.
type Client struct {
	http      *http.Client
	now       func() time.Time
	retry     RetryPolicy
	userAgent string
	log       hclog.Logger
	sleep     func(context.Context, time.Duration) error
	jitter    func(time.Duration) time.Duration
	mu        sync.Mutex // guards jitter's default source
}

// New returns a Client for opts.
func New(opts Options) *Client {
	c := &Client{
		http:      opts.HTTPClient,
		now:       opts.Now,
		retry:     opts.Retry.withDefaults(),
		userAgent: opts.UserAgent,
		log:       opts.Logger,
		sleep:     opts.Sleep,
		jitter:    opts.Jitter,
	}
	if c.http == nil {
		c.http = DefaultHTTPClient(!opts.DisableProxy)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.userAgent == "" {
		c.userAgent = buildinfo.UserAgent()
	}
	if c.log == nil {
		c.log = hclog.NewNullLogger()
	}
	if c.sleep == nil {
		c.sleep = sleepCtx
	}
	if c.jitter == nil {
		c.jitter = func(n time.Duration) time.Duration {
			if n <= 0 {
				return 0
			}
			return time.Duration(rand.Int64N(int64(n)))
		}
	}
	return c
}

// MaxConnsPerHost is how many connections the default HTTP client opens to one endpoint. A daemon's
// profiles share them: a burst of CreateSession calls (a node-mode daemon's 1,000 workloads after a SPIRE
// CA rotation) queues for these connections and reuses them, instead of opening one connection (and one
// TLS handshake with AWS) per call. docs/benchmarks.md "Node mode" measures the difference.
const MaxConnsPerHost = 16

// DefaultHTTPClient is the HTTP client a Client uses unless given one: TLS 1.2 or later, proxies from the
// environment when useProxy, 10 s to connect and to handshake, 30 s for the response headers, 60 s overall
// (waiting for a connection included), at most MaxConnsPerHost connections per endpoint, all kept alive.
func DefaultHTTPClient(useProxy bool) *http.Client {
	t := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxConnsPerHost:       MaxConnsPerHost,
		MaxIdleConnsPerHost:   MaxConnsPerHost,
		MaxIdleConns:          4 * MaxConnsPerHost,
		ForceAttemptHTTP2:     true,
	}
	if useProxy {
		t.Proxy = http.ProxyFromEnvironment
	}
	return &http.Client{Transport: t, Timeout: 60 * time.Second}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// CreateSessionInput is one CreateSession request.
type CreateSessionInput struct {
	// Identity signs the request; its leaf is the certificate AWS authenticates.
	Identity Identity
	// TrustAnchorARN, ProfileARN and RoleARN name the Roles Anywhere resources and the IAM role.
	TrustAnchorARN, ProfileARN, RoleARN string
	// Region defaults to the trust anchor ARN's region and must equal it when set.
	Region string
	// Endpoint overrides https://rolesanywhere.<region>.amazonaws.com[.cn]. A path prefix is kept on
	// the wire (the signature covers /sessions regardless).
	Endpoint string
	// AllowHTTP permits a plain http:// Endpoint to any host. Without it plain http is allowed to a
	// loopback host only (the local emulator; netutil.PlainHTTPAllowed), https elsewhere.
	AllowHTTP bool
	// DurationSeconds of the session, 900 to 43200; 0 means 3600.
	DurationSeconds int
	// RoleSessionName is optional; the profile must accept custom session names.
	RoleSessionName string
	// InstanceProperties are optional key/value pairs recorded by AWS with the session.
	InstanceProperties map[string]string
}

// roleSessionNameRE is IAM's rule for role session names.
var roleSessionNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\w+=,.@-]{2,64}$`) })

// awsEndpointRE matches Roles Anywhere's own endpoints, capturing the region and the China suffix.
var awsEndpointRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^rolesanywhere(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$`)
})

// request is a validated input, ready to send.
type request struct {
	url      *url.URL
	region   string
	body     []byte
	identity Identity
}

// Validate checks in without sending anything. Errors are *InputError (or *awsarn.Error, *KeyError
// inside one) naming the field and the offending value.
func (in CreateSessionInput) Validate() error {
	_, err := in.prepare()
	return err
}

func (in CreateSessionInput) prepare() (*request, error) {
	sess, err := awsarn.CheckSession(in.TrustAnchorARN, in.ProfileARN, in.RoleARN, in.Region)
	if err != nil {
		var ae *awsarn.Error
		field := "arn"
		if errors.As(err, &ae) {
			field = ae.Field
		}
		return nil, &InputError{Field: field, Err: err}
	}
	if err := in.Identity.Check(); err != nil {
		return nil, &InputError{Field: "identity", Err: err}
	}
	d := in.DurationSeconds
	if d == 0 {
		d = DefaultDurationSeconds
	}
	if d < MinDurationSeconds || d > MaxDurationSeconds {
		return nil, &InputError{Field: "duration_seconds", Err: fmt.Errorf("%d is outside %d..%d (15 minutes to 12 hours)", d, MinDurationSeconds, MaxDurationSeconds)}
	}
	if in.RoleSessionName != "" && !roleSessionNameRE().MatchString(in.RoleSessionName) {
		return nil, &InputError{Field: "role_session_name", Err: fmt.Errorf("%q must be 2 to 64 characters of letters, digits and +=,.@_-", in.RoleSessionName)}
	}
	base := in.Endpoint
	if base == "" {
		base = awsarn.Endpoint(sess.TrustAnchor.Partition, sess.Region)
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, &InputError{Field: "endpoint", Err: fmt.Errorf("%q is not a URL: %w", base, err)}
	}
	switch {
	case u.Host == "":
		return nil, &InputError{Field: "endpoint", Err: fmt.Errorf("%q has no host", base)}
	case !netutil.PlainHTTPAllowed(u, in.AllowHTTP):
		return nil, &InputError{Field: "endpoint", Err: fmt.Errorf("%q is plain http to a host that is not loopback; use https, or allow http explicitly (insecure_endpoint)", base)}
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, &InputError{Field: "endpoint", Err: fmt.Errorf("%q: scheme must be https", base)}
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return nil, &InputError{Field: "endpoint", Err: fmt.Errorf("%q must not carry a query, fragment or user info", base)}
	}
	if m := awsEndpointRE().FindStringSubmatch(strings.ToLower(u.Hostname())); m != nil {
		region, partition := m[1], "aws"
		if m[2] != "" {
			partition = "aws-cn"
		}
		if region != sess.Region {
			return nil, &InputError{Field: "endpoint", Err: fmt.Errorf("%q is in region %q, but the trust anchor is in %q", base, region, sess.Region)}
		}
		if (partition == "aws-cn") != (sess.TrustAnchor.Partition == "aws-cn") {
			return nil, &InputError{Field: "endpoint", Err: fmt.Errorf("%q is not in the trust anchor's partition %q", base, sess.TrustAnchor.Partition)}
		}
	}
	target := *u
	target.Path = strings.TrimSuffix(u.Path, "/") + "/sessions"
	target.RawPath = ""
	q := url.Values{}
	q.Set("profileArn", in.ProfileARN)
	q.Set("roleArn", in.RoleARN)
	q.Set("trustAnchorArn", in.TrustAnchorARN)
	target.RawQuery = CanonicalQuery(q)

	body := map[string]any{"durationSeconds": d}
	if in.RoleSessionName != "" {
		body["roleSessionName"] = in.RoleSessionName
	}
	if len(in.InstanceProperties) > 0 {
		body["instanceProperties"] = in.InstanceProperties
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, &InputError{Field: "instance_properties", Err: err}
	}
	return &request{url: &target, region: sess.Region, body: b, identity: in.Identity}, nil
}

// CreateSession trades in.Identity for temporary credentials of in.RoleARN. Transient failures are
// retried per the client's RetryPolicy within ctx; the error of the last attempt is returned: an
// *APIError for an AWS error answer, *TransportError for a network failure, *InputError for bad input.
func (c *Client) CreateSession(ctx context.Context, in CreateSessionInput) (creds.Credentials, error) {
	req, err := in.prepare()
	if err != nil {
		return creds.Credentials{}, err
	}
	var lastErr error
	for attempt := 1; ; attempt++ {
		out, err := c.do(ctx, req)
		if err == nil {
			return out, nil
		}
		lastErr = err
		if !Retryable(err) || attempt >= c.retry.MaxAttempts || ctx.Err() != nil {
			return creds.Credentials{}, lastErr
		}
		ceiling := c.retry.BaseDelay << (attempt - 1)
		if ceiling > c.retry.MaxDelay || ceiling <= 0 {
			ceiling = c.retry.MaxDelay
		}
		c.mu.Lock()
		wait := c.jitter(ceiling)
		c.mu.Unlock()
		c.log.Debug("CreateSession failed; retrying", "attempt", attempt, "wait", wait, "error", err)
		if serr := c.sleep(ctx, wait); serr != nil {
			return creds.Credentials{}, lastErr
		}
	}
}

// sessionResponse is CreateSession's 201 body.
type sessionResponse struct {
	CredentialSet []struct {
		AssumedRoleUser struct {
			Arn           string `json:"arn"`
			AssumedRoleID string `json:"assumedRoleId"`
		} `json:"assumedRoleUser"`
		Credentials struct {
			AccessKeyID     string `json:"accessKeyId"`
			SecretAccessKey string `json:"secretAccessKey"`
			SessionToken    string `json:"sessionToken"`
			Expiration      string `json:"expiration"`
		} `json:"credentials"`
		RoleArn string `json:"roleArn"`
	} `json:"credentialSet"`
	SubjectArn string `json:"subjectArn"`
}

func (c *Client) do(ctx context.Context, r *request) (creds.Credentials, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url.String(), bytes.NewReader(r.body))
	if err != nil {
		return creds.Credentials{}, &InputError{Field: "endpoint", Err: err}
	}
	hreq.Header.Set("Content-Type", "application/json")
	if err := Sign(hreq, r.body, r.identity, r.region, c.now()); err != nil {
		return creds.Credentials{}, &InputError{Field: "identity", Err: err}
	}
	hreq.Header.Set("User-Agent", c.userAgent)
	start := time.Now()
	resp, err := c.http.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return creds.Credentials{}, fmt.Errorf("rolesanywhere: %w", ctx.Err())
		}
		return creds.Credentials{}, &TransportError{Err: redactURL(err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return creds.Credentials{}, &TransportError{Err: fmt.Errorf("reading the response: %w", err)}
	}
	reqID := resp.Header.Get("x-amzn-RequestId")
	if c.log.IsDebug() {
		c.log.Debug("CreateSession answered", "status", resp.StatusCode, "request_id", reqID, "latency", time.Since(start))
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return creds.Credentials{}, apiError(resp, body)
	}
	var sr sessionResponse
	if err := json.Unmarshal(body, &sr); err != nil {
		return creds.Credentials{}, &APIError{StatusCode: resp.StatusCode, Type: "InvalidResponse", Message: "the response body is not CreateSession JSON: " + err.Error(), RequestID: reqID}
	}
	if len(sr.CredentialSet) == 0 {
		return creds.Credentials{}, &APIError{StatusCode: resp.StatusCode, Type: "InvalidResponse", Message: "the response holds no credentialSet", RequestID: reqID}
	}
	cs := sr.CredentialSet[0]
	exp, err := time.Parse(time.RFC3339, cs.Credentials.Expiration)
	if err != nil {
		return creds.Credentials{}, &APIError{StatusCode: resp.StatusCode, Type: "InvalidResponse", Message: fmt.Sprintf("expiration %q is not RFC 3339", cs.Credentials.Expiration), RequestID: reqID}
	}
	out := creds.Credentials{
		AccessKeyID:     cs.Credentials.AccessKeyID,
		SecretAccessKey: cs.Credentials.SecretAccessKey,
		SessionToken:    cs.Credentials.SessionToken,
		Expiration:      exp.UTC(),
		AssumedRoleARN:  cs.AssumedRoleUser.Arn,
		AssumedRoleID:   cs.AssumedRoleUser.AssumedRoleID,
	}
	if out.AccessKeyID == "" || out.SecretAccessKey == "" || out.SessionToken == "" {
		return creds.Credentials{}, &APIError{StatusCode: resp.StatusCode, Type: "InvalidResponse", Message: "the response's credentials are incomplete", RequestID: reqID}
	}
	return out, nil
}

// apiError builds the typed error of a non-2xx answer.
func apiError(resp *http.Response, body []byte) *APIError {
	e := &APIError{StatusCode: resp.StatusCode, RequestID: resp.Header.Get("x-amzn-RequestId")}
	e.Type = resp.Header.Get("x-amzn-ErrorType")
	// The header may carry a suffix after ':' (e.g. "ValidationException:http://…").
	if i := strings.IndexByte(e.Type, ':'); i >= 0 {
		e.Type = e.Type[:i]
	}
	var m struct {
		Message  string `json:"message"`
		MessageU string `json:"Message"`
		Type     string `json:"__type"`
	}
	if json.Unmarshal(body, &m) == nil {
		e.Message = m.Message
		if e.Message == "" {
			e.Message = m.MessageU
		}
		if e.Type == "" {
			e.Type = m.Type
		}
	}
	if e.Message == "" {
		text := strings.TrimSpace(string(body))
		if len(text) > 200 {
			text = text[:200] + "…"
		}
		if text == "" {
			text = http.StatusText(resp.StatusCode)
		}
		e.Message = text
	}
	if e.Type == "" && resp.StatusCode == http.StatusTooManyRequests {
		e.Type = "ThrottlingException"
	}
	return e
}

// redactURL strips the query (ARNs only, but long) from *url.Error messages to keep them readable.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery = ""
			return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
		}
	}
	return err
}
