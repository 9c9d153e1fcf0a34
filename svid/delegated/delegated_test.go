package delegated_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/logtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/delegated"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
)

var (
	td      = spiffeid.RequireTrustDomainFromString("example.org")
	billing = spiffeid.RequireFromPath(td, "/billing")
	reports = spiffeid.RequireFromPath(td, "/reports")
	admin   = spiffeid.RequireFromPath(td, "/billing-admin")
)

func newSource(t *testing.T, addr string) *delegated.Source {
	t.Helper()
	src, err := delegated.New(delegated.Options{Address: addr, Backoff: svid.Backoff{Base: 20 * time.Millisecond, Max: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func next(t *testing.T, sub *delegated.Subscription) *svid.SVID {
	t.Helper()
	select {
	case v, ok := <-sub.C():
		if !ok {
			t.Fatal("subscription closed")
		}
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("no SVID update within 5s")
	}
	return nil
}

func quiet(t *testing.T, sub *delegated.Subscription) {
	t.Helper()
	select {
	case v := <-sub.C():
		t.Fatalf("unexpected update %v", v)
	case <-time.After(200 * time.Millisecond):
	}
}

func waitState(t *testing.T, src *delegated.Source, sel []string, want delegated.Status) delegated.StreamState {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, ok := src.State(sel)
		if ok && st.Status == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %v state = %+v, want %s", sel, st, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func entries() []svidtest.WorkloadEntry {
	return []svidtest.WorkloadEntry{
		{ID: billing, Selectors: []string{"unix:uid:1001"}},
		{ID: admin, Selectors: []string{"unix:uid:1001", "unix:gid:50"}, Hint: "admin"},
		{ID: reports, Selectors: []string{"unix:uid:1002"}},
	}
}

// Each workload gets the SVIDs of the entries whose selectors are a subset of its own, and only those;
// spiffe_id and hint choose among them.
func TestSelectorsChooseTheWorkloadsSVIDs(t *testing.T) {
	agent := svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{Entries: entries()})
	src := newSource(t, agent.Addr())

	b, _ := src.Subscribe([]string{"unix:uid:1001"}, svid.Selector{})
	defer b.Close()
	if v := next(t, b); v.ID != billing {
		t.Fatalf("uid 1001 got %s, want %s", v.ID, billing)
	}
	r, _ := src.Subscribe([]string{"unix:uid:1002"}, svid.Selector{})
	defer r.Close()
	if v := next(t, r); v.ID != reports {
		t.Fatalf("uid 1002 got %s, want %s", v.ID, reports)
	}
	// Both entries match uid 1001 + gid 50; the hint picks the admin one.
	a, _ := src.Subscribe([]string{"unix:gid:50", "unix:uid:1001"}, svid.Selector{Hint: "admin"})
	defer a.Close()
	if v := next(t, a); v.ID != admin {
		t.Fatalf("hint admin got %s, want %s", v.ID, admin)
	}
	if got := agent.Current(billing); !got.Certificates[0].Equal(func() *svid.SVID {
		c, _ := src.Subscribe([]string{"unix:uid:1001"}, svid.Selector{ID: billing.String()})
		defer c.Close()
		return next(t, c)
	}().Leaf()) {
		t.Fatal("the SVID received is not the one the agent issued")
	}
}

// Profiles with the same selector set share one stream; the stream ends with its last subscriber.
func TestOneStreamPerSelectorSet(t *testing.T) {
	agent := svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{Entries: entries()})
	src := newSource(t, agent.Addr())
	s1, _ := src.Subscribe([]string{"unix:uid:1001"}, svid.Selector{})
	s2, _ := src.Subscribe([]string{"unix:uid:1001", "unix:uid:1001"}, svid.Selector{ID: billing.String()})
	s3, _ := src.Subscribe([]string{"unix:uid:1002"}, svid.Selector{})
	next(t, s1)
	next(t, s2)
	next(t, s3)
	if n := agent.Streams(); n != 2 {
		t.Fatalf("agent has %d streams open, want 2 (one per distinct selector set)", n)
	}
	s1.Close()
	s3.Close()
	deadline := time.Now().Add(5 * time.Second)
	for agent.Streams() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("agent has %d streams open after closing, want 1", agent.Streams())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := agent.RotateEntry(billing); err != nil {
		t.Fatal(err)
	}
	if v := next(t, s2); v.ID != billing {
		t.Fatalf("shared stream's remaining subscriber got %s", v.ID)
	}
	s2.Close()
}

// A rotation of one workload's entry reaches that workload's subscribers only.
func TestRotationPerWorkload(t *testing.T) {
	agent := svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{Entries: entries()})
	src := newSource(t, agent.Addr())
	b, _ := src.Subscribe([]string{"unix:uid:1001"}, svid.Selector{ID: billing.String()})
	defer b.Close()
	r, _ := src.Subscribe([]string{"unix:uid:1002"}, svid.Selector{})
	defer r.Close()
	first := next(t, b)
	next(t, r)
	if err := agent.RotateEntry(billing); err != nil {
		t.Fatal(err)
	}
	second := next(t, b)
	if second.Leaf().Equal(first.Leaf()) {
		t.Fatal("rotation delivered the same certificate")
	}
	quiet(t, r)
}

// A mass rotation prepared in advance reaches nobody until it is pushed, then every workload at once,
// each with its own new SVID (cmd/bench times the bridge from the push).
func TestPreparedMassRotationIsPushedAtOnce(t *testing.T) {
	agent := svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{Entries: entries()})
	src := newSource(t, agent.Addr())
	b, _ := src.Subscribe([]string{"unix:uid:1001"}, svid.Selector{ID: billing.String()})
	defer b.Close()
	r, _ := src.Subscribe([]string{"unix:uid:1002"}, svid.Selector{})
	defer r.Close()
	b1, r1 := next(t, b), next(t, r)
	push, err := agent.PrepareRotation()
	if err != nil {
		t.Fatal(err)
	}
	quiet(t, b)
	quiet(t, r)
	push()
	b2, r2 := next(t, b), next(t, r)
	if b2.ID != billing || r2.ID != reports || b2.Leaf().Equal(b1.Leaf()) || r2.Leaf().Equal(r1.Leaf()) {
		t.Fatalf("after the push: billing got %s (new: %v), reports got %s (new: %v)", b2.ID, !b2.Leaf().Equal(b1.Leaf()), r2.ID, !r2.Leaf().Equal(r1.Leaf()))
	}
	if !agent.Current(billing).Certificates[0].Equal(b2.Leaf()) {
		t.Fatal("the pushed SVID is not the one the agent now issues")
	}
}

