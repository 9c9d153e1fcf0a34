package chain_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/chain"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/chain/sdksts"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// region is the world's: not us-east-1, so that a hop signing for STS's global default would be refused.
const (
	region      = "eu-west-1"
	roleNoTrust = "arn:aws:iam::333333333333:role/trusts-nobody-here"
)

var appID = spiffeid.RequireFromString("spiffe://example.org/ns/prod/sa/web")

type world struct{ *testworld.World }

// newWorld is three accounts: A (testworld.AccountID) holds the trust anchor and the Roles Anywhere
// role; B's role trusts A's role with an external id; C's role trusts B's account (its root), and C's
// roleNoTrust only C's role.
func newWorld(t *testing.T) world {
	t.Helper()
	return world{testworld.New(t, testworld.Options{Region: region, EmulatorLog: true, STSRoles: []testworld.STSRole{
		{ARN: testworld.RoleB, Principals: []string{testworld.RoleARN}, ExternalID: testworld.ExternalID},
		{ARN: testworld.RoleC, Principals: []string{"arn:aws:iam::" + testworld.AccountB + ":root"}},
		{ARN: roleNoTrust, Principals: []string{testworld.RoleC}},
	}})}
}

// session is the Roles Anywhere session of account A and the CreateSession input that made it.
func (w world) session(t *testing.T) (creds.Credentials, signer.CreateSessionInput) {
	t.Helper()
	s, err := w.Agent.CA().MintX509SVID(appID, svidtest.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in := signer.CreateSessionInput{Identity: signer.Identity{Leaf: s.Certificates[0], Key: s.PrivateKey},
		TrustAnchorARN: w.TrustAnchorARN, ProfileARN: w.ProfileARN, RoleARN: testworld.RoleARN, Endpoint: w.Emulator.URL, AllowHTTP: true}
	c, err := signer.New(signer.Options{Retry: signer.RetryPolicy{MaxAttempts: 1}}).CreateSession(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return c, in
}

func (w world) hops(mod func(b, c *chain.Hop)) []chain.Hop {
	b := chain.Hop{RoleARN: testworld.RoleB, ExternalID: testworld.ExternalID, SPIFFEIDTag: chain.DefaultSPIFFEIDTag, STSEndpoint: w.Emulator.URL}
	c := chain.Hop{RoleARN: testworld.RoleC, SPIFFEIDTag: chain.DefaultSPIFFEIDTag, STSEndpoint: w.Emulator.URL, SessionTags: map[string]string{"team": "payments"}}
	if mod != nil {
		mod(&b, &c)
	}
	return []chain.Hop{b, c}
}

func implementations() map[string]chain.STS {
	return map[string]chain.STS{"aws-sdk-go-v2": &sdksts.Client{}, "query": &chain.Query{}}
}

func callerIdentity(t *testing.T, url string, c creds.Credentials) *sts.GetCallerIdentityOutput {
	t.Helper()
	out, err := sts.New(sts.Options{Region: region, BaseEndpoint: aws.String(url),
		Credentials: awscreds.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)}).
		GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTwoHopsReachAccountCWithTheSPIFFEIDTag(t *testing.T) {
	for name, impl := range implementations() {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			start, _ := w.session(t)
			ch := &chain.Chain{Hops: w.hops(nil), STS: impl, Region: region, AllowHTTP: true}
			got, err := ch.Assume(context.Background(), start, appID.String())
			if err != nil {
				t.Fatal(err)
			}
			id := callerIdentity(t, w.Emulator.URL, got)
			wantARN := "arn:aws:sts::" + testworld.AccountC + ":assumed-role/workload/" + chain.SessionName(appID.String())
			if aws.ToString(id.Account) != testworld.AccountC || aws.ToString(id.Arn) != wantARN {
				t.Fatalf("GetCallerIdentity: %s %s, want account %s as %s", aws.ToString(id.Account), aws.ToString(id.Arn), testworld.AccountC, wantARN)
			}
			if got.AssumedRoleARN != wantARN {
				t.Fatalf("credentials say %s", got.AssumedRoleARN)
			}
			views := w.Emulator.Sessions(got.AccessKeyID)
			if len(views) != 1 {
				t.Fatalf("emulator knows %d sessions for %s", len(views), got.AccessKeyID)
			}
			v := views[0]
			if v.Tags["spiffe-id"] != appID.String() || v.Tags["team"] != "payments" || !v.Chained {
				t.Fatalf("final session: %+v", v)
			}
			startView := w.Emulator.Sessions(start.AccessKeyID)[0]
			if startView.SourceIdentity == "" || v.SourceIdentity != startView.SourceIdentity {
				t.Fatalf("source identity %q not kept from the Roles Anywhere session's %q", v.SourceIdentity, startView.SourceIdentity)
			}
			if d := time.Until(got.Expiration); d < 59*time.Minute || d > time.Hour+time.Minute {
				t.Fatalf("final session lasts %s, want the 1h chained default", d)
			}
			for _, secret := range []string{got.SecretAccessKey, got.SessionToken, start.SecretAccessKey, start.SessionToken} {
				if strings.Contains(w.EmulatorLogs(), secret) {
					t.Fatal("a secret is in the emulator's log")
				}
			}
		})
	}
}

