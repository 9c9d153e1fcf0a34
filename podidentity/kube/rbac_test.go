package kube_test

import (
	"net/http"
	"os"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity/kube"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity/kube/kubetest"
)

// installRole creates the ClusterRole of rbac.yaml under a name of this test's and returns the name.
func installRole(t *testing.T, s *kubetest.Server) (string, rbacv1.ClusterRole) {
	t.Helper()
	data, err := os.ReadFile("rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(data, &role); err != nil {
		t.Fatalf("rbac.yaml: %v", err)
	}
	if role.Kind != "ClusterRole" || role.Name != "spiffe-aws-bridge-pod-identity" {
		t.Fatalf("rbac.yaml holds %s %q, want the ClusterRole spiffe-aws-bridge-pod-identity", role.Kind, role.Name)
	}
	role.Name = s.Namespace(t, "role") // a unique name (the namespace itself is unused)
	if _, err := s.Client.RbacV1().ClusterRoles().Create(ctx(t), &role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Client.RbacV1().ClusterRoles().Delete(ctx(t), role.Name, metav1.DeleteOptions{}) })
	return role.Name, role
}

func clientOf(t *testing.T, s *kubetest.Server, ns, sa string) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(s.ClientAs(t, ns, sa))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSecurityTheRBACOfRbacYAMLSufficesAndNoMore(t *testing.T) {
	s := kubetest.Shared(t)
	node := s.Node(t, "node")
	system := s.Namespace(t, "bridge-system")
	apps := s.Namespace(t, "apps")
	role, _ := installRole(t, s)
	s.BindClusterRole(t, role, system, "spiffe-aws-bridge")
	client := clientOf(t, s, system, "spiffe-aws-bridge")

	// Without the binding, the same requests are forbidden: what follows proves the role, not a default.
	unbound := clientOf(t, s, system, "someone-else")
	if _, err := unbound.CoreV1().Pods("").List(ctx(t), metav1.ListOptions{FieldSelector: "spec.nodeName=" + node}); !apierrors.IsForbidden(err) {
		t.Fatalf("a service account without the role listed pods: %v", err)
	}
	pod := s.Pod(t, apps, "app", "app", node)
	token := s.PodToken(t, pod, aud, 3600)
	r, err := kube.NewReviewer(kube.ReviewerOptions{Client: unbound.AuthenticationV1()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Review(ctx(t), token)
	wantRefusal(t, err, kube.KindUnavailable, http.StatusServiceUnavailable)

	// With it (RBAC's caches take a moment to see a new binding), the bridge's pod list and reviews work.
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := client.CoreV1().Pods("").List(ctx(t), metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bound service account still cannot list pods: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b := newBridge(t, s, node, bridgeOptions{client: client})
	b.waitPod(t, pod)
	got, err := b.auth.Authenticate(ctx(t), token)
	if err != nil {
		t.Fatalf("with the role of rbac.yaml: %v", err)
	}
	if got.UID != string(pod.UID) {
		t.Fatalf("authenticated as %v, want %s", got, pod.UID)
	}

	// Nothing more: no single pod by name, no secrets, no writes, no tokens of others, no nodes.
	forbidden := map[string]error{}
	_, forbidden["get a pod"] = client.CoreV1().Pods(apps).Get(ctx(t), pod.Name, metav1.GetOptions{})
	_, forbidden["list secrets"] = client.CoreV1().Secrets(apps).List(ctx(t), metav1.ListOptions{})
	_, forbidden["list config maps"] = client.CoreV1().ConfigMaps(apps).List(ctx(t), metav1.ListOptions{})
	_, forbidden["list nodes"] = client.CoreV1().Nodes().List(ctx(t), metav1.ListOptions{})
	forbidden["delete a pod"] = client.CoreV1().Pods(apps).Delete(ctx(t), pod.Name, metav1.DeleteOptions{})
	_, forbidden["create a pod"] = client.CoreV1().Pods(apps).Create(ctx(t), pod.DeepCopy(), metav1.CreateOptions{})
	_, forbidden["request a token of the pod's service account"] = client.CoreV1().ServiceAccounts(apps).CreateToken(ctx(t), "app", tokenRequest(), metav1.CreateOptions{})
	_, forbidden["list service accounts"] = client.CoreV1().ServiceAccounts(apps).List(ctx(t), metav1.ListOptions{})
	for what, err := range forbidden {
		if !apierrors.IsForbidden(err) {
			t.Errorf("the bridge's role lets it %s: %v", what, err)
		}
	}
}