// SPIRE's Delegated Identity API does not end the stream when a workload's entry is deleted: it sends an
// update without its SVID. The workload's subscribers get nil (identity withdrawn), the stream reports
// no_matching_entry with the fix, and re-adding the entry delivers a fresh SVID on the same stream.
func TestDeletedEntryWithdrawsThatWorkloadOnly(t *testing.T) {
	agent := svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{Entries: entries()})
	src := newSource(t, agent.Addr())
	b, _ := src.Subscribe([]string{"unix:uid:1001"}, svid.Selector{ID: billing.String()})
	defer b.Close()
	r, _ := src.Subscribe([]string{"unix:uid:1002"}, svid.Selector{})
	defer r.Close()
	next(t, b)
	before := next(t, r)

	if !agent.DeleteEntry(reports) {
		t.Fatal("no reports entry")
	}
	if v := next(t, r); v != nil {
		t.Fatalf("after deleting its entry the workload got %v, want nil", v)
	}
	st := waitState(t, src, []string{"unix:uid:1002"}, delegated.StatusNoMatch)
	if st.Err == nil || st.Err.Kind != delegated.KindNoMatch || !strings.Contains(st.Err.Error(), "-selector unix:uid:1002") {
		t.Fatalf("state error = %v, want no_matching_entry naming the entry to create", st.Err)
	}
	quiet(t, b)
	if n := agent.Streams(); n != 2 {
		t.Fatalf("streams = %d, want 2: SPIRE keeps the stream open", n)
	}
	if err := agent.AddEntry(svidtest.WorkloadEntry{ID: reports, Selectors: []string{"unix:uid:1002"}}); err != nil {
		t.Fatal(err)
	}
	after := next(t, r)
	if after == nil || after.ID != reports || after.Leaf().Equal(before.Leaf()) {
		t.Fatalf("after re-adding got %v, want a fresh %s", after, reports)
	}
}

