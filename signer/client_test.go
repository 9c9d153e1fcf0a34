package signer_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
)

// ARNs of the client tests (real Roles Anywhere ids are UUIDs).
const (
	testTrustAnchor = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0f0e0d0c-0b0a-4909-8807-060504030201"
	testProfile     = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/01020304-0506-4708-8900-0a0b0c0d0e0f"
	testRole        = vectorRole
)

const (
	testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	testToken  = "IQoJb3JpZ2luX2VjEXAMPLETOKENdGhpcyBpcyBhIHNlc3Npb24gdG9rZW4="
)

// fakeAWS is a loopback HTTP server answering CreateSession from a script, recording what it received.
type fakeAWS struct {
	*httptest.Server
	mu       sync.Mutex
	script   []func(w http.ResponseWriter)
	requests []*http.Request
	bodies   [][]byte
}

func newFakeAWS(t *testing.T, script ...func(w http.ResponseWriter)) *fakeAWS {
	f := &fakeAWS{script: script}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.requests = append(f.requests, r)
		f.bodies = append(f.bodies, body)
		var step func(http.ResponseWriter)
		if len(f.script) > 0 {
			step, f.script = f.script[0], f.script[1:]
		}
		f.mu.Unlock()
		if step == nil {
			http.Error(w, "script exhausted", http.StatusTeapot)
			return
		}
		step(w)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAWS) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func created(expiration string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"credentialSet":[{"assumedRoleUser":{"arn":"arn:aws:sts::123456789012:assumed-role/app/1234","assumedRoleId":"AROAEXAMPLE:1234"},
"credentials":{"accessKeyId":"ASIAEXAMPLEEXAMPLE12","secretAccessKey":%q,"sessionToken":%q,"expiration":%q},
"packedPolicySize":0,"roleArn":"arn:aws:iam::123456789012:role/app","sourceIdentity":"CN=x"}],"subjectArn":"arn:aws:rolesanywhere:us-east-1:123456789012:subject/s"}`,
			testSecret, testToken, expiration)
	}
}

func awsError(status int, typ, msg string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if typ != "" {
			w.Header().Set("x-amzn-ErrorType", typ)
		}
		w.Header().Set("x-amzn-RequestId", "req-"+typ)
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"message":%q}`, msg)
	}
}

func testInput(t *testing.T, endpoint string) signer.CreateSessionInput {
	return signer.CreateSessionInput{
		Identity:       signer.Identity{Leaf: loadCert(t, "p256.pem"), Intermediates: []*x509.Certificate{loadCert(t, "int.pem")}, Key: loadKey(t, "p256.key")},
		TrustAnchorARN: testTrustAnchor, ProfileARN: testProfile, RoleARN: testRole,
		Endpoint: endpoint, AllowHTTP: true,
	}
}

// recorder collects the waits between attempts instead of sleeping; jitter returns its ceiling.
type recorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (r *recorder) options(log hclog.Logger) signer.Options {
	return signer.Options{
		Now:    func() time.Time { return vectorTime },
		Logger: log,
		Sleep: func(ctx context.Context, d time.Duration) error {
			r.mu.Lock()
			r.waits = append(r.waits, d)
			r.mu.Unlock()
			return ctx.Err()
		},
		Jitter: func(n time.Duration) time.Duration { return n }, // the ceiling: makes the caps visible
	}
}

