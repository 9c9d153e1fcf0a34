// Tests of the Helm chart charts/spiffe-aws-bridge: its values are documented, it renders for its default
// values and for every example values file (ci/*.yaml), what it renders holds the chart's promises
// (least privilege, the node bridge's shape, the webhook's selectors), and the API server accepts it.
//
// Rendering needs helm: $SAB_HELM, helm on PATH, or scripts/helm.sh's cache. Without it these tests skip,
// unless SAB_REQUIRE_HELM=1 (CI), when they fail.
package charts

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// chartDir is the chart, seen from this package.
const chartDir = "spiffe-aws-bridge"

// helmVersion is the helm scripts/helm.sh builds.
const helmVersion = "v3.22.0"

// helmBinary finds helm, or skips (fails with SAB_REQUIRE_HELM=1).
func helmBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SAB_HELM"); p != "" {
		return p
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	cache := os.Getenv("SAB_CACHE")
	if cache == "" {
		cache = "/var/cache/spiffe-aws-bridge"
	}
	if p := filepath.Join(cache, "helm-"+helmVersion, "helm"); isExecutable(p) {
		return p
	}
	if os.Getenv("SAB_REQUIRE_HELM") == "1" {
		t.Fatal("SAB_REQUIRE_HELM=1 but no helm: set SAB_HELM or run scripts/helm.sh")
	}
	t.Skip("no helm (set SAB_HELM, or run scripts/helm.sh)")
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// valuesFiles are the example values files CI renders the chart with, besides the defaults ("").
func valuesFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*.yaml"))
	if err != nil || len(files) < 2 {
		t.Fatalf("example values files: %v %v", files, err)
	}
	return append([]string{""}, files...)
}

// render runs helm template for release "pod-identity" in namespace "spiffe-aws-bridge" with the values
// file (none: the defaults) and extra --set arguments, and returns the objects.
func render(t *testing.T, helm, values string, set ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := renderErr(helm, values, set...)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, out)
}

func renderErr(helm, values string, set ...string) ([]byte, error) {
	// --kube-version: helm template assumes Kubernetes v1.20 otherwise, below the chart's kubeVersion.
	args := []string{"template", "pod-identity", chartDir, "--namespace", "spiffe-aws-bridge", "--kube-version", "v1.34.4"}
	if values != "" {
		args = append(args, "--values", values)
	}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	cmd := exec.Command(helm, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+os.TempDir()+"/sab-helm-cache", "HELM_CONFIG_HOME="+os.TempDir()+"/sab-helm-config")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("helm %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// decode splits a multi-document YAML stream into objects.
func decode(t *testing.T, stream []byte) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(stream), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("decoding the rendered chart: %v", err)
		}
		if m == nil {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs
}

// find returns the one object of kind (and name suffix), or fails.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, nameSuffix string) *unstructured.Unstructured {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind && strings.HasSuffix(o.GetName(), nameSuffix) {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s objects named *%s, want 1", len(found), kind, nameSuffix)
	}
	return found[0]
}

// TestChartValuesAreDocumented: every value of values.yaml has a row in the chart README's values table,
// and every row names a value that exists.
func TestChartValuesAreDocumented(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	var keys []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		m, ok := v.(map[string]any)
		// A map with content is a group of values; an empty map, a list or a scalar is one value. The
		// resources maps are one value each.
		if !ok || len(m) == 0 || strings.HasSuffix(prefix, "resources") {
			keys = append(keys, prefix)
			return
		}
		for k, sub := range m {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			walk(p, sub)
		}
	}
	walk("", values)
	sort.Strings(keys)

	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile("(?m)^\\| `([A-Za-z0-9_.]+)` \\|").FindAllStringSubmatch(string(readme), -1)
	documented := map[string]bool{}
	for _, r := range rows {
		documented[r[1]] = true
	}
	for _, k := range keys {
		if !documented[k] {
			t.Errorf("value %s has no row in %s/README.md's values table", k, chartDir)
		}
	}
	for k := range documented {
		if !slices.Contains(keys, k) {
			t.Errorf("README.md documents %s, which values.yaml does not have", k)
		}
	}
}

