package daemon_test

// Pod identity end to end, as issue 24 judges it: the whole daemon (daemon.New with a pod_identity block
// and the PodAuthenticator spiffe-aws-bridge-k8s ships, kube.NewAuthenticatorFactory: TokenReview and
// this node's pod informer) against a real kube-apiserver and etcd (podidentity/kube/kubetest), acting as
// the bridge's service account bound to exactly the ClusterRole of podidentity/kube/rbac.yaml; the fake
// SPIRE agent's Delegated Identity API (svidtest) with an entry per service account; the emulator with a
// role per service account that trusts only that service account's SPIFFE ID; and an unmodified
// aws-sdk-go-v2 configured only by the two environment variables a pod gets.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/daemon"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/clock"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/logtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity/kube"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity/kube/kubetest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// The daemon package shares one control plane among its tests (started by the first that needs it).
func TestMain(m *testing.M) { kubetest.Main(m) }

const (
	// kubeAudience is the pods' projected tokens' audience (the pod_identity block's default).
	kubeAudience = "spiffe-aws-bridge"
	// podProfileARN is a second Roles Anywhere profile of the emulated account, listing the roles of
	// the service accounts of a test.
	podProfileARN = "arn:aws:rolesanywhere:" + testworld.Region + ":" + testworld.AccountID + ":profile/0a0b0c0d-0e0f-4a1b-8c2d-3e4f5a6b7c8d"
)

// kubeWorld is one node of a real cluster: the API server, a namespace of the test's, the node the
// bridge runs on, the fake agent's Delegated Identity API with an entry per service account, the
// emulator with a role per service account, and the daemon in pod identity mode.
type kubeWorld struct {
	world
	kube  *kubetest.Server
	ns    string
	node  string
	admin *svidtest.DelegatedServer
	d     *daemon.Daemon
	logs  *logtest.Buffer
	url   string

	mu      sync.Mutex
	tokens  []string // every token the test made, for the log check
	secrets []string // every secret access key and session token the bridge served
}

// kubeIDOf is the SPIFFE ID SPIRE issues the pods of service account sa of namespace ns.
func kubeIDOf(ns, sa string) spiffeid.ID {
	return spiffeid.RequireFromString(fmt.Sprintf("spiffe://example.org/ns/%s/sa/%s", ns, sa))
}

// kubeRoleOf is the role the rule maps ns/sa to, which trusts only kubeIDOf(ns, sa).
func kubeRoleOf(ns, sa string) string {
	return fmt.Sprintf("arn:aws:iam::%s:role/%s-%s", testworld.AccountID, ns, sa)
}

// newKubeWorld starts it all for the service accounts sas of a new namespace; extra are more agent
// entries (with no role).
func newKubeWorld(t *testing.T, sas []string, extra ...svidtest.WorkloadEntry) *kubeWorld {
	t.Helper()
	return newKubeWorldWith(t, "", sas, extra...)
}

