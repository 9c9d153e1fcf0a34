package signer_test

import (
	"bytes"
	"crypto"
	"crypto/dsa" //nolint:staticcheck // only to prove DSA keys are refused
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
)

// vectorTime is the date of the hand-written vectors in testdata.
var vectorTime = time.Date(2026, 11, 25, 5, 30, 0, 0, time.UTC)

const (
	vectorProfile     = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/p1"
	vectorRole        = "arn:aws:iam::123456789012:role/app"
	vectorTrustAnchor = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/ta1"
	vectorBody        = `{"durationSeconds":3600}`
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadCert(t testing.TB, name string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(readFile(t, name))
	if block == nil {
		t.Fatalf("%s: no PEM block", name)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func loadKey(t testing.TB, name string) crypto.Signer {
	t.Helper()
	block, _ := pem.Decode(readFile(t, name))
	if block == nil {
		t.Fatalf("%s: no PEM block", name)
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return k
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	t.Fatalf("%s: unexpected PEM type %q", name, block.Type)
	return nil
}

// vectorRequest builds the vectors' request the way a careless caller might: query parameters out of
// order and not escaped, so that canonicalization has work to do.
func vectorRequest(t *testing.T, base string) *http.Request {
	t.Helper()
	raw := base + "?trustAnchorArn=" + vectorTrustAnchor + "&roleArn=" + vectorRole + "&profileArn=" + vectorProfile
	req, err := http.NewRequest(http.MethodPost, raw, strings.NewReader(vectorBody))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "not signed/1.0")
	req.Header.Set("X-Amzn-Trace-Id", "Root=not-signed")
	return req
}

func TestSignRSAWithChainMatchesOpenSSLVector(t *testing.T) {
	id := signer.Identity{Leaf: loadCert(t, "rsa.pem"), Intermediates: []*x509.Certificate{loadCert(t, "int.pem")}, Key: loadKey(t, "rsa.key")}
	req := vectorRequest(t, "https://rolesanywhere.us-east-1.amazonaws.com/sessions")
	if err := signer.Sign(req, []byte(vectorBody), id, "us-east-1", vectorTime); err != nil {
		t.Fatal(err)
	}
	canonical, signed := signer.CanonicalRequest(req, []byte(vectorBody))
	if want := string(readFile(t, "rsa_chain.creq")); canonical != want {
		t.Errorf("canonical request:\n%s\nwant (testdata/rsa_chain.creq):\n%s", canonical, want)
	}
	sts := signer.StringToSign(signer.AlgorithmRSA, vectorTime, signer.Scope(vectorTime, "us-east-1"), canonical)
	if want := string(readFile(t, "rsa_chain.sts")); sts != want {
		t.Errorf("string to sign:\n%s\nwant:\n%s", sts, want)
	}
	wantAuth := "AWS4-X509-RSA-SHA256 Credential=11111822610015/20261125/us-east-1/rolesanywhere/aws4_request, " +
		"SignedHeaders=content-type;host;x-amz-date;x-amz-x509;x-amz-x509-chain, Signature=" + string(readFile(t, "rsa_chain.sig.hex"))
	if got := req.Header.Get("Authorization"); got != wantAuth {
		t.Errorf("Authorization:\n%s\nwant:\n%s", got, wantAuth)
	}
	if signed != "content-type;host;x-amz-date;x-amz-x509;x-amz-x509-chain" {
		t.Errorf("signed headers %q", signed)
	}
	if got := req.Header.Get("X-Amz-Date"); got != "20261125T053000Z" {
		t.Errorf("X-Amz-Date %q", got)
	}
}

func derB64(t *testing.T, name string) string {
	t.Helper()
	return base64.StdEncoding.EncodeToString(loadCert(t, name).Raw)
}

func TestSignSetsCertificateHeaders(t *testing.T) {
	id := signer.Identity{Leaf: loadCert(t, "rsa.pem"), Intermediates: []*x509.Certificate{loadCert(t, "int.pem"), loadCert(t, "ca.pem")}, Key: loadKey(t, "rsa.key")}
	req := vectorRequest(t, "https://rolesanywhere.us-east-1.amazonaws.com/sessions")
	if err := signer.Sign(req, []byte(vectorBody), id, "us-east-1", vectorTime); err != nil {
		t.Fatal(err)
	}
	if got, want := req.Header.Get("X-Amz-X509"), derB64(t, "rsa.pem"); got != want {
		t.Errorf("X-Amz-X509 = %q, want the leaf's DER in standard base64", got)
	}
	if got, want := req.Header.Get("X-Amz-X509-Chain"), derB64(t, "int.pem")+","+derB64(t, "ca.pem"); got != want {
		t.Errorf("X-Amz-X509-Chain = %q, want %q", got, want)
	}

	// Without intermediates the header is absent, also when the request carried a stale one.
	id.Intermediates = nil
	if err := signer.Sign(req, []byte(vectorBody), id, "us-east-1", vectorTime); err != nil {
		t.Fatal(err)
	}
	if _, ok := req.Header["X-Amz-X509-Chain"]; ok {
		t.Error("X-Amz-X509-Chain sent without intermediates")
	}
	if !strings.Contains(req.Header.Get("Authorization"), "SignedHeaders=content-type;host;x-amz-date;x-amz-x509, ") {
		t.Errorf("Authorization %q signs the wrong headers", req.Header.Get("Authorization"))
	}
}

func TestSignP256VerifiesAgainstHandWrittenStringToSign(t *testing.T) {
	id := signer.Identity{Leaf: loadCert(t, "p256.pem"), Key: loadKey(t, "p256.key")}
	// An endpoint with a port and a path prefix: the Host header keeps the port, the canonical URI stays /sessions.
	req := vectorRequest(t, "http://127.0.0.1:8443/prefix/sessions")
	if err := signer.Sign(req, []byte(vectorBody), id, "us-east-1", vectorTime); err != nil {
		t.Fatal(err)
	}
	canonical, _ := signer.CanonicalRequest(req, []byte(vectorBody))
	if want := string(readFile(t, "p256.creq")); canonical != want {
		t.Errorf("canonical request:\n%s\nwant (testdata/p256.creq):\n%s", canonical, want)
	}
	sts := readFile(t, "p256.sts")
	sig := signatureOf(t, req, "AWS4-X509-ECDSA-SHA256 Credential=4660/20261125/us-east-1/rolesanywhere/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-x509, Signature=")
	digest := sha256.Sum256(sts)
	if !ecdsa.VerifyASN1(id.Leaf.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatal("ECDSA signature does not verify over testdata/p256.sts with the leaf's public key")
	}
	opensslVerify(t, id.Leaf, sts, sig)
}

func TestSignP384UsesSHA256AndDecimalSerial(t *testing.T) {
	id := signer.Identity{Leaf: loadCert(t, "p384.pem"), Intermediates: []*x509.Certificate{loadCert(t, "int.pem")}, Key: loadKey(t, "p384.key")}
	req := vectorRequest(t, "https://rolesanywhere.us-east-1.amazonaws.com")
	if err := signer.Sign(req, []byte(vectorBody), id, "us-east-1", vectorTime); err != nil {
		t.Fatal(err)
	}
	// 0x7fffffffffffffffffff = 604462909807314587353087.
	sig := signatureOf(t, req, "AWS4-X509-ECDSA-SHA256 Credential=604462909807314587353087/20261125/us-east-1/rolesanywhere/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-x509;x-amz-x509-chain, Signature=")
	canonical, _ := signer.CanonicalRequest(req, []byte(vectorBody))
	sts := signer.StringToSign(signer.AlgorithmECDSA, vectorTime, "20261125/us-east-1/rolesanywhere/aws4_request", canonical)
	digest := sha256.Sum256([]byte(sts))
	if !ecdsa.VerifyASN1(id.Leaf.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatal("P-384 signature does not verify over SHA-256 of the string to sign")
	}
	opensslVerify(t, id.Leaf, []byte(sts), sig)
}

// signatureOf checks that the Authorization header starts with prefix and returns the decoded signature.
func signatureOf(t *testing.T, req *http.Request, prefix string) []byte {
	t.Helper()
	auth := req.Header.Get("Authorization")
	if !strings.HasPrefix(auth, prefix) {
		t.Fatalf("Authorization:\n%s\nwant prefix:\n%s", auth, prefix)
	}
	hexSig := strings.TrimPrefix(auth, prefix)
	if hexSig != strings.ToLower(hexSig) {
		t.Errorf("signature %q is not lower-case hex", hexSig)
	}
	sig, err := hex.DecodeString(hexSig)
	if err != nil {
		t.Fatalf("signature is not hex: %v", err)
	}
	return sig
}

// opensslVerify checks sig over data with the openssl command line, an implementation independent of Go's.
func opensslVerify(t *testing.T, leaf *x509.Certificate, data, sig []byte) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Log("openssl not installed; skipping the cross-check")
		return
	}
	dir := t.TempDir()
	pub, err := x509.MarshalPKIXPublicKey(leaf.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pubPath := write("pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	out, err := exec.Command("openssl", "dgst", "-sha256", "-verify", pubPath, "-signature", write("sig", sig), write("data", data)).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("Verified OK")) {
		t.Fatalf("openssl dgst -verify: %v: %s", err, out)
	}
}

func TestAlgorithmAcceptsOnlyWhatAWSAccepts(t *testing.T) {
	rsaKey := func(bits int) crypto.Signer {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	ecKey := func(c elliptic.Curve) crypto.Signer {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	cases := []struct {
		name    string
		key     any
		want    string
		wantErr string
	}{
		{"RSA-2048", rsaKey(2048), signer.AlgorithmRSA, ""},
		{"RSA-3072", rsaKey(3072), signer.AlgorithmRSA, ""},
		{"RSA-4096 public key", rsaKey(4096).Public(), signer.AlgorithmRSA, ""},
		{"RSA-1024 too short", rsaKey(1024), "", "unsupported private key RSA-1024: RSA keys must have 2048 to 4096 bits"},
		{"P-256", ecKey(elliptic.P256()), signer.AlgorithmECDSA, ""},
		{"P-384", ecKey(elliptic.P384()), signer.AlgorithmECDSA, ""},
		{"P-224", ecKey(elliptic.P224()), "", "unsupported private key ECDSA P-224: only the P-256 and P-384 curves are accepted"},
		{"P-521", ecKey(elliptic.P521()), "", "unsupported private key ECDSA P-521: only the P-256 and P-384 curves are accepted"},
		{"Ed25519", edKey, "", "unsupported private key Ed25519: Roles Anywhere accepts RSA and ECDSA (P-256, P-384) keys only"},
		{"DSA", &dsa.PublicKey{}, "", "unsupported private key *dsa.PublicKey: Roles Anywhere accepts RSA and ECDSA (P-256, P-384) keys only"},
		{"nil", nil, "", "unsupported private key <nil>: no key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := signer.Algorithm(tc.key)
			if tc.wantErr != "" {
				var ke *signer.KeyError
				if !errors.As(err, &ke) || err.Error() != "signer: "+tc.wantErr {
					t.Fatalf("err = %v, want *KeyError %q", err, "signer: "+tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Algorithm = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestSignRefusesAKeyThatIsNotTheLeafs(t *testing.T) {
	id := signer.Identity{Leaf: loadCert(t, "p256.pem"), Key: loadKey(t, "p384.key")}
	err := signer.Sign(vectorRequest(t, "https://x.example"), nil, id, "us-east-1", vectorTime)
	if err == nil || !strings.Contains(err.Error(), "the private key does not belong to the certificate (serial 4660") {
		t.Fatalf("err = %v", err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	id.Key = edKey
	if err := signer.Sign(vectorRequest(t, "https://x.example"), nil, id, "us-east-1", vectorTime); err == nil || !strings.Contains(err.Error(), "Ed25519") {
		t.Fatalf("Ed25519 key: err = %v", err)
	}
}

func TestEscapeIsRFC3986(t *testing.T) {
	cases := map[string]string{
		"AZaz09-_.~":   "AZaz09-_.~",
		"a b":          "a%20b",
		"arn:aws:x/y":  "arn%3Aaws%3Ax%2Fy",
		"+=&?#%":       "%2B%3D%26%3F%23%25",
		"é":            "%C3%A9",
		"*":            "%2A",
		"role/a,b@c.d": "role%2Fa%2Cb%40c.d",
	}
	for in, want := range cases {
		if got := signer.Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCanonicalQuerySortsByNameThenValue(t *testing.T) {
	q := url.Values{"b": {"2", "1"}, "a": {"x y"}, "B": {"z"}}
	if got, want := signer.CanonicalQuery(q), "B=z&a=x%20y&b=1&b=2"; got != want {
		t.Errorf("CanonicalQuery = %q, want %q", got, want)
	}
}

func TestCanonicalHeadersTrimAndCollapseSpaces(t *testing.T) {
	req, _ := http.NewRequest(http.MethodPost, "https://h.example/sessions", nil)
	req.Header.Set("X-Custom", "  a   b  c ")
	req.Header.Set("Content-Length", "12")
	canonical, signed := signer.CanonicalRequest(req, nil)
	if !strings.Contains(canonical, "\nhost:h.example\nx-custom:a b c\n\n") {
		t.Errorf("canonical request:\n%s", canonical)
	}
	if signed != "host;x-custom" {
		t.Errorf("signed headers %q: Content-Length must not be signed", signed)
	}
	// SHA-256 of the empty body, from `printf '' | sha256sum`.
	if !strings.HasSuffix(canonical, "\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") {
		t.Errorf("payload hash of the empty body wrong:\n%s", canonical)
	}
}
