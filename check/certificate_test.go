package check_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/check"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

type leafOpts struct {
	isCA     bool
	usage    x509.KeyUsage
	notAfter time.Time
	key      crypto.Signer
	signer   crypto.Signer
	parent   *x509.Certificate
	commonCN string
}

func mint(t *testing.T, o leafOpts) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	if o.key == nil {
		o.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if o.usage == 0 {
		o.usage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement
	}
	if o.notAfter.IsZero() {
		o.notAfter = now.Add(time.Hour)
	}
	u, _ := url.Parse("spiffe://example.org/ns/prod/app")
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42), Subject: pkix.Name{Country: []string{"US"}, Organization: []string{"SPIRE"}, CommonName: o.commonCN},
		NotBefore: now.Add(-time.Hour), NotAfter: o.notAfter, URIs: []*url.URL{u},
		BasicConstraintsValid: true, IsCA: o.isCA, KeyUsage: o.usage,
	}
	parent, signKey := o.parent, o.signer
	if parent == nil {
		parent, signKey = tmpl, o.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, o.key.Public(), signKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, o.key
}

func newCA(t *testing.T, cn string) (*x509.Certificate, crypto.Signer) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{Country: []string{"US"}, Organization: []string{"SPIFFE"}, CommonName: cn},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func TestCheckReportsEachProblem(t *testing.T) {
	ca, caKey := newCA(t, "root")
	otherCA, _ := newCA(t, "other root")
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	wrongKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cases := []struct {
		name  string
		opts  leafOpts
		roots []*x509.Certificate
		key   func(crypto.Signer) crypto.Signer
		want  []string
	}{
		{"SPIRE-shaped SVID passes", leafOpts{parent: ca, signer: caKey}, []*x509.Certificate{ca}, nil, nil},
		{"CA:true", leafOpts{isCA: true, usage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}, nil, nil,
			[]string{"basic constraints: the certificate is a CA (CA:TRUE); Roles Anywhere requires an end-entity certificate (CA:FALSE)"}},
		{"no digitalSignature", leafOpts{usage: x509.KeyUsageKeyEncipherment}, nil, nil,
			[]string{"key usage: digitalSignature is missing (key usage keyEncipherment); Roles Anywhere requires it"}},
		{"Ed25519", leafOpts{key: edKey}, nil, nil,
			[]string{"key type: unsupported private key Ed25519: Roles Anywhere accepts RSA and ECDSA (P-256, P-384) keys only"}},
		{"expired", leafOpts{notAfter: now.Add(-time.Minute)}, nil, nil,
			[]string{"validity: expired at 2026-11-25T11:59:00Z (now 2026-11-25T12:00:00Z)"}},
		{"untrusted CA", leafOpts{parent: ca, signer: caKey}, []*x509.Certificate{otherCA}, nil,
			[]string{"chain: does not chain to the trust anchor through the 0 intermediate(s) sent: x509: certificate signed by unknown authority"}},
		{"key of another certificate", leafOpts{}, nil, func(crypto.Signer) crypto.Signer { return wrongKey },
			[]string{"private key: the private key does not belong to the certificate (serial 42, subject \"O=SPIRE,C=US\")"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			leaf, key := mint(t, tc.opts)
			if tc.key != nil {
				key = tc.key(key)
			}
			var got []string
			for _, p := range check.Certificate(check.CertificateInput{Leaf: leaf, Key: key, Roots: tc.roots, Now: now}) {
				got = append(got, p.String())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestPrincipalTagsOfASPIREShapedSVID(t *testing.T) {
	ca, caKey := newCA(t, "root")
	leaf, _ := mint(t, leafOpts{parent: ca, signer: caKey})
	var got []string
	for _, tag := range check.PrincipalTags(leaf) {
		got = append(got, tag.Key+"="+tag.Value)
	}
	want := "x509Subject/O=SPIRE x509Subject/C=US x509Issuer/CN=root x509Issuer/O=SPIFFE x509Issuer/C=US x509SAN/URI=spiffe://example.org/ns/prod/app"
	if strings.Join(got, " ") != want {
		t.Errorf("tags %v\nwant %s", got, want)
	}
}

func TestTrustPolicyAdmitsTheSPIFFEIDThroughTheTrustAnchor(t *testing.T) {
	ta := "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0f0e0d0c-0b0a-4909-8807-060504030201"
	var p struct {
		Version   string
		Statement []struct {
			Effect    string
			Principal map[string]string
			Action    []string
			Condition map[string]map[string]string
		}
	}
	if err := json.Unmarshal([]byte(check.TrustPolicy(ta, "spiffe://example.org/app")), &p); err != nil {
		t.Fatal(err)
	}
	s := p.Statement[0]
	if p.Version != "2012-10-17" || s.Effect != "Allow" || s.Principal["Service"] != "rolesanywhere.amazonaws.com" ||
		strings.Join(s.Action, ",") != "sts:AssumeRole,sts:TagSession,sts:SetSourceIdentity" ||
		s.Condition["StringEquals"]["aws:PrincipalTag/x509SAN/URI"] != "spiffe://example.org/app" ||
		s.Condition["ArnEquals"]["aws:SourceArn"] != ta {
		t.Errorf("policy %+v", p)
	}
}

// TestTrustPolicyIsPasteable: the placeholders and ARNs are printed as written, not as \u003c escapes.
func TestTrustPolicyIsPasteable(t *testing.T) {
	got := check.TrustPolicy("", "spiffe://example.org/a&b")
	if strings.Contains(got, `\u00`) || !strings.Contains(got, `"arn:aws:rolesanywhere:<region>:<account>:trust-anchor/<id>"`) ||
		!strings.Contains(got, `"spiffe://example.org/a&b"`) || strings.HasSuffix(got, "\n") {
		t.Fatalf("policy:\n%s", got)
	}
}