// newKubeWorldWith is newKubeWorld with more settings (lines) in the pod_identity block.
func newKubeWorldWith(t *testing.T, settings string, sas []string, extra ...svidtest.WorkloadEntry) *kubeWorld {
	t.Helper()
	s := kubetest.Shared(t)
	kw := &kubeWorld{kube: s, ns: s.Namespace(t, "apps"), node: s.Node(t, "node")}

	var roles strings.Builder
	var arns []string
	var entries []svidtest.WorkloadEntry
	for _, sa := range sas {
		arns = append(arns, kubeRoleOf(kw.ns, sa))
		fmt.Fprintf(&roles, "role %q {\n  condition {\n    tag    = \"x509SAN/URI\"\n    values = [%q]\n  }\n}\n", kubeRoleOf(kw.ns, sa), kubeIDOf(kw.ns, sa))
		entries = append(entries, svidtest.WorkloadEntry{ID: kubeIDOf(kw.ns, sa), Selectors: []string{"k8s:ns:" + kw.ns, "k8s:sa:" + sa}})
	}
	list, _ := json.Marshal(arns)
	kw.world = world{testworld.New(t, testworld.Options{SVIDTTL: 24 * time.Hour, QuotaPerSecond: -1,
		EmulatorHCL: fmt.Sprintf("profile %q {\n  role_arns = %s\n}\n%s", podProfileARN, list, roles.String())})}
	kw.admin = svidtest.NewDelegatedServer(t, svidtest.DelegatedOptions{CA: kw.Agent.CA(), Entries: append(entries, extra...)})

	// The bridge's service account, bound to the ClusterRole of rbac.yaml and nothing else.
	system := s.Namespace(t, "bridge-system")
	s.BindClusterRole(t, installBridgeRole(t, s), system, "spiffe-aws-bridge")
	conf := s.ClientAs(t, system, "spiffe-aws-bridge")
	client, err := kubernetes.NewForConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	// RBAC's caches take a moment to see a new binding; the daemon's informer would back off meanwhile.
	within(t, 15*time.Second, "the bridge's service account may list this node's pods", func() bool {
		_, err := client.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{FieldSelector: "spec.nodeName=" + kw.node})
		return err == nil
	})

	block := fmt.Sprintf(`
delegated_identity {
  admin_address = %q
}
pod_identity {
  listen     = ["127.0.0.1:0"]
  interface  = ""
  node_name  = %q
  kubeconfig = %q
%s
  rule {
    spiffe_id        = "spiffe://example.org/ns/{ns}/sa/{sa}"
    trust_anchor_arn = %q
    profile_arn      = %q
    role_arn         = "arn:aws:iam::%s:role/{ns}-{sa}"
    endpoint         = %q
  }
}
`, kw.admin.Addr(), kw.node, kubetest.Kubeconfig(t, conf), settings, kw.TrustAnchorARN, podProfileARN, testworld.AccountID, kw.Emulator.URL)
	kw.d, kw.logs = kw.startWith(t, clock.Real{}, time.Now, block, func(o *daemon.Options) {
		o.PodAuthenticator = kube.NewAuthenticatorFactory(o.Logger.Named("pod_identity"))
	})
	kw.url = "http://" + kw.d.PodIdentityAddrs()[0] + "/v1/credentials"
	t.Cleanup(func() { kw.checkLogs(t) })
	return kw
}

// installBridgeRole creates the ClusterRole of podidentity/kube/rbac.yaml under a name of this test's.
func installBridgeRole(t *testing.T, s *kubetest.Server) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "podidentity", "kube", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(data, &role); err != nil {
		t.Fatalf("rbac.yaml: %v", err)
	}
	role.Name = s.Namespace(t, "role") // a unique name (the namespace itself is unused)
	if _, err := s.Client.RbacV1().ClusterRoles().Create(context.Background(), &role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Client.RbacV1().ClusterRoles().Delete(context.Background(), role.Name, metav1.DeleteOptions{})
	})
	return role.Name
}

// pod creates pod name of service account sa on node (the bridge's node when ""), with the IP
// 127.0.0.1 (where get's requests come from), and its projected token for the bridge's audience.
func (kw *kubeWorld) pod(t *testing.T, name, sa, node string) (*corev1.Pod, string) {
	t.Helper()
	return kw.podAt(t, name, sa, node, "127.0.0.1")
}

// podAt is pod with these IPs (none: not reported yet).
func (kw *kubeWorld) podAt(t *testing.T, name, sa, node string, ips ...string) (*corev1.Pod, string) {
	t.Helper()
	if node == "" {
		node = kw.node
	}
	p := kw.kube.Pod(t, kw.ns, name, sa, node)
	if len(ips) > 0 {
		p = kw.kube.SetPodIPs(t, p, ips...)
	}
	return p, kw.token(t, p, kubeAudience)
}

// token is a token bound to p for audience, as the kubelet writes into a projected volume (EKS's
// expirationSeconds).
func (kw *kubeWorld) token(t *testing.T, p *corev1.Pod, audience string) string {
	t.Helper()
	tok := kw.kube.PodToken(t, p, audience, 86400)
	kw.mu.Lock()
	kw.tokens = append(kw.tokens, tok)
	kw.mu.Unlock()
	return tok
}

