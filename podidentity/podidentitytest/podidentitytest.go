// Package podidentitytest is a stand-in for the Kubernetes side of pod identity in tests and benchmarks:
// an Authenticator that knows the tokens it issued, as TokenReview knows the API server's. It models what
// the engine relies on (a token names one pod; a deleted pod's tokens stop working; a pod of another node
// is refused with podidentity.ErrForbidden), not the API server: the real one is tested against
// kube-apiserver in package podidentity/kube.
package podidentitytest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sync"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity"
)

// Authenticator issues and verifies tokens for pods. It is safe for concurrent use.
type Authenticator struct {
	// Node is this node's name: a pod of another node is refused with podidentity.ErrForbidden, as the
	// node's pod informer does. "" accepts every node.
	Node string

	mu     sync.Mutex
	tokens map[string]string          // token → pod UID
	pods   map[string]podidentity.Pod // by UID
	calls  int
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
