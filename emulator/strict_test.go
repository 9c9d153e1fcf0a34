package emulator_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
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
	"github.com/hashicorp/go-hclog"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/check"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
)

// stsCall signs an STS query request with aws-sdk-go-v2's own SigV4 signer for service and region, lets
// tamper change it after signing, and returns the status and body.
func stsCall(t *testing.T, url string, c creds.Credentials, service, region string, signToken bool, tamper func(*http.Request)) (int, string) {
	t.Helper()
	body := "Action=GetCallerIdentity&Version=2011-06-15"
	req, err := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	ac := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey}
	if signToken {
		ac.SessionToken = c.SessionToken
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), ac, req, hex.EncodeToString(sum[:]), service, region, time.Now()); err != nil {
		t.Fatal(err)
	}
	if tamper != nil {
		tamper(req)
	}
	return send(t, req)
}

// send sends req and returns the status and body of the answer.
func send(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestSecuritySTSVerifiesScopeAndSignedHeaders(t *testing.T) {
	w := newWorld(t, svidtest.CAOptions{})
	c, err := client().CreateSession(context.Background(), w.input(w.mint(t, appID, svidtest.MintOptions{})))
	if err != nil {
		t.Fatal(err)
	}
	if code, body := stsCall(t, w.emu.URL, c, "sts", "us-east-1", true, nil); code != 200 {
		t.Fatalf("a correctly signed request was refused (%d): %s", code, body)
	}
	for _, tc := range []struct {
		name, service, region string
		signToken             bool
		tamper                func(*http.Request)
		want                  string
	}{
		{"signed for another service", "iam", "us-east-1", true, nil, "scoped to correct service"},
		{"signed for another region", "sts", "eu-west-1", true, nil, "valid region"},
		{"x-amz-security-token sent but not signed", "sts", "us-east-1", false, func(r *http.Request) {
			r.Header.Set("X-Amz-Security-Token", c.SessionToken)
		}, "x-amz-security-token must be a signed header"},
		{"scope date is not X-Amz-Date's", "sts", "us-east-1", true, func(r *http.Request) {
			a := r.Header.Get("Authorization")
			d := r.Header.Get("X-Amz-Date")[:8]
			r.Header.Set("Authorization", strings.Replace(a, "/"+d+"/", "/20200101/", 1))
		}, "Date in Credential scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := stsCall(t, w.emu.URL, c, tc.service, tc.region, tc.signToken, tc.tamper)
			if code != 403 || !strings.Contains(body, "SignatureDoesNotMatch") || !strings.Contains(body, tc.want) {
				t.Fatalf("got %d %s, want 403 SignatureDoesNotMatch mentioning %q", code, body, tc.want)
			}
		})
	}
}

// handCA is a CA made with crypto/x509 directly, for certificate shapes svidtest does not make.
type handCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newHandCA(t *testing.T, subject pkix.Name) handCA {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: subject, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return handCA{c, k}
}

func (ca handCA) leaf(t *testing.T, ku x509.KeyUsage, extra []pkix.Extension) signer.Identity {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u, _ := url.Parse("spiffe://example.org/ns/prod/app")
	sn, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{Organization: []string{"SPIRE"}}, URIs: []*url.URL{u},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true,
		KeyUsage: ku, ExtraExtensions: extra}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, k.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return signer.Identity{Leaf: c, Key: k}
}