func TestCreateSessionSendsTheDocumentedRequestAndParsesCredentials(t *testing.T) {
	aws := newFakeAWS(t, created("2026-11-25T06:30:00Z"))
	in := testInput(t, aws.URL+"/prefix/")
	in.DurationSeconds = 1800
	in.RoleSessionName = "my-session"
	in.InstanceProperties = map[string]string{"node": "n1"}
	var rec recorder
	c := signer.New(rec.options(nil))
	got, err := c.CreateSession(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessKeyID != "ASIAEXAMPLEEXAMPLE12" || got.SecretAccessKey != testSecret || got.SessionToken != testToken ||
		!got.Expiration.Equal(time.Date(2026, 11, 25, 6, 30, 0, 0, time.UTC)) ||
		got.AssumedRoleARN != "arn:aws:sts::123456789012:assumed-role/app/1234" || got.AssumedRoleID != "AROAEXAMPLE:1234" {
		t.Errorf("credentials = %#v", got)
	}
	r, body := aws.requests[0], aws.bodies[0]
	if r.Method != http.MethodPost || r.URL.Path != "/prefix/sessions" {
		t.Errorf("request %s %s, want POST /prefix/sessions", r.Method, r.URL.Path)
	}
	q := r.URL.Query()
	if q.Get("profileArn") != testProfile || q.Get("roleArn") != testRole || q.Get("trustAnchorArn") != testTrustAnchor {
		t.Errorf("query %v", q)
	}
	if ua := r.Header.Get("User-Agent"); !strings.HasPrefix(ua, "spiffe-aws-bridge/") {
		t.Errorf("User-Agent %q", ua)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var b map[string]any
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	if b["durationSeconds"] != float64(1800) || b["roleSessionName"] != "my-session" || b["instanceProperties"].(map[string]any)["node"] != "n1" {
		t.Errorf("body %s", body)
	}
	// The server can verify what it received: rebuild the canonical request from the wire.
	wire := r.Clone(context.Background())
	wire.Header.Del("Authorization")
	wire.Header.Del("Accept-Encoding") // added by the transport after signing
	canonical, signed := signer.CanonicalRequest(wire, body)
	sts := signer.StringToSign(signer.AlgorithmECDSA, vectorTime, signer.Scope(vectorTime, "us-east-1"), canonical)
	sig := signatureOf(t, r, "AWS4-X509-ECDSA-SHA256 Credential=4660/20261125/us-east-1/rolesanywhere/aws4_request, SignedHeaders="+signed+", Signature=")
	opensslVerify(t, in.Identity.Leaf, []byte(sts), sig)
	if !ecdsaVerify(in.Identity.Leaf, sts, sig) {
		t.Error("the signature received does not verify")
	}
}

func ecdsaVerify(leaf *x509.Certificate, sts string, sig []byte) bool {
	return ecdsa.VerifyASN1(leaf.PublicKey.(*ecdsa.PublicKey), sha256Sum(sts), sig)
}

func TestCreateSessionOmitsOptionalBodyFields(t *testing.T) {
	aws := newFakeAWS(t, created("2026-11-25T06:30:00Z"))
	if _, err := signer.New(signer.Options{}).CreateSession(context.Background(), testInput(t, aws.URL)); err != nil {
		t.Fatal(err)
	}
	if got := string(aws.bodies[0]); got != `{"durationSeconds":3600}` {
		t.Errorf("body %s, want the default duration only", got)
	}
}

func TestCreateSessionRetriesTransientFailuresWithCappedBackoff(t *testing.T) {
	aws := newFakeAWS(t,
		awsError(500, "InternalServerException", "oops"),
		awsError(429, "ThrottlingException", "Rate exceeded"),
		awsError(503, "", "Service Unavailable"),
		created("2026-11-25T06:30:00Z"))
	var rec recorder
	opts := rec.options(nil)
	opts.Retry = signer.RetryPolicy{MaxAttempts: 5, BaseDelay: 100 * time.Millisecond, MaxDelay: 250 * time.Millisecond}
	if _, err := signer.New(opts).CreateSession(context.Background(), testInput(t, aws.URL)); err != nil {
		t.Fatal(err)
	}
	if aws.calls() != 4 {
		t.Errorf("calls = %d, want 4", aws.calls())
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 250 * time.Millisecond}
	if fmt.Sprint(rec.waits) != fmt.Sprint(want) {
		t.Errorf("wait ceilings %v, want %v (exponential, capped)", rec.waits, want)
	}
}

func TestCreateSessionGivesUpAfterMaxAttempts(t *testing.T) {
	aws := newFakeAWS(t,
		awsError(429, "ThrottlingException", "Rate exceeded"), awsError(429, "ThrottlingException", "Rate exceeded"),
		awsError(429, "ThrottlingException", "Rate exceeded"), awsError(429, "ThrottlingException", "Rate exceeded"),
		created("2026-11-25T06:30:00Z"))
	var rec recorder
	_, err := signer.New(rec.options(nil)).CreateSession(context.Background(), testInput(t, aws.URL))
	var api *signer.APIError
	if !errors.As(err, &api) || api.StatusCode != 429 || api.Type != "ThrottlingException" || !api.Throttled() || !signer.Retryable(err) {
		t.Fatalf("err = %#v", err)
	}
	if aws.calls() != 4 {
		t.Errorf("calls = %d, want the default 4 attempts", aws.calls())
	}
	if got := err.Error(); got != "rolesanywhere: ThrottlingException (429): Rate exceeded (request id req-ThrottlingException)" {
		t.Errorf("error text %q", got)
	}
}

func TestCreateSessionDoesNotRetryClientErrors(t *testing.T) {
	for _, tc := range []struct {
		status int
		typ    string
	}{
		{403, "AccessDeniedException"},
		{400, "ValidationException"},
		{404, "ResourceNotFoundException"},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			aws := newFakeAWS(t, awsError(tc.status, tc.typ+":http://internal.amazon.com/coral/", "Unable to assume role"), created("2026-11-25T06:30:00Z"))
			var rec recorder
			_, err := signer.New(rec.options(nil)).CreateSession(context.Background(), testInput(t, aws.URL))
			var api *signer.APIError
			if !errors.As(err, &api) || api.StatusCode != tc.status || api.Type != tc.typ || api.Message != "Unable to assume role" || api.Retryable() || signer.Retryable(err) {
				t.Fatalf("err = %#v", err)
			}
			if aws.calls() != 1 {
				t.Errorf("calls = %d, want 1", aws.calls())
			}
		})
	}
}

