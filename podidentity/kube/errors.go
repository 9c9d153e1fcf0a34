package kube

import (
	"fmt"
	"net/http"
)

// Kind classifies why a request's token did not authenticate a pod of this node; the credentials server
// branches on it (HTTPStatus) and so do metrics.
type Kind string

// Kinds of refusal.
const (
	// KindUnauthenticated: the token is missing, malformed, expired, for another audience, not a pod's
	// service-account token, or TokenReview refused it. HTTP 401.
	KindUnauthenticated Kind = "unauthenticated"
	// KindWrongNode: the token is a valid pod token, but of a pod scheduled on another node. HTTP 403.
	KindWrongNode Kind = "wrong_node"
	// KindPodGone: the token is (or was) valid, but this node runs no live pod with the token's pod UID:
	// the pod was deleted or has finished. HTTP 401.
	KindPodGone Kind = "pod_gone"
	// KindUnavailable: the bridge could not decide (the API server did not answer, or this node's pod
	// list is not loaded yet). HTTP 503; the client may retry.
	KindUnavailable Kind = "unavailable"
)

// Error is a refusal to authenticate a request's token, saying why and for which pod. It never holds the
// token.
type Error struct {
	Kind Kind
	// Reason says what was wrong, for the log and the response body.
	Reason string
	// Pod is "namespace/name (uid UID)" when the token named a pod, else "".
	Pod string
	// Err is the underlying error (an API call's), if any.
	Err error
}

// Error returns the kind, pod and reason.
func (e *Error) Error() string {
	msg := "pod identity: " + string(e.Kind)
	if e.Pod != "" {
		msg += ": pod " + e.Pod
	}
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// HTTPStatus is the status a credentials server answers with: 401 for KindUnauthenticated and
// KindPodGone, 403 for KindWrongNode, 503 for KindUnavailable.
func (e *Error) HTTPStatus() int {
	switch e.Kind {
	case KindWrongNode:
		return http.StatusForbidden
	case KindUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusUnauthorized
	}
}

func refuse(kind Kind, pod, format string, args ...any) *Error {
	return &Error{Kind: kind, Pod: pod, Reason: fmt.Sprintf(format, args...)}
}
