package emulator

// Replays the request recorded in signer/testdata — canonical request written with printf, signature made
// by `openssl dgst -sha256 -sign` — so the emulator's verification is checked against bytes produced
// outside Go, not against our own signer.

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

const (
	vecTrustAnchor = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/ta1"
	vecProfile     = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/p1"
	vecRole        = "arn:aws:iam::123456789012:role/app"
	vecQuery       = "profileArn=arn%3Aaws%3Arolesanywhere%3Aus-east-1%3A123456789012%3Aprofile%2Fp1&roleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fapp&trustAnchorArn=arn%3Aaws%3Arolesanywhere%3Aus-east-1%3A123456789012%3Atrust-anchor%2Fta1"
	vecBody        = `{"durationSeconds":3600}`
)

var vecTime = time.Date(2026, 11, 25, 5, 30, 0, 0, time.UTC)

func readVec(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("../signer/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// vectorEmulator trusts signer/testdata/ca.pem, with the vector's (non-UUID) ARNs set directly.
func vectorEmulator(t *testing.T) *Emulator { return vectorEmulatorF(t) }

func vectorEmulatorF(t testing.TB) *Emulator {
	t.Helper()
	block, _ := pem.Decode([]byte(readVec(t, "ca.pem")))
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{Config: &Config{
		AccountID: "123456789012", QuotaPerSecond: -1,
		TrustAnchors: []*TrustAnchor{{ARN: vecTrustAnchor, Roots: []*x509.Certificate{root}}},
		Profiles:     []*Profile{{ARN: vecProfile, RoleARNs: []string{vecRole}, DurationSeconds: 3600}},
		Roles:        []*Role{{ARN: vecRole, Conditions: []*Condition{{Tag: "x509SAN/URI", Values: []string{"spiffe://example.org/ns/prod/*"}}}}},
	}, Clock: func() time.Time { return vecTime }})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// vectorRequest rebuilds the recorded RSA request with chain from the canonical request file.
func vectorRequest(t *testing.T) *http.Request { return vectorRequestF(t) }

func vectorRequestF(t testing.TB) *http.Request {
	t.Helper()
	lines := strings.Split(readVec(t, "rsa_chain.creq"), "\n")
	r := httptest.NewRequest("POST", "http://rolesanywhere.us-east-1.amazonaws.com/sessions?"+vecQuery, strings.NewReader(vecBody))
	r.Header = http.Header{}
	for _, l := range lines[3:8] {
		k, v, _ := strings.Cut(l, ":")
		if k != "host" {
			r.Header.Set(k, v)
		}
	}
	r.Header.Set("Authorization", "AWS4-X509-RSA-SHA256 Credential=11111822610015/20261125/us-east-1/rolesanywhere/aws4_request, "+
		"SignedHeaders=content-type;host;x-amz-date;x-amz-x509;x-amz-x509-chain, Signature="+strings.TrimSpace(readVec(t, "rsa_chain.sig.hex")))
	return r
}

func serve(e *Emulator, r *http.Request) (int, string, map[string]any) {
	w := httptest.NewRecorder()
	e.ServeHTTP(w, r)
	var body map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	return w.Code, w.Header().Get("x-amzn-ErrorType"), body
}

func TestReplayOpenSSLSignedRequest(t *testing.T) {
	e := vectorEmulator(t)
	code, typ, body := serve(e, vectorRequest(t))
	if code != 201 {
		t.Fatalf("recorded request refused: %d %s %v", code, typ, body)
	}
	set := body["credentialSet"].([]any)[0].(map[string]any)
	if got := set["assumedRoleUser"].(map[string]any)["arn"]; got != "arn:aws:sts::123456789012:assumed-role/app/a1b2c3d4e5f" {
		t.Errorf("assumed role ARN = %v (default session name is the serial in hex)", got)
	}
	c := set["credentials"].(map[string]any)
	if id := c["accessKeyId"].(string); len(id) != 20 || !strings.HasPrefix(id, "ASIA") || strings.ToUpper(id) != id {
		t.Errorf("access key id %q", id)
	}
	if s := c["secretAccessKey"].(string); len(s) != 40 {
		t.Errorf("secret length %d", len(s))
	}
	if exp := c["expiration"].(string); exp != "2026-11-25T06:30:00Z" {
		t.Errorf("expiration %s", exp)
	}
}

// TestReplayTampered changes one part of the recorded request at a time.
func TestReplayTampered(t *testing.T) {
	e := vectorEmulator(t)
	sig := "AccessDeniedException"
	for _, tc := range []struct {
		name    string
		mutate  func(r *http.Request)
		body    string
		typ     string
		message string
	}{
		{"content-type", func(r *http.Request) { r.Header.Set("Content-Type", "application/json; charset=utf-8") }, "", sig, "signature"},
		{"host", func(r *http.Request) { r.Host = "rolesanywhere.us-east-2.amazonaws.com" }, "", sig, "signature"},
		{"x-amz-date by a second", func(r *http.Request) { r.Header.Set("X-Amz-Date", "20261125T053001Z") }, "", sig, "signature"},
		{"x-amz-date out of skew", func(r *http.Request) { r.Header.Set("X-Amz-Date", "20261125T053600Z") }, "", sig, "5 minutes"},
		{"x-amz-date malformed", func(r *http.Request) { r.Header.Set("X-Amz-Date", "2026-11-25T05:30:00Z") }, "", sig, "format"},
		{"chain dropped", func(r *http.Request) { r.Header.Del("X-Amz-X509-Chain") }, "", sig, "x-amz-x509-chain is missing"},
		{"chain replaced", func(r *http.Request) { r.Header.Set("X-Amz-X509-Chain", r.Header.Get("X-Amz-X509")) }, "", sig, "signature"},
		{"leaf replaced", func(r *http.Request) { r.Header.Set("X-Amz-X509", base64PEM(t, "p256.pem")) }, "", sig, "serial number"},
		{"leaf garbage", func(r *http.Request) { r.Header.Set("X-Amz-X509", "not base64!") }, "", "ValidationException", "X-Amz-X509"},
		{"query value", func(r *http.Request) { r.URL.RawQuery = strings.Replace(vecQuery, "role%2Fapp", "role%2Fadmin", 1) }, "", sig, "signature"},
		{"query added", func(r *http.Request) { r.URL.RawQuery = vecQuery + "&x=1" }, "", sig, "signature"},
		{"body", nil, `{"durationSeconds":3601}`, sig, "signature"},
		{"serial in scope", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "11111822610015", "11111822610014", 1))
		}, "", sig, "serial number"},
		{"scope date", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/20261125/", "/20261124/", 1))
		}, "", sig, "scope date"},
		{"scope region", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/us-east-1/", "/us-west-2/", 1))
		}, "", sig, "signature"},
		{"algorithm", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "X509-RSA", "X509-ECDSA", 1))
		}, "", sig, "algorithm"},
		{"signature byte", func(r *http.Request) {
			a := r.Header.Get("Authorization")
			last := a[len(a)-1]
			flip := map[bool]string{true: "1", false: "0"}[last == '0']
			r.Header.Set("Authorization", a[:len(a)-1]+flip)
		}, "", sig, "signature"},
		{"unsigned chain", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), ";x-amz-x509-chain", "", 1))
		}, "", sig, "must be signed"},
		{"no authorization", func(r *http.Request) { r.Header.Del("Authorization") }, "", sig, "Authorization"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := vectorRequest(t)
			if tc.body != "" {
				r = httptest.NewRequest("POST", r.URL.String(), strings.NewReader(tc.body))
				r.Header = vectorRequest(t).Header
			}
			if tc.mutate != nil {
				tc.mutate(r)
			}
			code, typ, body := serve(e, r)
			msg, _ := body["message"].(string)
			if code == 201 || typ != tc.typ || !strings.Contains(msg, tc.message) {
				t.Fatalf("got %d %s %q; want %s mentioning %q", code, typ, msg, tc.typ, tc.message)
			}
		})
	}
}

func base64PEM(t *testing.T, name string) string {
	block, _ := pem.Decode([]byte(readVec(t, name)))
	return base64.StdEncoding.EncodeToString(block.Bytes)
}
