package kube_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	authnv1 "k8s.io/api/authentication/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity/kube/kubetest"
)

func sha256Of(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// containsAnyPart reports whether s holds the token, its payload or its signature (the header is the
// same for every token of a key, so it proves nothing).
func containsAnyPart(s, token string) bool {
	if token == "" {
		return false
	}
	if strings.Contains(s, token) {
		return true
	}
	parts := strings.Split(token, ".")
	for _, p := range parts[min(1, len(parts)-1):] {
		if len(p) >= 16 && strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// splice puts the claims of one token under the header and signature of another.
func splice(claimsOf, signatureOf string) string {
	c := strings.Split(claimsOf, ".")
	s := strings.Split(signatureOf, ".")
	return s[0] + "." + c[1] + "." + s[2]
}

// resign signs a token's claims, with its key ID, with a key of the attacker's.
func resign(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	hdr, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(hdr, &h); err != nil {
		t.Fatal(err)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", h.Kid))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// unreachable is a client of the API server's configuration aimed at a port nothing listens on.
func unreachable(t *testing.T, s *kubetest.Server) kubernetes.Interface {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := rest.CopyConfig(s.Config)
	c.Host = "https://" + addr
	client, err := kubernetes.NewForConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func tokenRequest() *authnv1.TokenRequest {
	exp := int64(3600)
	return &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{Audiences: []string{"sts.amazonaws.com"}, ExpirationSeconds: &exp}}
}