func TestHopFailuresNameTheHopAndTheAWSError(t *testing.T) {
	for name, impl := range implementations() {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			start, _ := w.session(t)
			for _, tc := range []struct {
				name     string
				mod      func(b, c *chain.Hop)
				hop      int
				role     string
				code     string
				advice   string
				retrying bool
			}{
				{"wrong external id", func(b, c *chain.Hop) { b.ExternalID = "tenant-8" }, 1, testworld.RoleB, "AccessDenied", "sts:ExternalId", false},
				{"target does not trust the previous hop", func(b, c *chain.Hop) { c.RoleARN = roleNoTrust }, 2, roleNoTrust, "AccessDenied", "Principal", false},
				{"duration over 1h", func(b, c *chain.Hop) { c.Duration = 2 * time.Hour }, 2, testworld.RoleC, "ValidationError", "one hour", false},
				{"SPIFFE ID tag overriding a transitive tag", func(b, c *chain.Hop) { b.TransitiveTagKeys = []string{"spiffe-id"} }, 2, testworld.RoleC, "ValidationError", "", false},
			} {
				t.Run(tc.name, func(t *testing.T) {
					ch := &chain.Chain{Hops: w.hops(tc.mod), STS: impl, Region: region, AllowHTTP: true}
					_, err := ch.Assume(context.Background(), start, appID.String())
					var he *chain.HopError
					if !errors.As(err, &he) {
						t.Fatalf("got %v, want a HopError", err)
					}
					if he.Hop != tc.hop || he.RoleARN != tc.role || he.Code() != tc.code || he.Retryable() != tc.retrying {
						t.Fatalf("hop %d %s code %s retryable %v (%v); want hop %d %s %s", he.Hop, he.RoleARN, he.Code(), he.Retryable(), err, tc.hop, tc.role, tc.code)
					}
					if !strings.Contains(err.Error(), tc.role) || !strings.Contains(err.Error(), tc.code) || !strings.Contains(err.Error(), tc.advice) {
						t.Fatalf("error does not name role, AWS error and advice %q: %v", tc.advice, err)
					}
				})
			}
		})
	}
}

