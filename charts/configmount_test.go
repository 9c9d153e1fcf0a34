package charts

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/trusted"
)

// TestChartNodeBridgeConfigPassesTheRootCheck: the node bridge runs as root, and a root bridge reads its
// config only when no one but root could have written it or a directory above it (internal/trusted). A
// ConfigMap volume's own directory is mode 0777 (the kubelet's atomic writer: the files sit behind the
// ..data symbolic link in that directory), so a config mounted as the whole volume is refused at start
// (seen on the lab: "directory /etc/spiffe-aws-bridge is writable by other users ... mode drwxrwxrwx",
// CrashLoopBackOff). This test lays out the container's view of the rendered DaemonSet's config mount as
// the kubelet and the runtime make it, and runs the bridge's own check on the path its --config names.
func TestChartNodeBridgeConfigPassesTheRootCheck(t *testing.T) {
	helm := helmBinary(t)
	for _, values := range valuesFiles(t) {
		t.Run(filepath.Base(values), func(t *testing.T) {
			objs := render(t, helm, values)
			ds := find(t, objs, "DaemonSet", "-node")
			spec := nested(t, ds.Object, "spec", "template", "spec").(map[string]any)
			c := spec["containers"].([]any)[0].(map[string]any)
			config := ""
			args := c["args"].([]any)
			for i, a := range args {
				if a == "--config" && i+1 < len(args) {
					config = args[i+1].(string)
				}
			}
			if config == "" {
				t.Fatalf("node bridge args name no --config: %v", args)
			}
			var volume string
			for _, v := range spec["volumes"].([]any) {
				v := v.(map[string]any)
				if _, ok := v["configMap"]; ok {
					volume = v["name"].(string)
				}
			}
			var mount map[string]any
			for _, m := range c["volumeMounts"].([]any) {
				if m := m.(map[string]any); m["name"] == volume {
					mount = m
				}
			}
			if mount == nil {
				t.Fatalf("the node bridge mounts no ConfigMap volume: %v", c["volumeMounts"])
			}

			// The container's root: "/" of the test stands in for it (t.TempDir is under the sticky /tmp).
			root := t.TempDir()
			mountPath, _ := mount["mountPath"].(string)
			subPath, _ := mount["subPath"].(string)
			// The image's directories: root's, 0755 (the runtime makes a missing mount point 0755 too).
			if err := os.MkdirAll(filepath.Join(root, path.Dir(mountPath)), 0o755); err != nil {
				t.Fatal(err)
			}
			if subPath != "" {
				// subPath: the kubelet bind-mounts the one file (the ..data link resolved) on mountPath.
				if err := os.WriteFile(filepath.Join(root, mountPath), []byte("x = 1\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			} else {
				// The whole volume: the kubelet's layout, the volume directory mode 0777.
				dir := filepath.Join(root, mountPath)
				stamp := filepath.Join(dir, "..2026_01_01_00_00_00.000000001")
				if err := os.MkdirAll(stamp, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, 0o777); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(stamp, "bridge.hcl"), []byte("x = 1\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(filepath.Base(stamp), filepath.Join(dir, "..data")); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink("..data/bridge.hcl", filepath.Join(dir, "bridge.hcl")); err != nil {
					t.Fatal(err)
				}
			}
			self := trusted.Process{UID: os.Geteuid(), GID: os.Getegid()}
			if _, err := trusted.ReadChecked(filepath.Join(root, config), self, trusted.Options{What: "config file"}); err != nil {
				t.Errorf("the node bridge (root) would refuse its config as the chart mounts it (%s): %v",
					strings.TrimSpace(fmt.Sprint(mount)), err)
			}
		})
	}
}