// handWorld is an emulator trusting ca, with one role per condition value on tag.
func handWorld(t *testing.T, ca handCA, tag string, values ...string) *emulator.Server {
	t.Helper()
	bundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
	src := fmt.Sprintf("account_id = %q\ntrust_anchor %q {\n  ca_bundle_pem = %q\n}\n", account, trustAnchor, bundle)
	var roles []string
	for i, v := range values {
		r := fmt.Sprintf("arn:aws:iam::%s:role/r%d", account, i)
		roles = append(roles, fmt.Sprintf("%q", r))
		src += fmt.Sprintf("role %q {\n  condition {\n    tag = %q\n    values = [%q]\n  }\n}\n", r, tag, v)
	}
	src += fmt.Sprintf("profile %q {\n  role_arns = [%s]\n}\n", profile, strings.Join(roles, ", "))
	cfg, err := emulator.ParseConfig([]byte(src), "hand.hcl")
	if err != nil {
		t.Fatal(err)
	}
	s, err := emulator.NewServer(emulator.Options{Config: cfg, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func createAs(s *emulator.Server, id signer.Identity, roleIndex int) error {
	_, err := client().CreateSession(context.Background(), signer.CreateSessionInput{Identity: id, TrustAnchorARN: trustAnchor,
		ProfileARN: profile, RoleARN: fmt.Sprintf("arn:aws:iam::%s:role/r%d", account, roleIndex), Endpoint: s.URL, AllowHTTP: true})
	return err
}

// TestIssuerOUConditionSameInCheckAndEmulator: the value `check` prints for aws:PrincipalTag/x509Issuer/OU
// (two OUs, AWS's multi-value rule) is the value the emulator's trust policy condition matches.
func TestIssuerOUConditionSameInCheckAndEmulator(t *testing.T) {
	ca := newHandCA(t, pkix.Name{CommonName: "issuing", OrganizationalUnit: []string{"platform", "security"}})
	id := ca.leaf(t, x509.KeyUsageDigitalSignature, nil)
	var shown string
	for _, tag := range check.PrincipalTags(id.Leaf) {
		if tag.Key == "x509Issuer/OU" {
			shown = tag.Value
		}
	}
	if shown == "" {
		t.Fatalf("check shows no x509Issuer/OU tag: %v", check.PrincipalTags(id.Leaf))
	}
	s := handWorld(t, ca, "x509Issuer/OU", shown, "platform-other")
	if err := createAs(s, id, 0); err != nil {
		t.Fatalf("a role whose condition is check's x509Issuer/OU value %q refused the certificate: %v", shown, err)
	}
	var api *signer.APIError
	if err := createAs(s, id, 1); !errors.As(err, &api) || api.Type != "AccessDeniedException" {
		t.Fatalf("a role wanting another OU: %v, want AccessDeniedException", err)
	}
}

// TestSANDirectoryNameTags: x509SAN/Name/<RDN> comes from the first directory name in the SAN extension,
// in check and in the emulator alike.
func TestSANDirectoryNameTags(t *testing.T) {
	ca := newHandCA(t, pkix.Name{CommonName: "issuing"})
	dn, _ := asn1.Marshal(pkix.Name{CommonName: "web", Organization: []string{"acme"}}.ToRDNSequence())
	uri := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte("spiffe://example.org/ns/prod/app")}
	dirName := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: dn}
	san, err := asn1.Marshal([]asn1.RawValue{uri, dirName})
	if err != nil {
		t.Fatal(err)
	}
	id := ca.leaf(t, x509.KeyUsageDigitalSignature, []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: san}})
	tags := map[string]string{}
	for _, tag := range check.PrincipalTags(id.Leaf) {
		tags[tag.Key] = tag.Value
	}
	if tags["x509SAN/Name/CN"] != "web" || tags["x509SAN/Name/O"] != "acme" || tags["x509SAN/URI"] != "spiffe://example.org/ns/prod/app" {
		t.Fatalf("check's tags: %v", tags)
	}
	s := handWorld(t, ca, "x509SAN/Name/CN", tags["x509SAN/Name/CN"], "db")
	if err := createAs(s, id, 0); err != nil {
		t.Fatalf("x509SAN/Name/CN condition: %v", err)
	}
	if err := createAs(s, id, 1); err == nil {
		t.Fatal("a role wanting another x509SAN/Name/CN admitted the certificate")
	}
}

// TestSecurityLeafWithoutDigitalSignatureRefused: AWS requires the digitalSignature key usage; a leaf with
// no key usage extension at all lacks it too.
func TestSecurityLeafWithoutDigitalSignatureRefused(t *testing.T) {
	ca := newHandCA(t, pkix.Name{CommonName: "issuing"})
	s := handWorld(t, ca, "x509SAN/URI", "spiffe://example.org/ns/prod/*")
	if err := createAs(s, ca.leaf(t, x509.KeyUsageDigitalSignature, nil), 0); err != nil {
		t.Fatalf("control: a leaf with digitalSignature was refused: %v", err)
	}
	for name, ku := range map[string]x509.KeyUsage{"no key usage extension": 0, "keyEncipherment only": x509.KeyUsageKeyEncipherment} {
		t.Run(name, func(t *testing.T) {
			id := ca.leaf(t, ku, nil)
			var api *signer.APIError
			err := createAs(s, id, 0)
			if !errors.As(err, &api) || api.Type != "AccessDeniedException" || !strings.Contains(api.Message, "digitalSignature") {
				t.Fatalf("got %v, want AccessDeniedException about digitalSignature", err)
			}
			if probs := check.Certificate(check.CertificateInput{Leaf: id.Leaf, Now: time.Now()}); !strings.Contains(fmt.Sprint(probs), "digitalSignature") {
				t.Fatalf("check does not report it either: %v", probs)
			}
		})
	}
}

func TestSTSRegionsConfig(t *testing.T) {
	src := fmt.Sprintf("account_id = %q\nsts_regions = [\"eu-central-1\"]\n", account)
	cfg, err := emulator.ParseConfig([]byte(src), "r.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.STSRegions) != 1 || cfg.STSRegions[0] != "eu-central-1" {
		t.Fatalf("sts_regions = %q", cfg.STSRegions)
	}
	if _, err := emulator.ParseConfig([]byte(fmt.Sprintf("account_id = %q\nsts_regions = [\"moon\"]\n", account)), "r.hcl"); err == nil || !strings.Contains(err.Error(), `sts_regions: "moon"`) {
		t.Fatalf("a bad region: %v", err)
	}
}
