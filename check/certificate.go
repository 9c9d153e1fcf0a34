package check

// This file tells whether a certificate can sign IAM Roles Anywhere requests, and how AWS will see it:
// the principal tags it derives from the certificate and a minimal role trust policy that admits it.

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/x509tags"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
)

// Problem is one reason Roles Anywhere would refuse the certificate.
type Problem struct {
	// Check names the requirement, e.g. "key type" or "basic constraints".
	Check string
	// Detail explains what was found and what AWS requires.
	Detail string
}

// String implements fmt.Stringer.
func (p Problem) String() string { return p.Check + ": " + p.Detail }

// CertificateInput is what Certificate examines.
type CertificateInput struct {
	Leaf          *x509.Certificate
	Intermediates []*x509.Certificate
	// Key is the leaf's private key when known (it must match the leaf).
	Key crypto.Signer
	// Roots, when set, are the trust anchor's CAs: the chain through Intermediates must reach one.
	Roots []*x509.Certificate
	// Now is the time of the check.
	Now time.Time
}

// Certificate lists every requirement of design.md §3 the certificate fails: a supported key type (RSA 2048 to
// 4096 bits, ECDSA P-256 or P-384), X.509 v3, not a CA, digitalSignature key usage, inside its validity
// window (with the hours left reported by Summary), a key that belongs to the leaf, and — with Roots — a
// chain to the trust anchor. An empty result means AWS would accept it.
func Certificate(in CertificateInput) []Problem {
	var out []Problem
	add := func(check, format string, args ...any) {
		out = append(out, Problem{Check: check, Detail: fmt.Sprintf(format, args...)})
	}
	leaf := in.Leaf
	if leaf == nil {
		return []Problem{{Check: "certificate", Detail: "no leaf certificate"}}
	}
	if _, err := signer.Algorithm(leaf.PublicKey); err != nil {
		add("key type", "%v", strings.TrimPrefix(err.Error(), "signer: "))
	}
	if leaf.Version != 3 {
		add("version", "X.509 v%d; Roles Anywhere requires v3", leaf.Version)
	}
	if leaf.IsCA {
		add("basic constraints", "the certificate is a CA (CA:TRUE); Roles Anywhere requires an end-entity certificate (CA:FALSE)")
	}
	if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		add("key usage", "digitalSignature is missing (key usage %s); Roles Anywhere requires it", keyUsages(leaf.KeyUsage))
	}
	switch {
	case in.Now.Before(leaf.NotBefore):
		add("validity", "not valid before %s (now %s): check the clocks", leaf.NotBefore.UTC().Format(time.RFC3339), in.Now.UTC().Format(time.RFC3339))
	case !in.Now.Before(leaf.NotAfter):
		add("validity", "expired at %s (now %s)", leaf.NotAfter.UTC().Format(time.RFC3339), in.Now.UTC().Format(time.RFC3339))
	}
	if in.Key != nil {
		if err := (signer.Identity{Leaf: leaf, Key: in.Key}).Check(); err != nil && !strings.Contains(err.Error(), "unsupported private key") {
			add("private key", "%s", strings.TrimPrefix(err.Error(), "signer: "))
		}
	}
	if len(in.Roots) > 0 {
		roots, inter := x509.NewCertPool(), x509.NewCertPool()
		for _, c := range in.Roots {
			roots.AddCert(c)
		}
		for _, c := range in.Intermediates {
			inter.AddCert(c)
		}
		// The validity check above already reports a leaf outside its window; verify the chain at a
		// moment inside it so that "chain" reports only chain problems.
		at := in.Now
		if at.Before(leaf.NotBefore) {
			at = leaf.NotBefore
		} else if at.After(leaf.NotAfter) {
			at = leaf.NotAfter
		}
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if err != nil {
			add("chain", "does not chain to the trust anchor through the %d intermediate(s) sent: %v", len(in.Intermediates), err)
		}
	}
	return out
}

func keyUsages(ku x509.KeyUsage) string {
	names := []struct {
		bit  x509.KeyUsage
		name string
	}{
		{x509.KeyUsageDigitalSignature, "digitalSignature"}, {x509.KeyUsageContentCommitment, "contentCommitment"},
		{x509.KeyUsageKeyEncipherment, "keyEncipherment"}, {x509.KeyUsageDataEncipherment, "dataEncipherment"},
		{x509.KeyUsageKeyAgreement, "keyAgreement"}, {x509.KeyUsageCertSign, "keyCertSign"}, {x509.KeyUsageCRLSign, "cRLSign"},
	}
	var out []string
	for _, n := range names {
		if ku&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "|")
}

// Tag is one principal tag AWS derives from the certificate, usable in a trust policy as
// aws:PrincipalTag/<Key>.
type Tag = x509tags.Tag

// PrincipalTags are the tags Roles Anywhere derives from the leaf with its default attribute mapping:
// every supported subject and issuer RDN, the first SAN URI and DNS name, and the RDNs of the first SAN
// directory name (rules in package x509tags, which the emulator uses too).
func PrincipalTags(leaf *x509.Certificate) []Tag { return x509tags.Of(leaf) }

// TrustPolicy is a minimal IAM role trust policy admitting certificates with this SPIFFE ID (the URI
// SAN) through the trust anchor: the Roles Anywhere service principal may AssumeRole, TagSession and
// SetSourceIdentity when aws:PrincipalTag/x509SAN/URI matches and aws:SourceArn is the trust anchor.
func TrustPolicy(trustAnchorARN, spiffeID string) string {
	if trustAnchorARN == "" {
		trustAnchorARN = "arn:aws:rolesanywhere:<region>:<account>:trust-anchor/<id>"
	}
	policy := map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect":    "Allow",
			"Principal": map[string]any{"Service": "rolesanywhere.amazonaws.com"},
			"Action":    []string{"sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"},
			"Condition": map[string]any{
				"StringEquals": map[string]string{"aws:PrincipalTag/x509SAN/URI": spiffeID},
				"ArnEquals":    map[string]string{"aws:SourceArn": trustAnchorARN},
			},
		}},
	}
	// Not json.MarshalIndent: it writes <region> as \u003cregion\u003e, which the reader would have to
	// decode before pasting the policy.
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(policy)
	return strings.TrimSuffix(b.String(), "\n")
}

// Explain turns a CreateSession error type into advice in plain words.
func Explain(errorType, message, spiffeID string) string {
	switch errorType {
	case "AccessDeniedException":
		return fmt.Sprintf("AWS refused to assume the role. Either the certificate does not chain to the trust anchor's CA "+
			"(is the trust anchor's bundle the SPIRE bundle in use?), or the role's trust policy does not admit this "+
			"certificate: its condition on aws:PrincipalTag/x509SAN/URI must match %q, aws:SourceArn must be the trust "+
			"anchor, and the profile must list the role. AWS said: %s", spiffeID, message)
	case "ValidationException":
		return "AWS found the request malformed: check the ARNs, the region, the session duration against the profile's maximum, " +
			"and whether the profile accepts a custom role session name. AWS said: " + message
	case "ResourceNotFoundException":
		return "The trust anchor or profile does not exist in this account and region, or it is disabled. AWS said: " + message
	case "ThrottlingException":
		return "The account's CreateSession quota (10 per second per region) is exhausted; retry later. AWS said: " + message
	}
	return message
}
