// Package podidentitytest is a stand-in for the Kubernetes side of pod identity in tests and benchmarks:
// an Authenticator that knows the tokens it issued, as TokenReview knows the API server's. It models what
// the engine relies on (a token names one pod; a deleted pod's tokens stop working; a pod of another node
// is refused with podidentity.ErrForbidden), not the API server: the real one is tested against
// kube-apiserver in package podidentity/kube. Like the node's pod informer, it may know a pod before its
// IPs (SetAddresses), and waits a while for them when asked (podidentity.AddressWaiter).
package podidentitytest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity"
)

// Authenticator issues and verifies tokens for pods. It is safe for concurrent use.
type Authenticator struct {
	// Node is this node's name: a pod of another node is refused with podidentity.ErrForbidden, as the
	// node's pod informer does. "" accepts every node.
	Node string
	// AddressWait bounds WaitAddresses; default one second.
	AddressWait time.Duration

	mu      sync.Mutex
	changed chan struct{}              // closed and replaced when a pod's addresses change
	tokens  map[string]string          // token → pod UID
	pods    map[string]podidentity.Pod // by UID
	calls   int
}

// Issue returns a new token for pod (a pod may hold several, as projected tokens rotate).
func (a *Authenticator) Issue(pod podidentity.Pod) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	tok := "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(b) + ".sig"
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tokens == nil {
		a.tokens, a.pods = map[string]string{}, map[string]podidentity.Pod{}
	}
	a.tokens[tok] = pod.UID
	a.pods[pod.UID] = pod
	return tok
}

// Delete deletes the pod: its tokens stop working at once.
func (a *Authenticator) Delete(uid string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.pods, uid)
	if a.changed != nil {
		close(a.changed)
		a.changed = nil
	}
}

// SetAddresses sets the IPs of the pod with uid (its status.podIPs), waking WaitAddresses.
func (a *Authenticator) SetAddresses(uid string, ips ...netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p, ok := a.pods[uid]; ok {
		p.IPs = ips
		a.pods[uid] = p
	}
	if a.changed != nil {
		close(a.changed)
		a.changed = nil
	}
}

// WaitAddresses implements podidentity.AddressWaiter: it returns the pod once it has IPs (or host
// networking), or as it is after AddressWait or when ctx ends.
func (a *Authenticator) WaitAddresses(ctx context.Context, uid string) (podidentity.Pod, error) {
	wait := a.AddressWait
	if wait <= 0 {
		wait = time.Second
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		a.mu.Lock()
		p, ok := a.pods[uid]
		if a.changed == nil {
			a.changed = make(chan struct{})
		}
		changed := a.changed
		a.mu.Unlock()
		if !ok {
			return podidentity.Pod{}, fmt.Errorf("the pod (uid %s) no longer exists: %w", uid, podidentity.ErrUnauthenticated)
		}
		if len(p.IPs) > 0 || p.HostNetwork {
			return p, nil
		}
		select {
		case <-changed:
		case <-timer.C:
			return p, nil
		case <-ctx.Done():
			return p, nil
		}
	}
}

// Calls is how many tokens were verified.
func (a *Authenticator) Calls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls
}

// Authenticate implements podidentity.Authenticator.
func (a *Authenticator) Authenticate(_ context.Context, token string) (podidentity.Pod, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	uid, ok := a.tokens[token]
	if !ok {
		return podidentity.Pod{}, fmt.Errorf("token not issued by the API server: %w", podidentity.ErrUnauthenticated)
	}
	p, ok := a.pods[uid]
	if !ok {
		return podidentity.Pod{}, fmt.Errorf("the token's pod (uid %s) no longer exists: %w", uid, podidentity.ErrUnauthenticated)
	}
	if a.Node != "" && p.Node != a.Node {
		return podidentity.Pod{}, fmt.Errorf("pod %s runs on node %q, not on this node %q: %w", p, p.Node, a.Node, podidentity.ErrForbidden)
	}
	return p, nil
}
