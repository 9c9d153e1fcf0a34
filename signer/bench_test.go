package signer_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
)

// BenchmarkSign measures one CreateSession signature (canonicalization, hashing and the private-key
// operation) per key type: go test -bench Sign -benchmem ./signer
func BenchmarkSign(b *testing.B) {
	for _, kt := range []struct{ name, cert, key string }{
		{"RSA-2048", "rsa.pem", "rsa.key"},
		{"P-256", "p256.pem", "p256.key"},
		{"P-384", "p384.pem", "p384.key"},
	} {
		b.Run(kt.name, func(b *testing.B) {
			id := signer.Identity{Leaf: loadCert(b, kt.cert), Key: loadKey(b, kt.key)}
			body := []byte(vectorBody)
			b.ReportAllocs()
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodPost, "https://rolesanywhere.us-east-1.amazonaws.com/sessions?profileArn=p&roleArn=r&trustAnchorArn=t", strings.NewReader(vectorBody))
				req.Header.Set("Content-Type", "application/json")
				if err := signer.Sign(req, body, id, "us-east-1", vectorTime); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
