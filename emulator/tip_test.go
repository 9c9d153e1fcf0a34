package emulator_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
)

const (
	mapProfileDefault = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/a1020304-0506-4708-8900-0a0b0c0d0e0f"
	mapProfileURIOnly = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/b1020304-0506-4708-8900-0a0b0c0d0e0f"
	tipURIProfile     = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/c1020304-0506-4708-8900-0a0b0c0d0e0f"
	tipCNProfile      = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/d1020304-0506-4708-8900-0a0b0c0d0e0f"
	anyRole           = "arn:aws:iam::123456789012:role/any"
	needsORole        = "arn:aws:iam::123456789012:role/needs-o"
	originRole        = "arn:aws:iam::123456789012:role/origin-web"
)

// mappingWorld is an emulator trusting ca with a default-mapping profile, a profile that maps only
// x509SAN/URI, and TIP profiles with subject sources x509SAN/URI and x509Subject/CN.
func mappingWorld(t *testing.T, ca handCA) *emulator.Server {
	t.Helper()
	bundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
	roles := fmt.Sprintf("[%q, %q, %q]", anyRole, needsORole, originRole)
	src := fmt.Sprintf(`
account_id = %q
trust_anchor %q {
  ca_bundle_pem = %q
}
profile %q {
  role_arns = %s
}
profile %q {
  role_arns = %s
  attribute_mapping {
    certificate_field = "x509SAN"
    specifiers        = ["URI"]
  }
  attribute_mapping {
    certificate_field = "x509Subject"
    specifiers        = []
  }
  attribute_mapping {
    certificate_field = "x509Issuer"
    specifiers        = []
  }
}
profile %q {
  role_arns = %s
  tip {
    status         = "ENABLED"
    subject_source = "x509SAN/URI"
    subject_type   = "workload"
  }
}
profile %q {
  role_arns = %s
  tip {
    status         = "ENABLED"
    subject_source = "x509Subject/CN"
    subject_type   = "user"
  }
}
role %q {
  condition {
    test   = "StringLike"
    key    = "aws:SourceArn"
    values = ["arn:aws:rolesanywhere:*"]
  }
}
role %q {
  condition {
    tag    = "x509Subject/O"
    values = ["Acme"]
  }
}
role %q {
  condition {
    test   = "StringEquals"
    key    = "aws:OriginIdentity/Subject"
    values = ["spiffe://example.org/ns/prod/web"]
  }
}
`, account, trustAnchor, bundle, mapProfileDefault, roles, mapProfileURIOnly, roles, tipURIProfile, roles, tipCNProfile, roles,
		anyRole, needsORole, originRole)
	cfg, err := emulator.ParseConfig([]byte(src), "mapping.hcl")
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

// richLeaf is a leaf of ca with subject and SANs as given.
func richLeaf(t *testing.T, ca handCA, subject pkix.Name, dns []string, uris ...string) signer.Identity {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var us []*url.URL
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		us = append(us, u)
	}
	sn, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: sn, Subject: subject, URIs: us, DNSNames: dns,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, k.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return signer.Identity{Leaf: c, Key: k}
}

// sessionAs runs CreateSession as id through prof for role and returns the session the emulator
// recorded.
func sessionAs(s *emulator.Server, id signer.Identity, prof, role string) (emulator.SessionView, error) {
	c, err := client().CreateSession(context.Background(), signer.CreateSessionInput{Identity: id, TrustAnchorARN: trustAnchor,
		ProfileARN: prof, RoleARN: role, Endpoint: s.URL, AllowHTTP: true})
	if err != nil {
		return emulator.SessionView{}, err
	}
	v := s.Sessions(c.AccessKeyID)
	if len(v) != 1 {
		return emulator.SessionView{}, fmt.Errorf("no session %s", c.AccessKeyID)
	}
	return v[0], nil
}

