package emulator_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/hashicorp/go-hclog"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
)

const (
	account     = "123456789012"
	trustAnchor = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0f0e0d0c-0b0a-4909-8807-060504030201"
	profile     = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/01020304-0506-4708-8900-0a0b0c0d0e0f"
	profileName = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/11020304-0506-4708-8900-0a0b0c0d0e0f"
	role        = "arn:aws:iam::123456789012:role/app"
	otherRole   = "arn:aws:iam::123456789012:role/other"
	jwtRole     = "arn:aws:iam::123456789012:role/jwt-app"
)

var appID = spiffeid.RequireFromString("spiffe://example.org/ns/prod/app")

type world struct {
	ca  *svidtest.CA
	emu *emulator.Server
	log *strings.Builder
	mu  *sync.Mutex
}

func newWorld(t testing.TB, caOpts svidtest.CAOptions) *world {
	t.Helper()
	ca, err := svidtest.NewCA(caOpts)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca.BundlePEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), ca.JWKS(), 0o600); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`
account_id = %q
trust_anchor %q {
  ca_bundle_file = "ca.pem"
}
profile %q {
  role_arns        = [%q, %q]
  duration_seconds = 7200
}
profile %q {
  role_arns                = [%q]
  accept_role_session_name = true
}
role %q {
  condition {
    tag    = "x509SAN/URI"
    values = ["spiffe://example.org/ns/prod/*"]
  }
  condition {
    tag    = "x509Subject/O"
    values = ["SPIRE"]
  }
}
role %q {
  condition {
    tag    = "x509SAN/URI"
    values = ["spiffe://example.org/ns/staging/*"]
  }
}
role %q {
  web_identity {
    audiences = ["sts.amazonaws.com"]
    subjects  = ["spiffe://example.org/ns/prod/*"]
  }
}
jwt_bundle {
  jwks_file = "jwks.json"
}
`, account, trustAnchor, profile, role, otherRole, profileName, role, role, otherRole, jwtRole)
	path := filepath.Join(dir, "emulator.hcl")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := emulator.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{ca: ca, log: &strings.Builder{}, mu: &sync.Mutex{}}
	logger := hclog.New(&hclog.LoggerOptions{Output: lockedWriter{w.mu, w.log}, Level: hclog.Trace})
	w.emu, err = emulator.NewServer(emulator.Options{Config: cfg, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.emu.Close() })
	return w
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (w *world) logs() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.log.String()
}

func (w *world) mint(t testing.TB, id spiffeid.ID, o svidtest.MintOptions) signer.Identity {
	t.Helper()
	s, err := w.ca.MintX509SVID(id, o)
	if err != nil {
		t.Fatal(err)
	}
	return signer.Identity{Leaf: s.Certificates[0], Intermediates: s.Certificates[1:], Key: s.PrivateKey}
}

func (w *world) input(id signer.Identity) signer.CreateSessionInput {
	return signer.CreateSessionInput{Identity: id, TrustAnchorARN: trustAnchor, ProfileARN: profile, RoleARN: role,
		Endpoint: w.emu.URL, AllowHTTP: true}
}

func client() *signer.Client {
	return signer.New(signer.Options{Retry: signer.RetryPolicy{MaxAttempts: 1}})
}

// callerIdentity runs aws-sdk-go-v2's STS GetCallerIdentity against the emulator with c.
func (w *world) callerIdentity(ctx context.Context, c creds.Credentials) (*sts.GetCallerIdentityOutput, error) {
	cl := sts.New(sts.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(w.emu.URL),
		Credentials:  awscreds.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken),
	})
	return cl.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
}