// get asks for credentials with token in Authorization, as a pod's SDK does.
func (kw *kubeWorld) get(t *testing.T, token string) (int, map[string]string) {
	t.Helper()
	return kw.getFrom(t, token, "")
}

// getFrom is get from the source address src (an address of 127.0.0.0/8; "" for the system's choice,
// 127.0.0.1).
func (kw *kubeWorld) getFrom(t *testing.T, token, src string) (int, map[string]string) {
	t.Helper()
	client := http.DefaultClient
	if src != "" {
		dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
		client = &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true}}
	}
	req, _ := http.NewRequest(http.MethodGet, kw.url, nil)
	req.Header.Set("Authorization", token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	doc := map[string]string{}
	_ = json.Unmarshal(body, &doc)
	if doc["Message"] == "" && resp.StatusCode != http.StatusOK {
		doc["Message"] = string(body)
	}
	kw.mu.Lock()
	for _, k := range []string{"SecretAccessKey", "Token"} {
		if doc[k] != "" {
			kw.secrets = append(kw.secrets, doc[k])
		}
	}
	kw.mu.Unlock()
	return resp.StatusCode, doc
}

// served returns the first answer that is neither a 401 for a pod unknown to this node nor a 503 (the
// bridge waits up to 3 s for its informer to list a new pod; a loaded API server can lag longer).
func (kw *kubeWorld) served(t *testing.T, token string) (int, map[string]string) {
	t.Helper()
	var code int
	var doc map[string]string
	within(t, 10*time.Second, "the node's informer lists the pod", func() bool {
		code, doc = kw.get(t, token)
		return !(code == http.StatusUnauthorized && strings.Contains(doc["Message"], "no live pod with this UID")) && code != http.StatusServiceUnavailable
	})
	return code, doc
}

// callerARN asks STS (the emulator) who an unmodified aws-sdk-go-v2 is, configured only by
// AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE holding token.
func (kw *kubeWorld) callerARN(t *testing.T, token string) (string, error) {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", kw.url)
	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tokenFile)
	none := filepath.Join(t.TempDir(), "none")
	ctx := context.Background()
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(testworld.Region),
		awsconfig.WithSharedCredentialsFiles([]string{none}), awsconfig.WithSharedConfigFiles([]string{none}))
	if err != nil {
		t.Fatal(err)
	}
	out, err := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(kw.Emulator.URL) }).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.Arn), nil
}

// assumed is the STS ARN prefix of a session of ns/sa's role.
func assumed(ns, sa string) string {
	return fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s-%s/", testworld.AccountID, ns, sa)
}

// checkLogs fails the test if the daemon logged any token of the test (whole, or its claims or
// signature) or any secret or session token the emulator issued.
func (kw *kubeWorld) checkLogs(t *testing.T) {
	t.Helper()
	logs := kw.logs.String()
	kw.mu.Lock()
	defer kw.mu.Unlock()
	if len(kw.secrets) == 0 {
		t.Errorf("the log check saw no credentials served")
	}
	for _, tok := range kw.tokens {
		if containsTokenPart(logs, tok) {
			t.Errorf("the daemon logged a pod's service-account token")
			break
		}
	}
	for _, secret := range kw.secrets {
		if strings.Contains(logs, secret) {
			t.Errorf("the daemon logged a secret access key or session token")
			break
		}
	}
}

