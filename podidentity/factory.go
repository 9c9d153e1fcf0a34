package podidentity

import (
	"context"
	"time"
)

// AuthenticatorOptions are what an AuthenticatorFactory gets: the API-server settings of the pod_identity
// block, this node's name, and the function to call when one of the node's pods is deleted.
type AuthenticatorOptions struct {
	// Kubeconfig is a kubeconfig file for the API server; "" means the in-cluster configuration.
	Kubeconfig string
	// NodeName is this node's Kubernetes name: only its pods are served.
	NodeName string
	// Audience is the audience the pods' projected service-account tokens must carry.
	Audience string
	// CacheTTL bounds how long a verified token is reused (never past its own expiry).
	CacheTTL time.Duration
	// PodDeleted must be called with the UID of every pod of this node that is deleted (the node's pod
	// informer), so that its Delegated Identity stream and, when last, its session stop. Never nil.
	PodDeleted func(uid string)
}

// AuthenticatorFactory builds pod identity's token authenticator and returns it with the function that
// stops it. The Kubernetes one (TokenReview and this node's pod informer) is
// podidentity/kube.NewAuthenticatorFactory; it is linked only into spiffe-aws-bridge-k8s, so that the
// other binaries carry no Kubernetes client.
type AuthenticatorFactory func(ctx context.Context, o AuthenticatorOptions) (Authenticator, func(), error)
