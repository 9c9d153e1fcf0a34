package kube

import (
	"context"
	"errors"
)

// Authenticator decides which live pod of this node a token belongs to.
type Authenticator struct {
	reviewer *Reviewer
	pods     *Pods
}

// NewAuthenticator combines a Reviewer and this node's Pods.
func NewAuthenticator(r *Reviewer, p *Pods) *Authenticator {
	return &Authenticator{reviewer: r, pods: p}
}

// Authenticate returns the pod whose projected service-account token this is, when that pod is alive on
// this node. Else the error is an *Error: KindUnauthenticated (the token proves no pod), KindWrongNode
// (a pod of another node), KindPodGone (a pod this node does not run, or no longer), KindUnavailable
// (the API server did not answer, or the pod list is not loaded yet).
func (a *Authenticator) Authenticate(ctx context.Context, token string) (Pod, error) {
	id, err := a.reviewer.Review(ctx, token)
	if err != nil {
		return Pod{}, err
	}
	node := a.pods.NodeName()
	if id.NodeName != "" && id.NodeName != node {
		return Pod{}, refuse(KindWrongNode, id.String(), "the pod runs on node %s, this is node %s", id.NodeName, node)
	}
	if !a.pods.HasSynced() {
		return Pod{}, refuse(KindUnavailable, id.String(), "the pods of node %s are not listed yet", node)
	}
	pod, ok := a.pods.Get(id.PodUID)
	if !ok {
		return Pod{}, refuse(KindPodGone, id.String(), "node %s runs no live pod with this UID (deleted, finished, or on another node)", node)
	}
	if pod.Namespace != id.Namespace || pod.Name != id.PodName || pod.ServiceAccount != id.ServiceAccount {
		return Pod{}, refuse(KindUnauthenticated, id.String(), "the token's pod disagrees with the pod of that UID on this node, %s/%s with service account %s", pod.Namespace, pod.Name, pod.ServiceAccount)
	}
	return pod, nil
}

// AsError returns err as an *Error when it is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
