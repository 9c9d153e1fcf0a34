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
// this node. A pod the node's informer does not list yet is waited for, up to the Pods' Wait bound; one
// it knows has left is refused at once. Else the error is an *Error: KindUnauthenticated (the token proves no pod), KindWrongNode
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
	// The API server accepted the token, so the pod exists, or did a moment ago: a pod this node's
	// informer has not listed yet is waited for (its first request may beat the watch event).
	pod, presence := a.pods.Await(ctx, id.PodUID, false)
	switch presence {
	case Left:
		return Pod{}, refuse(KindPodGone, id.String(), "the pod has left node %s (deleted or finished)", node)
	case Unknown:
		return Pod{}, refuse(KindPodGone, id.String(), "node %s runs no live pod with this UID (its pod list did not show it within %s: deleted, finished, or on another node)", node, a.pods.Wait())
	}
	if pod.Namespace != id.Namespace || pod.Name != id.PodName || pod.ServiceAccount != id.ServiceAccount {
		return Pod{}, refuse(KindUnauthenticated, id.String(), "the token's pod disagrees with the pod of that UID on this node, %s/%s with service account %s", pod.Namespace, pod.Name, pod.ServiceAccount)
	}
	return pod, nil
}

// WaitAddresses returns the live pod with uid once this node's informer knows its IPs (or it is a
// host-network pod), waiting up to the Pods' Wait bound; after it, the pod as it is (no IPs). A pod that
// left, or that the informer does not list, is a KindPodGone *Error.
func (a *Authenticator) WaitAddresses(ctx context.Context, uid string) (Pod, error) {
	pod, presence := a.pods.Await(ctx, uid, true)
	if presence != Live {
		return Pod{}, refuse(KindPodGone, "uid "+uid, "node %s runs no live pod with this UID any more", a.pods.NodeName())
	}
	return pod, nil
}

// AsError returns err as an *Error when it is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
