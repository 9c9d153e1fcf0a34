package daemon_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/schedule"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/daemon"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/logtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs/safefstest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// TestSecurityNodeModeUnixUserOwnerIsResolvedOnEveryWrite: a node-mode profile whose workload is
// selected by unix:user:app writes its credentials for that user's uid. The account is re-created with
// another uid and its old uid (65534) handed to someone else: at the next refresh the daemon withdraws
// the credentials from the old uid's file, logs an ERROR naming the user and both uids, and writes no
// fresh credentials that uid 65534 can read.
func TestSecurityNodeModeUnixUserOwnerIsResolvedOnEveryWrite(t *testing.T) {
	safefstest.NeedRoot(t, "gives credentials files to other users (uids 65534 and 65533)")
	const oldUID, newUID = safefstest.Nobody, safefstest.Nobody - 1
	db := safefstest.NewAccounts("app", oldUID)
	lookup := func(name string) (safefs.ID, error) {
		uid, err := db.Lookup(name)
		return safefs.NewID(uid), err
	}

	w := newWorld(t, time.Now)
	billing := spiffeid.RequireFromString("spiffe://example.org/ns/prod/billing")
	admin := svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{CA: w.Agent.CA(), Entries: []svidtest.WorkloadEntry{
		{ID: billing, Selectors: []string{"unix:user:app"}},
	}})
	creds := filepath.Join(w.Dir, "node", "credentials")
	cfg, err := config.Parse([]byte(w.Config(fmt.Sprintf("delegated_identity {\n  admin_address = %q\n}\n", admin.Addr()),
		w.ProfileBlock("billing", testworld.RoleARN, "  workload_selectors = [\"unix:user:app\"]\n"+testworld.Refresh+testworld.CredentialsFile(creds)))),
		filepath.Join(w.Dir, "bridge.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	logs := &logtest.Buffer{}
	d, err := daemon.New(context.Background(), cfg, daemon.Options{
		Logger:             hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug}),
		Signer:             signer.Options{Now: time.Now},
		Policy:             schedule.Policy{JitterFraction: 1e-9, RotationSpread: -1},
		WorkloadAPIBackoff: svid.Backoff{Base: 20 * time.Millisecond, Max: 200 * time.Millisecond},
		LookupOwner:        lookup,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Close()
		if t.Failed() {
			t.Logf("daemon logs:\n%s", logs.String())
		}
	})
	within(t, 10*time.Second, "the workload's credentials", func() bool { return fileKey(creds, "billing") != "" })
	if st, err := os.Stat(creds); err != nil || st.Sys().(*syscall.Stat_t).Uid != oldUID {
		t.Fatalf("credentials file: %v %v; want it owned by uid %d", err, st, oldUID)
	}
	first := fileKey(creds, "billing")

	db.Set("app", newUID) // userdel app; useradd app; uid 65534 now belongs to another user
	calls := creates(w)
	if err := admin.Rotate(); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "the ERROR naming the user and both uids", func() bool {
		return strings.Contains(logs.String(), "credentials file owner now has another uid")
	})
	line := ""
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "credentials file owner now has another uid") {
			line = l
		}
	}
	for _, want := range []string{"[ERROR]", "user=app", fmt.Sprintf("old_uid=%d", oldUID), fmt.Sprintf("new_uid=%d", newUID)} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q lacks %q", line, want)
		}
	}
	if creates(w) == calls {
		t.Fatal("no refresh after the rotation")
	}
	within(t, 10*time.Second, "the credentials withdrawn from the old uid's file", func() bool { return fileKey(creds, "billing") == "" })
	within(t, 10*time.Second, "the refused write for the new uid", func() bool {
		return strings.Contains(logs.String(), fmt.Sprintf("is owned by uid %d; refusing to use it", oldUID))
	})
	if k := fileKey(creds, "billing"); k != "" {
		t.Fatalf("the file uid %d owns holds credentials again (%s; first were %s)", oldUID, k, first)
	}
	if st, err := os.Stat(creds); err == nil && st.Sys().(*syscall.Stat_t).Uid == oldUID {
		b, _ := os.ReadFile(creds)
		if strings.Contains(string(b), "aws_secret_access_key") {
			t.Fatalf("uid %d can read fresh credentials:\n%s", oldUID, b)
		}
	}
}