func TestRoundTripKeyTypesAndChains(t *testing.T) {
	ctx := context.Background()
	for _, kt := range []svidtest.KeyType{svidtest.KeyTypeRSA2048, svidtest.KeyTypeEC256, svidtest.KeyTypeEC384} {
		for _, inter := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/intermediate=%v", kt, inter), func(t *testing.T) {
				w := newWorld(t, svidtest.CAOptions{Intermediate: inter})
				id := w.mint(t, appID, svidtest.MintOptions{KeyType: kt})
				c, err := client().CreateSession(ctx, w.input(id))
				if err != nil {
					t.Fatal(err)
				}
				out, err := w.callerIdentity(ctx, c)
				if err != nil {
					t.Fatal(err)
				}
				want := fmt.Sprintf("arn:aws:sts::%s:assumed-role/app/%x", account, id.Leaf.SerialNumber)
				if aws.ToString(out.Arn) != want || aws.ToString(out.Account) != account {
					t.Fatalf("GetCallerIdentity = %s (%s), want %s", aws.ToString(out.Arn), aws.ToString(out.Account), want)
				}
				if c.AssumedRoleARN != want {
					t.Fatalf("CreateSession assumed role %s", c.AssumedRoleARN)
				}
				if d := time.Until(c.Expiration); d < 59*time.Minute || d > 61*time.Minute {
					t.Fatalf("default session lasts %s, want 1h", d)
				}
				for _, secret := range []string{c.SecretAccessKey, c.SessionToken} {
					if strings.Contains(w.logs(), secret) {
						t.Fatal("emulator log contains a secret")
					}
				}
			})
		}
	}
}

func TestRejections(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, svidtest.CAOptions{})
	stranger, _ := svidtest.NewCA(svidtest.CAOptions{})
	good := func() signer.Identity { return w.mint(t, appID, svidtest.MintOptions{}) }
	for _, tc := range []struct {
		name    string
		in      func() signer.CreateSessionInput
		status  int
		typ     string
		message string
	}{
		{"untrusted CA", func() signer.CreateSessionInput {
			s, _ := stranger.MintX509SVID(appID, svidtest.MintOptions{})
			return w.input(signer.Identity{Leaf: s.Certificates[0], Key: s.PrivateKey})
		}, 403, "AccessDeniedException", "does not chain to trust anchor"},
		{"expired leaf", func() signer.CreateSessionInput {
			return w.input(w.mint(t, appID, svidtest.MintOptions{NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}))
		}, 403, "AccessDeniedException", "not valid at"},
		{"CA leaf", func() signer.CreateSessionInput {
			return w.input(w.mint(t, appID, svidtest.MintOptions{IsCA: true}))
		}, 403, "AccessDeniedException", "is a CA certificate"},
		{"no digitalSignature", func() signer.CreateSessionInput {
			return w.input(w.mint(t, appID, svidtest.MintOptions{KeyUsage: x509.KeyUsageKeyEncipherment}))
		}, 403, "AccessDeniedException", "digitalSignature"},
		{"role outside the profile", func() signer.CreateSessionInput {
			in := w.input(good())
			in.RoleARN = jwtRole
			return in
		}, 403, "AccessDeniedException", "is not one of profile"},
		{"SPIFFE ID outside the role's condition", func() signer.CreateSessionInput {
			return w.input(w.mint(t, spiffeid.RequireFromString("spiffe://example.org/ns/dev/app"), svidtest.MintOptions{}))
		}, 403, "AccessDeniedException", `aws:PrincipalTag/x509SAN/URI is "spiffe://example.org/ns/dev/app"`},
		{"another role's condition", func() signer.CreateSessionInput {
			in := w.input(good())
			in.RoleARN = otherRole
			return in
		}, 403, "AccessDeniedException", "ns/staging"},
		{"unknown trust anchor", func() signer.CreateSessionInput {
			in := w.input(good())
			in.TrustAnchorARN = strings.Replace(trustAnchor, "0f0e", "aaaa", 1)
			return in
		}, 404, "ResourceNotFoundException", "trust anchor"},
		{"unknown profile", func() signer.CreateSessionInput {
			in := w.input(good())
			in.ProfileARN = strings.Replace(profile, "0102", "aaaa", 1)
			return in
		}, 404, "ResourceNotFoundException", "profile"},
		{"session name not accepted", func() signer.CreateSessionInput {
			in := w.input(good())
			in.RoleSessionName = "custom"
			return in
		}, 403, "AccessDeniedException", "does not accept a role session name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client().CreateSession(ctx, tc.in())
			var ae *signer.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want *signer.APIError", err)
			}
			if ae.StatusCode != tc.status || ae.Type != tc.typ || !strings.Contains(ae.Message, tc.message) {
				t.Fatalf("got %d %s %q; want %d %s mentioning %q", ae.StatusCode, ae.Type, ae.Message, tc.status, tc.typ, tc.message)
			}
			if ae.RequestID == "" {
				t.Error("no x-amzn-RequestId")
			}
		})
	}
}