func TestRegionalSTSByDefault(t *testing.T) {
	rec := &recorder{}
	ch := &chain.Chain{Hops: []chain.Hop{{RoleARN: testworld.RoleB}, {RoleARN: testworld.RoleC, STSRegion: "ap-southeast-2"}, {RoleARN: testworld.RoleC, STSEndpoint: "https://sts.amazonaws.com"}}, STS: rec, Region: "eu-west-1"}
	if _, err := ch.Assume(context.Background(), creds.Credentials{}, appID.String()); err != nil {
		t.Fatal(err)
	}
	want := []string{"https://sts.eu-west-1.amazonaws.com eu-west-1", "https://sts.ap-southeast-2.amazonaws.com ap-southeast-2", "https://sts.amazonaws.com ap-southeast-2"}
	if fmt.Sprint(rec.calls) != fmt.Sprint(want) {
		t.Fatalf("endpoints %q, want %q", rec.calls, want)
	}
	ch = &chain.Chain{Hops: []chain.Hop{{RoleARN: testworld.RoleB}}, STS: rec, Region: "cn-north-1"}
	rec.calls = nil
	if _, err := ch.Assume(context.Background(), creds.Credentials{}, appID.String()); err != nil || rec.calls[0] != "https://sts.cn-north-1.amazonaws.com.cn cn-north-1" {
		t.Fatalf("China: %v %v", rec.calls, err)
	}
	ch = &chain.Chain{Hops: []chain.Hop{{RoleARN: testworld.RoleB, STSEndpoint: "http://sts.example.com"}}, STS: rec, Region: "eu-west-1"}
	if _, err := ch.Assume(context.Background(), creds.Credentials{}, appID.String()); err == nil || !strings.Contains(err.Error(), "plain http") {
		t.Fatalf("plain http endpoint without AllowHTTP: %v", err)
	}
}

type recorder struct {
	calls []string
	ins   []chain.Input
}

func (r *recorder) AssumeRole(_ context.Context, in chain.Input) (creds.Credentials, error) {
	r.calls = append(r.calls, in.Endpoint+" "+in.Region)
	r.ins = append(r.ins, in)
	return creds.Credentials{AccessKeyID: "ASIAX", SecretAccessKey: "s", SessionToken: "t", Expiration: time.Now().Add(time.Hour)}, nil
}

// hashOf is "-" and the first 16 hex digits of the SHA-256 of id.
func hashOf(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "-" + hex.EncodeToString(sum[:])[:16]
}

func TestSessionName(t *testing.T) {
	long := "spiffe://example.org/" + strings.Repeat("very-long-segment/", 6) + "web"
	long2 := "spiffe://example.org/" + strings.Repeat("very-long-segment/", 6) + "api"
	for _, tc := range []struct{ id, want string }{
		{"spiffe://example.org/ns/prod/sa/web", "example.org@ns.prod.sa.web"},
		{"spiffe://example.org/a b/ü", "example.org@a-b.-" + hashOf("spiffe://example.org/a b/ü")},
	} {
		if got := chain.SessionName(tc.id); got != tc.want {
			t.Errorf("SessionName(%q) = %q, want %q", tc.id, got, tc.want)
		}
	}
	a, b := chain.SessionName(long), chain.SessionName(long2)
	if len(a) != 64 || !chain.ValidSessionName(a) || a == b || a[:47] != b[:47] {
		t.Fatalf("overflow: %q (%d) and %q must be 64 valid characters sharing a prefix and differing in the hash", a, len(a), b)
	}
	sum := sha256.Sum256([]byte(long))
	if !strings.HasSuffix(a, "-"+hex.EncodeToString(sum[:])[:16]) {
		t.Fatalf("%q does not end in the ID's hash", a)
	}
}

// TestQuerySignsAsTheAWSSDKDoes: the standard-library signer of the lean binary produces the signature
// aws-sdk-go-v2's v4 signer produces for the same request, credentials and time.
func TestQuerySignsAsTheAWSSDKDoes(t *testing.T) {
	c := creds.Credentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", SessionToken: "FQoGZXIvYXdzEXAMPLE"}
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	body := []byte("Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A222222222222%3Arole%2Fdeployer&RoleSessionName=x&Version=2011-06-15")
	mk := func() *http.Request {
		r, _ := http.NewRequest(http.MethodPost, "https://sts.eu-west-1.amazonaws.com/", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		return r
	}
	ours := mk()
	chain.Sign(ours, body, c, "sts", "eu-west-1", at)
	theirs := mk()
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken},
		theirs, hex.EncodeToString(sum[:]), "sts", "eu-west-1", at); err != nil {
		t.Fatal(err)
	}
	sig := func(r *http.Request) string {
		_, s, _ := strings.Cut(r.Header.Get("Authorization"), "Signature=")
		return s
	}
	if sig(ours) == "" || sig(ours) != sig(theirs) {
		t.Fatalf("ours:   %s\ntheirs: %s", ours.Header.Get("Authorization"), theirs.Header.Get("Authorization"))
	}
}

