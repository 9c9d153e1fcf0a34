package kube_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/klog/v2"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/logtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity/kube"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity/kube/kubetest"
)

func TestStartFromAKubeconfigFollowsTheNodesPods(t *testing.T) {
	s := kubetest.Shared(t)
	node := s.Node(t, "node")
	ns := s.Namespace(t, "ns")
	var mu sync.Mutex
	var gone []string
	a, stop, err := kube.Start(context.Background(), kube.Options{
		Kubeconfig: kubetest.Kubeconfig(t, s.Config), NodeName: node,
		OnGone: func(p kube.Pod) { mu.Lock(); gone = append(gone, p.UID); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	pod := s.Pod(t, ns, "app", "app", node)
	token := s.PodToken(t, pod, kube.DefaultAudience, 3600)
	var got kube.Pod
	deadline := time.Now().Add(15 * time.Second)
	for {
		if got, err = a.Authenticate(ctx(t), token); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || got.UID != string(pod.UID) {
		t.Fatalf("Authenticate = %v, %v; want pod %s", got, err, pod.UID)
	}
	if !a.HasSynced() {
		t.Fatal("HasSynced false after a pod was authenticated")
	}
	s.DeletePod(t, pod)
	deadline = time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(gone)
		mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("OnGone not called for the deleted pod")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(kube.CacheKeys(a.Reviewer())); n != 0 {
		t.Fatalf("%d cached reviews left after the pod's deletion", n)
	}
}

func TestSecurityClientGoLogsGoToTheBridgeLogWithoutCredentials(t *testing.T) {
	s := kubetest.Shared(t)
	node := s.Node(t, "node")
	ns := s.Namespace(t, "ns")
	log, buf := logtest.New()
	kube.RouteKlog(log)
	// A service account without the bridge's role: the informer's list is forbidden, which client-go
	// reports through klog; the operator must see it in the bridge's log, without the client's token.
	conf := s.ClientAs(t, ns, "no-role")
	a, stop, err := kube.Start(context.Background(), kube.Options{Kubeconfig: kubetest.Kubeconfig(t, conf), NodeName: node, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(buf.String(), "forbidden") {
		if time.Now().After(deadline) {
			t.Fatalf("no forbidden list in the bridge's log:\n%s", buf.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, err = a.Authenticate(ctx(t), "x.y.z")
	wantRefusal(t, err, kube.KindUnavailable, http.StatusServiceUnavailable)
	if containsAnyPart(buf.String(), conf.BearerToken) {
		t.Fatalf("the bridge's own token is in its log:\n%s", buf.String())
	}
}

// TestRouteKlogAgainWhileClientGoLogs routes klog to a second logger (a reload, a second daemon in one
// process) while klog is logging: under -race this was a data race on klog's process-wide logger. Every
// line after the switch reaches the new logger, none the old.
func TestRouteKlogAgainWhileClientGoLogs(t *testing.T) {
	first, firstBuf := logtest.New()
	kube.RouteKlog(first)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				klog.ErrorS(nil, "background line")
			}
		}
	}()
	time.Sleep(20 * time.Millisecond)
	second, secondBuf := logtest.New()
	kube.RouteKlog(second)
	close(stop)
	wg.Wait()
	before := strings.Count(firstBuf.String(), "background line")
	klog.ErrorS(nil, "after the switch", "key", "value")
	if !strings.Contains(secondBuf.String(), "after the switch") || !strings.Contains(secondBuf.String(), "key=value") {
		t.Fatalf("the second logger did not get the line after the switch:\n%s", secondBuf.String())
	}
	if strings.Contains(firstBuf.String(), "after the switch") || strings.Count(firstBuf.String(), "background line") != before {
		t.Fatalf("the first logger still gets klog's lines:\n%s", firstBuf.String())
	}
}