// The three refusals an operator must fix are each classified and carry the agent config to change.
func TestRefusalsNameTheFix(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	agent := svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{Entries: entries()})

	if svids, err := delegated.Probe(ctx, agent.Addr(), []string{"unix:uid:1002"}); err != nil || len(svids) != 1 || svids[0].ID != reports {
		t.Fatalf("Probe = %v, %v", svids, err)
	}
	cases := []struct {
		name   string
		setup  func() string
		sel    []string
		kind   delegated.Kind
		expect []string
	}{
		{"bridge not in authorized_delegates", func() string {
			a := svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{Entries: entries(), AuthorizedDelegates: []spiffeid.ID{spiffeid.RequireFromPath(td, "/cilium")}})
			return a.Addr()
		}, []string{"unix:uid:1001"}, delegated.KindNotAuthorized, []string{"authorized_delegates", "PermissionDenied"}},
		{"bridge has no identity at all", func() string {
			a := svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{Entries: entries(), Callers: map[uint32]spiffeid.ID{}})
			return a.Addr()
		}, []string{"unix:uid:1001"}, delegated.KindNoCallerIdentity, []string{"entry create", "authorized_delegates"}},
		{"no admin socket", func() string { return "unix://" + t.TempDir() + "/admin.sock" },
			[]string{"unix:uid:1001"}, delegated.KindNoAdminSocket, []string{"admin_socket_path", "authorized_delegates"}},
		{"selectors match no entry", agent.Addr, []string{"unix:uid:4242"}, delegated.KindNoMatch,
			[]string{"spire-server entry create", "-selector unix:uid:4242"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := delegated.Probe(ctx, c.setup(), c.sel)
			var de *delegated.Error
			if !errors.As(err, &de) || de.Kind != c.kind {
				t.Fatalf("Probe error = %v, want kind %s", err, c.kind)
			}
			for _, want := range c.expect {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

// Removing the bridge from authorized_delegates while streams are open withdraws every workload's
// identity (no new sessions on behalf of workloads the agent no longer lets it serve).
func TestDeauthorisedDelegateLosesEveryWorkload(t *testing.T) {
	agent := svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{Entries: entries()})
	src := newSource(t, agent.Addr())
	b, _ := src.Subscribe([]string{"unix:uid:1001"}, svid.Selector{ID: billing.String()})
	defer b.Close()
	next(t, b)
	agent.SetAuthorizedDelegates(nil)
	if v := next(t, b); v != nil {
		t.Fatalf("got %v, want nil after the delegate was removed", v)
	}
	st := waitState(t, src, []string{"unix:uid:1001"}, delegated.StatusDenied)
	if st.Err.Kind != delegated.KindNotAuthorized {
		t.Fatalf("kind = %s", st.Err.Kind)
	}
	agent.SetAuthorizedDelegates([]spiffeid.ID{agent.DelegateID()})
	if v := next(t, b); v == nil || v.ID != billing {
		t.Fatalf("after re-authorising got %v", v)
	}
}

// An agent restart breaks the streams: the workloads keep their SVIDs (not revoked) and resume.
func TestAgentRestartKeepsSVIDs(t *testing.T) {
	agent := svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{Entries: entries()})
	src := newSource(t, agent.Addr())
	b, _ := src.Subscribe([]string{"unix:uid:1001"}, svid.Selector{ID: billing.String()})
	defer b.Close()
	first := next(t, b)
	agent.Stop()
	waitState(t, src, []string{"unix:uid:1001"}, delegated.StatusConnecting)
	quiet(t, b)
	if err := agent.Restart(); err != nil {
		t.Fatal(err)
	}
	waitState(t, src, []string{"unix:uid:1001"}, delegated.StatusConnected)
	if err := agent.RotateEntry(billing); err != nil {
		t.Fatal(err)
	}
	if v := next(t, b); v == nil || v.Leaf().Equal(first.Leaf()) {
		t.Fatalf("after restart and rotation got %v", v)
	}
}

// TestAnAgentDownSaysWhetherThereAreSVIDsToKeep: a workload whose stream never delivered has nothing to
// keep; the log says it gets no new credentials until the agent is back, at ERROR, and claims to keep
// nothing. A workload with SVIDs keeps them, and the warning counts them.
func TestAnAgentDownSaysWhetherThereAreSVIDsToKeep(t *testing.T) {
	waitLog := func(b *logtest.Buffer, want string) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(b.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("no log line with %q:\n%s", want, b.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
		return b.String()
	}
	start := func(addr string, b *logtest.Buffer) *delegated.Source {
		src, err := delegated.New(delegated.Options{Address: addr, Logger: hclog.New(&hclog.LoggerOptions{Output: b, Level: hclog.Debug}),
			Backoff: svid.Backoff{Base: 20 * time.Millisecond, Max: 100 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		return src
	}

	none := &logtest.Buffer{}
	src := start("unix://"+t.TempDir()+"/admin.sock", none)
	sub, err := src.Subscribe([]string{"unix:uid:1001"}, svid.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	logs := waitLog(none, "Delegated Identity API unavailable")
	line := logs[strings.LastIndex(logs[:strings.Index(logs, "Delegated Identity API unavailable")], "\n")+1:]
	line, _, _ = strings.Cut(line, "\n")
	if !strings.Contains(line, "[ERROR]") || !strings.Contains(line, "Delegated Identity API unavailable and there are no SVIDs to keep for this workload: it gets no new AWS credentials until the agent is back") ||
		strings.Contains(logs, "keeping the workload's last SVIDs") || strings.Contains(logs, "kept_svids") {
		t.Errorf("with no SVIDs received, the log claims to keep some or is not an error:\n%s", logs)
	}

	kept := &logtest.Buffer{}
	agent := svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{Entries: entries()})
	src = start(agent.Addr(), kept)
	b, err := src.Subscribe([]string{"unix:uid:1001"}, svid.Selector{ID: billing.String()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	next(t, b)
	agent.Stop()
	logs = waitLog(kept, "Delegated Identity API unavailable")
	if !strings.Contains(logs, "keeping the workload's last SVIDs and reconnecting") || !strings.Contains(logs, "kept_svids=") || strings.Contains(logs, "no SVIDs to keep") {
		t.Errorf("with SVIDs received, the log does not say they are kept:\n%s", logs)
	}
}

func TestParseSelector(t *testing.T) {
	for _, c := range []struct {
		in, typ, value, err string
	}{
		{"unix:uid:1001", "unix", "uid:1001", ""},
		{"docker:label:app:billing", "docker", "label:app:billing", ""},
		{"systemd:id:billing.service", "systemd", "id:billing.service", ""},
		{"unix", "", "", "not type:value"},
		{":uid:1", "", "", "not type:value"},
		{"unix:", "", "", "not type:value"},
		{" unix:uid:1", "", "", "spaces"},
		{"unix:uid:1\n", "", "", "spaces"},
		{"unix:uid\x01:1", "", "", "control"},
	} {
		typ, value, err := delegated.ParseSelector(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseSelector(%q) error = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || typ != c.typ || value != c.value {
			t.Errorf("ParseSelector(%q) = %q, %q, %v", c.in, typ, value, err)
		}
	}
}
