// Package kube answers "which pod sent this request?" for pod identity mode: a pod presents its projected
// service-account token (audience spiffe-aws-bridge by default), and the bridge must learn the pod's
// namespace, service account, name and UID, and refuse a pod that is not alive on this node.
//
// Three parts, each usable alone:
//   - Reviewer verifies a token with the API server's TokenReview (audience checked on both sides) and
//     caches the answer by the token's SHA-256 (never the token) for no longer than the token lives and a
//     short maximum;
//   - Pods follows this node's pods with an informer (field selector spec.nodeName=NODE), tells whether a
//     pod UID is alive here and its IPs (status.podIPs) and host networking, waits a short bound
//     (DefaultPodWait) for a pod it has not listed yet (a pod's first request can beat the watch event)
//     but not for one it saw leave, and announces pods that leave (deleted or finished);
//   - Authenticator combines them: a valid token of a live pod on this node, else a typed *Error whose
//     HTTPStatus the credentials server answers with (401, 403 or 503).
//
// TokenReview alone does not stop a deleted pod's token at once: kube-apiserver caches its own successful
// reviews for about 10 seconds. The pod list does: a pod's deletion reaches the informer in milliseconds,
// and Authenticate refuses a pod the list does not hold, whatever any cache says.
//
// The RBAC the bridge needs for this is in rbac.yaml beside this file: create on tokenreviews, list and
// watch on pods.
package kube

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Keys of TokenReview's status.user.extra that a pod-bound service-account token carries.
const (
	ExtraPodName      = "authentication.kubernetes.io/pod-name"
	ExtraPodUID       = "authentication.kubernetes.io/pod-uid"
	ExtraNodeName     = "authentication.kubernetes.io/node-name"
	ExtraCredentialID = "authentication.kubernetes.io/credential-id"
)

// DefaultAudience is the audience pods' projected tokens are requested for.
const DefaultAudience = "spiffe-aws-bridge"

// Identity is what a verified token proves: the pod it was issued to.
type Identity struct {
	Namespace      string
	ServiceAccount string
	PodName        string
	PodUID         string
	// NodeName is the node the pod was bound to when the token was issued; "" when the API server does
	// not say (before Kubernetes 1.30).
	NodeName string
	// CredentialID identifies the token in the API server's audit log ("JTI=…"); safe to log.
	CredentialID string
	// Expires is the token's exp claim; zero when the token has none.
	Expires time.Time
}

// String names the pod, for logs.
func (id Identity) String() string {
	return fmt.Sprintf("%s/%s (uid %s, service account %s)", id.Namespace, id.PodName, id.PodUID, id.ServiceAccount)
}

// Pod is a live pod of this node, as the informer knows it.
type Pod struct {
	Namespace      string
	Name           string
	UID            string
	ServiceAccount string
	NodeName       string
	// IPs are the pod's addresses (status.podIPs); none while the kubelet has not reported them.
	IPs []netip.Addr
	// HostNetwork: the pod uses the node's network namespace (spec.hostNetwork).
	HostNetwork bool
	// Created is the pod's metadata.creationTimestamp (zero when the API server did not say).
	Created time.Time
}

// String names the pod, for logs.
func (p Pod) String() string {
	return fmt.Sprintf("%s/%s (uid %s)", p.Namespace, p.Name, p.UID)
}

// Selectors are the SPIRE k8s workload attestor's selectors of the pod, with which the Delegated
// Identity API is asked for its SVIDs: k8s:ns, k8s:sa, k8s:pod-uid and k8s:pod-name.
func (p Pod) Selectors() []string {
	return []string{
		"k8s:ns:" + p.Namespace,
		"k8s:sa:" + p.ServiceAccount,
		"k8s:pod-uid:" + p.UID,
		"k8s:pod-name:" + p.Name,
	}
}

// The client's own rate limit on API requests: the kubelet's defaults (kubeAPIQPS, kubeAPIBurst).
// client-go's default, 5 per second with bursts of 10, queued the TokenReviews of fifty pods' first
// requests for 8 s, past the requests' deadline; the reviews in flight are bounded anyway (16), and the
// API server's priority and fairness protect it.
const (
	ClientQPS   = 50
	ClientBurst = 100
)

// RESTConfig returns the client configuration for the API server: from the kubeconfig file at path, or
// the in-cluster configuration (the pod's service account) when path is "", with the client rate limit
// ClientQPS and ClientBurst.
func RESTConfig(path string) (*rest.Config, error) {
	var c *rest.Config
	var err error
	if path == "" {
		if c, err = rest.InClusterConfig(); err != nil {
			return nil, fmt.Errorf("kubernetes in-cluster configuration (set kubeconfig when not running in a pod): %w", err)
		}
	} else if c, err = clientcmd.BuildConfigFromFlags("", path); err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	c.QPS, c.Burst = ClientQPS, ClientBurst
	return c, nil
}

// splitServiceAccount parses a service account's user name, system:serviceaccount:NAMESPACE:NAME.
func splitServiceAccount(user string) (ns, name string, ok bool) {
	rest, ok := strings.CutPrefix(user, "system:serviceaccount:")
	if !ok {
		return "", "", false
	}
	ns, name, ok = strings.Cut(rest, ":")
	if !ok || ns == "" || name == "" || strings.Contains(name, ":") {
		return "", "", false
	}
	return ns, name, true
}
