package daemon_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/daemon"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/logtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
)

// The start-up test's own names, so that it does not depend on the other tests' world.
const (
	startupTrustAnchor = "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/0f0e0d0c-0b0a-4909-8807-060504030201"
	startupProfile     = "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/01020304-0506-4708-8900-0a0b0c0d0e0f"
	startupRole        = "arn:aws:iam::111122223333:role/orders"
)

var startupID = spiffeid.RequireFromString("spiffe://example.org/ns/shop/sa/orders")

// A new pod's bridge asks the Workload API before SPIRE's registration entry for the pod has reached the
// agent, which answers PermissionDenied "no identity issued" until then. With the default startup_grace
// the daemon logs that wait at INFO and no ERROR, however often it asks; with startup_grace = "0s" the
// same answer is an ERROR at once. (The profile's endpoint is never called: no SVID arrives.)
func TestStartupWaitForTheEntryLogsNoError(t *testing.T) {
	for _, c := range []struct {
		name      string
		setting   string
		wantError bool
	}{
		{"default startup_grace", "", false},
		{"startup_grace 0s", "startup_grace = \"0s\"\n", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			agent := svidtest.NewServer(t, svidtest.ServerOptions{Entries: []svidtest.Entry{{ID: startupID}}})
			agent.SetPermissionDenied(true)
			dir := t.TempDir()
			src := fmt.Sprintf(`agent_address = %q
%sprofile "app" {
  spiffe_id        = %q
  trust_anchor_arn = %q
  profile_arn      = %q
  role_arn         = %q
  endpoint         = "http://127.0.0.1:9"
  credentials_file {
    path = %q
  }
}
`, agent.Addr(), c.setting, startupID, startupTrustAnchor, startupProfile, startupRole, filepath.Join(dir, "credentials"))
			cfg, err := config.Parse([]byte(src), filepath.Join(dir, "bridge.hcl"))
			if err != nil {
				t.Fatal(err)
			}
			logs := &logtest.Buffer{}
			d, err := daemon.New(context.Background(), cfg, daemon.Options{
				Logger:             hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace}),
				WorkloadAPIBackoff: svid.Backoff{Base: 20 * time.Millisecond, Max: 100 * time.Millisecond},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()

			// Let the agent refuse several times (go-spiffe logs each failed watch at trace level).
			deadline := time.Now().Add(10 * time.Second)
			for strings.Count(logs.String(), "Failed to watch the Workload API") < 5 {
				if time.Now().After(deadline) {
					t.Fatalf("the Workload API was not retried 5 times in 10s:\n%s", logs.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			gotError := strings.Contains(logs.String(), "[ERROR]")
			if gotError != c.wantError {
				t.Fatalf("ERROR logged: %v, want %v:\n%s", gotError, c.wantError, logs.String())
			}
			if !c.wantError && !strings.Contains(logs.String(), "[INFO]  workloadapi: waiting for the Workload API to issue this workload's first X.509-SVID") {
				t.Fatalf("no INFO line saying what the bridge waits for:\n%s", logs.String())
			}
		})
	}
}
