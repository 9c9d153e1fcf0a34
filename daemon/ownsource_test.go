package daemon_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/clock"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// TestNodeModeAloneNeverDialsTheWorkloadAPI: a daemon whose every profile is node mode's (or that serves
// pod identity alone) needs no SVID of its own: it does not connect to the Workload API (no retries, no
// ERROR about it), and /ready says "unused" instead of a connection state nothing depends on. A reload
// that adds a profile of the bridge's own identity starts the connection.
func TestNodeModeAloneNeverDialsTheWorkloadAPI(t *testing.T) {
	w := newWorld(t, time.Now)
	billing := spiffeid.RequireFromString("spiffe://example.org/ns/prod/billing")
	admin := svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{CA: w.Agent.CA(), Entries: []svidtest.WorkloadEntry{
		{ID: billing, Selectors: []string{"test:workload:billing"}},
	}})
	creds := filepath.Join(w.Dir, "node", "credentials")
	node := fmt.Sprintf("delegated_identity {\n  admin_address = %q\n}\n", admin.Addr()) + w.ProfileBlock("billing", testworld.RoleARN, fmt.Sprintf(`  workload_selectors = ["test:workload:billing"]
  credentials_file {
    path  = %q
    owner = %d
  }
`, creds, os.Getuid()))
	d, logs := w.start(t, clock.Real{}, time.Now, node)
	within(t, 10*time.Second, "billing's credentials", func() bool { return fileKey(creds, "billing") != "" })
	if st := d.WorkloadAPIState(); st.Status != svid.StatusUnused {
		t.Errorf("workload API state %s with no profile of the bridge's own identity, want unused", st.Status)
	}
	type ready struct {
		WorkloadAPI struct {
			Status string `json:"status"`
		} `json:"workload_api"`
	}
	if _, r := getReady[ready](t, d); r.WorkloadAPI.Status != "unused" {
		t.Errorf("/ready workload_api.status = %q, want unused", r.WorkloadAPI.Status)
	}
	if strings.Contains(logs.String(), "workloadapi") {
		t.Errorf("the daemon used the Workload API it does not need:\n%s", logs.String())
	}

	own := filepath.Join(w.Dir, "own", "credentials")
	if err := d.Reload(context.Background(), w.parse(t, node+w.Profile("own", testworld.CredentialsFile(own)))); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "the own profile's credentials", func() bool { return fileKey(own, "own") != "" })
	if st := d.WorkloadAPIState(); st.Status != svid.StatusConnected {
		t.Errorf("workload API state %s after a profile of the bridge's own identity was added, want connected", st.Status)
	}
}
