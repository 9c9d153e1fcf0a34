package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/daemon"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/clock"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity/kube"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity/podidentitytest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// podIdentityBlock is a pod_identity block serving on 127.0.0.1 (a free port), its one rule mapping
// spiffe://example.org/ns/{ns}/{app} to role {app}; extra goes into the rule.
func (w world) podIdentityBlock(admin, listen, extra string) string {
	return fmt.Sprintf(`
delegated_identity {
  admin_address = %q
}
pod_identity {
  listen    = [%q]
  interface = ""
  node_name = "node-a"
  rule {
    spiffe_id        = "spiffe://example.org/ns/{ns}/{app}"
    trust_anchor_arn = %q
    profile_arn      = %q
    role_arn         = "arn:aws:iam::123456789012:role/{app}"
    endpoint         = %q
%s
  }
}
`, admin, listen, testworld.TrustAnchorARN, testworld.ProfileARN, w.Emulator.URL, extra)
}

func podGet(t *testing.T, url, token string) (int, map[string]string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	doc := map[string]string{}
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	return resp.StatusCode, doc
}

// `run` with a pod_identity block serves pods beside the profiles, reports each identity on /ready's
// states, reloads its rules (pods move to their new session), refuses to reload what needs a restart,
// and stops cleanly: streams closed, port released.
func TestPodIdentityRunsBesideProfilesReloadsAndStops(t *testing.T) {
	w := newWorld(t, time.Now)
	podID := spiffeid.RequireFromString("spiffe://example.org/ns/prod/app")
	admin := svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{CA: w.Agent.CA(), Entries: []svidtest.WorkloadEntry{
		{ID: podID, Selectors: []string{"k8s:ns:prod", "k8s:sa:app"}},
	}})
	auth := &podidentitytest.Authenticator{Node: "node-a"}
	var gotNode string
	opt := func(o *daemon.Options) {
		o.PodAuthenticator = func(_ context.Context, po podidentity.AuthenticatorOptions) (podidentity.Authenticator, func(), error) {
			gotNode = po.NodeName
			return auth, func() {}, nil
		}
	}
	d, logs := w.startWith(t, clock.Real{}, time.Now, w.profile("own", "")+w.podIdentityBlock(admin.Addr(), "127.0.0.1:0", ""), opt)
	if gotNode != "node-a" {
		t.Fatalf("authenticator built for node %q", gotNode)
	}
	url := "http://" + d.PodIdentityAddrs()[0] + "/v1/credentials"
	tok := auth.Issue(podidentity.Pod{Namespace: "prod", ServiceAccount: "app", Name: "app-1", UID: "u1", Node: "node-a",
		IPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}) // where the requests come from
	code, doc := podGet(t, url, tok)
	if code != http.StatusOK || !strings.Contains(doc["RoleArn"], "assumed-role/app/") {
		t.Fatalf("pod: %d %v", code, doc)
	}
	within(t, 5*time.Second, "the profile's and the pod session's states", func() bool {
		st := d.States()
		return len(st) == 2 && st[0].Profile == "own" && st[1].Profile == "pod_identity:"+podID.String() && st[1].Pods == 1 && !st[1].Expiration.IsZero()
	})

	// Reload with another session duration: the pod moves to a new session, made with the new duration.
	parse := func(text string) *config.Config {
		t.Helper()
		c, err := config.Parse([]byte(fmt.Sprintf("agent_address = %q\nhealth_checks {\n  bind_port = 0\n}\n", w.Agent.Addr())+text), "bridge.hcl")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// The own profile's first session is made by now too, so that the count below sees the reload's alone.
	within(t, 5*time.Second, "the own profile's session", func() bool {
		for _, st := range d.States() {
			if st.Profile == "own" && !st.Expiration.IsZero() {
				return true
			}
		}
		return false
	})
	before := creates(w)
	if err := d.Reload(context.Background(), parse(w.profile("own", "")+w.podIdentityBlock(admin.Addr(), "127.0.0.1:0", `    session_duration = "30m"`))); err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, "the pod's new session", func() bool {
		_, doc := podGet(t, url, tok)
		exp, err := time.Parse(time.RFC3339, doc["Expiration"])
		return err == nil && time.Until(exp) < 31*time.Minute
	})
	if creates(w) != before+1 {
		t.Fatalf("%d CreateSession calls for the reloaded rule, want 1", creates(w)-before)
	}
	if st := d.States(); len(st) != 2 {
		t.Fatalf("after the reload: %d states, want the profile and one session (the old one stopped)", len(st))
	}
	// A new listen address needs a restart: refused, everything as before.
	err := d.Reload(context.Background(), parse(w.profile("own", "")+w.podIdentityBlock(admin.Addr(), "127.0.0.2:0", `    session_duration = "30m"`)))
	if err == nil || !strings.Contains(err.Error(), "need a restart") {
		t.Fatalf("reload with another listen address: %v", err)
	}
	if code, _ := podGet(t, url, tok); code != http.StatusOK {
		t.Fatalf("after the refused reload: %d", code)
	}
	if strings.Contains(logs.String(), tok) {
		t.Fatal("the daemon logged a pod's token")
	}
	addr := d.PodIdentityAddrs()[0]
	d.Close()
	// The agent learns of a closed stream when its cancellation arrives, a moment after Close returns.
	within(t, 5*time.Second, "every Delegated Identity stream closed at the agent after Close", func() bool { return admin.Streams() == 0 })
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Close", addr)
	}
}

