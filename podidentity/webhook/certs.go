package webhook

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// CertCheckInterval is how often, at most, CertFiles looks at its files again (on a TLS handshake).
const CertCheckInterval = 10 * time.Second

// CertFiles serves a certificate and key from two PEM files (cert-manager's tls.crt and tls.key in a
// mounted Secret) and picks up a renewed pair on a handshake at most CertCheckInterval after the files
// change. A pair that does not load (a half-written renewal, a key that does not match) is logged once
// and the previous pair kept until a good one appears.
type CertFiles struct {
	certFile, keyFile string
	now               func() time.Time
	log               hclog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string
	checked time.Time
	failed  string
}

// CertFilesOptions configures LoadCertFiles.
type CertFilesOptions struct {
	// CertFile and KeyFile are the PEM certificate chain (leaf first) and private key.
	CertFile, KeyFile string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives reload results; default: discard.
	Logger hclog.Logger
}

// LoadCertFiles loads the pair once; it fails when the files are missing or do not make a valid pair
// (the error names the files).
func LoadCertFiles(o CertFilesOptions) (*CertFiles, error) {
	c := &CertFiles{certFile: o.CertFile, keyFile: o.KeyFile, now: o.Now, log: o.Logger}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = hclog.NewNullLogger()
	}
	stamp, err := c.fileStamp()
	if err != nil {
		return nil, err
	}
	cert, err := c.load()
	if err != nil {
		return nil, err
	}
	c.cert, c.stamp, c.checked = cert, stamp, c.now()
	return c, nil
}

// fileStamp identifies the files' current versions (device, inode, size, modification time), following
// links: the kubelet updates a mounted Secret by switching a symbolic link to a new directory.
func (c *CertFiles) fileStamp() (string, error) {
	var b bytes.Buffer
	for _, name := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			return "", fmt.Errorf("webhook: TLS certificate files: %w", err)
		}
		fmt.Fprintf(&b, "%d/%d|", fi.Size(), fi.ModTime().UnixNano())
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			fmt.Fprintf(&b, "%d/%d|", st.Dev, st.Ino)
		}
	}
	return b.String(), nil
}

func (c *CertFiles) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return nil, fmt.Errorf("webhook: TLS certificate %s with key %s: %w", c.certFile, c.keyFile, err)
	}
	return &cert, nil
}

// GetCertificate implements tls.Config.GetCertificate.
func (c *CertFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if now.Sub(c.checked) < CertCheckInterval && !now.Before(c.checked) {
		return c.cert, nil
	}
	c.checked = now
	stamp, err := c.fileStamp()
	if err != nil || stamp == c.stamp {
		if err != nil && err.Error() != c.failed {
			c.failed = err.Error()
			c.log.Warn("TLS certificate not reloaded; serving the previous one", "error", err)
		}
		return c.cert, nil
	}
	cert, err := c.load()
	if err != nil {
		if err.Error() != c.failed {
			c.failed = err.Error()
			c.log.Warn("TLS certificate not reloaded; serving the previous one", "error", err)
		}
		return c.cert, nil
	}
	c.cert, c.stamp, c.failed = cert, stamp, ""
	c.log.Info("TLS certificate reloaded", "cert_file", c.certFile, "not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return c.cert, nil
}

// Lifetimes of the self-signed bootstrap's certificates. The serving certificate is issued again when a
// third of its lifetime is left.
const (
	CALifetime      = 10 * 365 * 24 * time.Hour
	ServingLifetime = 365 * 24 * time.Hour
)

// CA is the self-signed bootstrap's certificate authority: the API server trusts it through the
// MutatingWebhookConfiguration's caBundle, and every replica of the webhook issues its own serving
// certificate from it.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// CertPEM and KeyPEM are Cert and Key encoded (CERTIFICATE, PRIVATE KEY).
	CertPEM, KeyPEM []byte
}

// NewCA makes a CA valid from now (a minute back, for clock skew) for CALifetime.
func NewCA(now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("webhook: CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "spiffe-aws-bridge webhook CA"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("webhook: CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("webhook: CA key: %w", err)
	}
	return ParseCA(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

// ParseCA reads a CA from PEM (as NewCA writes it). It fails on anything but a CA certificate with its
// signing key.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("webhook: CA: %w", err)
	}
	if !pair.Leaf.IsCA {
		return nil, errors.New("webhook: CA: the certificate is not a CA")
	}
	key, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("webhook: CA: the key cannot sign")
	}
	return &CA{Cert: pair.Leaf, Key: key, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// Issue makes a serving certificate for names (DNS names; IP addresses become IP SANs), valid from now
// for ServingLifetime (never past the CA).
func (ca *CA) Issue(names []string, now time.Time) (*tls.Certificate, error) {
	if len(names) == 0 {
		return nil, errors.New("webhook: serving certificate: no names")
	}
	var dnsNames []string
	var ips []net.IP
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else {
			dnsNames = append(dnsNames, n)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("webhook: serving key: %w", err)
	}
	notAfter := now.Add(ServingLifetime)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     dnsNames,
		IPAddresses:  ips,
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("webhook: serving certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("webhook: serving certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return n
}

// ServiceDNSNames are the names the API server may use for a Service: name, name.namespace,
// name.namespace.svc and name.namespace.svc.<clusterDomain> (when clusterDomain is not empty).
func ServiceDNSNames(service, namespace, clusterDomain string) []string {
	names := []string{service, service + "." + namespace, service + "." + namespace + ".svc"}
	if clusterDomain != "" {
		names = append(names, service+"."+namespace+".svc."+clusterDomain)
	}
	return names
}

// IssuedCert serves certificates issued by a CA, issuing a new one when a third of the current one's
// lifetime is left.
type IssuedCert struct {
	ca    *CA
	names []string
	now   func() time.Time

	mu   sync.Mutex
	cert *tls.Certificate
}

// NewIssuedCert issues the first certificate for names from ca; now is the clock (default time.Now).
func NewIssuedCert(ca *CA, names []string, now func() time.Time) (*IssuedCert, error) {
	if now == nil {
		now = time.Now
	}
	cert, err := ca.Issue(names, now())
	if err != nil {
		return nil, err
	}
	return &IssuedCert{ca: ca, names: names, now: now, cert: cert}, nil
}

// GetCertificate implements tls.Config.GetCertificate.
func (c *IssuedCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	leaf := c.cert.Leaf
	if now.After(leaf.NotAfter.Add(-leaf.NotAfter.Sub(leaf.NotBefore) / 3)) {
		cert, err := c.ca.Issue(c.names, now)
		if err != nil {
			return nil, err
		}
		c.cert = cert
	}
	return c.cert, nil
}
