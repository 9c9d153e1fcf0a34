package emulator_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
)

// signedSTS builds an STS request whose SigV4 signature (aws-sdk-go-v2's signer) covers signedBody and
// the X-Amz-Content-Sha256 header contentSHA (when not empty), then sends sentBody in its place.
func signedSTS(t *testing.T, endpoint string, c creds.Credentials, contentSHA, signedBody, sentBody string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint+"/", strings.NewReader(sentBody))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	payload := contentSHA
	if payload == "" {
		sum := sha256.Sum256([]byte(signedBody))
		payload = hex.EncodeToString(sum[:])
	} else {
		req.Header.Set("X-Amz-Content-Sha256", contentSHA)
	}
	ac := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
	if err := v4.NewSigner().SignHTTP(context.Background(), ac, req, payload, "sts", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	return send(t, req)
}

// TestSecuritySTSRefusesUnsignedPayloadReplay: a signature made for GetCallerIdentity with
// X-Amz-Content-Sha256: UNSIGNED-PAYLOAD (one a proxy, a log or a debugging dump could reveal) must not
// carry an AssumeRole body into another account's role. The emulator used to take the header's word and
// return the other account's credentials.
func TestSecuritySTSRefusesUnsignedPayloadReplay(t *testing.T) {
	w := newWorld(t, svidtest.CAOptions{})
	c, err := client().CreateSession(context.Background(), w.input(w.mint(t, appID, svidtest.MintOptions{})))
	if err != nil {
		t.Fatal(err)
	}
	w.emu.SetSTSTrust(roleB, &emulator.STSTrust{Principals: []string{role}, SetSourceIdentity: true})
	identity := "Action=GetCallerIdentity&Version=2011-06-15"
	assume := url.Values{"Action": {"AssumeRole"}, "Version": {"2011-06-15"}, "RoleArn": {roleB}, "RoleSessionName": {"replayed"}}.Encode()

	// The legitimate requests still work: the body's hash in the header, or no header at all, and the
	// same AssumeRole signed for what it is.
	for name, sha := range map[string]string{"no header": "", "the body's hash": fmt.Sprintf("%x", sha256.Sum256([]byte(identity)))} {
		if code, body := signedSTS(t, w.emu.URL, c, sha, identity, identity); code != 200 {
			t.Fatalf("GetCallerIdentity with %s: %d %s", name, code, body)
		}
	}
	if code, body := signedSTS(t, w.emu.URL, c, "", assume, assume); code != 200 || !strings.Contains(body, "<AccessKeyId>") {
		t.Fatalf("AssumeRole signed for its own body: %d %s", code, body)
	}

	for _, tc := range []struct{ name, sha, want string }{
		{"UNSIGNED-PAYLOAD", "UNSIGNED-PAYLOAD", "UNSIGNED-PAYLOAD"},
		{"the hash of the signed GetCallerIdentity body", fmt.Sprintf("%x", sha256.Sum256([]byte(identity))), "XAmzContentSHA256Mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := signedSTS(t, w.emu.URL, c, tc.sha, identity, assume)
			if code == 200 || strings.Contains(body, "<AccessKeyId>") {
				t.Fatalf("a GetCallerIdentity signature replayed with an AssumeRole body got %d and credentials:\n%s", code, body)
			}
			if !strings.Contains(body, tc.want) {
				t.Fatalf("got %d %s, want an error naming %q", code, body, tc.want)
			}
		})
	}
	n := 0 // the one legitimate AssumeRole above
	for _, s := range w.emu.Sessions("") {
		if s.RoleArn == roleB {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d sessions of %s were issued, want only the legitimate one", n, roleB)
	}
}

// handSign signs a CreateSession request like signer.Sign, without its key checks: the way a client
// other than this project's would sign with a key Roles Anywhere refuses.
func handSign(t *testing.T, req *http.Request, body []byte, leaf *x509.Certificate, key crypto.Signer) {
	t.Helper()
	alg := signer.AlgorithmECDSA
	if _, ok := key.(*rsa.PrivateKey); ok {
		alg = signer.AlgorithmRSA
	}
	now := time.Now().UTC()
	req.Header.Set("X-Amz-Date", now.Format("20060102T150405Z"))
	req.Header.Set("X-Amz-X509", base64.StdEncoding.EncodeToString(leaf.Raw))
	req.Host = req.URL.Host
	canonical, signed := signer.CanonicalRequest(req, body)
	scope := now.Format("20060102") + "/us-east-1/rolesanywhere/aws4_request"
	digest := sha256.Sum256([]byte(signer.StringToSign(alg, now, scope, canonical)))
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", fmt.Sprintf("%s Credential=%s/%s, SignedHeaders=%s, Signature=%s",
		alg, leaf.SerialNumber, scope, signed, hex.EncodeToString(sig)))
}

// TestSecurityCreateSessionRefusesKeysAWSRefuses: leaves with RSA-1024, P-224 and P-521 keys, correctly
// signed and chaining to the trust anchor, get no credentials (AWS, the project's signer and `check`
// accept only RSA 2048-4096 and P-256/P-384); the same request with a P-256 or RSA-2048 leaf does.
func TestSecurityCreateSessionRefusesKeysAWSRefuses(t *testing.T) {
	ca := newHandCA(t, pkix.Name{CommonName: "ca"})
	s := handWorld(t, ca, "x509Subject/O", "SPIRE")
	for _, tc := range []struct {
		name string
		key  func() (crypto.Signer, error)
		want string // "" = issued
	}{
		{"P-256", func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }, ""},
		{"RSA-2048", func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) }, ""},
		{"RSA-1024", func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 1024) }, "RSA-1024"},
		{"P-224", func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P224(), rand.Reader) }, "P-224"},
		{"P-521", func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P521(), rand.Reader) }, "P-521"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := tc.key()
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse("spiffe://example.org/ns/prod/app")
			sn, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
			tmpl := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{Organization: []string{"SPIRE"}}, URIs: []*url.URL{u},
				NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true,
				KeyUsage: x509.KeyUsageDigitalSignature}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, k.Public(), ca.key)
			if err != nil {
				t.Fatal(err)
			}
			leaf, _ := x509.ParseCertificate(der)
			q := fmt.Sprintf("profileArn=%s&roleArn=%s&trustAnchorArn=%s", escape(profile),
				escape(fmt.Sprintf("arn:aws:iam::%s:role/r0", account)), escape(trustAnchor))
			body := []byte(`{"durationSeconds":900}`)
			req, _ := http.NewRequest(http.MethodPost, s.URL+"/sessions?"+q, strings.NewReader(string(body)))
			req.Header.Set("Content-Type", "application/json")
			handSign(t, req, body, leaf, k)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if tc.want == "" {
				if resp.StatusCode != http.StatusCreated {
					t.Fatalf("a %s leaf was refused (%d): %s", tc.name, resp.StatusCode, b)
				}
				return
			}
			if resp.StatusCode == http.StatusCreated || strings.Contains(string(b), "secretAccessKey") {
				t.Fatalf("a %s leaf got credentials: %s", tc.name, b)
			}
			if resp.StatusCode != 400 || !strings.Contains(string(b), tc.want) {
				t.Fatalf("got %d %s, want 400 naming %s", resp.StatusCode, b, tc.want)
			}
		})
	}
}
