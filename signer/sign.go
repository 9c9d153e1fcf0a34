// Package signer signs IAM Roles Anywhere requests with an X.509 certificate's private key (the
// SigV4-X509 scheme AWS's signing helper implements) and calls CreateSession to trade a certificate for
// temporary AWS credentials.
//
// The key is any crypto.Signer, so an X.509-SVID's key signs straight from memory: it is never written to
// disk. RSA keys of 2048 to 4096 bits and ECDSA keys on P-256 and P-384 are accepted, as AWS accepts them;
// any other key is refused with an error naming its type.
//
// The wire format, byte for byte, is in design.md §3; CanonicalRequest and StringToSign expose the two
// intermediate strings so that they can be checked against hand-written vectors.
package signer

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// The two signing algorithms of Roles Anywhere.
const (
	AlgorithmRSA   = "AWS4-X509-RSA-SHA256"
	AlgorithmECDSA = "AWS4-X509-ECDSA-SHA256"
)

// Service is the signing name of Roles Anywhere, the third part of the credential scope.
const Service = "rolesanywhere"

// CanonicalURI is the path every CreateSession request signs, whatever path prefix the endpoint has
// (AWS's own helper signs "/sessions" too).
const CanonicalURI = "/sessions"

// Header names the signer sets.
const (
	HeaderDate  = "X-Amz-Date"
	HeaderX509  = "X-Amz-X509"
	HeaderChain = "X-Amz-X509-Chain"
)

// dateFormat is X-Amz-Date's layout (always UTC).
const dateFormat = "20060102T150405Z"

// unsignedHeaders are sent but never signed (lower case).
var unsignedHeaders = map[string]bool{
	"authorization":   true,
	"user-agent":      true,
	"x-amzn-trace-id": true,
	"content-length":  true,
}

// Identity is what signs a request: the leaf certificate sent in X-Amz-X509, the intermediates sent in
// X-Amz-X509-Chain (leaf's issuer first; never the root), and the leaf's private key.
type Identity struct {
	Leaf          *x509.Certificate
	Intermediates []*x509.Certificate
	Key           crypto.Signer
}

// KeyError reports a private key Roles Anywhere cannot use.
type KeyError struct {
	// Type describes the key, e.g. "ed25519.PrivateKey" or "ECDSA P-521".
	Type string
	// Reason says why it was refused.
	Reason string
}

// Error implements error.
func (e *KeyError) Error() string {
	return fmt.Sprintf("signer: unsupported private key %s: %s", e.Type, e.Reason)
}

// Algorithm returns the Roles Anywhere signing algorithm for a public or private key, or a *KeyError for
// keys AWS does not accept: RSA outside 2048–4096 bits, ECDSA on curves other than P-256 and P-384,
// Ed25519, DSA and anything else.
func Algorithm(key any) (string, error) {
	if s, ok := key.(crypto.Signer); ok {
		key = s.Public()
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		bits := k.N.BitLen()
		if bits < 2048 || bits > 4096 {
			return "", &KeyError{Type: fmt.Sprintf("RSA-%d", bits), Reason: "RSA keys must have 2048 to 4096 bits"}
		}
		return AlgorithmRSA, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384():
			return AlgorithmECDSA, nil
		}
		return "", &KeyError{Type: "ECDSA " + k.Curve.Params().Name, Reason: "only the P-256 and P-384 curves are accepted"}
	case ed25519.PublicKey:
		return "", &KeyError{Type: "Ed25519", Reason: "Roles Anywhere accepts RSA and ECDSA (P-256, P-384) keys only"}
	case nil:
		return "", &KeyError{Type: "<nil>", Reason: "no key"}
	default:
		return "", &KeyError{Type: fmt.Sprintf("%T", key), Reason: "Roles Anywhere accepts RSA and ECDSA (P-256, P-384) keys only"}
	}
}