func TestCreateSessionReportsNetworkFailureAsRetryable(t *testing.T) {
	aws := newFakeAWS(t)
	url := aws.URL
	aws.Close()
	var rec recorder
	_, err := signer.New(rec.options(nil)).CreateSession(context.Background(), testInput(t, url))
	var te *signer.TransportError
	if !errors.As(err, &te) || !signer.Retryable(err) {
		t.Fatalf("err = %#v, want a retryable *TransportError", err)
	}
	if len(rec.waits) != 3 {
		t.Errorf("waits %v, want 3 retries", rec.waits)
	}
	if strings.Contains(err.Error(), "roleArn") {
		t.Errorf("error %q carries the query string", err)
	}
}

func TestCreateSessionStopsWhenTheContextEnds(t *testing.T) {
	aws := newFakeAWS(t, awsError(503, "", "x"), created("2026-11-25T06:30:00Z"))
	ctx, cancel := context.WithCancel(context.Background())
	opts := signer.Options{Sleep: func(context.Context, time.Duration) error { cancel(); return context.Canceled }}
	_, err := signer.New(opts).CreateSession(ctx, testInput(t, aws.URL))
	if err == nil || aws.calls() != 1 {
		t.Fatalf("err = %v, calls = %d; want the 503 after one call", err, aws.calls())
	}
}

func TestCreateSessionRejectsMalformedResponses(t *testing.T) {
	for name, step := range map[string]func(http.ResponseWriter){
		"not JSON":       func(w http.ResponseWriter) { w.WriteHeader(201); io.WriteString(w, "<html>") },
		"empty set":      func(w http.ResponseWriter) { w.WriteHeader(201); io.WriteString(w, `{"credentialSet":[]}`) },
		"bad expiration": created("tomorrow"),
		"missing secret": func(w http.ResponseWriter) {
			w.WriteHeader(201)
			io.WriteString(w, `{"credentialSet":[{"credentials":{"accessKeyId":"A","expiration":"2026-11-25T06:30:00Z"}}]}`)
		},
		"error without msg": func(w http.ResponseWriter) { w.WriteHeader(502) },
	} {
		t.Run(name, func(t *testing.T) {
			aws := newFakeAWS(t, step, step, step, step)
			var rec recorder
			_, err := signer.New(rec.options(nil)).CreateSession(context.Background(), testInput(t, aws.URL))
			var api *signer.APIError
			if !errors.As(err, &api) {
				t.Fatalf("err = %v, want *APIError", err)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Error("error leaks the secret")
			}
		})
	}
}

