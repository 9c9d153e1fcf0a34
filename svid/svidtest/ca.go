// Package svidtest is a SPIFFE test double in the manner of net/http/httptest: an in-memory CA that mints
// X.509-SVIDs and JWT-SVIDs shaped like SPIRE's, behind a real SPIFFE Workload API gRPC server on a unix
// socket. Tests and the bridge's dev mode talk to it with go-spiffe's real client, exactly as they would
// talk to a SPIRE agent.
package svidtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// KeyType selects the key algorithm of a CA or an SVID.
type KeyType int

// Key types. The zero value is EC P-256, SPIRE's default.
const (
	KeyTypeEC256 KeyType = iota
	KeyTypeEC384
	KeyTypeRSA2048
	KeyTypeRSA4096
	KeyTypeEd25519
)

// String names the key type ("ec-p256", "rsa-2048", …).
func (k KeyType) String() string {
	switch k {
	case KeyTypeEC256:
		return "ec-p256"
	case KeyTypeEC384:
		return "ec-p384"
	case KeyTypeRSA2048:
		return "rsa-2048"
	case KeyTypeRSA4096:
		return "rsa-4096"
	case KeyTypeEd25519:
		return "ed25519"
	}
	return fmt.Sprintf("KeyType(%d)", int(k))
}

