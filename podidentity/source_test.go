package podidentity_test

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var (
	podA  = netip.MustParseAddr("127.0.0.2")
	other = netip.MustParseAddr("127.0.0.3")
)

// A pod's token is honoured only from the pod's own address: from another address (another pod, or a
// process of the node, that read the token) it gets 403 naming the source and the pod, never the token,
// and no stream or session is started for it. Both families: a dual-stack pod is served from either of
// its IPs, a pod of one family not from an address of the other.
func TestSecurityStolenTokenWorksOnlyFromItsPod(t *testing.T) {
	w := newWorld(t, worldOptions{identities: []identity{{"prod", "web"}}, listen: []string{"127.0.0.1:0", "[::1]:0"}})
	v6url := "http://" + w.srv.Addrs()[1] + "/v1/credentials"
	_, tok := w.podAt("prod", "web", "web-1", podA)

	code, doc := w.getFrom(t, tok, other.String(), "")
	if code != http.StatusForbidden || doc["Code"] != "SourceAddress" || doc["AccessKeyId"] != "" ||
		!strings.Contains(doc["Message"], "127.0.0.3") || !strings.Contains(doc["Message"], "prod/web-1") {
		t.Fatalf("the token from another address: %d %v; want 403 naming 127.0.0.3 and prod/web-1", code, doc)
	}
	if strings.Contains(doc["Message"], tok) || strings.Contains(w.log.String(), tok) {
		t.Fatal("the refusal or the log holds the token")
	}
	if !strings.Contains(w.log.String(), "127.0.0.3") {
		t.Fatalf("the refusal is not logged with its source:\n%s", w.log)
	}
	if w.srv.Pods() != 0 || w.admin.Streams() != 0 || w.creates() != 0 {
		t.Fatalf("a refused request started %d pods, %d streams, %d CreateSession calls", w.srv.Pods(), w.admin.Streams(), w.creates())
	}
	if code, doc := w.getFrom(t, tok, podA.String(), ""); code != http.StatusOK || doc["AccessKeyId"] == "" {
		t.Fatalf("the token from its pod's address: %d %v", code, doc)
	}
	// Served once, still refused from elsewhere (nothing is remembered per token).
	if code, _ := w.getFrom(t, tok, other.String(), ""); code != http.StatusForbidden {
		t.Fatalf("from another address after the pod was served: %d", code)
	}
	if code, doc := w.getFrom(t, tok, "::1", v6url); code != http.StatusForbidden || !strings.Contains(doc["Message"], "::1") {
		t.Fatalf("an IPv4-only pod's token over IPv6: %d %v", code, doc)
	}

	// A dual-stack pod: either of its addresses.
	_, dual := w.podAt("prod", "web", "web-2", other, netip.MustParseAddr("::1"))
	for _, from := range []struct{ src, url string }{{"127.0.0.3", ""}, {"::1", v6url}} {
		if code, doc := w.getFrom(t, dual, from.src, from.url); code != http.StatusOK {
			t.Errorf("a dual-stack pod from %s: %d %v", from.src, code, doc)
		}
	}
	if code, _ := w.getFrom(t, dual, podA.String(), ""); code != http.StatusForbidden {
		t.Errorf("a dual-stack pod's token from another pod's address: %d", code)
	}
}

// verify_source_address = false (for CNIs that translate pod addresses): the token alone decides.
func TestSourceCheckOffServesAnySource(t *testing.T) {
	w := newWorld(t, worldOptions{identities: []identity{{"prod", "web"}}, noSourceCheck: true})
	_, tok := w.podAt("prod", "web", "web-1", podA)
	if code, doc := w.getFrom(t, tok, other.String(), ""); code != http.StatusOK {
		t.Fatalf("check off, from another address: %d %v", code, doc)
	}
	_, unknown := w.podAt("prod", "web", "web-2")
	if code, doc := w.getFrom(t, unknown, other.String(), ""); code != http.StatusOK {
		t.Fatalf("check off, a pod whose IP is not known: %d %v", code, doc)
	}
}

// A pod the authenticator knows before its IPs (the kubelet reports them after binding): the request
// waits for them and is served when they come; if they never come it is 503 (retry), never served; a pod
// deleted meanwhile is 401.
func TestPodAddressLearnedLateIsWaitedFor(t *testing.T) {
	w := newWorld(t, worldOptions{identities: []identity{{"prod", "web"}}, addressWait: 2 * time.Second})
	p, tok := w.podAt("prod", "web", "web-1")
	go func() {
		time.Sleep(300 * time.Millisecond)
		w.auth.SetAddresses(p.UID, podA)
	}()
	if code, doc := w.getFrom(t, tok, podA.String(), ""); code != http.StatusOK {
		t.Fatalf("IP learned during the request: %d %v", code, doc)
	}

	never, neverTok := w.podAt("prod", "web", "web-2")
	code, doc := w.getFrom(t, neverTok, podA.String(), "")
	if code != http.StatusServiceUnavailable || doc["Code"] != "PodAddressUnknown" || !strings.Contains(doc["Message"], "prod/web-2") {
		t.Fatalf("IP never learned: %d %v; want 503 PodAddressUnknown", code, doc)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		w.auth.Delete(never.UID)
	}()
	if code, doc := w.getFrom(t, neverTok, podA.String(), ""); code != http.StatusUnauthorized {
		t.Fatalf("pod deleted while its IP was awaited: %d %v; want 401", code, doc)
	}
	if n := w.creates(); n != 1 {
		t.Fatalf("%d CreateSession calls, want 1 (the pod served)", n)
	}
}