func TestValidateNamesTheBadField(t *testing.T) {
	base := func() signer.CreateSessionInput {
		in := testInput(t, "")
		in.AllowHTTP = false
		return in
	}
	cases := []struct {
		name string
		edit func(*signer.CreateSessionInput)
		want string
	}{
		{"malformed role", func(in *signer.CreateSessionInput) { in.RoleARN = "app" }, `signer: invalid role_arn: role_arn "app"`},
		{"region differs", func(in *signer.CreateSessionInput) { in.Region = "eu-west-1" }, `signer: invalid region: region "eu-west-1": differs from the trust anchor's region "us-east-1"`},
		{"profile in another region", func(in *signer.CreateSessionInput) {
			in.ProfileARN = strings.Replace(testProfile, "us-east-1", "eu-west-1", 1)
		}, `signer: invalid profile_arn: profile_arn "` + strings.Replace(testProfile, "us-east-1", "eu-west-1", 1) + `": region "eu-west-1" differs from the trust anchor's "us-east-1"`},
		{"too short", func(in *signer.CreateSessionInput) { in.DurationSeconds = 899 }, "signer: invalid duration_seconds: 899 is outside 900..43200 (15 minutes to 12 hours)"},
		{"too long", func(in *signer.CreateSessionInput) { in.DurationSeconds = 43201 }, "signer: invalid duration_seconds: 43201 is outside 900..43200 (15 minutes to 12 hours)"},
		{"session name", func(in *signer.CreateSessionInput) { in.RoleSessionName = "has space" }, `signer: invalid role_session_name: "has space" must be 2 to 64 characters of letters, digits and +=,.@_-`},
		{"plain http not loopback", func(in *signer.CreateSessionInput) { in.Endpoint = "http://emulator.internal:1" }, `signer: invalid endpoint: "http://emulator.internal:1" is plain http to a host that is not loopback; use https, or allow http explicitly (insecure_endpoint)`},
		{"other scheme", func(in *signer.CreateSessionInput) { in.Endpoint = "ftp://h" }, `signer: invalid endpoint: "ftp://h": scheme must be https`},
		{"no host", func(in *signer.CreateSessionInput) { in.Endpoint = "https:///x" }, `signer: invalid endpoint: "https:///x" has no host`},
		{"endpoint in another region", func(in *signer.CreateSessionInput) { in.Endpoint = "https://rolesanywhere.eu-west-1.amazonaws.com" }, `signer: invalid endpoint: "https://rolesanywhere.eu-west-1.amazonaws.com" is in region "eu-west-1", but the trust anchor is in "us-east-1"`},
		{"endpoint in China", func(in *signer.CreateSessionInput) { in.Endpoint = "https://rolesanywhere.us-east-1.amazonaws.com.cn" }, `signer: invalid endpoint: "https://rolesanywhere.us-east-1.amazonaws.com.cn" is not in the trust anchor's partition "aws"`},
		{"no certificate", func(in *signer.CreateSessionInput) { in.Identity.Leaf = nil }, "signer: invalid identity: signer: identity has no leaf certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			tc.edit(&in)
			err := in.Validate()
			var ie *signer.InputError
			if !errors.As(err, &ie) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant prefix %s", err, tc.want)
			}
			if signer.Retryable(err) {
				t.Error("input errors must not be retryable")
			}
		})
	}
	if err := base().Validate(); err != nil {
		t.Fatalf("valid input refused: %v", err)
	}
}

func TestSecretsNeverAppearInLogsOrErrors(t *testing.T) {
	aws := newFakeAWS(t, awsError(500, "InternalServerException", "x"), created("2026-11-25T06:30:00Z"))
	var logs bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: &logs})
	var rec recorder
	c, err := signer.New(rec.options(log)).CreateSession(context.Background(), testInput(t, aws.URL))
	if err != nil {
		t.Fatal(err)
	}
	text := logs.String() + fmt.Sprintf("%v %+v %#v %s", c, c, c, c)
	for _, secret := range []string{testSecret, testToken} {
		if strings.Contains(text, secret) {
			t.Fatalf("secret %q leaked:\n%s", secret[:8], text)
		}
	}
	if !strings.Contains(logs.String(), "CreateSession failed; retrying") {
		t.Errorf("expected a debug line per retry, got:\n%s", logs.String())
	}
}

func sha256Sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// A burst of 200 concurrent calls through the default client (a node-mode daemon's profiles after a mass
// rotation share it) opens at most MaxConnsPerHost connections, and the next burst reuses them: none is
// opened per call.
func TestDefaultHTTPClientReusesABoundedSetOfConnections(t *testing.T) {
	var opened atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(5 * time.Millisecond)
		_, _ = io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	client := signer.DefaultHTTPClient(false)
	burst := func() {
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := client.Get(srv.URL)
				if err != nil {
					errs <- err
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	burst()
	first := opened.Load()
	if first > signer.MaxConnsPerHost {
		t.Fatalf("200 concurrent calls opened %d connections, want at most %d", first, signer.MaxConnsPerHost)
	}
	burst()
	if again := opened.Load() - first; again != 0 {
		t.Fatalf("a second burst opened %d new connections; the first burst's %d should have been kept alive", again, first)
	}
	t.Logf("two bursts of 200 calls used %d connections", first)
}