func TestSessionsViewHidesSecrets(t *testing.T) {
	w := newWorld(t)
	start, _ := w.session(t)
	resp, err := http.Get(w.Emulator.URL + "/_emulator/sessions?access_key_id=" + start.AccessKeyID)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var views []emulator.SessionView
	raw := new(bytes.Buffer)
	_, _ = raw.ReadFrom(resp.Body)
	if err := json.Unmarshal(raw.Bytes(), &views); err != nil || len(views) != 1 || views[0].Account != testworld.AccountID {
		t.Fatalf("sessions view: %v %s", err, raw)
	}
	if strings.Contains(raw.String(), start.SecretAccessKey) || strings.Contains(raw.String(), start.SessionToken) {
		t.Fatal("the sessions view shows a secret")
	}
}

// TestSPIFFEIDTagKeyIsConfigurableAndCanBeOff: the SPIFFE ID goes in the tag named by SPIFFEIDTag, before
// the hop's own tags; an empty key sends no such tag; the session name defaults to the derived one.
func TestSPIFFEIDTagKeyIsConfigurableAndCanBeOff(t *testing.T) {
	rec := &recorder{}
	ch := &chain.Chain{STS: rec, Region: "eu-west-1", Hops: []chain.Hop{
		{RoleARN: testworld.RoleB, SPIFFEIDTag: chain.DefaultSPIFFEIDTag},
		{RoleARN: testworld.RoleC, SPIFFEIDTag: "workload", SessionTags: map[string]string{"b": "2", "a": "1"}, RoleSessionName: "fixed"},
		{RoleARN: testworld.RoleC},
	}}
	if _, err := ch.Assume(context.Background(), creds.Credentials{}, appID.String()); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(rec.ins[0].Tags, rec.ins[1].Tags, rec.ins[2].Tags)
	want := fmt.Sprint([]chain.Tag{{Key: "spiffe-id", Value: appID.String()}},
		[]chain.Tag{{Key: "workload", Value: appID.String()}, {Key: "a", Value: "1"}, {Key: "b", Value: "2"}}, []chain.Tag(nil))
	if got != want {
		t.Fatalf("tags %s, want %s", got, want)
	}
	if rec.ins[0].RoleSessionName != "example.org@ns.prod.sa.web" || rec.ins[1].RoleSessionName != "fixed" || rec.ins[0].DurationSeconds != 3600 {
		t.Fatalf("session names %q %q, duration %d", rec.ins[0].RoleSessionName, rec.ins[1].RoleSessionName, rec.ins[0].DurationSeconds)
	}
}

type fakeRA struct{ c creds.Credentials }

func (f fakeRA) CreateSession(context.Context, signer.CreateSessionInput) (creds.Credentials, error) {
	return f.c, nil
}

type expiring struct{ exp time.Time }

func (e expiring) AssumeRole(_ context.Context, in chain.Input) (creds.Credentials, error) {
	return creds.Credentials{AccessKeyID: "ASIA" + in.RoleSessionName, SecretAccessKey: "s", SessionToken: "t", Expiration: e.exp, AssumedRoleARN: in.RoleARN}, nil
}