// containsTokenPart reports whether s holds the JWT, its claims or its signature (the header is the same
// for every token of the API server's key, so it proves nothing).
func containsTokenPart(s, token string) bool {
	if strings.Contains(s, token) {
		return true
	}
	parts := strings.Split(token, ".")
	for _, p := range parts[min(1, len(parts)-1):] {
		if len(p) >= 16 && strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// A pod's projected token gets its own role's credentials through an unmodified SDK; a pod of another
// service account gets its own role, never the first's (the emulator's roles each trust one SPIFFE ID,
// so a mix-up would be refused there too). The token is the identity: a pod presenting another pod's
// token gets that other pod's credentials, exactly as with EKS Pod Identity: the token file must stay
// inside its pod, and the threat model says so (a pod presenting another pod's token).
func TestSecurityPodIdentityKubePodGetsItsOwnRole(t *testing.T) {
	kw := newKubeWorld(t, []string{"billing", "reports"})
	_, billing := kw.pod(t, "billing-1", "billing", "")
	_, reports := kw.pod(t, "reports-1", "reports", "")
	if code, doc := kw.served(t, billing); code != http.StatusOK {
		t.Fatalf("billing pod: %d %v", code, doc)
	}
	if code, doc := kw.served(t, reports); code != http.StatusOK {
		t.Fatalf("reports pod: %d %v", code, doc)
	}

	arn, err := kw.callerARN(t, billing)
	if err != nil || !strings.HasPrefix(arn, assumed(kw.ns, "billing")) {
		t.Fatalf("billing pod: %q, %v; want its role %s", arn, err, kubeRoleOf(kw.ns, "billing"))
	}
	arn, err = kw.callerARN(t, reports)
	if err != nil || !strings.HasPrefix(arn, assumed(kw.ns, "reports")) {
		t.Fatalf("reports pod: %q, %v; want its role %s", arn, err, kubeRoleOf(kw.ns, "reports"))
	}
	_, b := kw.get(t, billing)
	_, r := kw.get(t, reports)
	if b["AccessKeyId"] == "" || b["AccessKeyId"] == r["AccessKeyId"] {
		t.Fatalf("billing's key %q, reports' %q: want two different sessions", b["AccessKeyId"], r["AccessKeyId"])
	}
	// The identities are on /ready, one session each, one pod each.
	st := kw.d.States()
	if len(st) != 2 {
		t.Fatalf("%d states, want 2: %+v", len(st), st)
	}
	for _, s := range st {
		if s.Pods != 1 || (s.SpiffeID != kubeIDOf(kw.ns, "billing").String() && s.SpiffeID != kubeIDOf(kw.ns, "reports").String()) {
			t.Fatalf("state %+v", s)
		}
	}
	_, rep := ready(t, kw.d)
	onReady := map[string]bool{}
	for _, p := range rep.Profiles {
		onReady[p.Profile] = p.Ready
	}
	for _, sa := range []string{"billing", "reports"} {
		if name := "pod_identity:" + kubeIDOf(kw.ns, sa).String(); !onReady[name] {
			t.Errorf("/ready: %s absent or not ready: %+v", name, rep.Profiles)
		}
	}

	// The reports pod's SDK given the billing pod's token file: billing's role. The token is the identity.
	arn, err = kw.callerARN(t, billing)
	if err != nil || !strings.HasPrefix(arn, assumed(kw.ns, "billing")) {
		t.Fatalf("with the billing pod's token: %q, %v; want billing's role", arn, err)
	}
}

// Tokens that prove no live pod of this node get no credentials: a token for another audience (401), a
// deleted pod's token (401 within seconds of the deletion, though it was served just before and its
// review cached), a pod bound to another node (403), garbage (401), a token with its claims re-signed by
// another key (401); and a pod whose SPIFFE ID matches no rule gets a 403 naming that ID.
func TestSecurityPodIdentityKubeRefusals(t *testing.T) {
	stray := spiffeid.RequireFromString("spiffe://example.org/batch/stray") // an ID the rule does not match
	kw := newKubeWorld(t, []string{"web"}, svidtest.WorkloadEntry{ID: stray, Selectors: []string{"k8s:sa:stray"}})
	p, tok := kw.pod(t, "web-1", "web", "")
	if code, doc := kw.served(t, tok); code != http.StatusOK {
		t.Fatalf("the pod itself: %d %v", code, doc)
	}
	refused := func(what, token string, want int, say string) {
		t.Helper()
		code, doc := kw.get(t, token)
		if code != want || doc["AccessKeyId"] != "" || !strings.Contains(doc["Message"], say) {
			t.Errorf("%s: %d %v; want %d saying %q", what, code, doc, want, say)
		}
	}

	refused("a token for another audience", kw.token(t, p, "sts.amazonaws.com"), http.StatusUnauthorized, "")
	refused("garbage", "not-a-token", http.StatusUnauthorized, "")
	refused("no token", "", http.StatusUnauthorized, "")
	parts := strings.Split(tok, ".")
	refused("the token's claims with another signature", parts[0]+"."+parts[1]+"."+strings.Repeat("A", len(parts[2])), http.StatusUnauthorized, "")

	other := kw.kube.Node(t, "node")
	_, far := kw.pod(t, "web-far", "web", other)
	refused("a pod bound to another node", far, http.StatusForbidden, other)

	// A pod of a service account whose SPIFFE ID no rule maps: 403, naming the ID.
	_, strayTok := kw.pod(t, "stray-1", "stray", "")
	if code, doc := kw.served(t, strayTok); code != http.StatusForbidden || !strings.Contains(doc["Message"], stray.String()) {
		t.Errorf("a pod whose SPIFFE ID no rule maps: %d %v; want 403 naming %s", code, doc, stray)
	}

	// The deleted pod: served a moment ago, refused within seconds.
	kw.kube.DeletePod(t, p)
	took := within(t, 5*time.Second, "a deleted pod's token refused", func() bool {
		code, _ := kw.get(t, tok)
		return code == http.StatusUnauthorized
	})
	t.Logf("a deleted pod's token was refused %s after the deletion", took.Round(time.Millisecond))
	// Its Delegated Identity stream and its session (it was the only pod of web) end; the stray pod's
	// stream stays (it has no session: no rule).
	took = within(t, 10*time.Second, "the deleted pod's stream and session stopped", func() bool {
		return kw.admin.Streams() == 1 && len(kw.d.States()) == 0
	})
	t.Logf("its stream and session stopped %s later", took.Round(time.Millisecond))
	if creates(kw.world) != 1 {
		t.Fatalf("%d CreateSession calls, want 1 (the one pod served)", creates(kw.world))
	}
}

// Fifty pods of one service account on the node, their first requests all at once: one session, one
// CreateSession; one more per SVID rotation, however many pods' streams carry it.
func TestPodIdentityKubeFiftyPodsOneCreateSession(t *testing.T) {
	kw := newKubeWorld(t, []string{"web"}, svidtest.WorkloadEntry{ID: spiffeid.RequireFromString("spiffe://example.org/batch/sentinel"), Selectors: []string{"k8s:sa:sentinel"}})
	tokens := make([]string, 50)
	for i := range tokens {
		_, tokens[i] = kw.pod(t, fmt.Sprintf("web-%d", i), "web", "")
	}
	// A last pod whose ID no rule maps: once the informer lists it (403, not 401), it lists the fifty
	// created before it, and no session was made.
	_, sentinel := kw.pod(t, "sentinel", "sentinel", "")
	if code, doc := kw.served(t, sentinel); code != http.StatusForbidden {
		t.Fatalf("sentinel: %d %v", code, doc)
	}
	if n := creates(kw.world); n != 0 {
		t.Fatalf("%d CreateSession calls before any pod of web asked", n)
	}

	start := time.Now()
	var wg sync.WaitGroup
	status, keys := make([]int, len(tokens)), make([]string, len(tokens))
	for i, tok := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, doc := kw.get(t, tok)
			status[i], keys[i] = code, doc["AccessKeyId"]
		}()
	}
	wg.Wait()
	t.Logf("fifty pods' first requests answered in %s", time.Since(start).Round(time.Millisecond))
	for i := range tokens {
		if status[i] != http.StatusOK || keys[i] != keys[0] {
			t.Fatalf("pod %d: %d %q; want 200 with the shared session's key %q", i, status[i], keys[i], keys[0])
		}
	}
	if n := creates(kw.world); n != 1 {
		t.Fatalf("%d CreateSession calls for fifty pods' first requests, want 1", n)
	}
	if st := kw.d.States(); len(st) != 1 || st[0].Pods != 50 {
		t.Fatalf("states %+v; want one session of fifty pods", st)
	}
	if arn, err := kw.callerARN(t, tokens[17]); err != nil || !strings.HasPrefix(arn, assumed(kw.ns, "web")) {
		t.Fatalf("pod 17: %q, %v", arn, err)
	}

	// A rotation reaches all fifty pods' streams: one refresh, one CreateSession.
	if err := kw.admin.Rotate(); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "the session refreshed after the rotation", func() bool { return creates(kw.world) >= 2 })
	time.Sleep(500 * time.Millisecond) // would the other streams' copies of the rotation make more calls?
	if n := creates(kw.world); n != 2 {
		t.Fatalf("%d CreateSession calls after one rotation, want 2", n)
	}
	code, doc := kw.get(t, tokens[42])
	if code != http.StatusOK || doc["AccessKeyId"] == keys[0] {
		t.Fatalf("after the rotation: %d, key %q (before %q); want the new session's", code, doc["AccessKeyId"], keys[0])
	}
}