// A pod_identity block needs a node name and an authenticator: without either the daemon does not start,
// and says what to set.
func TestPodIdentityNeedsNodeNameAndAuthenticator(t *testing.T) {
	w := newWorld(t, time.Now)
	admin := svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{CA: w.Agent.CA()})
	block := strings.Replace(w.podIdentityBlock(admin.Addr(), "127.0.0.1:0", ""), `  node_name = "node-a"`+"\n", "", 1)
	cfg, err := config.Parse([]byte(fmt.Sprintf("agent_address = %q\n", w.Agent.Addr())+block), "bridge.hcl")
	if err != nil {
		t.Fatal(err)
	}
	auth := func(context.Context, podidentity.AuthenticatorOptions) (podidentity.Authenticator, func(), error) {
		return &podidentitytest.Authenticator{}, func() {}, nil
	}
	_, err = daemon.New(context.Background(), cfg, daemon.Options{PodAuthenticator: auth, Getenv: func(string) string { return "" }})
	if err == nil || !strings.Contains(err.Error(), "set node_name, or NODE_NAME") {
		t.Fatalf("no node name: %v", err)
	}
	d, err := daemon.New(context.Background(), cfg, daemon.Options{PodAuthenticator: auth, Getenv: func(k string) string { return map[string]string{"NODE_NAME": "n1"}[k] }})
	if err != nil {
		t.Fatalf("NODE_NAME from the environment: %v", err)
	}
	d.Close()
	// spiffe-aws-bridge-k8s's authenticator is the API server's (TokenReview and this node's pods):
	// outside a pod, with no kubeconfig, it says which setting is missing.
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	_, err = daemon.New(context.Background(), cfg, daemon.Options{PodAuthenticator: kube.NewAuthenticatorFactory(nil), Getenv: func(string) string { return "n1" }})
	if err == nil || !strings.Contains(err.Error(), "set kubeconfig when not running in a pod") {
		t.Fatalf("the Kubernetes authenticator outside a cluster: %v", err)
	}
}

// noKubernetes is what a daemon built without Kubernetes support (no PodAuthenticator, as in
// spiffe-aws-bridge) says of the pod_identity block of the config file bridge.hcl.
func noKubernetes(pos string) string {
	return "pod_identity (" + pos + "): this spiffe-aws-bridge is built without Kubernetes support; run it with spiffe-aws-bridge-k8s run --config bridge.hcl (the chart's image ships both)"
}

// A daemon without a pod authenticator (spiffe-aws-bridge, which links no Kubernetes client) refuses a
// pod_identity block at start as a configuration error (exit 2) that names the block and the binary to
// run instead, before any profile asks AWS for anything.
func TestPodIdentityWithoutAuthenticatorIsAConfigError(t *testing.T) {
	w := newWorld(t, time.Now)
	admin := svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{CA: w.Agent.CA()})
	cfg, err := config.Parse([]byte(fmt.Sprintf("agent_address = %q\n", w.Agent.Addr())+w.profile("own", "")+w.podIdentityBlock(admin.Addr(), "127.0.0.1:0", "")), "bridge.hcl")
	if err != nil {
		t.Fatal(err)
	}
	_, err = daemon.New(context.Background(), cfg, daemon.Options{})
	var ce *daemon.ConfigError
	if !errors.As(err, &ce) || err.Error() != noKubernetes(cfg.PodIdentity.Pos) {
		t.Fatalf("got %T %v\nwant a *daemon.ConfigError %q", err, err, noKubernetes(cfg.PodIdentity.Pos))
	}
	if n := creates(w); n != 0 {
		t.Errorf("%d CreateSession calls by a daemon that refused its config", n)
	}
	if admin.Streams() != 0 {
		t.Errorf("the refused daemon opened %d Delegated Identity streams", admin.Streams())
	}
}

// A reload that adds a pod_identity block to a daemon without a pod authenticator is refused like any
// failed reload: reported (ReloadStatus, so /ready and metrics), the profiles running as before, nothing
// listening for pods.
func TestReloadAddingPodIdentityWithoutAuthenticatorKeepsTheOldConfig(t *testing.T) {
	w := newWorld(t, time.Now)
	admin := svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{CA: w.Agent.CA()})
	d, _ := w.startWith(t, clock.Real{}, time.Now, w.profile("own", ""), nil)
	within(t, 5*time.Second, "the own profile's session", func() bool {
		st := d.States()
		return len(st) == 1 && !st[0].Expiration.IsZero()
	})
	next := w.parse(t, w.profile("own", "")+w.podIdentityBlock(admin.Addr(), "127.0.0.1:0", ""))
	err := d.Reload(context.Background(), next)
	var ce *daemon.ConfigError
	want := "pod_identity (" + next.PodIdentity.Pos + "): this spiffe-aws-bridge is built without Kubernetes support; run it with spiffe-aws-bridge-k8s run --config " + filepath.Join(w.Dir, "bridge.hcl")
	if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("reload adding pod_identity: %T %v", err, err)
	}
	if got := d.ReloadStatus().Err; got != err.Error() {
		t.Errorf("ReloadStatus().Err = %q, want the reload's error", got)
	}
	if addrs := d.PodIdentityAddrs(); addrs != nil {
		t.Errorf("pod identity listens on %v after a refused reload", addrs)
	}
	if st := d.States(); len(st) != 1 || st[0].Profile != "own" || st[0].Expiration.IsZero() {
		t.Fatalf("after the refused reload: %+v", st)
	}
	// The old config keeps running: a rotation still refreshes the profile.
	before := creates(w)
	if err := w.Agent.Rotate(); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "the profile refreshed after the refused reload", func() bool { return creates(w) > before })
	if admin.Streams() != 0 {
		t.Errorf("the refused reload left %d Delegated Identity streams open", admin.Streams())
	}
}
