package podidentity_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/schedule"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/clock"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/logtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity/podidentitytest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/signer"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/delegated"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
)

const (
	account     = "123456789012"
	trustAnchor = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0f0e0d0c-0b0a-4909-8807-060504030201"
	profileARN  = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/01020304-0506-4708-8900-0a0b0c0d0e0f"
	node        = "node-a"
)

// roleOf is the role the standard rule maps a namespace and service account to.
func roleOf(ns, sa string) string { return fmt.Sprintf("arn:aws:iam::%s:role/%s-%s", account, ns, sa) }

func idOf(ns, sa string) spiffeid.ID {
	return spiffeid.RequireFromString(fmt.Sprintf("spiffe://example.org/ns/%s/sa/%s", ns, sa))
}

// standardRules map spiffe://example.org/ns/{ns}/sa/{sa} to role {ns}-{sa}.
func standardRules() []podidentity.Rule {
	return []podidentity.Rule{{Name: "rule[0]", Pattern: "spiffe://example.org/ns/{ns}/sa/{sa}", RoleARN: "arn:aws:iam::123456789012:role/{ns}-{sa}"}}
}

// identity is one service account SPIRE issues an identity and the emulated account has a role for.
type identity struct{ ns, sa string }

// world is one node: a fake SPIRE agent's Delegated Identity API with an entry per identity (by the
// k8s:ns and k8s:sa selectors, as the SPIRE Controller Manager makes them), an emulated AWS account with
// a role per identity that trusts only that identity's SPIFFE ID, the token authenticator double, and
// the pod identity server on 127.0.0.1.
type world struct {
	dir   string
	admin *svidtest.DelegatedServer
	emu   *emulator.Server
	auth  *podidentitytest.Authenticator
	src   *delegated.Source
	srv   *podidentity.Server
	log   *logtest.Buffer
	url   string
}

type worldOptions struct {
	identities []identity
	// extraEntries are entries with no role (a SPIFFE ID no rule matches, for instance).
	extraEntries []svidtest.WorkloadEntry
	rules        []podidentity.Rule
	policy       schedule.Policy
	wait         time.Duration
	// clock, when set, is the time of the agent's CA, the emulator, the signer and the refreshers
	// (default: the wall clock); svidTTL is the X.509-SVIDs' lifetime (default 24h); rand the refreshers'
	// random source (default math/rand/v2).
	clock   *clock.Fake
	svidTTL time.Duration
	rand    func() float64
	logger  hclog.Logger
	// listen are the server's addresses (default 127.0.0.1:0); startIn, if set, runs its Start (the
	// listening) there, e.g. on a thread in another network namespace.
	listen  []string
	startIn func(func() error) error
	// noSourceCheck turns VerifySourceAddress off (it is on in every other world, as in the config);
	// isNodeAddress replaces the server's IsNodeAddress.
	noSourceCheck bool
	isNodeAddress func(netip.Addr) (bool, error)
	// addressWait bounds the authenticator double's wait for a pod's IPs (default one second).
	addressWait time.Duration
}

