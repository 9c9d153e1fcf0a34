package charts

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

// k8sBinary is where the image has spiffe-aws-bridge-k8s, the build with pod identity and the webhook;
// the image's entrypoint, spiffe-aws-bridge, links no Kubernetes client and refuses a pod_identity block.
const k8sBinary = "/usr/local/bin/spiffe-aws-bridge-k8s"

// TestChartRunsTheKubernetesBinary: for every values file the node bridge and the webhook run
// spiffe-aws-bridge-k8s (run and webhook), not the image's entrypoint, and the image ships it there.
func TestChartRunsTheKubernetesBinary(t *testing.T) {
	docker, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^COPY --from=\S+ .*/out/spiffe-aws-bridge-k8s\b.* /usr/local/bin/`).Match(docker) {
		t.Errorf("the Dockerfile does not copy spiffe-aws-bridge-k8s to /usr/local/bin, where the chart runs it")
	}
	helm := helmBinary(t)
	for _, values := range valuesFiles(t) {
		t.Run(filepath.Base(values), func(t *testing.T) {
			objs := render(t, helm, values)
			want := map[string]string{"DaemonSet": "run", "Deployment": "webhook"}
			daemonSets := 0
			for _, o := range objs {
				sub, ok := want[o.GetKind()]
				if !ok {
					continue
				}
				if o.GetKind() == "DaemonSet" {
					daemonSets++
				}
				for _, c := range nested(t, o.Object, "spec", "template", "spec", "containers").([]any) {
					c := c.(map[string]any)
					cmd, _ := c["command"].([]any)
					args, _ := c["args"].([]any)
					if !slices.Equal(cmd, []any{k8sBinary}) || len(args) == 0 || args[0] != sub {
						t.Errorf("%s %s container %s: command %v args %v; want %s %s …", o.GetKind(), o.GetName(), c["name"], cmd, args, k8sBinary, sub)
					}
				}
			}
			if daemonSets != 1 {
				t.Errorf("%d DaemonSets rendered, want the node bridge", daemonSets)
			}
		})
	}
}
