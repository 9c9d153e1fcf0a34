package signer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/errtype"
)

// APIError is an error answered by Roles Anywhere: its HTTP status, the x-amzn-ErrorType header (e.g.
// "AccessDeniedException"), the message of the JSON body and the request id. It never holds a secret.
type APIError struct {
	StatusCode int
	Type       string
	Message    string
	RequestID  string
}

// Error implements error.
func (e *APIError) Error() string {
	typ := e.Type
	if typ == "" {
		typ = "HTTP " + fmt.Sprint(e.StatusCode)
	}
	msg := fmt.Sprintf("rolesanywhere: %s (%d): %s", typ, e.StatusCode, e.Message)
	if e.RequestID != "" {
		msg += " (request id " + e.RequestID + ")"
	}
	return msg
}

// Retryable reports whether the same request may succeed later: throttling (429) and server faults
// (5xx) are transient; every other 4xx is a configuration or input problem that a retry cannot fix.
func (e *APIError) Retryable() bool {
	return e.StatusCode == 429 || e.StatusCode >= 500 || e.Type == "ThrottlingException"
}

// Throttled reports whether AWS refused the request for the account's rate quota.
func (e *APIError) Throttled() bool {
	return e.StatusCode == 429 || e.Type == "ThrottlingException"
}

// InputError reports a CreateSession input the client refused before sending anything (a malformed ARN,
// an unsupported key, a duration out of bounds). Retrying it cannot help.
type InputError struct {
	// Field names the input, e.g. "role_arn" or "duration_seconds".
	Field string
	Err   error
}

// Error implements error.
func (e *InputError) Error() string { return fmt.Sprintf("signer: invalid %s: %v", e.Field, e.Err) }

// Unwrap returns the underlying error.
func (e *InputError) Unwrap() error { return e.Err }

// Retryable reports whether err, returned by CreateSession, is transient (Classify): a retryable
// APIError or a network failure. Input errors, non-retryable API errors, TLS verification failures,
// unknown hosts and context cancellation are not.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	class, _ := Classify(err)
	return class == Transient
}

// TransportError is a failure to get any HTTP response (connection refused, reset, TLS, DNS, timeout) or
// to read one. Classify tells the transient ones (most) from the permanent (TLS verification, unknown
// host).
type TransportError struct{ Err error }

// Error implements error.
func (e *TransportError) Error() string { return "rolesanywhere: " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *TransportError) Unwrap() error { return e.Err }

// Class says how a failed CreateSession should be retried.
type Class int

const (
	// Transient failures may succeed on their own soon: throttling (429), server faults (5xx),
	// timeouts, refused or reset connections, a DNS server that did not answer. Retry quickly.
	Transient Class = iota
	// Permanent failures need an operator: 400/403/404 and other 4xx answers, a certificate that fails
	// TLS verification, a host name that does not exist, an input or key the client refuses. Retry
	// slowly, and say so once.
	Permanent
)

// String is the class's name in logs.
func (c Class) String() string {
	if c == Permanent {
		return "permanent"
	}
	return "transient"
}

// Classify says how err, returned by CreateSession, should be retried and gives its error-type label,
// one of the fixed set of package errtype: the AWS error type for a documented API error, else "tls",
// "dns", "network" or "other".
func Classify(err error) (Class, string) {
	var api *APIError
	if errors.As(err, &api) {
		label := errtype.Label(api.Type)
		if api.Retryable() {
			return Transient, label
		}
		return Permanent, label
	}
	var in *InputError
	var ke *KeyError
	if errors.As(err, &in) || errors.As(err, &ke) {
		return Permanent, errtype.Other
	}
	if isTLSFailure(err) {
		return Permanent, errtype.TLS
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		if dns.IsNotFound {
			return Permanent, errtype.DNS
		}
		return Transient, errtype.DNS
	}
	var ne net.Error
	var transport *TransportError
	if errors.As(err, &ne) || errors.As(err, &transport) || errors.Is(err, context.DeadlineExceeded) {
		return Transient, errtype.Network
	}
	return Permanent, errtype.Other
}

// isTLSFailure reports a TLS verification or handshake failure: the server's certificate is not trusted
// or not for this host, the server refused the handshake, or it does not speak TLS at all.
func isTLSFailure(err error) bool {
	var verify *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var hostname x509.HostnameError
	var record tls.RecordHeaderError
	var alert tls.AlertError
	return errors.As(err, &verify) || errors.As(err, &unknownAuthority) || errors.As(err, &invalid) ||
		errors.As(err, &hostname) || errors.As(err, &record) || errors.As(err, &alert)
}