// TestAttributeMappingDecidesThePrincipalTags: the default mapping yields the tags the Roles Anywhere
// documentation lists (every Subject and Issuer RDN, the first DNS and URI SAN, the first one of each
// only); a profile that maps only x509SAN/URI yields that tag alone, and a trust policy on a tag the
// mapping removed no longer admits the certificate.
func TestAttributeMappingDecidesThePrincipalTags(t *testing.T) {
	ca := newHandCA(t, pkix.Name{CommonName: "issuing", Organization: []string{"Acme CA"}})
	s := mappingWorld(t, ca)
	id := richLeaf(t, ca, pkix.Name{CommonName: "web", OrganizationalUnit: []string{"a", "b"}, Organization: []string{"Acme"},
		Country: []string{"US"}, Province: []string{"CA"}, Locality: []string{"SF"}},
		[]string{"web.example.org", "other.example.org"}, "spiffe://example.org/ns/prod/web", "spiffe://example.org/ns/prod/second")

	v, err := sessionAs(s, id, mapProfileDefault, anyRole)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"x509Subject/CN": "web", "x509Subject/OU": "a,b", "x509Subject/O": "Acme", "x509Subject/C": "US",
		"x509Subject/ST": "CA", "x509Subject/L": "SF",
		"x509Issuer/CN": "issuing", "x509Issuer/O": "Acme CA",
		"x509SAN/DNS": "web.example.org", "x509SAN/URI": "spiffe://example.org/ns/prod/web",
	}
	if !maps.Equal(v.Tags, want) {
		t.Fatalf("default mapping: tags\n%v\nwant\n%v", v.Tags, want)
	}

	v, err = sessionAs(s, id, mapProfileURIOnly, anyRole)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(v.Tags, map[string]string{"x509SAN/URI": "spiffe://example.org/ns/prod/web"}) {
		t.Fatalf("x509SAN/URI-only mapping: tags %v, want only x509SAN/URI", v.Tags)
	}

	if _, err := sessionAs(s, id, mapProfileDefault, needsORole); err != nil {
		t.Fatalf("default mapping: a trust policy on x509Subject/O refused: %v", err)
	}
	_, err = sessionAs(s, id, mapProfileURIOnly, needsORole)
	if err == nil || !strings.Contains(err.Error(), "x509Subject/O") {
		t.Fatalf("URI-only mapping: a trust policy on the unmapped x509Subject/O: err = %v, want a refusal naming it", err)
	}

	// The mapping as `aws rolesanywhere get-profile` shows it.
	resp, err := http.Get(s.URL + "/_emulator/profiles?arn=" + url.QueryEscape(mapProfileURIOnly))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var views []emulator.ProfileView
	if err := json.NewDecoder(resp.Body).Decode(&views); err != nil || len(views) != 1 {
		t.Fatalf("profiles view: %v %v", err, views)
	}
	got := map[string][]string{}
	for _, m := range views[0].Profile.AttributeMappings {
		for _, r := range m.MappingRules {
			got[m.CertificateField] = append(got[m.CertificateField], r.Specifier)
		}
	}
	if !slices.Equal(got["x509SAN"], []string{"URI"}) || len(got["x509Subject"]) != 0 || len(got["x509Issuer"]) != 0 {
		t.Fatalf("profiles view mappings: %v", got)
	}
}

