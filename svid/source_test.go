package svid_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"go.uber.org/goleak"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/logtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	appID   = spiffeid.RequireFromString("spiffe://example.org/ns/prod/app")
	adminID = spiffeid.RequireFromString("spiffe://example.org/ns/prod/admin")
)

func newSource(t *testing.T, addr string) *svid.Source {
	t.Helper()
	src, err := svid.New(context.Background(), svid.Options{Address: addr, Backoff: svid.Backoff{Base: 20 * time.Millisecond, Max: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func next(t *testing.T, sub *svid.Subscription) *svid.SVID {
	t.Helper()
	select {
	case v, ok := <-sub.C():
		if !ok {
			t.Fatal("subscription closed")
		}
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("no SVID delivered within 10s")
	}
	return nil
}

func waitStatus(t *testing.T, src *svid.Source, want svid.Status) svid.State {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if st := src.State(); st.Status == want {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("state = %+v, want %s", src.State(), want)
	return svid.State{}
}

func TestRotationReachesSubscribers(t *testing.T) {
	agent := svidtest.NewServer(t, svidtest.ServerOptions{Entries: []svidtest.Entry{{ID: appID}}})
	src := newSource(t, agent.Addr())
	sub := src.Subscribe(svid.Selector{})
	defer sub.Close()

	first := next(t, sub)
	if first.ID != appID {
		t.Fatalf("ID = %s, want %s", first.ID, appID)
	}
	if !first.Leaf().Equal(agent.Current()[0].Certificates[0]) {
		t.Fatal("delivered leaf differs from the one served")
	}
	waitStatus(t, src, svid.StatusConnected)

	for i := 0; i < 3; i++ {
		start := time.Now()
		if err := agent.Rotate(); err != nil {
			t.Fatal(err)
		}
		got := next(t, sub)
		t.Logf("rotation %d delivered in %s", i, time.Since(start))
		if !got.Leaf().Equal(agent.Current()[0].Certificates[0]) {
			t.Fatalf("rotation %d: got serial %x, want the new SVID", i, got.Leaf().SerialNumber)
		}
		if got.Leaf().SerialNumber.Cmp(first.Leaf().SerialNumber) == 0 {
			t.Fatal("rotation delivered the old SVID")
		}
	}
	cur, err := src.Current(svid.Selector{})
	if err != nil || !cur.Leaf().Equal(agent.Current()[0].Certificates[0]) {
		t.Fatalf("Current = %v, %v", cur, err)
	}
	if src.Bundles() == nil {
		t.Fatal("no bundles kept")
	}
	if b, ok := src.Bundles().Get(appID.TrustDomain()); !ok || !b.X509Authorities()[0].Equal(agent.CA().Root()) {
		t.Fatal("bundle differs from the CA root")
	}
}

func TestSelection(t *testing.T) {
	agent := svidtest.NewServer(t, svidtest.ServerOptions{Entries: []svidtest.Entry{
		{ID: appID, Hint: "internal"}, {ID: adminID, Hint: "external"},
	}})
	src := newSource(t, agent.Addr())
	byID := src.Subscribe(svid.Selector{ID: adminID.String()})
	byHint := src.Subscribe(svid.Selector{Hint: "internal"})
	def := src.Subscribe(svid.Selector{})
	if got := next(t, byID); got.ID != adminID || got.Hint != "external" {
		t.Fatalf("by ID: got %s/%s", got.ID, got.Hint)
	}
	if got := next(t, byHint); got.ID != appID {
		t.Fatalf("by hint: got %s", got.ID)
	}
	if got := next(t, def); got.ID != appID {
		t.Fatalf("default: got %s, want the first SVID %s", got.ID, appID)
	}

	_, err := src.Current(svid.Selector{ID: "spiffe://example.org/nope"})
	var nf *svid.NotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("err = %v, want *NotFoundError", err)
	}
	for _, want := range []string{"spiffe://example.org/nope", appID.String(), adminID.String(), "internal", "external"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}

	// FetchX509 (one-shot) selects the same way.
	got, err := svid.FetchX509(context.Background(), agent.Addr(), svid.Selector{Hint: "external"})
	if err != nil || got.ID != adminID {
		t.Fatalf("FetchX509 = %v, %v", got, err)
	}
	if _, err := svid.FetchX509(context.Background(), agent.Addr(), svid.Selector{Hint: "nope"}); !errors.As(err, &nf) {
		t.Fatalf("FetchX509 unknown hint: %v", err)
	}
}

func TestAgentRestartResumesDelivery(t *testing.T) {
	agent := svidtest.NewServer(t, svidtest.ServerOptions{Entries: []svidtest.Entry{{ID: appID}}})
	src := newSource(t, agent.Addr())
	sub := src.Subscribe(svid.Selector{})
	defer sub.Close()
	before := next(t, sub)

	agent.Stop()
	waitStatus(t, src, svid.StatusConnecting)
	if cur, err := src.Current(svid.Selector{}); err != nil || !cur.Leaf().Equal(before.Leaf()) {
		t.Fatalf("the last SVID was not kept while the agent is down: %v %v", cur, err)
	}
	if err := agent.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := agent.Rotate(); err != nil {
		t.Fatal(err)
	}
	after := next(t, sub)
	if after.Leaf().Equal(before.Leaf()) {
		t.Fatal("no new SVID after restart")
	}
	waitStatus(t, src, svid.StatusConnected)
}

func TestNoIdentityReportedThenRecovered(t *testing.T) {
	agent := svidtest.NewServer(t, svidtest.ServerOptions{Entries: []svidtest.Entry{{ID: appID}}})
	agent.SetPermissionDenied(true)
	src := newSource(t, agent.Addr())
	st := waitStatus(t, src, svid.StatusNoIdentity)
	if !strings.Contains(st.Reason, "no identity issued") {
		t.Fatalf("reason = %q", st.Reason)
	}
	if _, err := src.Current(svid.Selector{}); !errors.Is(err, svid.ErrNoIdentity) {
		t.Fatalf("Current = %v, want ErrNoIdentity", err)
	}
	sub := src.Subscribe(svid.Selector{})
	defer sub.Close()
	agent.SetPermissionDenied(false)
	if got := next(t, sub); got.ID != appID {
		t.Fatalf("got %s", got.ID)
	}
	waitStatus(t, src, svid.StatusConnected)
}

// Deleting the workload's last registration entry makes SPIRE end the stream with PermissionDenied "no
// identity issued": the identity is revoked, so the Source drops the SVID (no one may sign with it) and
// tells subscribers with a nil SVID; re-adding the entry delivers a fresh SVID.
func TestDeletedEntryDropsTheSVIDAndReAddRestoresIt(t *testing.T) {
	agent := svidtest.NewServer(t, svidtest.ServerOptions{Entries: []svidtest.Entry{{ID: appID}}})
	src := newSource(t, agent.Addr())
	sub := src.Subscribe(svid.Selector{ID: appID.String()})
	defer sub.Close()
	before := next(t, sub)

	if ok, err := agent.DeleteEntry(appID); !ok || err != nil {
		t.Fatalf("DeleteEntry = %v, %v", ok, err)
	}
	if got := next(t, sub); got != nil {
		t.Fatalf("after the entry was deleted the subscription got %s, want nil (identity withdrawn)", got)
	}
	st := waitStatus(t, src, svid.StatusNoIdentity)
	if !strings.Contains(st.Reason, "no identity issued") || !strings.Contains(st.Reason, "PermissionDenied") {
		t.Fatalf("reason = %q, want SPIRE's PermissionDenied \"no identity issued\"", st.Reason)
	}
	if v, err := src.Current(svid.Selector{}); !errors.Is(err, svid.ErrNoIdentity) {
		t.Fatalf("Current = %v, %v; want ErrNoIdentity (the revoked SVID must not be kept)", v, err)
	}

	if err := agent.AddEntry(svidtest.Entry{ID: appID}); err != nil {
		t.Fatal(err)
	}
	after := next(t, sub)
	if after == nil || after.ID != appID || after.Leaf().Equal(before.Leaf()) {
		t.Fatalf("after re-adding the entry got %v, want a fresh SVID for %s", after, appID)
	}
	waitStatus(t, src, svid.StatusConnected)
}

// Deleting one of several entries is an ordinary update without it: its subscribers get nil, the
// others keep theirs.
func TestDeletedOneOfTwoEntries(t *testing.T) {
	agent := svidtest.NewServer(t, svidtest.ServerOptions{Entries: []svidtest.Entry{{ID: appID}, {ID: adminID}}})
	src := newSource(t, agent.Addr())
	app := src.Subscribe(svid.Selector{ID: appID.String()})
	defer app.Close()
	admin := src.Subscribe(svid.Selector{ID: adminID.String()})
	defer admin.Close()
	next(t, app)
	next(t, admin)

	if _, err := agent.DeleteEntry(adminID); err != nil {
		t.Fatal(err)
	}
	if got := next(t, admin); got != nil {
		t.Fatalf("admin subscription got %s, want nil", got)
	}
	if got := next(t, app); got == nil || got.ID != appID {
		t.Fatalf("app subscription got %v, want its re-issued SVID", got)
	}
	if _, err := src.Current(svid.Selector{ID: adminID.String()}); err == nil {
		t.Fatal("the deleted identity is still current")
	}
	if st := src.State(); st.Status != svid.StatusConnected {
		t.Fatalf("state = %s, want connected (the workload still has an identity)", st.Status)
	}
}

func TestNoAgent(t *testing.T) {
	src := newSource(t, "unix:///nonexistent/agent.sock")
	time.Sleep(100 * time.Millisecond)
	if st := src.State(); st.Status == svid.StatusConnected || st.Reason == "" && st.Status != svid.StatusConnecting {
		t.Fatalf("state = %+v", st)
	}
}

// TestAnAgentDownSaysWhetherThereAreSVIDsToKeep: with SVIDs received, an agent that goes away is a
// warning that names how many are kept; with none (the agent never answered), it is an error saying
// that no workload can be served until the agent is back, and never claims to keep anything.
func TestAnAgentDownSaysWhetherThereAreSVIDsToKeep(t *testing.T) {
	logger := func(b *logtest.Buffer) hclog.Logger {
		return hclog.New(&hclog.LoggerOptions{Output: b, Level: hclog.Debug})
	}
	backoff := svid.Backoff{Base: 20 * time.Millisecond, Max: 200 * time.Millisecond}
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

	// Never connected: nothing to keep.
	none := &logtest.Buffer{}
	src, err := svid.New(context.Background(), svid.Options{Address: "unix://" + t.TempDir() + "/agent.sock", Logger: logger(none), Backoff: backoff})
	if err != nil {
		t.Fatal(err)
	}
	logs := waitLog(none, "Workload API unavailable")
	src.Close()
	if !strings.Contains(logs, "[ERROR] Workload API unavailable and there are no SVIDs to keep: no workload can be served new AWS credentials until the agent is back") ||
		strings.Contains(logs, "keeping the last SVIDs") || strings.Contains(logs, "kept_svids") {
		t.Errorf("with no SVIDs received, the log claims to keep some or is not an error:\n%s", logs)
	}

	// Connected, then the agent stops: the SVID is kept, and the warning says so.
	kept := &logtest.Buffer{}
	agent := svidtest.NewServer(t, svidtest.ServerOptions{Entries: []svidtest.Entry{{ID: appID}}})
	src, err = svid.New(context.Background(), svid.Options{Address: agent.Addr(), Logger: logger(kept), Backoff: backoff})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	waitStatus(t, src, svid.StatusConnected)
	agent.Stop()
	logs = waitLog(kept, "Workload API unavailable")
	if !strings.Contains(logs, "[WARN]  Workload API unavailable; keeping the last SVIDs and reconnecting") || !strings.Contains(logs, "kept_svids=1") ||
		strings.Contains(logs, "no SVIDs to keep") {
		t.Errorf("with one SVID received, the log does not say it is kept:\n%s", logs)
	}
}

func TestJWT(t *testing.T) {
	agent := svidtest.NewServer(t, svidtest.ServerOptions{Entries: []svidtest.Entry{{ID: appID}, {ID: adminID}}})
	ctx := context.Background()
	token, id, err := svid.FetchJWT(ctx, agent.Addr(), "sts.amazonaws.com", adminID.String())
	if err != nil {
		t.Fatal(err)
	}
	if id != adminID.String() {
		t.Fatalf("id = %s", id)
	}
	bundles, err := svid.FetchJWTBundles(ctx, agent.Addr())
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwtsvid.ParseAndValidate(token, bundles, []string{"sts.amazonaws.com"})
	if err != nil {
		t.Fatalf("token does not validate against the served bundle: %v", err)
	}
	if s.ID != adminID {
		t.Fatalf("sub = %s", s.ID)
	}
	if _, err := jwtsvid.ParseAndValidate(token, bundles, []string{"other"}); err == nil {
		t.Fatal("token accepted for the wrong audience")
	}
	// A token from another CA does not validate against this bundle.
	other, _ := svidtest.NewCA(svidtest.CAOptions{})
	forged, _ := other.MintJWTSVID(adminID, []string{"sts.amazonaws.com"}, 0)
	if _, err := jwtsvid.ParseAndValidate(forged, bundles, []string{"sts.amazonaws.com"}); err == nil {
		t.Fatal("token from a foreign CA validated")
	}
	if _, err := jwtsvid.ParseAndValidate(token, jwtbundle.NewSet(other.JWTBundle()), []string{"sts.amazonaws.com"}); err == nil {
		t.Fatal("token validated against a foreign bundle")
	}
	// The agent's own ValidateJWTSVID agrees.
	c, err := workloadapi.New(ctx, workloadapi.WithAddr(agent.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v, err := c.ValidateJWTSVID(ctx, token, "sts.amazonaws.com"); err != nil || v.ID != adminID {
		t.Fatalf("ValidateJWTSVID = %v, %v", v, err)
	}
	if _, err := c.ValidateJWTSVID(ctx, forged, "sts.amazonaws.com"); err == nil {
		t.Fatal("ValidateJWTSVID accepted a forged token")
	}
	if _, _, err := svid.FetchJWT(ctx, agent.Addr(), "", ""); err == nil {
		t.Fatal("empty audience accepted")
	}
}

func TestResolveAddress(t *testing.T) {
	t.Setenv(svid.EnvEndpointSocket, "")
	for _, tc := range []struct {
		configured, env, want, err string
	}{
		{"", "", svid.DefaultAddress, ""},
		{"", "unix:///run/spire/agent.sock", "unix:///run/spire/agent.sock", ""},
		{"unix:///a.sock", "unix:///b.sock", "unix:///a.sock", ""},
		{"/run/spire/sockets/agent.sock", "", "unix:///run/spire/sockets/agent.sock", ""},
		{"tcp://127.0.0.1:8081", "", "tcp://127.0.0.1:8081", ""},
		{"http://x", "", "", `invalid Workload API address "http://x" (from configuration)`},
		{"", "tcp://localhost:1", "", `(from $SPIFFE_ENDPOINT_SOCKET)`},
	} {
		t.Setenv(svid.EnvEndpointSocket, tc.env)
		got, err := svid.ResolveAddress(tc.configured)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ResolveAddress(%q) env %q: err %v, want %q", tc.configured, tc.env, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ResolveAddress(%q) env %q = %q, %v; want %q", tc.configured, tc.env, got, err, tc.want)
		}
	}
}

func TestSVIDAccessors(t *testing.T) {
	ca, err := svidtest.NewCA(svidtest.CAOptions{Intermediate: true})
	if err != nil {
		t.Fatal(err)
	}
	x, err := ca.MintX509SVID(appID, svidtest.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := &svid.SVID{ID: x.ID, Certificates: x.Certificates, PrivateKey: x.PrivateKey}
	if len(s.Intermediates()) != 1 || !s.Intermediates()[0].IsCA {
		t.Fatal("intermediate missing")
	}
	if !s.ExpiresAt().Equal(s.Leaf().NotAfter) {
		t.Fatal("ExpiresAt")
	}
	if str := s.String(); !strings.Contains(str, appID.String()) || strings.Contains(str, "PRIVATE") {
		t.Fatalf("String = %q", str)
	}
}