// TestChartRendersItsPromises renders the chart for the defaults and every example values file and checks
// what the chart promises in each: the node bridge runs on the host network with exactly NET_ADMIN and
// NET_BIND_SERVICE, a read-only root file system, the agent's admin socket directory and NODE_NAME; its
// ClusterRole is create tokenreviews and list/watch pods, nothing more; the webhook's configuration is
// v1, side-effect free, reinvoked if needed, never for the chart's own namespace, and selects pods by
// the opt-in label; a self-signed webhook may touch only its own MutatingWebhookConfiguration and CA Secret.
func TestChartRendersItsPromises(t *testing.T) {
	helm := helmBinary(t)
	for _, values := range valuesFiles(t) {
		t.Run(filepath.Base(values), func(t *testing.T) {
			objs := render(t, helm, values)
			ds := find(t, objs, "DaemonSet", "-node")
			spec := nested(t, ds.Object, "spec", "template", "spec").(map[string]any)
			if spec["hostNetwork"] != true || spec["dnsPolicy"] != "ClusterFirstWithHostNet" {
				t.Errorf("DaemonSet: hostNetwork %v dnsPolicy %v", spec["hostNetwork"], spec["dnsPolicy"])
			}
			c := spec["containers"].([]any)[0].(map[string]any)
			sc := c["securityContext"].(map[string]any)
			caps := sc["capabilities"].(map[string]any)
			if fmt.Sprint(caps["add"]) != "[NET_ADMIN NET_BIND_SERVICE]" || fmt.Sprint(caps["drop"]) != "[ALL]" ||
				sc["readOnlyRootFilesystem"] != true || sc["allowPrivilegeEscalation"] != false || sc["privileged"] != nil {
				t.Errorf("node bridge securityContext: %v", sc)
			}
			if env := fmt.Sprint(c["env"]); !strings.Contains(env, "name:NODE_NAME") || !strings.Contains(env, "fieldPath:spec.nodeName") {
				t.Errorf("node bridge env: %s", env)
			}
			if !strings.Contains(fmt.Sprint(spec["volumes"]), "hostPath:map[path:/run/spire/") {
				t.Errorf("no admin socket hostPath: %v", spec["volumes"])
			}

			role := find(t, objs, "ClusterRole", "-node")
			if got := fmt.Sprint(role.Object["rules"]); got != "[map[apiGroups:[authentication.k8s.io] resources:[tokenreviews] verbs:[create]] map[apiGroups:[] resources:[pods] verbs:[list watch]]]" {
				t.Errorf("the node bridge's ClusterRole: %s", got)
			}

			var mwc *unstructured.Unstructured
			for _, o := range objs {
				if o.GetKind() == "MutatingWebhookConfiguration" {
					mwc = o
				}
			}
			if mwc == nil {
				if !strings.Contains(values, "minimal") {
					t.Fatal("no MutatingWebhookConfiguration")
				}
				return
			}
			for _, w := range mwc.Object["webhooks"].([]any) {
				w := w.(map[string]any)
				if fmt.Sprint(w["admissionReviewVersions"]) != "[v1]" || w["sideEffects"] != "None" || w["reinvocationPolicy"] != "IfNeeded" {
					t.Errorf("webhook %v: %v", w["name"], w)
				}
				if _, ok := nested(t, w, "clientConfig").(map[string]any)["caBundle"]; ok {
					t.Errorf("webhook %v renders a caBundle: an upgrade would reset the one the webhook or cainjector set", w["name"])
				}
				ns := fmt.Sprint(w["namespaceSelector"])
				if !strings.Contains(ns, "key:kubernetes.io/metadata.name operator:NotIn values:[spiffe-aws-bridge]") {
					t.Errorf("webhook %v does not exclude its own namespace: %s", w["name"], ns)
				}
				if !strings.Contains(ns+fmt.Sprint(w["objectSelector"]), "spiffe-aws-bridge.io/pod-identity") {
					t.Errorf("webhook %v does not select by the opt-in label", w["name"])
				}
			}
			for _, o := range objs {
				if (o.GetKind() == "ClusterRole" || o.GetKind() == "Role") && strings.HasSuffix(o.GetName(), "-webhook") {
					for _, r := range o.Object["rules"].([]any) {
						if len(r.(map[string]any)["resourceNames"].([]any)) != 1 {
							t.Errorf("%s %s grants more than one object: %v", o.GetKind(), o.GetName(), r)
						}
					}
				}
			}
		})
	}
}

// nested returns obj's field at path, or fails.
func nested(t *testing.T, obj map[string]any, path ...string) any {
	t.Helper()
	v, ok, err := unstructured.NestedFieldNoCopy(obj, path...)
	if err != nil || !ok {
		t.Fatalf("no %s: %v", strings.Join(path, "."), err)
	}
	return v
}

// TestChartRefusesBadValues: values that would make a broken install fail at render time, naming the value.
func TestChartRefusesBadValues(t *testing.T) {
	helm := helmBinary(t)
	for _, tt := range []struct {
		set  []string
		want string
	}{
		{[]string{"bridge.rules=null"}, "bridge.rules needs at least one rule"},
		{[]string{"bridge.rules[0].spiffeId=spiffe://example.org/a"}, "bridge.rules[0].roleArn is required"},
		{[]string{"webhook.failurePolicy=Sometimes"}, `webhook.failurePolicy "Sometimes": use Ignore or Fail`},
		{[]string{"bridge.defaults.profileArn="}, "bridge.rules[0].profileArn or bridge.defaults.profileArn is required"},
	} {
		_, err := renderErr(helm, "", tt.set...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("--set %v: %v, want an error saying %q", tt.set, err, tt.want)
		}
	}
}
