package keyfile_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs/safefstest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/trusted"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer/keyfile"
)

func cert(t *testing.T, key crypto.Signer, parent *x509.Certificate, parentKey crypto.Signer, isCA bool, serial int64) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{Organization: []string{"SPIRE"}, CommonName: big.NewInt(serial).String()},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		BasicConstraintsValid: true, IsCA: isCA, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func write(t *testing.T, dir, name string, blocks ...*pem.Block) string {
	t.Helper()
	var b []byte
	for _, bl := range blocks {
		b = append(b, pem.EncodeToMemory(bl)...)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func certBlock(c *x509.Certificate) *pem.Block { return &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw} }

func TestLoadAcceptsEveryKeyEncodingAndChainLayout(t *testing.T) {
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := cert(t, caKey, nil, nil, true, 1)
	intKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	inter := cert(t, intKey, ca, caKey, true, 2)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecLeaf := cert(t, ecKey, inter, intKey, false, 3)
	rsaLeaf := cert(t, rsaKey, inter, intKey, false, 4)
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(rsaKey)

	cases := []struct {
		name                 string
		certs, key, interPEM string
		wantLeaf             *x509.Certificate
		wantInter            int
	}{
		{"SEC1 key, bundle in --certificate", write(t, dir, "b.pem", certBlock(ecLeaf), certBlock(inter)),
			write(t, dir, "ec.key", &pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 5, 43, 129, 4, 0, 34}}, &pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), "", ecLeaf, 1},
		{"PKCS#1 key, separate intermediates", write(t, dir, "r.pem", certBlock(rsaLeaf)),
			write(t, dir, "rsa1.key", &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), write(t, dir, "i.pem", certBlock(inter)), rsaLeaf, 1},
		{"PKCS#8 key, no intermediates", write(t, dir, "r2.pem", certBlock(rsaLeaf)),
			write(t, dir, "rsa8.key", &pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), "", rsaLeaf, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := keyfile.Load(tc.certs, tc.key, tc.interPEM)
			if err != nil {
				t.Fatal(err)
			}
			if !id.Leaf.Equal(tc.wantLeaf) || len(id.Intermediates) != tc.wantInter {
				t.Fatalf("leaf serial %v, %d intermediates", id.Leaf.SerialNumber, len(id.Intermediates))
			}
		})
	}
}

func TestLoadErrorsNameTheFileAndProblem(t *testing.T) {
	dir := t.TempDir()
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := cert(t, ecKey, nil, nil, false, 7)
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	other, _ := x509.MarshalECPrivateKey(otherKey)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKCS8PrivateKey(edKey)
	good := write(t, dir, "leaf.pem", certBlock(leaf))
	goodKey := write(t, dir, "leaf.key", &pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})
	cases := []struct{ name, certs, key, want string }{
		{"missing cert", filepath.Join(dir, "nope.pem"), goodKey, "keyfile: reading certificates: open " + filepath.Join(dir, "nope.pem")},
		{"key in cert file", goodKey, goodKey, `keyfile: ` + goodKey + `: PEM block 1 is "EC PRIVATE KEY", want CERTIFICATE`},
		{"garbage cert", write(t, dir, "g.pem", &pem.Block{Type: "CERTIFICATE", Bytes: []byte("x")}), goodKey, "keyfile: " + filepath.Join(dir, "g.pem") + ": certificate 1:"},
		{"no key", good, good, "keyfile: " + good + `: PEM block "CERTIFICATE" is not a private key`},
		{"encrypted key says how to decrypt it", good, write(t, dir, "enc.key", &pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("x")}),
			filepath.Join(dir, "enc.key") + " is an encrypted private key, which cannot be used unattended; write a decrypted copy readable only by this user (openssl pkey -in " + filepath.Join(dir, "enc.key") + " -out key-plain.pem"},
		{"legacy encrypted key says how to decrypt it", good, write(t, dir, "enc1.key", &pem.Block{Type: "EC PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00112233445566778899AABBCCDDEEFF"}, Bytes: []byte("x")}),
			"openssl pkey -in " + filepath.Join(dir, "enc1.key") + " -out key-plain.pem"},
		{"ed25519", good, write(t, dir, "ed.key", &pem.Block{Type: "PRIVATE KEY", Bytes: edDER}), "unsupported private key Ed25519"},
		{"wrong key", good, write(t, dir, "o.key", &pem.Block{Type: "EC PRIVATE KEY", Bytes: other}), "the private key does not belong to the certificate (serial 7"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := keyfile.Load(tc.certs, tc.key, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestSecurityKeyFilesAnotherUserCanWriteAreRefusedForRoot: run as root, the one-shot commands refuse a
// certificate or key file that uid 65534 owns, or that sits in a directory uid 65534 can write, with the
// chown/chmod that fixes it: that user could swap in their own identity, and so choose the AWS account
// root's commands act in. Root's own files load.
func TestSecurityKeyFilesAnotherUserCanWriteAreRefusedForRoot(t *testing.T) {
	safefstest.NeedRoot(t, "gives key files to another user (uid 65534)")
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := cert(t, key, nil, nil, false, 9)
	sec1, _ := x509.MarshalECPrivateKey(key)
	certPath := write(t, dir, "leaf.pem", certBlock(leaf))
	keyPath := write(t, dir, "leaf.key", &pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})
	if _, err := keyfile.Load(certPath, keyPath, ""); err != nil {
		t.Fatalf("root's own files: %v", err)
	}

	safefstest.Give(t, keyPath, safefstest.Nobody, safefstest.Nobody)
	_, err := keyfile.Load(certPath, keyPath, "")
	if !errors.Is(err, trusted.ErrUntrusted) || !strings.Contains(err.Error(), "private key file "+keyPath+" is owned by uid 65534") ||
		!strings.Contains(err.Error(), "chown root "+keyPath) {
		t.Fatalf("key owned by uid 65534: %v", err)
	}
	safefstest.Give(t, keyPath, 0, 0)

	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err = keyfile.Load(certPath, keyPath, "")
	if !errors.Is(err, trusted.ErrUntrusted) || !strings.Contains(err.Error(), "certificate file "+certPath+": directory "+dir+" is writable by other users") ||
		!strings.Contains(err.Error(), "chmod o-w "+dir) {
		t.Fatalf("certificate in a directory others can write: %v", err)
	}
}