// A pod's token is honoured only from the pod's own address, the IPs its status lists (the whole daemon,
// the real informer): pod A's token from A's IP is served, from another address (another pod, a process
// of the node that read it) 403 naming the source and the pod; a host-network pod's token from the node's
// own addresses (loopback here) is served.
func TestSecurityPodIdentityKubeTokenWorksOnlyFromItsPodsAddress(t *testing.T) {
	kw := newKubeWorld(t, []string{"web", "agent"})
	_, tok := kw.podAt(t, "web-1", "web", "", "127.0.0.2", "fd00:10::2")
	if code, doc := kw.getFrom(t, tok, "127.0.0.3"); code != http.StatusForbidden || doc["AccessKeyId"] != "" ||
		!strings.Contains(doc["Message"], "127.0.0.3") || !strings.Contains(doc["Message"], kw.ns+"/web-1") {
		t.Fatalf("pod A's token from another address: %d %v; want 403 naming 127.0.0.3 and the pod", code, doc)
	}
	if code, doc := kw.getFrom(t, tok, "127.0.0.2"); code != http.StatusOK {
		t.Fatalf("pod A's token from A's IP: %d %v", code, doc)
	}
	if code, _ := kw.getFrom(t, tok, "127.0.0.1"); code != http.StatusForbidden {
		t.Fatalf("pod A's token from the node's own address: %d; want 403", code)
	}
	// A host-network pod: its IPs are the node's (its InternalIP); its requests come from a node address.
	host := kw.kube.HostNetworkPod(t, kw.ns, "agent-1", "agent", kw.node)
	host = kw.kube.SetPodIPs(t, host, "192.0.2.10")
	hostTok := kw.token(t, host, kubeAudience)
	if code, doc := kw.served(t, hostTok); code != http.StatusOK {
		t.Fatalf("a host-network pod from the node: %d %v", code, doc)
	}
	if n := creates(kw.world); n != 2 {
		t.Fatalf("%d CreateSession calls, want 2 (one per pod served)", n)
	}
}