// GenerateKey makes a fresh private key of type k.
func GenerateKey(k KeyType) (crypto.Signer, error) {
	switch k {
	case KeyTypeEC256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyTypeEC384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case KeyTypeRSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case KeyTypeRSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	case KeyTypeEd25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("svidtest: unknown key type %d", int(k))
}

// CAOptions configures a CA. The zero value is a usable CA for example.org.
type CAOptions struct {
	// TrustDomain defaults to example.org.
	TrustDomain spiffeid.TrustDomain
	// KeyType of the root (and intermediate) CA keys; default EC P-256.
	KeyType KeyType
	// Intermediate makes the root sign an intermediate CA that signs the SVIDs, which then carry it in
	// their chain (as SPIRE does with an UpstreamAuthority).
	Intermediate bool
	// Clock is the time source for validity windows; default time.Now.
	Clock func() time.Time
	// TTL is the default X.509-SVID lifetime; default 1h (SPIRE's default).
	TTL time.Duration
}

// MintOptions shapes one X.509-SVID. The zero value is a SPIRE-like SVID with the CA's defaults.
// The non-default fields exist to produce SVIDs that Roles Anywhere must refuse.
type MintOptions struct {
	KeyType KeyType
	// TTL overrides the CA's default lifetime.
	TTL time.Duration
	// NotBefore and NotAfter, when set, override the validity window computed from the clock and TTL.
	NotBefore, NotAfter time.Time
	// IsCA marks the leaf as a CA certificate.
	IsCA bool
	// KeyUsage overrides SPIRE's digitalSignature|keyEncipherment|keyAgreement.
	KeyUsage x509.KeyUsage
}

// CA is an in-memory SPIFFE certificate authority for one trust domain.
type CA struct {
	td       spiffeid.TrustDomain
	clock    func() time.Time
	ttl      time.Duration
	root     *x509.Certificate
	signCert *x509.Certificate // root or intermediate
	signKey  crypto.Signer
	chain    []*x509.Certificate // intermediates sent with each SVID
	jwtKey   *ecdsa.PrivateKey
	jwtKeyID string
}

// NewCA creates a CA with a fresh root (and optional intermediate) and a JWT signing key.
func NewCA(o CAOptions) (*CA, error) {
	if o.TrustDomain.IsZero() {
		o.TrustDomain = spiffeid.RequireTrustDomainFromString("example.org")
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.TTL == 0 {
		o.TTL = time.Hour
	}
	ca := &CA{td: o.TrustDomain, clock: o.Clock, ttl: o.TTL}
	now := o.Clock()
	rootKey, err := GenerateKey(o.KeyType)
	if err != nil {
		return nil, err
	}
	tdURI := &url.URL{Scheme: "spiffe", Host: o.TrustDomain.Name()}
	rootTmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{Country: []string{"US"}, Organization: []string{"SPIFFE"}, CommonName: "svidtest root CA"},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		URIs:                  []*url.URL{tdURI},
	}
	ca.root, err = createCert(rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		return nil, err
	}
	ca.signCert, ca.signKey = ca.root, rootKey
	if o.Intermediate {
		intKey, err := GenerateKey(o.KeyType)
		if err != nil {
			return nil, err
		}
		intTmpl := &x509.Certificate{
			SerialNumber:          randSerial(),
			Subject:               pkix.Name{Country: []string{"US"}, Organization: []string{"SPIFFE"}, CommonName: "svidtest intermediate CA"},
			NotBefore:             now.Add(-24 * time.Hour),
			NotAfter:              now.Add(5 * 365 * 24 * time.Hour),
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
			URIs:                  []*url.URL{tdURI},
		}
		ic, err := createCert(intTmpl, ca.root, intKey.Public(), rootKey)
		if err != nil {
			return nil, err
		}
		ca.signCert, ca.signKey, ca.chain = ic, intKey, []*x509.Certificate{ic}
	}
	ca.jwtKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	kid := make([]byte, 16)
	_, _ = rand.Read(kid)
	ca.jwtKeyID = hex.EncodeToString(kid)
	return ca, nil
}

// TrustDomain is the CA's trust domain.
func (ca *CA) TrustDomain() spiffeid.TrustDomain { return ca.td }

// Root is the trust anchor certificate.
func (ca *CA) Root() *x509.Certificate { return ca.root }

// MintX509SVID issues an X.509-SVID for id shaped like SPIRE's: subject C=US, O=SPIRE, no CN, the
// SPIFFE ID as the only URI SAN, CA:false, key usage digitalSignature|keyEncipherment|keyAgreement,
// extended key usage serverAuth+clientAuth. Certificates holds the leaf then any intermediate.
func (ca *CA) MintX509SVID(id spiffeid.ID, o MintOptions) (*x509svid.SVID, error) {
	if id.IsZero() {
		return nil, errors.New("svidtest: empty SPIFFE ID")
	}
	key, err := GenerateKey(o.KeyType)
	if err != nil {
		return nil, err
	}
	now := ca.clock()
	ttl := o.TTL
	if ttl == 0 {
		ttl = ca.ttl
	}
	notBefore, notAfter := now.Add(-10*time.Second), now.Add(ttl)
	if !o.NotBefore.IsZero() {
		notBefore = o.NotBefore
	}
	if !o.NotAfter.IsZero() {
		notAfter = o.NotAfter
	}
	ku := o.KeyUsage
	if ku == 0 {
		ku = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement
	}
	if o.IsCA {
		ku |= x509.KeyUsageCertSign
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{Country: []string{"US"}, Organization: []string{"SPIRE"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              ku,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  o.IsCA,
		URIs:                  []*url.URL{id.URL()},
	}
	leaf, err := createCert(tmpl, ca.signCert, key.Public(), ca.signKey)
	if err != nil {
		return nil, err
	}
	certs := append([]*x509.Certificate{leaf}, ca.chain...)
	return &x509svid.SVID{ID: id, Certificates: certs, PrivateKey: key}, nil
}

// MintJWTSVID issues an ES256 JWT-SVID for id with the given audience and lifetime (default 5m).
func (ca *CA) MintJWTSVID(id spiffeid.ID, audience []string, ttl time.Duration) (string, error) {
	if ttl == 0 {
		ttl = 5 * time.Minute
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: ca.jwtKey, KeyID: ca.jwtKeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	now := ca.clock()
	claims := jwt.Claims{
		Subject:  id.String(),
		Audience: jwt.Audience(audience),
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(ttl)),
	}
	return jwt.Signed(sig).Claims(claims).Serialize()
}

// X509Bundle is the trust domain's X.509 bundle (the root).
func (ca *CA) X509Bundle() *x509bundle.Bundle {
	return x509bundle.FromX509Authorities(ca.td, []*x509.Certificate{ca.root})
}

// JWTBundle is the trust domain's JWT bundle (the JWT signing key).
func (ca *CA) JWTBundle() *jwtbundle.Bundle {
	return jwtbundle.FromJWTAuthorities(ca.td, map[string]crypto.PublicKey{ca.jwtKeyID: ca.jwtKey.Public()})
}

// BundlePEM is the root certificate in PEM: the CA bundle of a Roles Anywhere trust anchor.
func (ca *CA) BundlePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.root.Raw})
}

// JWKS is the JWT bundle as a JWKS document (what an OIDC provider publishes for STS to verify
// JWT-SVIDs).
func (ca *CA) JWKS() []byte {
	b, err := ca.JWTBundle().Marshal()
	if err != nil {
		panic(fmt.Sprintf("svidtest: marshal JWT bundle: %v", err)) // cannot happen for an EC P-256 key
	}
	return b
}

func createCert(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("svidtest: create certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

func randSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n.Add(n, big.NewInt(1))
}
