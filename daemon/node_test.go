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

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/clock"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// TestNodeModeReload: a reload that keeps a delegated profile's session carries its credentials (no new
// CreateSession); one that points it at another workload's selectors never carries them (the new
// workload's own session, signed with its own SVID); a change of delegated_identity.admin_address is
// refused as a whole, the running profile untouched.
func TestNodeModeReload(t *testing.T) {
	w := newWorld(t, time.Now)
	billing := spiffeid.RequireFromString("spiffe://example.org/ns/prod/billing")
	reports := spiffeid.RequireFromString("spiffe://example.org/ns/prod/reports")
	admin := svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{CA: w.Agent.CA(), Entries: []svidtest.WorkloadEntry{
		{ID: billing, Selectors: []string{"test:workload:billing"}},
		{ID: reports, Selectors: []string{"test:workload:reports"}},
	}})
	creds := filepath.Join(w.Dir, "node", "credentials")
	cfgText := func(addr, selector, spread string) string {
		return fmt.Sprintf("delegated_identity {\n  admin_address = %q\n}\n", addr) + w.ProfileBlock("p", testworld.RoleARN, fmt.Sprintf(`  workload_selectors = [%q]
  refresh {
    rotation_spread = %q
  }
  credentials_file {
    path  = %q
    owner = %d
  }
`, selector, spread, creds, os.Getuid()))
	}
	parse := func(text string) *config.Config { t.Helper(); return w.parse(t, text) }
	d, _ := w.start(t, clock.Real{}, time.Now, cfgText(admin.Addr(), "test:workload:billing", "0s"))
	within(t, 10*time.Second, "billing's credentials", func() bool { return fileKey(creds, "p") != "" })
	first, calls := fileKey(creds, "p"), creates(w)
	if got := d.States()[0].SpiffeID; got != billing.String() {
		t.Fatalf("profile signs as %s, want %s", got, billing)
	}

	// Same workload, another refresh setting: the profile is rebuilt and starts with its credentials.
	if err := d.Reload(context.Background(), parse(cfgText(admin.Addr(), "test:workload:billing", "1m"))); err != nil {
		t.Fatal(err)
	}
	within(t, 2*time.Second, "the carried credentials", func() bool { return !d.States()[0].Expiration.IsZero() })

	// Another workload's selectors: never the old workload's credentials. With the new workload's entry
	// missing, the rebuilt profile has none at all (a carried session would show here), and gets its own
	// once the entry exists.
	if !admin.DeleteEntry(reports) {
		t.Fatal("no reports entry")
	}
	if err := d.Reload(context.Background(), parse(cfgText(admin.Addr(), "test:workload:reports", "0s"))); err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, "the new workload's missing entry reported", func() bool {
		return d.States()[0].DelegatedIdentity == "no_matching_entry"
	})
	if st := d.States()[0]; !st.Expiration.IsZero() || st.SpiffeID != "" {
		t.Fatalf("billing's session was carried to the reports workload: %+v", st)
	}
	if err := admin.AddEntry(svidtest.WorkloadEntry{ID: reports, Selectors: []string{"test:workload:reports"}}); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "reports' own session", func() bool {
		st := d.States()
		return fileKey(creds, "p") != first && len(st) == 1 && st[0].SpiffeID == reports.String() && st[0].Refreshes > 0
	})
	if creates(w) <= calls {
		t.Fatalf("calls %d → %d: no session of its own for the new workload", calls, creates(w))
	}

	// Another admin socket: refused, nothing changes.
	other := svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{CA: w.Agent.CA()})
	err := d.Reload(context.Background(), parse(cfgText(other.Addr(), "test:workload:reports", "0s")))
	if err == nil || !strings.Contains(err.Error(), "delegated_identity.admin_address changed") {
		t.Fatalf("reload to another admin socket: %v", err)
	}
	if st := d.States(); st[0].SpiffeID != reports.String() {
		t.Fatalf("after the refused reload: %+v", st[0])
	}
}