func newWorld(t testing.TB, o worldOptions) *world {
	t.Helper()
	w := &world{dir: t.TempDir(), auth: &podidentitytest.Authenticator{Node: node, AddressWait: o.addressWait}}
	now, clk := time.Now, clock.Clock(clock.Real{})
	if o.clock != nil {
		now, clk = o.clock.Now, o.clock
	}
	ttl := o.svidTTL
	if ttl == 0 {
		ttl = 24 * time.Hour
	}
	ca, err := svidtest.NewCA(svidtest.CAOptions{TTL: ttl, Clock: now})
	if err != nil {
		t.Fatal(err)
	}
	var entries []svidtest.WorkloadEntry
	var roles strings.Builder
	var roleARNs []string
	for _, id := range o.identities {
		entries = append(entries, svidtest.WorkloadEntry{ID: idOf(id.ns, id.sa), Selectors: []string{"k8s:ns:" + id.ns, "k8s:sa:" + id.sa}})
		roleARNs = append(roleARNs, roleOf(id.ns, id.sa))
		fmt.Fprintf(&roles, "role %q {\n  condition {\n    tag    = \"x509SAN/URI\"\n    values = [%q]\n  }\n}\n", roleOf(id.ns, id.sa), idOf(id.ns, id.sa))
	}
	entries = append(entries, o.extraEntries...)
	w.admin = svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{CA: ca, Entries: entries})
	caPath := filepath.Join(w.dir, "ca.pem")
	if err := os.WriteFile(caPath, ca.BundlePEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	arns, _ := json.Marshal(roleARNs)
	cfg, err := emulator.ParseConfig([]byte(fmt.Sprintf(`
account_id       = %q
quota_per_second = -1
trust_anchor %q {
  ca_bundle_file = %q
}
profile %q {
  role_arns = %s
}
%s`, account, trustAnchor, caPath, profileARN, arns, roles.String())), filepath.Join(w.dir, "emulator.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if w.emu, err = emulator.NewServer(emulator.Options{Config: cfg, Clock: now}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.emu.Close() })

	logger := o.logger
	if logger == nil {
		logger, w.log = logtest.New()
		logger.SetLevel(hclog.Trace)
	}
	w.src, err = delegated.New(delegated.Options{Address: w.admin.Addr(), Logger: logger.Named("delegated"), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.src.Close() })
	rules := o.rules
	if rules == nil {
		rules = standardRules()
	}
	compiled, err := podidentity.CompileRules(rules)
	if err != nil {
		t.Fatal(err)
	}
	policy := o.policy
	if policy.RotationSpread == 0 {
		policy.RotationSpread = -1
	}
	client := signer.New(signer.Options{Retry: signer.RetryPolicy{MaxAttempts: 1}, Now: now})
	listen := o.listen
	if listen == nil {
		listen = []string{"127.0.0.1:0"}
	}
	w.srv, err = podidentity.New(podidentity.Options{
		Listen:        listen,
		NodeName:      node,
		Rules:         compiled,
		Authenticator: w.auth,
		Subscribe: func(selectors []string) (podidentity.Subscription, error) {
			return w.src.Subscribe(selectors, svid.Selector{})
		},
		NewRefresher: func(spec podidentity.SessionSpec, svids <-chan *svid.SVID, sinks []bridge.Sink) (*bridge.Refresher, error) {
			return bridge.NewRefresher(bridge.RefresherOptions{
				Profile: spec.Name(),
				Session: signer.CreateSessionInput{TrustAnchorARN: trustAnchor, ProfileARN: profileARN, RoleARN: spec.RoleARN,
					Endpoint: w.emu.URL, RoleSessionName: spec.RoleSessionName},
				SVIDs: svids, Client: client, Sinks: sinks, Policy: policy, Logger: logger, Clock: clk, Rand: o.rand,
			})
		},
		FirstRequestWait:    o.wait,
		VerifySourceAddress: !o.noSourceCheck,
		IsNodeAddress:       o.isNodeAddress,
		Logger:              logger.Named("pod_identity"),
		Clock:               now,
	})
	if err != nil {
		t.Fatal(err)
	}
	start := w.srv.Start
	if o.startIn != nil {
		start = func() error { return o.startIn(w.srv.Start) }
	}
	if err := start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.srv.Close)
	w.url = "http://" + w.srv.Addrs()[0] + "/v1/credentials"
	return w
}

// pod makes a pod of this node with a token; its name and UID derive from name, its IP is 127.0.0.1
// (where get's requests come from).
func (w *world) pod(ns, sa, name string) (podidentity.Pod, string) {
	return w.podAt(ns, sa, name, netip.MustParseAddr("127.0.0.1"))
}

// podAt makes a pod of this node with these IPs (none: not known yet) and a token.
func (w *world) podAt(ns, sa, name string, ips ...netip.Addr) (podidentity.Pod, string) {
	p := podidentity.Pod{Namespace: ns, ServiceAccount: sa, Name: name, UID: "uid-" + ns + "-" + name, Node: node, IPs: ips}
	return p, w.auth.Issue(p)
}

// getFrom is get with the request's TCP connection bound to the source address src (any address of
// 127.0.0.0/8 is the loopback's on Linux; "::1" for IPv6), to url when not "".
func (w *world) getFrom(t testing.TB, token, src, url string) (int, map[string]string) {
	t.Helper()
	if url == "" {
		url = w.url
	}
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	client := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true}}
	return w.do(t, client, url, token)
}

// get asks for credentials with token as a pod's SDK does; it returns the status and the JSON body.
func (w *world) get(t testing.TB, token string) (int, map[string]string) {
	t.Helper()
	return w.do(t, http.DefaultClient, w.url, token)
}

// do sends a pod SDK's request to url with client.
func (w *world) do(t testing.TB, client *http.Client, url, token string) (int, map[string]string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	doc := map[string]string{}
	if err := json.Unmarshal(b, &doc); err != nil {
		doc["raw"] = string(b)
	}
	return resp.StatusCode, doc
}

// within polls cond until it holds or d passes.
func within(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (w *world) creates() int { return w.emu.Stats().CreateSession }

var _ = context.Background

func mustID(s string) spiffeid.ID { return spiffeid.RequireFromString(s) }

func podNamed(ns, sa, name, nodeName string) podidentity.Pod {
	return podidentity.Pod{Namespace: ns, ServiceAccount: sa, Name: name, UID: "uid-" + ns + "-" + name, Node: nodeName}
}