// Check verifies that the identity can sign: a leaf, a supported key, and a key that belongs to the leaf.
func (id Identity) Check() error {
	if id.Leaf == nil {
		return errors.New("signer: identity has no leaf certificate")
	}
	if id.Key == nil {
		return errors.New("signer: identity has no private key")
	}
	if _, err := Algorithm(id.Key); err != nil {
		return err
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	pub, ok := id.Key.Public().(equaler)
	if !ok || !pub.Equal(id.Leaf.PublicKey) {
		return fmt.Errorf("signer: the private key does not belong to the certificate (serial %s, subject %q)",
			id.Leaf.SerialNumber, id.Leaf.Subject.String())
	}
	for i, c := range id.Intermediates {
		if c == nil {
			return fmt.Errorf("signer: intermediate certificate %d is nil", i)
		}
	}
	return nil
}

// Scope is the credential scope of a request signed at t for region.
func Scope(t time.Time, region string) string {
	return t.UTC().Format("20060102") + "/" + region + "/" + Service + "/aws4_request"
}

// Sign adds X-Amz-Date, X-Amz-X509, X-Amz-X509-Chain (when id has intermediates) and Authorization to
// req, signing the request as it is: its method, query, every header it carries (except
// Authorization, User-Agent, X-Amzn-Trace-Id and Content-Length) and body, which must be the bytes that
// will be sent. The Host header is signed as req.Host, or req.URL.Host when that is empty.
func Sign(req *http.Request, body []byte, id Identity, region string, now time.Time) error {
	if err := id.Check(); err != nil {
		return err
	}
	alg, _ := Algorithm(id.Key)
	now = now.UTC()
	req.Header.Set(HeaderDate, now.Format(dateFormat))
	req.Header.Set(HeaderX509, base64.StdEncoding.EncodeToString(id.Leaf.Raw))
	if len(id.Intermediates) > 0 {
		chain := make([]string, len(id.Intermediates))
		for i, c := range id.Intermediates {
			chain[i] = base64.StdEncoding.EncodeToString(c.Raw)
		}
		req.Header.Set(HeaderChain, strings.Join(chain, ","))
	} else {
		req.Header.Del(HeaderChain)
	}
	req.Header.Del("Authorization")
	if req.Host == "" {
		req.Host = req.URL.Host
	}

	canonical, signed := CanonicalRequest(req, body)
	scope := Scope(now, region)
	sts := StringToSign(alg, now, scope, canonical)
	digest := sha256.Sum256([]byte(sts))
	sig, err := id.Key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return fmt.Errorf("signer: signing with the %s key: %w", alg, err)
	}
	req.Header.Set("Authorization", fmt.Sprintf("%s Credential=%s/%s, SignedHeaders=%s, Signature=%s",
		alg, id.Leaf.SerialNumber.String(), scope, signed, hex.EncodeToString(sig)))
	return nil
}

// StringToSign is "ALGORITHM\nX-Amz-Date\nSCOPE\nhex(SHA-256(canonical request))".
func StringToSign(algorithm string, t time.Time, scope, canonicalRequest string) string {
	h := sha256.Sum256([]byte(canonicalRequest))
	return algorithm + "\n" + t.UTC().Format(dateFormat) + "\n" + scope + "\n" + hex.EncodeToString(h[:])
}

// CanonicalRequest returns the canonical request of req with body, and its signed-headers list.
// The Host header is taken from req.Host (or req.URL.Host), the others from req.Header.
func CanonicalRequest(req *http.Request, body []byte) (canonical, signedHeaders string) {
	headers := map[string][]string{}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	headers["host"] = []string{host}
	for name, values := range req.Header {
		lower := strings.ToLower(name)
		if unsignedHeaders[lower] {
			continue
		}
		headers[lower] = append(headers[lower], values...)
	}
	names := make([]string, 0, len(headers))
	for n := range headers {
		names = append(names, n)
	}
	sort.Strings(names)

	var ch strings.Builder
	for _, n := range names {
		vals := make([]string, len(headers[n]))
		for i, v := range headers[n] {
			vals[i] = canonicalHeaderValue(v)
		}
		ch.WriteString(n)
		ch.WriteByte(':')
		ch.WriteString(strings.Join(vals, ","))
		ch.WriteByte('\n')
	}
	signedHeaders = strings.Join(names, ";")
	payload := sha256.Sum256(body)

	var b bytes.Buffer
	b.WriteString(req.Method)
	b.WriteByte('\n')
	b.WriteString(CanonicalURI)
	b.WriteByte('\n')
	b.WriteString(CanonicalQuery(req.URL.Query()))
	b.WriteByte('\n')
	b.WriteString(ch.String())
	b.WriteByte('\n')
	b.WriteString(signedHeaders)
	b.WriteByte('\n')
	b.WriteString(hex.EncodeToString(payload[:]))
	return b.String(), signedHeaders
}

// canonicalHeaderValue trims v and collapses inner runs of spaces to one.
func canonicalHeaderValue(v string) string {
	return strings.Join(strings.Fields(v), " ")
}

// CanonicalQuery sorts the parameters by name (then value) and percent-encodes names and values per
// RFC 3986: A-Z a-z 0-9 - _ . ~ are kept, every other byte becomes %XX in upper-case hex.
func CanonicalQuery(q url.Values) string {
	type pair struct{ k, v string }
	var pairs []pair
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, pair{Escape(k), Escape(v)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}

// Escape percent-encodes s per RFC 3986 as SigV4 requires.
func Escape(s string) string {
	const hexUpper = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&15])
	}
	return b.String()
}
