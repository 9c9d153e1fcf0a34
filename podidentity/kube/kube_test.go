package kube_test

import (
	"context"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	authnv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/clock"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/logtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity/kube"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity/kube/kubetest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

const aud = kube.DefaultAudience

// countingReviews passes TokenReviews to the real API server and counts them.
type countingReviews struct {
	authnv1client.TokenReviewsGetter
	n atomic.Int64
}

func (c *countingReviews) TokenReviews() authnv1client.TokenReviewInterface {
	return countingCreate{c.TokenReviewsGetter.TokenReviews(), &c.n}
}

type countingCreate struct {
	authnv1client.TokenReviewInterface
	n *atomic.Int64
}

func (c countingCreate) Create(ctx context.Context, tr *authnv1.TokenReview, o metav1.CreateOptions) (*authnv1.TokenReview, error) {
	c.n.Add(1)
	return c.TokenReviewInterface.Create(ctx, tr, o)
}

// bridge is one node's pod identity authentication, as the daemon runs it, against the shared API server.
type bridge struct {
	node     string
	reviews  *countingReviews
	reviewer *kube.Reviewer
	pods     *kube.Pods
	auth     *kube.Authenticator
	logs     *logtest.Buffer

	mu   sync.Mutex
	gone []kube.Pod
}

type bridgeOptions struct {
	client   kubernetes.Interface // default the administrator's
	clock    clock.Clock
	cacheTTL time.Duration
	wait     time.Duration             // the informer wait bound (PodsOptions.Wait)
	arrival  func(uid, podName string) // called before the informer stores each pod
}

func newBridge(t *testing.T, s *kubetest.Server, node string, o bridgeOptions) *bridge {
	t.Helper()
	if o.client == nil {
		o.client = s.Client
	}
	log, buf := logtest.New()
	b := &bridge{node: node, logs: buf, reviews: &countingReviews{TokenReviewsGetter: o.client.AuthenticationV1()}}
	var err error
	b.reviewer, err = kube.NewReviewer(kube.ReviewerOptions{
		Client: b.reviews, Audience: aud, Clock: o.clock, CacheTTL: o.cacheTTL, Logger: log.Named("review"),
	})
	if err != nil {
		t.Fatal(err)
	}
	b.pods, err = kube.NewPods(kube.PodsOptions{
		Client: o.client, NodeName: node, Logger: log.Named("pods"),
		OnGone: func(p kube.Pod) { b.mu.Lock(); b.gone = append(b.gone, p); b.mu.Unlock() },
		Wait:   o.wait,
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.arrival != nil {
		kube.SetArrival(b.pods, o.arrival)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.pods.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := b.pods.WaitForSync(wctx); err != nil {
		t.Fatal(err)
	}
	b.auth = kube.NewAuthenticator(b.reviewer, b.pods)
	return b
}

// waitPod waits until the bridge's informer has the pod (the watch is asynchronous).
func (b *bridge) waitPod(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := b.pods.Get(string(pod.UID)); ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("pod %s/%s never appeared in node %s's informer", pod.Namespace, pod.Name, b.node)
}

func (b *bridge) goneUIDs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, p := range b.gone {
		out = append(out, p.UID)
	}
	return out
}

// wantRefusal checks that err is a *kube.Error of kind with HTTP status code.
func wantRefusal(t *testing.T, err error, kind kube.Kind, code int) *kube.Error {
	t.Helper()
	e, ok := kube.AsError(err)
	if !ok {
		t.Fatalf("error %v (%T), want a *kube.Error of kind %s", err, err, kind)
	}
	if e.Kind != kind || e.HTTPStatus() != code {
		t.Fatalf("refused as %s (HTTP %d), want %s (HTTP %d): %v", e.Kind, e.HTTPStatus(), kind, code, err)
	}
	return e
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestPodTokenAuthenticatesAsThatPod(t *testing.T) {
	s := kubetest.Shared(t)
	node := s.Node(t, "node")
	ns := s.Namespace(t, "shop")
	b := newBridge(t, s, node, bridgeOptions{})
	pod := s.Pod(t, ns, "cart-7d9f", "cart", node)
	other := s.Pod(t, ns, "billing-1", "billing", node)
	b.waitPod(t, pod)
	b.waitPod(t, other)

	token := s.PodToken(t, pod, aud, 86400)
	id, err := b.reviewer.Review(ctx(t), token)
	if err != nil {
		t.Fatal(err)
	}
	if id.Namespace != ns || id.ServiceAccount != "cart" || id.PodName != pod.Name || id.PodUID != string(pod.UID) || id.NodeName != node {
		t.Fatalf("identity %+v, want pod %s/%s uid %s of service account cart on %s", id, ns, pod.Name, pod.UID, node)
	}
	if id.Expires.Before(time.Now().Add(23*time.Hour)) || id.CredentialID == "" {
		t.Fatalf("identity %+v: want the token's exp a day ahead and its credential ID", id)
	}
	got, err := b.auth.Authenticate(ctx(t), token)
	if err != nil {
		t.Fatal(err)
	}
	want := kube.Pod{Namespace: ns, Name: pod.Name, UID: string(pod.UID), ServiceAccount: "cart", NodeName: node, Created: pod.CreationTimestamp.Time}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Authenticate = %+v, want %+v", got, want)
	}
	wantSel := []string{"k8s:ns:" + ns, "k8s:sa:cart", "k8s:pod-uid:" + string(pod.UID), "k8s:pod-name:" + pod.Name}
	if sel := got.Selectors(); len(sel) != 4 || sel[0] != wantSel[0] || sel[1] != wantSel[1] || sel[2] != wantSel[2] || sel[3] != wantSel[3] {
		t.Fatalf("selectors %q, want %q", sel, wantSel)
	}
	// The other pod of the node, same namespace, is told apart by its own token.
	got2, err := b.auth.Authenticate(ctx(t), s.PodToken(t, other, aud, 3600))
	if err != nil || got2.UID != string(other.UID) || got2.ServiceAccount != "billing" {
		t.Fatalf("other pod's token: %+v, %v", got2, err)
	}
}

func TestConcurrentRequestsWithOneTokenCostOneTokenReview(t *testing.T) {
	s := kubetest.Shared(t)
	node := s.Node(t, "node")
	ns := s.Namespace(t, "ns")
	b := newBridge(t, s, node, bridgeOptions{})
	pod := s.Pod(t, ns, "app", "app", node)
	b.waitPod(t, pod)
	token := s.PodToken(t, pod, aud, 3600)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.auth.Authenticate(ctx(t), token); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := b.reviews.n.Load(); n != 1 {
		t.Fatalf("%d TokenReviews for 50 requests with one token, want 1", n)
	}
}

func TestSecurityTokenOfAnotherAudienceIsRefused(t *testing.T) {
	s := kubetest.Shared(t)
	node := s.Node(t, "node")
	ns := s.Namespace(t, "ns")
	b := newBridge(t, s, node, bridgeOptions{})
	pod := s.Pod(t, ns, "app", "app", node)
	b.waitPod(t, pod)
	for name, audience := range map[string]string{
		"a token for another service":               "vault",
		"the API server's own audience (automount)": kubetest.Issuer,
		"an audience that merely starts like ours":  aud + "-other",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := b.auth.Authenticate(ctx(t), s.PodToken(t, pod, audience, 3600))
			wantRefusal(t, err, kube.KindUnauthenticated, http.StatusUnauthorized)
		})
	}
}

func TestSecurityTokenOfADeletedPodIsRefusedWithinSeconds(t *testing.T) {
	t.Parallel() // waits for the API server's own review cache to expire
	s := kubetest.Shared(t)
	node := s.Node(t, "node")
	ns := s.Namespace(t, "ns")
	// A long cache: the refusal must come from the pod's departure, not from the cache running out.
	b := newBridge(t, s, node, bridgeOptions{cacheTTL: time.Hour})
	pod := s.Pod(t, ns, "app", "app", node)
	b.waitPod(t, pod)
	token := s.PodToken(t, pod, aud, 86400)
	if _, err := b.auth.Authenticate(ctx(t), token); err != nil {
		t.Fatal(err)
	}
	gone := b.pods.Gone(string(pod.UID))
	select {
	case <-gone:
		t.Fatal("Gone is closed while the pod lives")
	default:
	}

	deleted := time.Now()
	s.DeletePod(t, pod)
	var err error
	for time.Since(deleted) < 5*time.Second {
		if _, err = b.auth.Authenticate(ctx(t), token); err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantRefusal(t, err, kube.KindPodGone, http.StatusUnauthorized)
	t.Logf("refused %s after the deletion (cached review)", time.Since(deleted).Round(time.Millisecond))
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("Gone not closed after the pod's deletion")
	}
	// OnGone runs just after Gone is closed, on the informer's goroutine.
	for deadline := time.Now().Add(5 * time.Second); len(b.goneUIDs()) == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if uids := b.goneUIDs(); len(uids) != 1 || uids[0] != string(pod.UID) {
		t.Fatalf("OnGone saw %q, want once %s", uids, pod.UID)
	}
	// A bridge that never saw the token refuses it too: its pod list lacks the pod. TokenReview alone is
	// not enough: the API server caches its answers (about 10 s), so it says yes for a while after the
	// deletion. The pod list is what makes the refusal immediate.
	fresh := newBridge(t, s, node, bridgeOptions{})
	_, err = fresh.auth.Authenticate(ctx(t), token)
	if e, ok := kube.AsError(err); !ok || e.HTTPStatus() != http.StatusUnauthorized {
		t.Fatalf("a fresh bridge: %v, want a 401 refusal", err)
	}
	uncached, err := kube.NewReviewer(kube.ReviewerOptions{Client: s.Client.AuthenticationV1(), CacheTTL: -1, RefusalTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, err = uncached.Review(ctx(t), token)
		if err != nil || time.Since(deleted) > 20*time.Second {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	wantRefusal(t, err, kube.KindUnauthenticated, http.StatusUnauthorized)
	t.Logf("TokenReview alone refused the token %s after the deletion", time.Since(deleted).Round(100*time.Millisecond))
	// And a new pod of the same name (another UID) is not the old token's pod.
	again := s.Pod(t, ns, "app", "app", node)
	b.waitPod(t, again)
	_, err = b.auth.Authenticate(ctx(t), token)
	wantRefusal(t, err, kube.KindPodGone, http.StatusUnauthorized)
}

func TestSecurityFinishedPodIsRefused(t *testing.T) {
	s := kubetest.Shared(t)
	node := s.Node(t, "node")
	ns := s.Namespace(t, "ns")
	b := newBridge(t, s, node, bridgeOptions{cacheTTL: time.Hour})
	pod := s.Pod(t, ns, "job", "job", node)
	b.waitPod(t, pod)
	token := s.PodToken(t, pod, aud, 3600)
	if _, err := b.auth.Authenticate(ctx(t), token); err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodSucceeded
	if _, err := s.Client.CoreV1().Pods(ns).UpdateStatus(ctx(t), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.pods.Gone(string(pod.UID)):
	case <-time.After(5 * time.Second):
		t.Fatal("Gone not closed after the pod finished")
	}
	_, err := b.auth.Authenticate(ctx(t), token)
	wantRefusal(t, err, kube.KindPodGone, http.StatusUnauthorized)
}

func TestSecurityPodOnAnotherNodeIsRefused(t *testing.T) {
	s := kubetest.Shared(t)
	here, there := s.Node(t, "here"), s.Node(t, "there")
	ns := s.Namespace(t, "ns")
	b := newBridge(t, s, here, bridgeOptions{})
	pod := s.Pod(t, ns, "app", "app", there)
	_, err := b.auth.Authenticate(ctx(t), s.PodToken(t, pod, aud, 3600))
	e := wantRefusal(t, err, kube.KindWrongNode, http.StatusForbidden)
	if e.Pod == "" {
		t.Fatalf("the refusal does not name the pod: %v", e)
	}
	if _, ok := b.pods.Get(string(pod.UID)); ok {
		t.Fatal("the informer of one node holds a pod of another")
	}
}

func TestSecurityTokenNotBoundToAPodIsRefused(t *testing.T) {
	s := kubetest.Shared(t)
	node := s.Node(t, "node")
	ns := s.Namespace(t, "ns")
	b := newBridge(t, s, node, bridgeOptions{})
	s.Pod(t, ns, "app", "app", node)
	// A valid token of the pod's own service account, right audience, bound to no pod: it cannot say
	// which pod sent it (any holder of the account could have requested it).
	_, err := b.auth.Authenticate(ctx(t), s.ServiceAccountToken(t, ns, "app", aud))
	wantRefusal(t, err, kube.KindUnauthenticated, http.StatusUnauthorized)
}

func TestSecurityExpiredTokenIsRefusedAndTheCacheNeverOutlivesIt(t *testing.T) {
	s := kubetest.Shared(t)
	node := s.Node(t, "node")
	ns := s.Namespace(t, "ns")
	fake := clock.NewFake(time.Now())
	// A cache far longer than the token: the token's exp must bound it.
	b := newBridge(t, s, node, bridgeOptions{clock: fake, cacheTTL: 48 * time.Hour})
	pod := s.Pod(t, ns, "app", "app", node)
	b.waitPod(t, pod)
	token := s.PodToken(t, pod, aud, 600) // the API's shortest
	id, err := b.auth.Authenticate(ctx(t), token)
	if err != nil {
		t.Fatal(err)
	}
	idt, _ := b.reviewer.Review(ctx(t), token)
	exp := idt.Expires
	if d := time.Until(exp); d < 590*time.Second || d > 610*time.Second {
		t.Fatalf("token expires in %s, want 600s", d)
	}
	fake.Set(exp.Add(-time.Second))
	if _, err := b.auth.Authenticate(ctx(t), token); err != nil {
		t.Fatalf("a second before exp: %v", err)
	}
	if n := b.reviews.n.Load(); n != 1 {
		t.Fatalf("%d TokenReviews before exp, want 1 (cached)", n)
	}
	fake.Set(exp)
	_, err = b.auth.Authenticate(ctx(t), token)
	e := wantRefusal(t, err, kube.KindUnauthenticated, http.StatusUnauthorized)
	t.Logf("at exp: %v (pod %s)", e, id)
	if got := len(kube.CacheKeys(b.reviewer)); got != 0 {
		t.Fatalf("%d cache entries left at the token's exp", got)
	}
}

func TestSecurityCacheHoldsOnlyTheTokensHash(t *testing.T) {
	s := kubetest.Shared(t)
	node := s.Node(t, "node")
	ns := s.Namespace(t, "ns")
	b := newBridge(t, s, node, bridgeOptions{})
	pod := s.Pod(t, ns, "app", "app", node)
	b.waitPod(t, pod)
	token := s.PodToken(t, pod, aud, 3600)
	wrong := s.PodToken(t, pod, "vault", 3600)
	if _, err := b.auth.Authenticate(ctx(t), token); err != nil {
		t.Fatal(err)
	}
	_, _ = b.auth.Authenticate(ctx(t), wrong) // a refusal is cached too
	keys := kube.CacheKeys(b.reviewer)
	if len(keys) != 2 {
		t.Fatalf("%d cache entries, want 2 (one review, one refusal)", len(keys))
	}
	for _, k := range keys {
		if k != sha256Of(token) && k != sha256Of(wrong) {
			t.Fatalf("cache key %x is not the SHA-256 of a reviewed token", k)
		}
	}
	for _, entry := range kube.CacheDump(b.reviewer) {
		for _, tok := range []string{token, wrong} {
			if containsAnyPart(entry, tok) {
				t.Fatalf("a cache entry holds (part of) a token: %s", entry)
			}
		}
	}
}

func TestSecurityForgedOrGarbledTokenIsRefused(t *testing.T) {
	s := kubetest.Shared(t)
	node := s.Node(t, "node")
	ns := s.Namespace(t, "ns")
	b := newBridge(t, s, node, bridgeOptions{})
	pod := s.Pod(t, ns, "app", "app", node)
	victim := s.Pod(t, ns, "payments", "payments", node)
	b.waitPod(t, pod)
	b.waitPod(t, victim)
	own := s.PodToken(t, pod, aud, 3600)
	victims := s.PodToken(t, victim, aud, 3600)
	cases := map[string]string{
		"no token":           "",
		"garbage":            "not-a-token",
		"Bearer prefix":      "Bearer " + own,
		"longer than 16 KiB": string(make([]byte, kube.MaxTokenBytes+1)),
		// The victim's claims under the attacker's own (valid) signature.
		"another pod's claims with this pod's signature": splice(victims, own),
		// The victim's claims signed by a key the attacker made.
		"another pod's claims signed with a key of the attacker's": resign(t, victims),
		"a truncated signature": own[:len(own)-10],
	}
	for name, token := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := b.auth.Authenticate(ctx(t), token)
			wantRefusal(t, err, kube.KindUnauthenticated, http.StatusUnauthorized)
		})
	}
}

func TestSecurityLogsAndErrorsNeverContainTheToken(t *testing.T) {
	s := kubetest.Shared(t)
	node, there := s.Node(t, "node"), s.Node(t, "there")
	ns := s.Namespace(t, "ns")
	b := newBridge(t, s, node, bridgeOptions{})
	b.logs = nil
	log, buf := logtest.New()
	reviewer, err := kube.NewReviewer(kube.ReviewerOptions{Client: s.Client.AuthenticationV1(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	auth := kube.NewAuthenticator(reviewer, b.pods)
	pod := s.Pod(t, ns, "app", "app", node)
	far := s.Pod(t, ns, "far", "far", there)
	b.waitPod(t, pod)
	tokens := []string{
		s.PodToken(t, pod, aud, 3600),     // accepted
		s.PodToken(t, pod, "vault", 3600), // wrong audience
		s.PodToken(t, far, aud, 3600),     // another node
		resign(t, s.PodToken(t, pod, aud, 3600)),
	}
	var errs []string
	for _, tok := range tokens {
		if _, err := auth.Authenticate(ctx(t), tok); err != nil {
			errs = append(errs, err.Error())
		}
	}
	// And the API server unreachable: the client library's error must not carry it either.
	down, err := kube.NewReviewer(kube.ReviewerOptions{Client: unreachable(t, s).AuthenticationV1(), Logger: log, ReviewTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = down.Review(ctx(t), tokens[0])
	wantRefusal(t, err, kube.KindUnavailable, http.StatusServiceUnavailable)
	errs = append(errs, err.Error())
	if len(errs) != 4 {
		t.Fatalf("%d refusals, want 4: %q", len(errs), errs)
	}
	logged := buf.String()
	if logged == "" {
		t.Fatal("nothing logged at trace level: the check would prove nothing")
	}
	for _, tok := range tokens {
		if containsAnyPart(logged, tok) {
			t.Fatalf("a token (or its payload or signature) is in the log:\n%s", logged)
		}
		for _, e := range errs {
			if containsAnyPart(e, tok) {
				t.Fatalf("a token (or its payload or signature) is in an error: %s", e)
			}
		}
	}
}

func TestAPIServerDownIsUnavailableNotUnauthenticated(t *testing.T) {
	s := kubetest.Shared(t)
	node := s.Node(t, "node")
	ns := s.Namespace(t, "ns")
	pod := s.Pod(t, ns, "app", "app", node)
	token := s.PodToken(t, pod, aud, 3600)
	r, err := kube.NewReviewer(kube.ReviewerOptions{Client: unreachable(t, s).AuthenticationV1(), ReviewTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Review(ctx(t), token)
	wantRefusal(t, err, kube.KindUnavailable, http.StatusServiceUnavailable)
	// Not cached: the same token is asked about again once the API server answers.
	if n := len(kube.CacheKeys(r)); n != 0 {
		t.Fatalf("%d cache entries after a failed TokenReview", n)
	}
}

func TestPodListNotLoadedIsUnavailable(t *testing.T) {
	s := kubetest.Shared(t)
	node := s.Node(t, "node")
	ns := s.Namespace(t, "ns")
	pod := s.Pod(t, ns, "app", "app", node)
	r, err := kube.NewReviewer(kube.ReviewerOptions{Client: s.Client.AuthenticationV1()})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := kube.NewPods(kube.PodsOptions{Client: s.Client, NodeName: node}) // never Run
	if err != nil {
		t.Fatal(err)
	}
	_, err = kube.NewAuthenticator(r, pods).Authenticate(ctx(t), s.PodToken(t, pod, aud, 3600))
	wantRefusal(t, err, kube.KindUnavailable, http.StatusServiceUnavailable)
}
