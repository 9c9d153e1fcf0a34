package charts

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity/kube/kubetest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity/webhook"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// crdDir holds the CRDs the chart's objects need besides Kubernetes' own: spire-controller-manager's
// ClusterSPIFFEID (v0.6.6, the version the project documents), a copy of ../shared/k8s-lab/crds' so
// that the test needs nothing outside the repository.
const crdDir = "testdata/crds"

// notValidated are API groups whose CRDs the test API server does not have: their objects are checked by
// TestChartRendersItsPromises only. cert-manager's CRDs are several hundred kilobytes of generated schema;
// the chart's two cert-manager objects use only the basic fields of cert-manager.io/v1.
var notValidated = map[string]bool{"cert-manager.io": true}

// TestChartPassesStrictServerSideValidation renders the chart for its defaults and every example values
// file and creates every object with a server-side dry run and strict field validation against a real
// kube-apiserver: an unknown or misplaced field, a wrong type or an invalid value fails it.
func TestChartPassesStrictServerSideValidation(t *testing.T) {
	helm := helmBinary(t)
	k := kubetest.Shared(t)
	ctx := context.Background()
	installCRDs(t, k)
	dyn, err := dynamic.NewForConfig(k.Config)
	if err != nil {
		t.Fatal(err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(k.Config)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))
	// The release's namespace must exist for its namespaced objects, even in a dry run.
	if _, err := k.Client.CoreV1().Namespaces().Get(ctx, "spiffe-aws-bridge", metav1.GetOptions{}); apierrors.IsNotFound(err) {
		ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "spiffe-aws-bridge"}}}
		if _, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, values := range valuesFiles(t) {
		t.Run(filepath.Base(values), func(t *testing.T) {
			objs := render(t, helm, values)
			validated, skipped := 0, 0
			for _, o := range objs {
				gvk := o.GroupVersionKind()
				if notValidated[gvk.Group] {
					t.Logf("%s %s: not validated (no %s CRD in the test API server)", gvk.Kind, o.GetName(), gvk.Group)
					skipped++
					continue
				}
				m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
				if err != nil {
					t.Errorf("%s %s: the API server does not know %s: %v", gvk.Kind, o.GetName(), gvk, err)
					continue
				}
				var r dynamic.ResourceInterface = dyn.Resource(m.Resource)
				if m.Scope.Name() == meta.RESTScopeNameNamespace {
					if o.GetNamespace() == "" {
						t.Errorf("%s %s has no namespace", gvk.Kind, o.GetName())
						continue
					}
					r = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
				} else if o.GetNamespace() != "" {
					t.Errorf("cluster-scoped %s %s has a namespace", gvk.Kind, o.GetName())
				}
				if _, err := r.Create(ctx, o, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"}); err != nil {
					t.Errorf("%s %s: %v", gvk.Kind, o.GetName(), err)
					continue
				}
				validated++
			}
			if validated == 0 || validated+skipped != len(objs) {
				t.Errorf("%d of %d objects validated (%d skipped)", validated, len(objs), skipped)
			}
		})
	}
}

