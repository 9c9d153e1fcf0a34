package delegated_test

import (
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/logtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/delegated"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
)

const noEntryError = "no registration entry matches the workload"

func graceSource(t *testing.T, addr string, grace time.Duration) (*delegated.Source, *logtest.Buffer) {
	t.Helper()
	log, buf := logtest.New()
	src, err := delegated.New(delegated.Options{Address: addr, Logger: log, StartupGrace: grace,
		Backoff: svid.Backoff{Base: 20 * time.Millisecond, Max: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src, buf
}

// TestNewWorkloadWaitingForItsEntryIsNoError: a new pod's stream opens before the controller manager's
// entry reaches the agent. Within startup_grace that is the normal wait, logged at INFO; the entry then
// arrives and the workload gets its SVID, with no ERROR at any point.
func TestNewWorkloadWaitingForItsEntryIsNoError(t *testing.T) {
	agent := svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{})
	src, logs := graceSource(t, agent.Addr(), time.Minute)
	sub, err := src.Subscribe([]string{"k8s:ns:shop", "k8s:sa:orders"}, svid.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	waitState(t, src, []string{"k8s:ns:shop", "k8s:sa:orders"}, delegated.StatusNoMatch)
	id := spiffeid.RequireFromString("spiffe://example.org/ns/shop/sa/orders")
	if err := agent.SetEntries([]svidtest.WorkloadEntry{{ID: id, Selectors: []string{"k8s:ns:shop", "k8s:sa:orders"}}}); err != nil {
		t.Fatal(err)
	}
	for v := next(t, sub); v == nil; v = next(t, sub) {
	}
	out := logs.String()
	if strings.Contains(out, "[ERROR]") {
		t.Errorf("the start-up wait for an entry logged an ERROR:\n%s", out)
	}
	if !strings.Contains(out, "[INFO]") || !strings.Contains(out, "waiting for SPIRE's registration entry") {
		t.Errorf("the wait is not said at INFO:\n%s", out)
	}
}

// TestNoEntryAfterTheStartupGraceIsAnError: when the grace is over and the workload still has no entry,
// the operator is told at ERROR, once; with no grace, at once.
func TestNoEntryAfterTheStartupGraceIsAnError(t *testing.T) {
	agent := svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{})
	for _, grace := range []time.Duration{300 * time.Millisecond, 0} {
		src, logs := graceSource(t, agent.Addr(), grace)
		sub, err := src.Subscribe([]string{"unix:uid:4242"}, svid.Selector{})
		if err != nil {
			t.Fatal(err)
		}
		waitState(t, src, []string{"unix:uid:4242"}, delegated.StatusNoMatch)
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(logs.String(), "[ERROR]") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		if n := strings.Count(logs.String(), "[ERROR]"); n != 1 || !strings.Contains(logs.String(), noEntryError) {
			t.Errorf("grace %s: %d ERROR lines, want one naming the missing entry:\n%s", grace, n, logs.String())
		}
		sub.Close()
	}
}

// TestWorkloadGoneBeforeItsEntryIsNoError: a pod deleted during the wait (its stream closed) leaves no
// ERROR behind when the grace runs out.
func TestWorkloadGoneBeforeItsEntryIsNoError(t *testing.T) {
	agent := svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{})
	src, logs := graceSource(t, agent.Addr(), 200*time.Millisecond)
	sub, err := src.Subscribe([]string{"unix:uid:4343"}, svid.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, src, []string{"unix:uid:4343"}, delegated.StatusNoMatch)
	sub.Close()
	time.Sleep(400 * time.Millisecond)
	if strings.Contains(logs.String(), "[ERROR]") {
		t.Errorf("a workload gone during the wait left an ERROR:\n%s", logs.String())
	}
}
