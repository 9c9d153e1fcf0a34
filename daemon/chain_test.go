package daemon_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/schedule"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/daemon"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/clock"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/logtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// TestReloadNeverCarriesAnotherChainsCredentials: credentials of a chained profile are its last hop's,
// so a reload that changes the chain gets fresh ones for the new role instead of carrying the old; and
// a hop STS refuses (a 2h chained session, set here past config's own check) fails with STS's error
// named while the file keeps the previous credentials.
func TestReloadNeverCarriesAnotherChainsCredentials(t *testing.T) {
	w := newWorld(t, time.Now)
	roleB, roleC := "arn:aws:iam::222222222222:role/b", "arn:aws:iam::333333333333:role/c"
	for _, r := range []string{roleB, roleC} {
		w.Emulator.SetSTSTrust(r, &emulator.STSTrust{Principals: []string{testworld.RoleARN}, TagSession: true, SetSourceIdentity: true})
	}
	credsPath := filepath.Join(w.Dir, "credentials")
	text := func(role string) string {
		return w.profile("app", testworld.CredentialsFile(credsPath)+w.AssumeRole(role, ""))
	}
	parse := func(role string) *config.Config { return w.parse(t, text(role)) }
	// A refresh policy that, with valid credentials at hand, would wait an hour after a new SVID: so a
	// reload that carried B's credentials into the C profile would keep serving them.
	logs := &logtest.Buffer{}
	d, err := daemon.New(context.Background(), parse(roleB), daemon.Options{
		Logger: hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug}),
		Clock:  clock.Real{},
		Policy: schedule.Policy{RotationSpread: time.Hour},
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
	roleOf := func(key string) string {
		if v := w.Emulator.Sessions(key); len(v) == 1 {
			return v[0].RoleArn
		}
		return ""
	}
	within(t, 10*time.Second, "B's credentials in the file", func() bool { return roleOf(fileKey(credsPath, "app")) == roleB })

	if err := d.Reload(context.Background(), parse(roleC)); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "C's credentials after the reload", func() bool { return roleOf(fileKey(credsPath, "app")) == roleC })
	kept := fileKey(credsPath, "app")

	cfg := parse(roleC)
	cfg.Profiles[0].AssumeRole[0].Duration = 2 * time.Hour
	if err := d.Reload(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "STS's refusal in /ready", func() bool {
		_, r := ready(t, d)
		return len(r.Profiles) == 1 && r.Profiles[0].LastErrorType == "ValidationError"
	})
	if got := fileKey(credsPath, "app"); got != kept {
		t.Fatalf("the file changed to %s after a refused hop", got)
	}
	if l := logs.String(); !strings.Contains(l, "1 hour session limit for roles assumed by role chaining") || !strings.Contains(l, "hop="+roleC) {
		t.Fatalf("the log does not name STS's error and the hop:\n%s", l)
	}
}
