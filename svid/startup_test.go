package svid_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/logtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
)

// fakeClock is a settable clock for the Source's start-up grace.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// refusals counts the Workload API calls that ended in an error (go-spiffe logs each one, at trace
// level through the Source's logger).
func refusals(buf *logtest.Buffer) int {
	return strings.Count(buf.String(), "Failed to watch the Workload API")
}

// waitRefusals waits until the agent has refused at least n more calls after the count before.
func waitRefusals(t *testing.T, buf *logtest.Buffer, before, n int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if got := refusals(buf); got >= before+n {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the Workload API was not retried %d times within 10s; log:\n%s", n, buf.String())
	return 0
}

// levelLines returns the lines logged at level (e.g. "[ERROR]").
func levelLines(buf *logtest.Buffer, level string) []string {
	var out []string
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.Contains(l, level) {
			out = append(out, l)
		}
	}
	return out
}

func startupSource(t *testing.T, addr string, grace time.Duration, clk *fakeClock) (*svid.Source, *logtest.Buffer) {
	t.Helper()
	log, buf := logtest.New()
	src, err := svid.New(context.Background(), svid.Options{
		Address: addr, Logger: log, Now: clk.Now, StartupGrace: grace,
		Backoff: svid.Backoff{Base: 20 * time.Millisecond, Max: 100 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src, buf
}

// A new pod's bridge starts before SPIRE's registration entry for it reaches the agent: the agent answers
// PermissionDenied "no identity issued" until then. Within the start-up grace that is the normal wait,
// logged once at INFO with what is awaited; no ERROR, however often the agent is asked. When the entry
// arrives the SVID is delivered; if it is then deleted, that is a revocation and an ERROR at once.
func TestStartupWaitForTheFirstSVIDIsNoError(t *testing.T) {
	agent := svidtest.NewServer(t, svidtest.ServerOptions{Entries: []svidtest.Entry{{ID: appID}}})
	agent.SetPermissionDenied(true) // no entry for this workload on the agent yet
	clk := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	src, buf := startupSource(t, agent.Addr(), time.Minute, clk)
	sub := src.Subscribe(svid.Selector{})
	defer sub.Close()

	waitStatus(t, src, svid.StatusNoIdentity)
	waitRefusals(t, buf, 0, 4)
	clk.Advance(59 * time.Second)
	waitRefusals(t, buf, refusals(buf), 2)
	if errs := levelLines(buf, "[ERROR]"); len(errs) > 0 {
		t.Fatalf("ERROR while waiting for the first SVID within startup_grace:\n%s", strings.Join(errs, "\n"))
	}
	var waits []string
	for _, l := range levelLines(buf, "[INFO]") {
		if strings.Contains(l, "waiting for the Workload API to issue this workload's first X.509-SVID") {
			waits = append(waits, l)
		}
	}
	if len(waits) != 1 || !strings.Contains(waits[0], "startup_grace=1m0s") || !strings.Contains(waits[0], "registration entry") {
		t.Fatalf("want one INFO line saying what is awaited and for how long, got %d:\n%s", len(waits), buf.String())
	}
	if st := src.State(); st.Status != svid.StatusNoIdentity || !strings.Contains(st.Reason, "no identity issued") {
		t.Fatalf("state = %+v; the wait must still show in the state (health tells the truth)", st)
	}

	agent.SetPermissionDenied(false) // the entry reached the agent
	if got := next(t, sub); got == nil || got.ID != appID {
		t.Fatalf("got %v, want %s once the entry reached the agent", got, appID)
	}
	if errs := levelLines(buf, "[ERROR]"); len(errs) > 0 {
		t.Fatalf("ERROR during a normal start-up:\n%s", strings.Join(errs, "\n"))
	}

	// Within the grace still, but the identity was had: its loss is a revocation.
	if _, err := agent.DeleteEntry(appID); err != nil {
		t.Fatal(err)
	}
	if got := next(t, sub); got != nil {
		t.Fatalf("got %s after the entry was deleted, want nil", got)
	}
	waitRefusals(t, buf, refusals(buf), 2)
	errs := levelLines(buf, "[ERROR]")
	if len(errs) != 1 || !strings.Contains(errs[0], "dropped the SVIDs it had issued") || !strings.Contains(errs[0], appID.String()) {
		t.Fatalf("want one ERROR naming the withdrawn identity, got:\n%s", buf.String())
	}
}

// When no identity is issued for longer than the grace, something is wrong (no entry matches the
// workload): one ERROR at the next refusal after the grace, naming the grace and with a hint, not one per
// retry.
func TestNoIdentityAfterTheStartupGraceIsAnError(t *testing.T) {
	agent := svidtest.NewServer(t, svidtest.ServerOptions{Entries: []svidtest.Entry{{ID: appID}}})
	agent.SetPermissionDenied(true) // no entry for this workload on the agent yet
	clk := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	src, buf := startupSource(t, agent.Addr(), time.Minute, clk)

	waitStatus(t, src, svid.StatusNoIdentity)
	waitRefusals(t, buf, 0, 2)
	if errs := levelLines(buf, "[ERROR]"); len(errs) > 0 {
		t.Fatalf("ERROR within startup_grace:\n%s", strings.Join(errs, "\n"))
	}
	clk.Advance(time.Minute)
	waitRefusals(t, buf, refusals(buf), 4)
	errs := levelLines(buf, "[ERROR]")
	if len(errs) != 1 {
		t.Fatalf("want exactly one ERROR after startup_grace, got %d:\n%s", len(errs), buf.String())
	}
	for _, want := range []string{"issues no identity to this workload", "startup_grace=1m0s", "no identity issued", "register an entry"} {
		if !strings.Contains(errs[0], want) {
			t.Errorf("ERROR line lacks %q: %s", want, errs[0])
		}
	}
	if st := src.State(); st.Status != svid.StatusNoIdentity {
		t.Fatalf("state = %+v", st)
	}
}

// Without a grace (the zero value) the first refusal is an ERROR, as for a process that expects its
// identity to exist already.
func TestNoStartupGraceIsAnErrorAtOnce(t *testing.T) {
	agent := svidtest.NewServer(t, svidtest.ServerOptions{Entries: []svidtest.Entry{{ID: appID}}})
	agent.SetPermissionDenied(true) // no entry for this workload on the agent yet
	clk := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	src, buf := startupSource(t, agent.Addr(), 0, clk)
	waitStatus(t, src, svid.StatusNoIdentity)
	waitRefusals(t, buf, 0, 3)
	if errs := levelLines(buf, "[ERROR]"); len(errs) != 1 || !strings.Contains(errs[0], "issues no identity to this workload") {
		t.Fatalf("want one ERROR at the first refusal, got:\n%s", buf.String())
	}
}