// TestCreatorHandsOnTheLastHopsCredentials: the refresher (and so the sinks and the schedule) sees the
// last hop's credentials and expiry, not the Roles Anywhere session's; without hops, the session itself.
func TestCreatorHandsOnTheLastHopsCredentials(t *testing.T) {
	ra := creds.Credentials{AccessKeyID: "ASIARA", SecretAccessKey: "s", SessionToken: "t", Expiration: time.Now().Add(12 * time.Hour)}
	hopExp := time.Now().Add(45 * time.Minute).Truncate(time.Second)
	c := &chain.Creator{RolesAnywhere: fakeRA{ra}, Chain: &chain.Chain{STS: expiring{hopExp}, Region: "eu-west-1",
		Hops: []chain.Hop{{RoleARN: testworld.RoleB}, {RoleARN: testworld.RoleC}}}}
	got, err := c.CreateSession(context.Background(), signer.CreateSessionInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got.AssumedRoleARN != testworld.RoleC || !got.Expiration.Equal(hopExp) {
		t.Fatalf("got %s until %s, want %s until %s", got.AssumedRoleARN, got.Expiration, testworld.RoleC, hopExp)
	}
	c.Chain.Hops = nil
	if got, _ := c.CreateSession(context.Background(), signer.CreateSessionInput{}); got.AccessKeyID != "ASIARA" {
		t.Fatalf("without hops: %s", got.AccessKeyID)
	}
}

// TestHopErrorsAreClassifiedIntoTheFixedLabels: STS's documented codes are kept, anything else is
// "other"; a refused connection is a transient "network" failure, an untrusted certificate a permanent
// "tls" one; refusals and bad input are permanent.
func TestHopErrorsAreClassifiedIntoTheFixedLabels(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	_, refused := (&chain.Chain{Hops: []chain.Hop{{RoleARN: testworld.RoleB, STSEndpoint: closed}}, STS: &chain.Query{}, Region: "eu-west-1"}).
		Assume(context.Background(), creds.Credentials{AccessKeyID: "ASIAX", SecretAccessKey: "s", SessionToken: "t"}, appID.String())
	var refusedHop *chain.HopError
	if !errors.As(refused, &refusedHop) {
		t.Fatalf("connection refused: %v", refused)
	}
	for _, tc := range []struct {
		name      string
		err       *chain.HopError
		label     string
		retryable bool
	}{
		{"AccessDenied", &chain.HopError{Hop: 1, Err: &chain.APIError{StatusCode: 403, Code: "AccessDenied"}}, "AccessDenied", false},
		{"ValidationError", &chain.HopError{Hop: 1, Err: &chain.APIError{StatusCode: 400, Code: "ValidationError"}}, "ValidationError", false},
		{"Throttling", &chain.HopError{Hop: 1, Err: &chain.APIError{StatusCode: 400, Code: "Throttling"}}, "Throttling", true},
		{"server fault", &chain.HopError{Hop: 1, Err: &chain.APIError{StatusCode: 503, Code: "ServiceUnavailable"}}, "other", true},
		{"undocumented code", &chain.HopError{Hop: 1, Err: &chain.APIError{StatusCode: 400, Code: `x{le="1"}`}}, "other", false},
		{"connection refused", refusedHop, "network", true},
		{"untrusted certificate", &chain.HopError{Hop: 1, Err: fmt.Errorf("sts: %w", x509.UnknownAuthorityError{})}, "tls", false},
		{"bad input", &chain.HopError{Hop: 1, Err: &signer.InputError{Field: "sts_endpoint", Err: errors.New("x")}}, "other", false},
	} {
		if got := tc.err.Code(); got != tc.label || tc.err.Retryable() != tc.retryable {
			t.Errorf("%s: label %q retryable %v, want %q %v", tc.name, got, tc.err.Retryable(), tc.label, tc.retryable)
		}
	}
	if c := (&chain.HopError{Hop: 2, RoleARN: testworld.RoleC, Err: &chain.APIError{StatusCode: 403, Code: "AccessDenied", Message: "m", RequestID: "r-1"}}).Cause(); strings.Contains(c, "r-1") || !strings.Contains(c, testworld.RoleC) {
		t.Fatalf("Cause %q must name the role and not the request id", c)
	}
}