// With verify_source_address = false (a CNI that SNATs pod traffic to the node) the token alone decides.
// (A test of its own: klog's logger is process-wide, so two daemons must not start side by side.)
func TestPodIdentityKubeSourceCheckOff(t *testing.T) {
	off := newKubeWorldWith(t, "  verify_source_address = false", []string{"web"})
	_, offTok := off.podAt(t, "web-1", "web", "", "10.9.8.7") // a pod address the node sees translated
	if code, doc := off.getFrom(t, offTok, "127.0.0.3"); code != http.StatusOK {
		t.Fatalf("verify_source_address = false: %d %v", code, doc)
	}
}

// A pod whose first request reaches the bridge before the kubelet reported its IP: the request waits
// for the IP and is served once it is known.
func TestPodIdentityKubeWaitsForAPodsIP(t *testing.T) {
	kw := newKubeWorld(t, []string{"web"})
	p, tok := kw.podAt(t, "web-1", "web", "")
	go func() {
		time.Sleep(300 * time.Millisecond)
		kw.kube.SetPodIPs(t, p, "127.0.0.2")
	}()
	if code, doc := kw.getFrom(t, tok, "127.0.0.2"); code != http.StatusOK {
		t.Fatalf("IP reported during the request: %d %v", code, doc)
	}
}
