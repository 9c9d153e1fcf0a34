package kube

import (
	"context"

	"github.com/hashicorp/go-hclog"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity"
)

// NewAuthenticatorFactory is pod identity's authenticator on Kubernetes, for daemon.Options.PodAuthenticator:
// pods' projected service-account tokens verified by the API server's TokenReview, the pods followed by an
// informer on this node (Start), klog routed into log.
func NewAuthenticatorFactory(log hclog.Logger) podidentity.AuthenticatorFactory {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return func(ctx context.Context, o podidentity.AuthenticatorOptions) (podidentity.Authenticator, func(), error) {
		RouteKlog(log.Named("client-go"))
		a, stop, err := Start(ctx, Options{
			Kubeconfig: o.Kubeconfig,
			NodeName:   o.NodeName,
			Audience:   o.Audience,
			CacheTTL:   o.CacheTTL,
			OnGone: func(p Pod) {
				if o.PodDeleted != nil {
					o.PodDeleted(p.UID)
				}
			},
			Logger: log,
		})
		if err != nil {
			return nil, nil, err
		}
		return podAuthenticator{a}, stop, nil
	}
}

// podAuthenticator presents an Authenticator's pods as podidentity's. Its errors pass unchanged: the
// server answers each with its HTTPStatus (401 unauthenticated or pod gone, 403 wrong node, 503
// unavailable).
type podAuthenticator struct{ a *Authenticator }

func (k podAuthenticator) Authenticate(ctx context.Context, token string) (podidentity.Pod, error) {
	p, err := k.a.Authenticate(ctx, token)
	if err != nil {
		return podidentity.Pod{}, err
	}
	return podOfKube(p), nil
}

// WaitAddresses implements podidentity.AddressWaiter: the node's informer may list a pod before its IPs.
func (k podAuthenticator) WaitAddresses(ctx context.Context, uid string) (podidentity.Pod, error) {
	p, err := k.a.WaitAddresses(ctx, uid)
	if err != nil {
		return podidentity.Pod{}, err
	}
	return podOfKube(p), nil
}

// podOfKube is p as package podidentity sees it: identity, node, addresses.
func podOfKube(p Pod) podidentity.Pod {
	return podidentity.Pod{Namespace: p.Namespace, ServiceAccount: p.ServiceAccount, Name: p.Name, UID: p.UID, Node: p.NodeName,
		IPs: p.IPs, HostNetwork: p.HostNetwork, Created: p.Created}
}
