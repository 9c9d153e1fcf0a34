package kube_test

import (
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity/kube"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity/kube/kubetest"
)

// gate holds back the informer's arrival of pods with one name until released, as a lagging watch
// does: the pod exists at the API server (TokenReview accepts its token), this node does not list it.
type gate struct {
	name     string
	mu       sync.Mutex
	open     chan struct{}
	reached  chan struct{}
	reachedO sync.Once
}

func newGate(name string) *gate {
	return &gate{name: name, open: make(chan struct{}), reached: make(chan struct{})}
}

func (g *gate) arrival(_, podName string) {
	if podName != g.name {
		return
	}
	g.reachedO.Do(func() { close(g.reached) })
	<-g.open
}

func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

// A pod's first request that beats the informer's watch event waits for it and is served once the
// informer lists the pod, rather than refused with a 401 that SDKs do not retry.
func TestFirstRequestBeforeTheInformerListsThePodWaitsForIt(t *testing.T) {
	s := kubetest.Shared(t)
	node := s.Node(t, "node")
	ns := s.Namespace(t, "ns")
	g := newGate("late")
	b := newBridge(t, s, node, bridgeOptions{arrival: g.arrival, wait: time.Minute})
	t.Cleanup(g.release) // before the informer's stop (cleanups run last first)
	pod := s.Pod(t, ns, "late", "app", node)
	token := s.PodToken(t, pod, aud, 3600)
	<-g.reached // the watch event is here, held before the informer stores the pod
	type result struct {
		pod kube.Pod
		err error
	}
	done := make(chan result, 1)
	go func() {
		p, err := b.auth.Authenticate(ctx(t), token)
		done <- result{p, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("answered before the informer listed the pod: %+v, %v", r.pod, r.err)
	case <-time.After(500 * time.Millisecond):
	}
	g.release()
	r := <-done
	if r.err != nil || r.pod.UID != string(pod.UID) {
		t.Fatalf("once the informer listed the pod: %+v, %v; want the pod", r.pod, r.err)
	}
}

// A token of a pod this node's informer never lists (held back for good) is refused after the bound,
// naming it; a deleted pod's token is refused at once, though the bound is a minute: the informer saw it
// leave.
func TestPodNeverListedIsRefusedAfterTheBoundAndADeletedOneAtOnce(t *testing.T) {
	s := kubetest.Shared(t)
	node := s.Node(t, "node")
	ns := s.Namespace(t, "ns")
	g := newGate("never")
	short := newBridge(t, s, node, bridgeOptions{arrival: g.arrival, wait: 700 * time.Millisecond})
	t.Cleanup(g.release) // before the informer's stop (cleanups run last first)
	never := s.Pod(t, ns, "never", "app", node)
	_, err := short.auth.Authenticate(ctx(t), s.PodToken(t, never, aud, 3600))
	e := wantRefusal(t, err, kube.KindPodGone, http.StatusUnauthorized)
	if !strings.Contains(e.Reason, "did not show it within 700ms") {
		t.Fatalf("refusal %q does not say it waited the bound", e.Reason)
	}

	long := newBridge(t, s, node, bridgeOptions{wait: time.Hour, cacheTTL: time.Hour})
	pod := s.Pod(t, ns, "app", "app", node)
	long.waitPod(t, pod)
	token := s.PodToken(t, pod, aud, 3600)
	if _, err := long.auth.Authenticate(ctx(t), token); err != nil {
		t.Fatal(err)
	}
	gone := long.pods.Gone(string(pod.UID))
	s.DeletePod(t, pod)
	<-gone
	// The API server's TokenReview cache still accepts the token for about 10 s: the informer decides.
	_, err = long.auth.Authenticate(ctx(t), token) // with an hour's bound: it must not wait
	e = wantRefusal(t, err, kube.KindPodGone, http.StatusUnauthorized)
	if !strings.Contains(e.Reason, "has left node") {
		t.Fatalf("refusal %q: want the pod's departure, not the bound", e.Reason)
	}
}

// The informer keeps each pod's IPs (both families) and host networking; WaitAddresses waits for IPs
// the kubelet reports after the pod is listed.
func TestInformerKnowsPodIPsAndWaitsForThem(t *testing.T) {
	s := kubetest.Shared(t)
	node := s.Node(t, "node")
	ns := s.Namespace(t, "ns")
	b := newBridge(t, s, node, bridgeOptions{wait: time.Minute})
	pod := s.Pod(t, ns, "app", "app", node)
	host := s.HostNetworkPod(t, ns, "agent", "agent", node)
	b.waitPod(t, pod)
	b.waitPod(t, host)
	got, err := b.auth.Authenticate(ctx(t), s.PodToken(t, pod, aud, 3600))
	if err != nil || len(got.IPs) != 0 || got.HostNetwork || !got.Created.Equal(pod.CreationTimestamp.Time) || got.Created.IsZero() {
		t.Fatalf("before the kubelet reports IPs (and with the pod's creation time %v): %+v, %v", pod.CreationTimestamp, got, err)
	}
	done := make(chan kube.Pod, 1)
	go func() {
		p, err := b.auth.WaitAddresses(ctx(t), string(pod.UID))
		if err != nil {
			t.Error(err)
		}
		done <- p
	}()
	time.Sleep(200 * time.Millisecond)
	s.SetPodIPs(t, pod, "10.1.2.3", "fd00:10::3")
	want := []netip.Addr{netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("fd00:10::3")}
	if p := <-done; !reflect.DeepEqual(p.IPs, want) {
		t.Fatalf("WaitAddresses: %+v; want IPs %v", p, want)
	}
	// A host-network pod needs no IPs to be waited for.
	hp, err := b.auth.WaitAddresses(ctx(t), string(host.UID))
	if err != nil || !hp.HostNetwork {
		t.Fatalf("host-network pod: %+v, %v", hp, err)
	}
}