// TestDurationAndSessionName posts bodies the signer would refuse to send, signed correctly.
func TestDurationAndSessionName(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, svidtest.CAOptions{})
	id := w.mint(t, appID, svidtest.MintOptions{})

	in := w.input(id)
	in.ProfileARN, in.RoleSessionName = profileName, "batch-job@42"
	c, err := client().CreateSession(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(c.AssumedRoleARN, "/app/batch-job@42") {
		t.Fatalf("assumed role %s", c.AssumedRoleARN)
	}
	// The profile caps the duration: 12h asked, 2h given.
	in = w.input(id)
	in.DurationSeconds = 43200
	c, err = client().CreateSession(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(c.Expiration); d > 2*time.Hour+time.Minute || d < 2*time.Hour-time.Minute {
		t.Fatalf("duration %s, want the profile's 2h", d)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"durationSeconds":899}`, "durationSeconds 899 is outside 900..43200"},
		{`{"durationSeconds":43201}`, "durationSeconds 43201 is outside 900..43200"},
		{`{"durationSeconds":"1h"}`, "not valid CreateSession JSON"},
		{`{"roleSessionName":"a"}`, "roleSessionName \"a\" must be 2-64"},
		{`{"roleSessionName":"has space"}`, "must be 2-64"},
		{`{"unknown":1}`, "not valid CreateSession JSON"},
	} {
		code, typ, msg := postSigned(t, w, profileName, id, tc.body)
		if code != 400 || typ != "ValidationException" || !strings.Contains(msg, tc.want) {
			t.Errorf("body %s: got %d %s %q, want 400 ValidationException %q", tc.body, code, typ, msg, tc.want)
		}
	}
}

// postSigned signs body with the signer's low-level Sign (so the signature is right) and posts it raw.
func postSigned(t *testing.T, w *world, prof string, id signer.Identity, body string) (int, string, string) {
	t.Helper()
	q := fmt.Sprintf("profileArn=%s&roleArn=%s&trustAnchorArn=%s", escape(prof), escape(role), escape(trustAnchor))
	req, _ := http.NewRequest("POST", w.emu.URL+"/sessions?"+q, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if err := signer.Sign(req, []byte(body), id, "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct{ Message string }
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), m.Message
}

func escape(s string) string { return signer.Escape(s) }

func TestClockSkewAndExpiry(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, svidtest.CAOptions{})
	id := w.mint(t, appID, svidtest.MintOptions{})
	c, err := client().CreateSession(ctx, w.input(id))
	if err != nil {
		t.Fatal(err)
	}
	// The emulator's clock runs 6 minutes ahead: the request date is out of skew.
	w.emu.SetClock(func() time.Time { return time.Now().Add(6 * time.Minute) })
	_, err = client().CreateSession(ctx, w.input(id))
	var ae *signer.APIError
	if !errors.As(err, &ae) || !strings.Contains(ae.Message, "5 minutes") {
		t.Fatalf("skewed request: %v", err)
	}
	// Credentials stop working at their expiry, with STS's ExpiredToken.
	w.emu.SetClock(func() time.Time { return c.Expiration.Add(time.Second) })
	_, err = w.callerIdentity(ctx, c)
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "ExpiredToken" {
		t.Fatalf("expired credentials: %v", err)
	}
	w.emu.SetClock(time.Now)
	// Unknown key, and a wrong secret.
	bad := c
	bad.AccessKeyID = "ASIAAAAAAAAAAAAAAAAA"
	if _, err := w.callerIdentity(ctx, bad); !errors.As(err, &api) || api.ErrorCode() != "InvalidClientTokenId" {
		t.Fatalf("unknown key: %v", err)
	}
	bad = c
	bad.SecretAccessKey = strings.Repeat("x", 40)
	if _, err := w.callerIdentity(ctx, bad); !errors.As(err, &api) || api.ErrorCode() != "SignatureDoesNotMatch" {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := w.callerIdentity(ctx, c); err != nil {
		t.Fatalf("good credentials: %v", err)
	}
}

func TestQuotaAndFaults(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, svidtest.CAOptions{})
	id := w.mint(t, appID, svidtest.MintOptions{})
	frozen := time.Now()
	w.emu.SetClock(func() time.Time { return frozen })
	for i := 0; i < 10; i++ {
		if _, err := client().CreateSession(ctx, w.input(id)); err != nil {
			t.Fatalf("call %d within quota: %v", i, err)
		}
	}
	_, err := client().CreateSession(ctx, w.input(id))
	var ae *signer.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 429 || ae.Type != "ThrottlingException" || !ae.Throttled() {
		t.Fatalf("11th call in one second: %v", err)
	}
	w.emu.SetClock(func() time.Time { return frozen.Add(time.Second) })
	if _, err := client().CreateSession(ctx, w.input(id)); err != nil {
		t.Fatalf("after a second: %v", err)
	}
	w.emu.SetClock(time.Now)

	w.emu.FailNext(2, 500, "InternalServerException")
	for i := 0; i < 2; i++ {
		if _, err := client().CreateSession(ctx, w.input(id)); !errors.As(err, &ae) || ae.StatusCode != 500 || !ae.Retryable() {
			t.Fatalf("injected fault %d: %v", i, err)
		}
	}
	if _, err := client().CreateSession(ctx, w.input(id)); err != nil {
		t.Fatalf("after the faults: %v", err)
	}
	// The same through the admin endpoint, as the binary's users do.
	resp, err := http.Post(w.emu.URL+"/_emulator/fail?n=1&status=503", "", nil)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("admin fail: %v %v", resp, err)
	}
	if _, err := client().CreateSession(ctx, w.input(id)); !errors.As(err, &ae) || ae.StatusCode != 503 || ae.Type != "InternalServerException" {
		t.Fatalf("admin-injected fault: %v", err)
	}
	resp, err = http.Get(w.emu.URL + "/_emulator/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st emulator.Stats
	_ = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Throttled != 1 || st.Injected != 3 || st.CreateSessionOK != 12 {
		t.Fatalf("stats %+v", st)
	}
	// Latency.
	w.emu.SetLatency(150 * time.Millisecond)
	start := time.Now()
	if _, err := client().CreateSession(ctx, w.input(id)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("latency not applied: %s", d)
	}
}

func TestAssumeRoleWithWebIdentity(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, svidtest.CAOptions{})
	cl := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(w.emu.URL)})
	token, err := w.ca.MintJWTSVID(appID, []string{"sts.amazonaws.com"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cl.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(jwtRole), RoleSessionName: aws.String("example.org@ns.prod.app"), WebIdentityToken: aws.String(token),
	})
	if err != nil {
		t.Fatal(err)
	}
	c := creds.Credentials{AccessKeyID: *out.Credentials.AccessKeyId, SecretAccessKey: *out.Credentials.SecretAccessKey,
		SessionToken: *out.Credentials.SessionToken, Expiration: *out.Credentials.Expiration}
	id, err := w.callerIdentity(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(id.Arn); got != "arn:aws:sts::123456789012:assumed-role/jwt-app/example.org@ns.prod.app" {
		t.Fatalf("arn %s", got)
	}
	var api smithy.APIError
	for _, tc := range []struct {
		name, role, token, code string
	}{
		{"wrong audience", jwtRole, mustJWT(t, w.ca, appID, "other"), "AccessDenied"},
		{"wrong subject", jwtRole, mustJWT(t, w.ca, spiffeid.RequireFromString("spiffe://example.org/ns/dev/x"), "sts.amazonaws.com"), "AccessDenied"},
		{"role without web identity", role, token, "AccessDenied"},
		{"foreign signer", jwtRole, func() string {
			o, _ := svidtest.NewCA(svidtest.CAOptions{})
			return mustJWT(t, o, appID, "sts.amazonaws.com")
		}(), "InvalidIdentityToken"},
		{"garbage", jwtRole, "not.a.jwt", "InvalidIdentityToken"},
	} {
		_, err := cl.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
			RoleArn: aws.String(tc.role), RoleSessionName: aws.String("s1"), WebIdentityToken: aws.String(tc.token),
		})
		if !errors.As(err, &api) || api.ErrorCode() != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
}

func mustJWT(t *testing.T, ca *svidtest.CA, id spiffeid.ID, aud string) string {
	tok, err := ca.MintJWTSVID(id, []string{aud}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ src, want string }{
		{`account_id = "12"`, `account_id "12" is not 12 digits`},
		{`account_id = "123456789012"` + "\nbogus = 1", `x.hcl:2:1: Unsupported argument`},
		{`account_id = "123456789012"` + "\n" + `trust_anchor "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/x" {` + "\nca_bundle_file = \"ca.pem\"\n}", `is not a UUID`},
		{`account_id = "123456789012"` + "\n" + `trust_anchor "` + trustAnchor + `" {` + "\nca_bundle_file = \"missing.pem\"\n}", `missing.pem`},
		{`account_id = "123456789012"` + "\n" + `profile "` + profile + `" {` + "\nrole_arns = [\"arn:aws:iam::123456789012:user/x\"]\n}", `is not a role`},
		{`account_id = "123456789012"` + "\n" + `profile "` + profile + `" {` + "\nrole_arns = []\nduration_seconds = 100\n}", `duration_seconds 100 is outside 900..43200`},
		{`account_id = "123456789012"` + "\n" + `profile "` + profile + `" {` + "\nrole_arns = \"arn:aws:iam::123456789012:role/x\"\n}", `x.hcl:3:13: Invalid value for role_arns; list of string required, but have string`},
		{`account_id = "123456789012"` + "\n" + `profile "` + profile + `" {` + "\n}", `x.hcl:2:101: Missing required argument`},
		{`account_id = "123456789012"` + "\n" + `profile "` + profile + `" {` + "\n}", `Missing required argument`},
		{`account_id = "123456789012"` + "\njwt_bundle {\njwks = \"{}\"\n}\njwt_bundle {\n}", `x.hcl:5:1: Duplicate jwt_bundle block`},
		{`account_id = "123456789012"` + "\nrole \"arn:aws:iam::123456789012:role/a\" {\n  nope {}\n}", `x.hcl:3:3: Unsupported block type`},
		{`quota_per_second = "fast"` + "\naccount_id = \"123456789012\"", `x.hcl:1:20: Invalid value for quota_per_second`},
	} {
		_, err := emulator.ParseConfig([]byte(tc.src), filepath.Join(dir, "x.hcl"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.src, err, tc.want)
		}
	}
}

// TestEmptyJWKSIsFatalOnlyWhenAJWTIsUsed: a jwt_bundle whose JWKS has no keys (an OIDC provider that has
// published none yet) loads while no role has web_identity, and is refused, naming the role, when one does.
func TestEmptyJWKSIsFatalOnlyWhenAJWTIsUsed(t *testing.T) {
	dir := t.TempDir()
	base := `account_id = "123456789012"` + "\njwt_bundle {\n  jwks = \"{\\\"keys\\\": []}\"\n}\n"
	if _, err := emulator.ParseConfig([]byte(base), filepath.Join(dir, "x.hcl")); err != nil {
		t.Fatalf("empty JWKS without web_identity: %v", err)
	}
	withJWT := base + `role "arn:aws:iam::123456789012:role/jwt" {` + "\n  web_identity {\n    audiences = [\"sts.amazonaws.com\"]\n    subjects = [\"spiffe://example.org/*\"]\n  }\n}\n"
	_, err := emulator.ParseConfig([]byte(withJWT), filepath.Join(dir, "x.hcl"))
	if err == nil || !strings.Contains(err.Error(), `jwt_bundle: the JWKS has no keys, and role "arn:aws:iam::123456789012:role/jwt" has web_identity`) {
		t.Fatalf("empty JWKS with web_identity: %v", err)
	}
}

func TestLoopbackOnly(t *testing.T) {
	cfg := &emulator.Config{AccountID: account}
	if _, err := emulator.NewServer(emulator.Options{Config: cfg, Addr: "0.0.0.0:0"}); err == nil || !strings.Contains(err.Error(), "non-loopback") {
		t.Fatalf("remote bind: %v", err)
	}
	s, err := emulator.NewServer(emulator.Options{Config: cfg, Addr: "0.0.0.0:0", AllowRemote: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

func BenchmarkCreateSession(b *testing.B) {
	for _, kt := range []svidtest.KeyType{svidtest.KeyTypeEC256, svidtest.KeyTypeRSA2048} {
		b.Run(kt.String(), func(b *testing.B) {
			w := newWorld(b, svidtest.CAOptions{})
			cfgQuota(w)
			id := w.mint(b, appID, svidtest.MintOptions{KeyType: kt})
			in := w.input(id)
			cl := client()
			ctx := context.Background()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := cl.CreateSession(ctx, in); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// cfgQuota lifts the quota for benchmarks.
func cfgQuota(w *world) { w.emu.SetQuota(-1) }