// installCRDs creates the CRDs of crdDir (once per API server) and waits until they serve.
func installCRDs(t *testing.T, k *kubetest.Server) {
	t.Helper()
	ctx := context.Background()
	dyn, err := dynamic.NewForConfig(k.Config)
	if err != nil {
		t.Fatal(err)
	}
	crdRes := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	files, _ := filepath.Glob(filepath.Join(crdDir, "*.yaml"))
	if len(files) == 0 {
		t.Fatalf("no CRDs in %s", crdDir)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, crd := range decode(t, raw) {
			_, err := dyn.Resource(crdRes).Create(ctx, crd, metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatalf("CRD %s: %v", crd.GetName(), err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				got, err := dyn.Resource(crdRes).Get(ctx, crd.GetName(), metav1.GetOptions{})
				if err == nil && established(got) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("CRD %s not established: %v", crd.GetName(), err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
}

func established(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// TestChartCRDCopyMatchesTheLab: the committed ClusterSPIFFEID CRD is the lab's (when ../shared is there),
// so the chart is validated against the schema the lab's spire-controller-manager serves.
func TestChartCRDCopyMatchesTheLab(t *testing.T) {
	lab := filepath.Join("..", "..", "shared", "k8s-lab", "crds")
	if _, err := os.Stat(lab); err != nil {
		t.Skipf("no %s beside the repository", lab)
	}
	files, _ := filepath.Glob(filepath.Join(crdDir, "*.yaml"))
	for _, f := range files {
		ours, _ := os.ReadFile(f)
		theirs, err := os.ReadFile(filepath.Join(lab, filepath.Base(f)))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if strings.TrimSpace(string(ours)) != strings.TrimSpace(string(theirs)) {
			t.Errorf("%s differs from the lab's %s: copy it again (and note the version)", f, filepath.Base(f))
		}
	}
}

// TestChartSelectsTheOptedInPods applies the chart's own MutatingWebhookConfiguration (pointed at a webhook
// served here by URL, the bare control plane having no Service routing) and creates pods through a real
// kube-apiserver: pods of a namespace labelled enabled and pods labelled enabled elsewhere come back
// injected; a pod labelled disabled, a pod of a namespace labelled disabled, a pod of the chart's own
// namespace and a pod that did not opt in do not.
func TestChartSelectsTheOptedInPods(t *testing.T) {
	helm := helmBinary(t)
	k := kubetest.Shared(t)
	ctx := context.Background()
	objs := render(t, helm, "", "webhook.failurePolicy=Fail")
	mwc := find(t, objs, "MutatingWebhookConfiguration", "-webhook")

	ca, err := webhook.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue([]string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyDER, _ := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := webhook.NewServer(ctx, webhook.Options{Listen: "127.0.0.1:0", Service: "x", Namespace: "y", CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	url := "https://" + s.Addr() + webhook.MutatePath

	// The chart's configuration, with the URL and CA of the webhook served here; its name made unique.
	hooks, _, _ := unstructured.NestedSlice(mwc.Object, "webhooks")
	for i := range hooks {
		h := hooks[i].(map[string]any)
		h["clientConfig"] = map[string]any{"url": url, "caBundle": base64.StdEncoding.EncodeToString(ca.CertPEM)}
	}
	_ = unstructured.SetNestedSlice(mwc.Object, hooks, "webhooks")
	mwc.SetName(mwc.GetName() + "-" + strings.ToLower(t.Name()))
	dyn, err := dynamic.NewForConfig(k.Config)
	if err != nil {
		t.Fatal(err)
	}
	mwcRes := schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "mutatingwebhookconfigurations"}
	if _, err := dyn.Resource(mwcRes).Create(ctx, mwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dyn.Resource(mwcRes).Delete(context.Background(), mwc.GetName(), metav1.DeleteOptions{}) })

	label := func(ns, value string) {
		t.Helper()
		if _, err := k.Client.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType,
			[]byte(`{"metadata":{"labels":{"`+webhook.OptLabel+`":"`+value+`"}}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	enabled, disabled, plain := k.Namespace(t, "chart-enabled"), k.Namespace(t, "chart-disabled"), k.Namespace(t, "chart-plain")
	label(enabled, webhook.OptIn)
	label(disabled, webhook.OptOut)
	if _, err := k.Client.CoreV1().Namespaces().Get(ctx, "spiffe-aws-bridge", metav1.GetOptions{}); apierrors.IsNotFound(err) {
		if _, err := k.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "spiffe-aws-bridge"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	k.ServiceAccount(t, "spiffe-aws-bridge", "default")
	label("spiffe-aws-bridge", webhook.OptIn)

	create := func(ns string, labels, annotations map[string]string) bool {
		t.Helper()
		p, err := k.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "app-", Labels: labels, Annotations: annotations},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating a pod in %s: %v", ns, err)
		}
		for _, v := range p.Spec.Volumes {
			if v.Name == webhook.VolumeName {
				return true
			}
		}
		return false
	}
	on := map[string]string{webhook.OptLabel: webhook.OptIn}
	off := map[string]string{webhook.OptLabel: webhook.OptOut}
	// The configuration reaches the admission chain asynchronously: wait for the first injection.
	deadline := time.Now().Add(30 * time.Second)
	for !create(enabled, nil, nil) {
		if time.Now().After(deadline) {
			t.Fatal("a pod of the namespace labelled enabled was never injected")
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, tt := range []struct {
		name        string
		ns          string
		labels      map[string]string
		annotations map[string]string
		want        bool
	}{
		{"a pod of a namespace labelled enabled", enabled, nil, nil, true},
		{"a pod labelled enabled in a namespace without the label", plain, on, nil, true},
		{"a pod labelled disabled in a namespace labelled enabled", enabled, off, nil, false},
		{"a pod annotated disabled in a namespace labelled enabled", enabled, nil, off, false},
		{"a pod labelled enabled in a namespace labelled disabled", disabled, on, nil, false},
		{"a pod labelled enabled in the chart's own namespace, labelled enabled", "spiffe-aws-bridge", on, nil, false},
		{"a pod that did not opt in", plain, nil, nil, false},
	} {
		if got := create(tt.ns, tt.labels, tt.annotations); got != tt.want {
			t.Errorf("%s: injected %v, want %v", tt.name, got, tt.want)
		}
	}
}