// TestTrustedIdentityPropagationSetsTheOriginIdentity: a TIP profile gives the session the subject
// source's value as aws:OriginIdentity/Subject, which trust policies can test; a certificate without the
// subject field is refused with AccessDeniedException, as Roles Anywhere documents.
func TestTrustedIdentityPropagationSetsTheOriginIdentity(t *testing.T) {
	ca := newHandCA(t, pkix.Name{CommonName: "issuing"})
	s := mappingWorld(t, ca)
	web := richLeaf(t, ca, pkix.Name{CommonName: "alice"}, nil, "spiffe://example.org/ns/prod/web")
	api := richLeaf(t, ca, pkix.Name{CommonName: "bob"}, nil, "spiffe://example.org/ns/prod/api")
	noURI := richLeaf(t, ca, pkix.Name{CommonName: "carol"}, []string{"carol.example.org"})
	noCN := richLeaf(t, ca, pkix.Name{Organization: []string{"SPIRE"}}, nil, "spiffe://example.org/ns/prod/web")

	v, err := sessionAs(s, web, tipURIProfile, originRole)
	if err != nil {
		t.Fatal(err)
	}
	if o := v.OriginIdentity; o == nil || *o != (emulator.OriginIdentity{Subject: "spiffe://example.org/ns/prod/web", SubjectType: "workload", Issuer: trustAnchor}) {
		t.Fatalf("origin identity %+v", v.OriginIdentity)
	}
	if _, err := sessionAs(s, api, tipURIProfile, originRole); err == nil || !strings.Contains(err.Error(), "aws:OriginIdentity/Subject") {
		t.Fatalf("another SPIFFE ID through the origin-conditioned role: err = %v", err)
	}
	if _, err := sessionAs(s, web, mapProfileDefault, originRole); err == nil {
		t.Fatal("without TIP a trust policy on aws:OriginIdentity/Subject admitted the certificate")
	}
	for name, tc := range map[string]struct {
		id   signer.Identity
		prof string
		want string
	}{
		"no URI SAN under x509SAN/URI": {noURI, tipURIProfile, "has no x509SAN/URI"},
		"no CN under x509Subject/CN":   {noCN, tipCNProfile, "has no x509Subject/CN"},
	} {
		_, err := sessionAs(s, tc.id, tc.prof, anyRole)
		var api *signer.APIError
		if !errors.As(err, &api) || api.StatusCode != 403 || api.Type != "AccessDeniedException" || !strings.Contains(api.Message, tc.want) {
			t.Fatalf("%s: err = %v, want 403 AccessDeniedException %q", name, err, tc.want)
		}
	}
	v, err = sessionAs(s, web, tipCNProfile, anyRole)
	if err != nil || v.OriginIdentity == nil || v.OriginIdentity.Subject != "alice" || v.OriginIdentity.SubjectType != "user" {
		t.Fatalf("subject source x509Subject/CN: %+v %v", v.OriginIdentity, err)
	}
}

// TestProfileConfigErrors: TIP and mapping settings outside what Roles Anywhere accepts are refused
// with the profile named.
func TestProfileConfigErrors(t *testing.T) {
	base := `account_id = "123456789012"
profile "arn:aws:rolesanywhere:us-east-1:123456789012:profile/e1020304-0506-4708-8900-0a0b0c0d0e0f" {
  role_arns = ["arn:aws:iam::123456789012:role/r"]
%s
}
`
	for _, tc := range []struct{ body, want string }{
		{`tip {
    status = "ON"
  }`, `status "ON" is neither ENABLED nor DISABLED`},
		{`tip {
    status         = "ENABLED"
    subject_source = "x509SAN/DNS"
  }`, `subject_source "x509SAN/DNS"`},
		{`tip {
    status       = "ENABLED"
    subject_type = "robot"
  }`, `subject_type "robot"`},
		{`tip {
    status         = "ENABLED"
    subject_source = "x509SAN/URI"
  }
  attribute_mapping {
    certificate_field = "x509SAN"
    specifiers        = ["DNS"]
  }`, "subject_source x509SAN/URI is not in the profile's attribute mapping"},
		{`attribute_mapping {
    certificate_field = "x509Extension"
    specifiers        = ["CN"]
  }`, `certificate_field "x509Extension"`},
		{`attribute_mapping {
    certificate_field = "x509SAN"
    specifiers        = ["CN"]
  }`, `specifier "CN" is not one of DNS, URI, Name`},
		{`session_policy = "{\"Statement\": [{\"Effect\": \"Allow\", \"Action\": \"sts:*\", \"Condition\": {\"IpAddress\": {\"aws:SourceIp\": \"10.0.0.0/8\"}}}]}"`, `operator "IpAddress" is not supported`},
		{`managed_policy_arns = ["arn:aws:iam::123456789012:policy/missing"]`, `managed policy "arn:aws:iam::123456789012:policy/missing" is not declared`},
	} {
		_, err := emulator.DecodeConfig([]byte(fmt.Sprintf(base, tc.body)), "p.hcl")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "profile/e1020304") {
			t.Errorf("%s\nerr = %v, want %q naming the profile", tc.body, err, tc.want)
		}
	}
}
