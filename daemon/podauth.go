package daemon

import (
	"context"

	"github.com/hashicorp/go-hclog"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity/kube"
)

// KubernetesPodAuthenticator is the PodAuthenticatorFactory of a daemon run on Kubernetes (the default):
// pods' projected service-account tokens verified by the API server's TokenReview, the pods followed by an
// informer on this node (package podidentity/kube), klog routed into log.
func KubernetesPodAuthenticator(log hclog.Logger) PodAuthenticatorFactory {
	return func(ctx context.Context, o PodAuthenticatorOptions) (podidentity.Authenticator, func(), error) {
		kube.RouteKlog(log.Named("client-go"))
		a, stop, err := kube.Start(ctx, kube.Options{
			Kubeconfig: o.Config.Kubeconfig,
			NodeName:   o.NodeName,
			Audience:   o.Config.Audience,
			CacheTTL:   o.Config.TokenCacheTTL,
			OnGone: func(p kube.Pod) {
				if o.PodDeleted != nil {
					o.PodDeleted(p.UID)
				}
			},
			Logger: log,
		})
		if err != nil {
			return nil, nil, err
		}
		return kubeAuthenticator{a}, stop, nil
	}
}

// kubeAuthenticator presents package kube's pods as podidentity's. Its errors pass unchanged: the server
// answers each with its HTTPStatus (401 unauthenticated or pod gone, 403 wrong node, 503 unavailable).
type kubeAuthenticator struct{ a *kube.Authenticator }

func (k kubeAuthenticator) Authenticate(ctx context.Context, token string) (podidentity.Pod, error) {
	p, err := k.a.Authenticate(ctx, token)
	if err != nil {
		return podidentity.Pod{}, err
	}
	return podOfKube(p), nil
}

// WaitAddresses implements podidentity.AddressWaiter: the node's informer may list a pod before its IPs.
func (k kubeAuthenticator) WaitAddresses(ctx context.Context, uid string) (podidentity.Pod, error) {
	p, err := k.a.WaitAddresses(ctx, uid)
	if err != nil {
		return podidentity.Pod{}, err
	}
	return podOfKube(p), nil
}

func podOfKube(p kube.Pod) podidentity.Pod {
	return podidentity.Pod{Namespace: p.Namespace, ServiceAccount: p.ServiceAccount, Name: p.Name, UID: p.UID, Node: p.NodeName,
		IPs: p.IPs, HostNetwork: p.HostNetwork}
}
