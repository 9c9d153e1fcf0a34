package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity/kube/kubetest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/svidtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/testworld"
)

// The pod identity bench's cluster: piPods pods on one node, piIdentities service accounts of piPods /
// piIdentities replicas each; pod i belongs to service account i mod piIdentities and has the IP
// 127.0.1.(i+1), so that its requests come from its own address (verify_source_address, on by default).
const (
	piPods       = 100
	piIdentities = 10
	piNamespace  = "apps"
	piAudience   = "spiffe-aws-bridge" // the pod_identity block's default audience
	piProfileARN = "arn:aws:rolesanywhere:" + testworld.Region + ":" + testworld.AccountID + ":profile/0a0b0c0d-0e0f-4a1b-8c2d-3e4f5a6b7c8d"
)

// podIdentity: the real `spiffe-aws-bridge-k8s run` process serving 100 pods of 10 identities on one
// node, against a real kube-apiserver and etcd (podidentity/kube/kubetest: TokenReview and the node's
// pod informer, as the bridge's service account bound to the ClusterRole of podidentity/kube/rbac.yaml),
// the fake agent's Delegated Identity API (an entry per service account, by its k8s:ns and k8s:sa
// selectors) and the emulator with a role per service account that trusts only its SPIFFE ID. Each pod
// is a client of its own, dialling from its pod IP with keep-alive. Measured: the bridge's resident memory
// before any request and after serving, each pod's first request (TokenReview, the pod's Delegated
// Identity stream and SVID, and for the first pod of an identity its CreateSession), then cached requests
// spread over the pods, and the CreateSession count. Without kube-apiserver and etcd (KUBEBUILDER_ASSETS,
// scripts/kube-test-assets.sh) the measurement is skipped, unless SAB_REQUIRE_KUBE=1 (CI): nothing is
// downloaded. The bridge's log must hold no pod's token and no secret it served.
func (b *bench) podIdentity() error {
	if _, err := kubetest.Assets(); err != nil {
		if os.Getenv(kubetest.EnvRequire) == "1" { // CI: the binaries must be there
			return fmt.Errorf("%s=1 but: %w", kubetest.EnvRequire, err)
		}
		fmt.Fprintf(os.Stderr, "bench: podidentity skipped: %v\n", err)
		b.add("pod identity, 100 pods of 10 identities (spiffe-aws-bridge-k8s, real kube-apiserver)", "skipped: no kube-apiserver and etcd (scripts/kube-test-assets.sh)", "", nil)
		return nil
	}
	cached := 5000
	if b.quick {
		cached = 2000
	}
	bin, err := b.buildBinary()
	if err != nil {
		return err
	}
	k8sBin := filepath.Join(filepath.Dir(bin), "spiffe-aws-bridge-k8s")

	kube, err := kubetest.StartServer()
	if err != nil {
		return fmt.Errorf("kube-apiserver: %w", err)
	}
	defer kube.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cl := kube.Client

	// The bridge's service account, bound to the ClusterRole of rbac.yaml and nothing else.
	bridgeConf, err := piBridgeAccount(ctx, kube)
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(b.dir, "pod-identity.kubeconfig")
	if err := kubetest.WriteKubeconfig(bridgeConf, kubeconfig); err != nil {
		return err
	}

	// The node, the namespace, the service accounts, the pods with their IPs, and their tokens.
	node := "node-1"
	if _, err := cl.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create node: %w", err)
	}
	if _, err := cl.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: piNamespace}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace: %w", err)
	}
	sa := func(i int) string { return fmt.Sprintf("svc%d", i%piIdentities) }
	idOf := func(s string) spiffeid.ID {
		return spiffeid.RequireFromString(fmt.Sprintf("spiffe://example.org/ns/%s/sa/%s", piNamespace, s))
	}
	var roles strings.Builder
	var arns []string
	var entries []svidtest.WorkloadEntry
	for i := 0; i < piIdentities; i++ {
		name := sa(i)
		if _, err := cl.CoreV1().ServiceAccounts(piNamespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create service account %s: %w", name, err)
		}
		arn := fmt.Sprintf("arn:aws:iam::%s:role/%s-%s", testworld.AccountID, piNamespace, name)
		arns = append(arns, arn)
		fmt.Fprintf(&roles, "role %q {\n  condition {\n    tag    = \"x509SAN/URI\"\n    values = [%q]\n  }\n}\n", arn, idOf(name))
		entries = append(entries, svidtest.WorkloadEntry{ID: idOf(name), Selectors: []string{"k8s:ns:" + piNamespace, "k8s:sa:" + name}})
	}
	// A sentinel pod whose service account no rule maps: once the bridge answers it 403 NoRule (not 401,
	// an unknown pod), its informer has listed every pod created before it.
	const sentinelSA = "sentinel"
	if _, err := cl.CoreV1().ServiceAccounts(piNamespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sentinelSA}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create service account %s: %w", sentinelSA, err)
	}
	entries = append(entries, svidtest.WorkloadEntry{ID: spiffeid.RequireFromString("spiffe://example.org/batch/sentinel"), Selectors: []string{"k8s:sa:" + sentinelSA}})

	type pod struct {
		ip, token string
		client    *http.Client
	}
	pods := make([]pod, piPods+1) // the last is the sentinel
	for i := range pods {
		name, account := fmt.Sprintf("%s-%d", sa(i), i/piIdentities), sa(i)
		if i == piPods {
			name, account = sentinelSA, sentinelSA
		}
		ip := fmt.Sprintf("127.0.1.%d", i+1)
		tok, err := piPod(ctx, cl, name, account, node, ip)
		if err != nil {
			return err
		}
		dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
		pods[i] = pod{ip: ip, token: tok, client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			DialContext: dialer.DialContext, MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Minute,
		}}}
		defer pods[i].client.CloseIdleConnections()
	}

	w, err := testworld.Start(testworld.Options{SVIDTTL: 24 * time.Hour, QuotaPerSecond: -1,
		EmulatorHCL: fmt.Sprintf("profile %q {\n  role_arns = %s\n}\n%s", piProfileARN, jsonList(arns), roles.String())})
	if err != nil {
		return err
	}
	defer w.Close()
	admin, err := svidtest.StartDelegated(svidtest.DelegatedOptions{CA: w.Agent.CA(), Entries: entries})
	if err != nil {
		return err
	}
	defer admin.Close()

	port, err := freePort()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cfg := w.Config(fmt.Sprintf(`log_level = "warn"
delegated_identity {
  admin_address = %q
}
pod_identity {
  listen     = [%q]
  interface  = ""
  node_name  = %q
  kubeconfig = %q
  rule {
    spiffe_id        = "spiffe://example.org/ns/{ns}/sa/{sa}"
    trust_anchor_arn = %q
    profile_arn      = %q
    role_arn         = "arn:aws:iam::%s:role/{ns}-{sa}"
    endpoint         = %q
  }
}
`, admin.Addr(), addr, node, kubeconfig, w.TrustAnchorARN, piProfileARN, testworld.AccountID, w.Emulator.URL))
	cfgPath := filepath.Join(b.dir, "pod-identity.hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	logPath := filepath.Join(b.dir, "pod-identity.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, k8sBin, "run", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	withLog := func(err error) error {
		data, _ := os.ReadFile(logPath)
		if len(data) > 4000 {
			data = data[len(data)-4000:]
		}
		return fmt.Errorf("%w\nspiffe-aws-bridge-k8s log (end):\n%s", err, data)
	}
	url := "http://" + addr + "/v1/credentials"
	get := func(p pod) (int, map[string]string, error) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", p.token)
		resp, err := p.client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, nil, err
		}
		doc := map[string]string{}
		_ = json.Unmarshal(body, &doc)
		return resp.StatusCode, doc, nil
	}

	// Started: the port answers. Then the idle figure, before any pod asks.
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return withLog(fmt.Errorf("spiffe-aws-bridge-k8s did not listen on %s within 60 s", addr))
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // settle: the informer's list, the start-up's garbage
	idleRSS, err := procStatusKB(cmd.Process.Pid, "VmRSS")
	if err != nil {
		return err
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		code, doc, err := get(pods[piPods])
		if err == nil && code == http.StatusForbidden && doc["Code"] == "NoRule" {
			break
		}
		if time.Now().After(deadline) {
			return withLog(fmt.Errorf("the sentinel pod: %d %v %v; want 403 NoRule once the informer lists the pods", code, doc["Code"]+": "+doc["Message"], err))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := w.Emulator.Stats().CreateSession; n != 0 {
		return fmt.Errorf("%d CreateSession calls before any pod asked", n)
	}

	// Each pod's first request, one after the other (pods of the ten identities interleaved: the first ten
	// each make their identity's CreateSession).
	keys := make(map[string]string)  // service account → the access key its pods got
	secrets := make(map[string]bool) // every secret access key and session token served
	check := func(i int, code int, doc map[string]string, err error) error {
		if err != nil {
			return withLog(fmt.Errorf("pod %d (%s): %w", i, pods[i].ip, err))
		}
		if code != http.StatusOK || doc["AccessKeyId"] == "" {
			return withLog(fmt.Errorf("pod %d (%s): %d %s", i, pods[i].ip, code, doc["Message"]))
		}
		if k, ok := keys[sa(i)]; ok && k != doc["AccessKeyId"] {
			return fmt.Errorf("pod %d of %s got key %s, another pod of it %s: want one session per identity", i, sa(i), doc["AccessKeyId"], k)
		}
		keys[sa(i)] = doc["AccessKeyId"]
		secrets[doc["SecretAccessKey"]], secrets[doc["Token"]] = true, true
		return nil
	}
	first := make([]time.Duration, piPods)
	for i := range piPods {
		t0 := time.Now()
		code, doc, err := get(pods[i])
		first[i] = time.Since(t0)
		if err := check(i, code, doc, err); err != nil {
			return err
		}
	}
	lat := make([]time.Duration, cached)
	for n := range cached {
		i := n % piPods
		t0 := time.Now()
		code, doc, err := get(pods[i])
		lat[n] = time.Since(t0)
		if err := check(i, code, doc, err); err != nil {
			return err
		}
	}
	creates := w.Emulator.Stats().CreateSession
	time.Sleep(time.Second) // settle
	rss, err := procStatusKB(cmd.Process.Pid, "VmRSS")
	if err != nil {
		return err
	}

	logs, err := os.ReadFile(logPath)
	if err != nil {
		return err
	}
	for _, p := range pods {
		if strings.Contains(string(logs), p.token) || strings.Contains(string(logs), strings.Split(p.token, ".")[1]) {
			return fmt.Errorf("the bridge logged a pod's service-account token")
		}
	}
	for secret := range secrets {
		if secret == "" || strings.Contains(string(logs), secret) {
			return fmt.Errorf("the bridge logged a secret access key or session token (or served an empty one)")
		}
	}

	what := fmt.Sprintf("pod identity (spiffe-aws-bridge-k8s, real kube-apiserver), %d pods / %d identities", piPods, piIdentities)
	b.add(what+": CreateSession calls", strconv.Itoa(creates), "one per identity", pass(creates == piIdentities))
	b.add(what+": a pod's first request, p50", ms(percentile(first, 0.5)), "(reported)", nil)
	b.add(fmt.Sprintf("%s: a pod's first request, p99 (max %s)", what, ms(percentile(first, 1))), ms(percentile(first, 0.99)), "≤ 1 s", pass(percentile(first, 0.99) <= time.Second))
	b.add(fmt.Sprintf("%s: cached request, p50 of %d", what, cached), ms(percentile(lat, 0.5)), "(reported)", nil)
	b.add(fmt.Sprintf("%s: cached request, p99 of %d (max %s)", what, cached, ms(percentile(lat, 1))), ms(percentile(lat, 0.99)), "≤ 5 ms", pass(percentile(lat, 0.99) <= 5*time.Millisecond))
	b.add(what+": bridge's RSS idle / after serving", fmt.Sprintf("%.1f / %.1f MB", float64(idleRSS)/1024, float64(rss)/1024), "(reported)", nil)
	b.add(what+": kube-apiserver + etcd start-up (not measured above)", kube.StartupTime.Round(100*time.Millisecond).String(), "", nil)
	return nil
}

// piBridgeAccount creates the bridge's service account, the ClusterRole of podidentity/kube/rbac.yaml
// bound to it, and returns a client configuration acting as it once RBAC lets it list the pods.
func piBridgeAccount(ctx context.Context, kube *kubetest.Server) (*rest.Config, error) {
	cl := kube.Client
	const ns, name = "bridge-system", "spiffe-aws-bridge"
	data, err := os.ReadFile(filepath.Join("podidentity", "kube", "rbac.yaml"))
	if err != nil {
		return nil, fmt.Errorf("%w (run bench from the repository root)", err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(data, &role); err != nil {
		return nil, fmt.Errorf("podidentity/kube/rbac.yaml: %w", err)
	}
	if _, err := cl.RbacV1().ClusterRoles().Create(ctx, &role, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create cluster role: %w", err)
	}
	if _, err := cl.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create namespace %s: %w", ns, err)
	}
	if _, err := cl.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create service account %s/%s: %w", ns, name, err)
	}
	if _, err := cl.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: name}},
	}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("bind cluster role: %w", err)
	}
	exp := int64(3600)
	tr, err := cl.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{Audiences: []string{kubetest.Issuer}, ExpirationSeconds: &exp},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("TokenRequest for %s/%s: %w", ns, name, err)
	}
	conf := rest.AnonymousClientConfig(kube.Config)
	conf.BearerToken = tr.Status.Token
	as, err := kubernetes.NewForConfig(conf)
	if err != nil {
		return nil, err
	}
	// RBAC's caches take a moment to see a new binding.
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := as.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=none", Limit: 1})
		if err == nil {
			return conf, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the bridge's service account may not list pods 15 s after its binding: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// piPod creates the pod name of service account sa bound to node, reports ip as its status.podIPs (as
// the kubelet would), and returns a token bound to it for the bridge's audience (what the kubelet writes
// into the projected volume; EKS's 24 h).
func piPod(ctx context.Context, cl kubernetes.Interface, name, sa, node, ip string) (string, error) {
	no := false
	p, err := cl.CoreV1().Pods(piNamespace).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			ServiceAccountName: sa, NodeName: node, AutomountServiceAccountToken: &no,
			Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("create pod %s: %w", name, err)
	}
	p.Status.PodIP, p.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	if p, err = cl.CoreV1().Pods(piNamespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		return "", fmt.Errorf("set the IP of pod %s: %w", name, err)
	}
	exp := int64(86400)
	tr, err := cl.CoreV1().ServiceAccounts(piNamespace).CreateToken(ctx, sa, &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{
			Audiences: []string{piAudience}, ExpirationSeconds: &exp,
			BoundObjectRef: &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("TokenRequest for pod %s: %w", name, err)
	}
	return tr.Status.Token, nil
}

func jsonList(s []string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("not a TCP address")
	}
	return addr.Port, nil
}
