package kubetest_test

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity/kube/kubetest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

func TestControlPlaneServesPodsAndTokens(t *testing.T) {
	s := kubetest.Shared(t)
	t.Logf("etcd + kube-apiserver ready in %s", s.StartupTime)
	node := s.Node(t, "node")
	ns := s.Namespace(t, "ns")
	pod := s.Pod(t, ns, "app", "app-sa", node)
	if pod.Spec.NodeName != node || pod.UID == "" {
		t.Fatalf("pod %s/%s: node %q uid %q", ns, pod.Name, pod.Spec.NodeName, pod.UID)
	}
	if tok := s.PodToken(t, pod, "aud", 600); len(tok) < 100 {
		t.Fatalf("token of %d bytes", len(tok))
	}
	s.DeletePod(t, pod)
	if _, err := s.Client.CoreV1().Pods(ns).Get(context.Background(), pod.Name, metav1.GetOptions{}); err == nil {
		t.Fatalf("pod %s/%s still there after DeletePod", ns, pod.Name)
	}
}
