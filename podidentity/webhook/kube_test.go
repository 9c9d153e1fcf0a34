package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity/kube/kubetest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// warnings collects the API server's warnings (admission warnings among them).
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	w.list = append(w.list, text)
	w.mu.Unlock()
}

// TestWebhookInjectsPodsThroughTheAPIServer: a real kube-apiserver calls the webhook over TLS (verified
// against the caBundle) for pods of a namespace labelled enabled, and the pod it stores carries the token
// volume, the mount and the two variables; a pod of another namespace is stored as it was sent, and a
// container with its own choice is left alone with a warning to whoever creates the pod.
func TestWebhookInjectsPodsThroughTheAPIServer(t *testing.T) {
	k := kubetest.Shared(t)
	ctx := context.Background()

	// The webhook, serving a certificate for 127.0.0.1: the API server calls it by URL here (a bare
	// control plane has no Service routing), with the certificate checked against the caBundle.
	ca, err := NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile, _ := writePair(t, ca, dir, append([]string{"127.0.0.1"}, ServiceDNSNames("pi-webhook", "bridge", "")...))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s, err := NewServer(ctx, Options{Listen: addr, Service: "pi-webhook", Namespace: "bridge", CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	enabled := k.Namespace(t, "pi-enabled")
	other := k.Namespace(t, "pi-other")
	if _, err := k.Client.CoreV1().Namespaces().Patch(ctx, enabled, "application/merge-patch+json",
		[]byte(`{"metadata":{"labels":{"`+OptLabel+`":"`+OptIn+`"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	url := "https://" + addr + MutatePath
	fail, none, ifNeeded := admissionregv1.Fail, admissionregv1.SideEffectClassNone, admissionregv1.IfNeededReinvocationPolicy
	scope := admissionregv1.NamespacedScope
	mwc := &admissionregv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "pi-" + enabled},
		Webhooks: []admissionregv1.MutatingWebhook{{
			Name:                    "namespace.pod-identity.spiffe-aws-bridge.io",
			AdmissionReviewVersions: []string{"v1"}, SideEffects: &none, FailurePolicy: &fail, ReinvocationPolicy: &ifNeeded,
			ClientConfig: admissionregv1.WebhookClientConfig{URL: &url, CABundle: ca.CertPEM},
			Rules: []admissionregv1.RuleWithOperations{{
				Operations: []admissionregv1.OperationType{admissionregv1.Create},
				Rule:       admissionregv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}, Scope: &scope},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{OptLabel: OptIn, "kubernetes.io/metadata.name": enabled}},
		}},
	}
	if _, err := k.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, mwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = k.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), mwc.Name, metav1.DeleteOptions{})
	})

	var warned warnings
	cfg := rest.CopyConfig(k.Config)
	cfg.WarningHandler = &warned
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	newPod := func(ns string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "app-", Namespace: ns},
			Spec: corev1.PodSpec{
				InitContainers: []corev1.Container{{Name: "init", Image: "busybox"}},
				Containers: []corev1.Container{
					{Name: "app", Image: "app", Env: []corev1.EnvVar{{Name: "AWS_REGION", Value: "eu-west-1"}}},
					{Name: "own", Image: "own", Env: []corev1.EnvVar{{Name: EnvFullURI, Value: "http://127.0.0.1:9912/v1/credentials"}}},
				},
			},
		}
	}
	// The webhook may need a moment before the API server's first call succeeds (a fresh configuration
	// reaches the admission chain asynchronously): retry until the pod comes back injected.
	var got *corev1.Pod
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := client.CoreV1().Pods(enabled).Create(ctx, newPod(enabled), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating a pod in %s: %v", enabled, err)
		}
		if hasVolume(p) || time.Now().After(deadline) {
			got = p
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !hasVolume(got) {
		t.Fatalf("the pod in the opted-in namespace came back without the token volume: %+v", got.Spec.Volumes)
	}
	for _, v := range got.Spec.Volumes {
		if v.Name == VolumeName {
			tok := v.Projected.Sources[0].ServiceAccountToken
			if tok.Audience != DefaultAudience || *tok.ExpirationSeconds != DefaultExpirationSeconds || tok.Path != TokenFile {
				t.Errorf("token projection %+v", tok)
			}
		}
	}
	for _, c := range []corev1.Container{got.Spec.InitContainers[0], got.Spec.Containers[0]} {
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		mounted := false
		for _, m := range c.VolumeMounts {
			mounted = mounted || (m.Name == VolumeName && m.MountPath == MountPath && m.ReadOnly)
		}
		if env[EnvFullURI] != DefaultCredentialsURI || env[EnvTokenFile] != TokenPath() || !mounted {
			t.Errorf("container %s: env %v, token mounted %v", c.Name, env, mounted)
		}
	}
	own := got.Spec.Containers[1]
	if len(own.Env) != 1 || own.Env[0].Value != "http://127.0.0.1:9912/v1/credentials" {
		t.Errorf("the container with its own credentials URI was changed: %+v", own.Env)
	}
	for _, m := range own.VolumeMounts {
		if m.Name == VolumeName {
			t.Errorf("the container with its own credentials URI got the token mounted")
		}
	}
	warned.mu.Lock()
	if !strings.Contains(strings.Join(warned.list, "\n"), `container "own" left as it is: it sets AWS_CONTAINER_CREDENTIALS_FULL_URI`) {
		t.Errorf("no admission warning about the container left alone: %q", warned.list)
	}
	warned.mu.Unlock()

	plain, err := client.CoreV1().Pods(other).Create(ctx, newPod(other), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if hasVolume(plain) || len(plain.Spec.Containers[0].Env) != 1 {
		t.Errorf("a pod of a namespace that did not opt in was injected: %+v", plain.Spec)
	}
}

func hasVolume(p *corev1.Pod) bool {
	for _, v := range p.Spec.Volumes {
		if v.Name == VolumeName {
			return true
		}
	}
	return false
}

// TestSelfSignedBootstrapAgainstTheAPIServer runs two webhook replicas in the self-signed mode at once,
// each with a client of a service account allowed exactly what the chart grants (get and update of the
// CA Secret, get and patch of the MutatingWebhookConfiguration, by name): both end up with the one CA
// written first, the caBundle holds it, both serve certificates that verify against that caBundle for
// the Service's name, and a caBundle reset (a helm upgrade, kubectl apply) is put back.
func TestSelfSignedBootstrapAgainstTheAPIServer(t *testing.T) {
	k := kubetest.Shared(t)
	ctx := context.Background()
	ns := k.Namespace(t, "pi-webhook")
	mwcName, secretName := "pi-boot-"+ns, "pi-webhook-ca"
	client := webhookClient(t, k, ns, mwcName, secretName)

	url := "https://127.0.0.1:1/mutate"
	none := admissionregv1.SideEffectClassNone
	var webhooks []admissionregv1.MutatingWebhook
	for _, name := range []string{"namespace.pod-identity.spiffe-aws-bridge.io", "pod.pod-identity.spiffe-aws-bridge.io"} {
		webhooks = append(webhooks, admissionregv1.MutatingWebhook{
			Name: name, AdmissionReviewVersions: []string{"v1"}, SideEffects: &none,
			ClientConfig:      admissionregv1.WebhookClientConfig{URL: &url},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"never": "matches"}},
		})
	}
	if _, err := k.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx,
		&admissionregv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: mwcName}, Webhooks: webhooks}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = k.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), mwcName, metav1.DeleteOptions{})
	})

	servers := make([]*Server, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			servers[i], errs[i] = NewServer(ctx, Options{
				Listen: "127.0.0.1:0", Service: "pi-webhook", Namespace: ns, SelfSigned: true,
				CASecret: secretName, WebhookConfig: mwcName, Client: client, CABundleCheck: time.Second,
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		defer servers[i].Close()
	}
	secret, err := k.Client.CoreV1().Secrets(ns).Get(ctx, secretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	caPEM := secret.Data[CASecretCertKey]
	waitFor(t, "both replicas ready", func() bool { return servers[0].Ready() && servers[1].Ready() })
	checkBundle := func() {
		t.Helper()
		cfg, err := k.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, mwcName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range cfg.Webhooks {
			if string(w.ClientConfig.CABundle) != string(caPEM) {
				t.Fatalf("webhook %s caBundle is not the Secret's CA", w.Name)
			}
		}
	}
	checkBundle()
	for _, s := range servers {
		verifyServes(t, s.Addr(), caPEM, "pi-webhook."+ns+".svc")
		verifyServes(t, s.Addr(), caPEM, "pi-webhook."+ns+".svc.cluster.local")
	}

	// A reset caBundle comes back within the check interval.
	if _, err := k.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Patch(ctx, mwcName, "application/json-patch+json",
		[]byte(`[{"op":"remove","path":"/webhooks/0/clientConfig/caBundle"}]`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the caBundle put back", func() bool {
		cfg, err := k.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, mwcName, metav1.GetOptions{})
		return err == nil && string(cfg.Webhooks[0].ClientConfig.CABundle) == string(caPEM)
	})
	checkBundle()
}

// TestSecurityWebhookReachesOnlyItsOwnObjects: the self-signed webhook's service account, with the
// chart's grants, cannot read another Secret, list Secrets, or change another MutatingWebhookConfiguration
// (which would let it intercept every pod of the cluster).
func TestSecurityWebhookReachesOnlyItsOwnObjects(t *testing.T) {
	k := kubetest.Shared(t)
	ctx := context.Background()
	ns := k.Namespace(t, "pi-webhook-sec")
	client := webhookClient(t, k, ns, "pi-sec-"+ns, "pi-webhook-ca")
	if _, err := k.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "other"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	url := "https://127.0.0.1:1/mutate"
	none := admissionregv1.SideEffectClassNone
	other := &admissionregv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "other-" + ns}, Webhooks: []admissionregv1.MutatingWebhook{{
		Name: "other.example.com", AdmissionReviewVersions: []string{"v1"}, SideEffects: &none, ClientConfig: admissionregv1.WebhookClientConfig{URL: &url},
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"never": "matches"}},
	}}}
	if _, err := k.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = k.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), other.Name, metav1.DeleteOptions{})
	})
	for what, err := range map[string]error{
		"get another Secret": func() error { _, err := client.CoreV1().Secrets(ns).Get(ctx, "other", metav1.GetOptions{}); return err }(),
		"list Secrets":       func() error { _, err := client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); return err }(),
		"create a Secret": func() error {
			_, err := client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "mine"}}, metav1.CreateOptions{})
			return err
		}(),
		"patch another MutatingWebhookConfiguration": func() error {
			_, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Patch(ctx, other.Name, "application/json-patch+json",
				[]byte(`[{"op":"add","path":"/webhooks/0/namespaceSelector","value":{}}]`), metav1.PatchOptions{})
			return err
		}(),
		"create a MutatingWebhookConfiguration": func() error {
			c := other.DeepCopy()
			c.Name, c.ResourceVersion = "mine-"+ns, ""
			_, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, c, metav1.CreateOptions{})
			return err
		}(),
		"list pods": func() error { _, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); return err }(),
	} {
		if !apierrors.IsForbidden(err) {
			t.Errorf("the webhook's service account could %s: %v", what, err)
		}
	}
}

// webhookClient creates, in ns, the CA Secret (empty) and a service account with exactly the chart's
// self-signed grants on it and on the MutatingWebhookConfiguration mwc, and returns a client acting as it.
func webhookClient(t *testing.T, k *kubetest.Server, ns, mwc, secret string) kubernetes.Interface {
	t.Helper()
	ctx := context.Background()
	if _, err := k.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secret}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	role := "pi-webhook-" + ns
	if _, err := k.Client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: role}, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"},
		ResourceNames: []string{mwc}, Verbs: []string{"get", "patch"},
	}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = k.Client.RbacV1().ClusterRoles().Delete(context.Background(), role, metav1.DeleteOptions{})
	})
	k.BindClusterRole(t, role, ns, "pi-webhook")
	if _, err := k.Client.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "pi-webhook"}, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{secret}, Verbs: []string{"get", "update"},
	}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "pi-webhook"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "pi-webhook"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "pi-webhook"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(k.ClientAs(t, ns, "pi-webhook"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// verifyServes dials addr as the API server would reach serverName and checks the certificate against
// caPEM (the caBundle).
func verifyServes(t *testing.T, addr string, caPEM []byte, serverName string) {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("caBundle holds no certificate")
	}
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: serverName})
	if err != nil {
		t.Fatalf("%s as %s: %v", addr, serverName, err)
	}
	conn.Close()
}
