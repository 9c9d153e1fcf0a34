// Package errtype is the fixed set of error-type labels the bridge reports in metrics (error_type),
// /ready (last_error_type) and logs. A label never comes straight from a server: AWS's x-amzn-ErrorType
// is kept only when it is one of the types AWS documents for Roles Anywhere and STS, anything else is
// Other, so a misbehaving endpoint cannot grow the number of Prometheus series.
package errtype

import "slices"

// The bridge's own labels.
const (
	// Network: no HTTP answer (connection refused or reset, timeout), or an unreadable one.
	Network = "network"
	// TLS: the endpoint's certificate failed verification, or the TLS handshake was refused.
	TLS = "tls"
	// DNS: the endpoint's host name did not resolve.
	DNS = "dns"
	// NoIdentity: the Workload API issues no SVID for the profile (never received, or revoked).
	NoIdentity = "no_identity"
	// SVIDExpired: the profile's SVID is past its NotAfter; it is never signed with.
	SVIDExpired = "svid_expired"
	// Other: any other failure, including an error type AWS does not document.
	Other = "other"
)

// AWS lists the error types AWS documents for Roles Anywhere CreateSession (ValidationException 400,
// AccessDeniedException 403, ResourceNotFoundException 404, ThrottlingException 429, and the common
// server faults) and for STS AssumeRole / AssumeRoleWithWebIdentity.
var AWS = []string{
	// Roles Anywhere.
	"AccessDeniedException", "ValidationException", "ResourceNotFoundException", "ThrottlingException",
	"InternalServerException", "ServiceUnavailableException",
	// STS.
	"AccessDenied", "ExpiredTokenException", "IDPCommunicationError", "IDPRejectedClaim",
	"InvalidIdentityToken", "MalformedPolicyDocument", "PackedPolicyTooLarge", "RegionDisabledException",
	"Throttling",
	// STS AssumeRole as role chaining meets it: input errors, and credentials the endpoint refuses.
	"ValidationError", "ExpiredToken", "InvalidClientTokenId", "SignatureDoesNotMatch", "IncompleteSignature",
}

// Own lists the bridge's own labels.
var Own = []string{Network, TLS, DNS, NoIdentity, SVIDExpired, Other}

// All is every label value that can appear: AWS then Own.
func All() []string { return append(slices.Clone(AWS), Own...) }

// Label returns s when it is in All, and Other otherwise (including for "").
func Label(s string) string {
	if slices.Contains(AWS, s) || slices.Contains(Own, s) {
		return s
	}
	return Other
}
