package signer

import (
	"context"
	"errors"
	"fmt"
	"net"
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

// Retryable reports whether err, returned by CreateSession, is transient: an APIError that is
// retryable, or a network failure. Input errors, non-retryable API errors and context cancellation are
// not.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var api *APIError
	if errors.As(err, &api) {
		return api.Retryable()
	}
	var in *InputError
	if errors.As(err, &in) {
		return false
	}
	var ke *KeyError
	if errors.As(err, &ke) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var transport *TransportError
	return errors.As(err, &transport)
}

// TransportError is a failure to get any HTTP response (connection refused, reset, TLS, timeout) or to
// read one. It is always retryable.
type TransportError struct{ Err error }

// Error implements error.
func (e *TransportError) Error() string { return "rolesanywhere: " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *TransportError) Unwrap() error { return e.Err }
