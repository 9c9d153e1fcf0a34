// Package kubetest runs a real Kubernetes control plane for tests: etcd and kube-apiserver, with
// service-account token signing (TokenRequest, TokenReview) and RBAC authorisation, no controllers and no
// kubelet. Tests create nodes, pods bound to a node (spec.nodeName set directly, as the scheduler would),
// pod-bound projected tokens (TokenRequest with a bound object reference, as the kubelet requests them)
// and clients acting as a service account.
//
// The binaries come from $KUBEBUILDER_ASSETS (a directory holding kube-apiserver and etcd; CI fills it
// with scripts/kube-test-assets.sh), else from the script's default cache directory. Without them, tests
// are skipped, unless SAB_REQUIRE_KUBE=1 (as CI sets): then they fail.
//
// Start-up takes seconds, so a test package shares one control plane: its TestMain calls Main, and each
// test calls Shared and works in namespaces and nodes of its own (Namespace, NodeName give unique names).
package kubetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Version is the Kubernetes version scripts/kube-test-assets.sh builds.
const Version = "v1.34.4"

// Environment variables.
const (
	// EnvAssets names the directory holding kube-apiserver and etcd (envtest's convention).
	EnvAssets = "KUBEBUILDER_ASSETS"
	// EnvRequire, set to 1, makes a missing binary a test failure instead of a skip.
	EnvRequire = "SAB_REQUIRE_KUBE"
	// EnvCache is the cache directory of scripts/kube-test-assets.sh (default /var/cache/spiffe-aws-bridge).
	EnvCache = "SAB_CACHE"
)

// Issuer is the service-account token issuer of the API server (the default API audience too).
const Issuer = "https://kubernetes.default.svc.cluster.local"

// Server is a running etcd + kube-apiserver.
type Server struct {
	// Config is an administrator's client configuration (group system:masters).
	Config *rest.Config
	// Client is a client with Config.
	Client kubernetes.Interface
	// StartupTime is how long etcd and kube-apiserver took to become ready.
	StartupTime time.Duration

	dir   string
	procs []*exec.Cmd
	exits []chan error
	names atomic.Int64
}

// Assets returns the directory holding kube-apiserver and etcd, or why there is none.
func Assets() (string, error) {
	var tried []string
	dirs := []string{}
	if d := os.Getenv(EnvAssets); d != "" {
		dirs = append(dirs, d)
	} else {
		cache := os.Getenv(EnvCache)
		if cache == "" {
			cache = "/var/cache/spiffe-aws-bridge"
		}
		dirs = append(dirs, filepath.Join(cache, "kube-"+Version, "bin"))
	}
	for _, d := range dirs {
		ok := true
		for _, b := range []string{"kube-apiserver", "etcd"} {
			if fi, err := os.Stat(filepath.Join(d, b)); err != nil || fi.Mode()&0o111 == 0 {
				ok = false
			}
		}
		if ok {
			return d, nil
		}
		tried = append(tried, d)
	}
	return "", fmt.Errorf("no kube-apiserver and etcd in %s (run scripts/kube-test-assets.sh and set %s to the directory it prints)", strings.Join(tried, ", "), EnvAssets)
}

// skipOrFail skips the test when binaries are missing, or fails it under SAB_REQUIRE_KUBE=1.
func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s=1 but: %v", EnvRequire, err)
	}
	t.Skipf("skipped (no Kubernetes control plane): %v", err)
}

var shared struct {
	mu  sync.Mutex
	srv *Server
	err error
}

// Shared returns the package's control plane, starting it on first use. The package's TestMain must call
// Main, which stops it after the tests.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil && shared.err == nil {
		dir, err := Assets()
		if err != nil {
			skipOrFail(t, err)
		}
		shared.srv, shared.err = start(dir)
	}
	if shared.err != nil {
		t.Fatalf("kube-apiserver: %v", shared.err)
	}
	return shared.srv
}

// Main runs a package's tests and then stops the shared control plane; call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	shared.mu.Lock()
	if shared.srv != nil {
		shared.srv.Stop()
	}
	shared.mu.Unlock()
	os.Exit(code)
}

// Start runs a control plane of the test's own, stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	dir, err := Assets()
	if err != nil {
		skipOrFail(t, err)
	}
	s, err := start(dir)
	if err != nil {
		t.Fatalf("kube-apiserver: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartServer runs a control plane outside a test (cmd/bench): it returns an error where Start skips or
// fails the test, including when the binaries are missing (see Assets). The caller must call Stop.
func StartServer() (*Server, error) {
	dir, err := Assets()
	if err != nil {
		return nil, err
	}
	return start(dir)
}

func start(bin string) (s *Server, err error) {
	t0 := time.Now()
	dir, err := os.MkdirTemp("", "kubetest-")
	if err != nil {
		return nil, err
	}
	s = &Server{dir: dir}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	pki, err := writePKI(dir)
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	if err := s.run(filepath.Join(bin, "etcd"), "etcd",
		"--name=kubetest", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubetest="+peerURL, "--unsafe-no-fsync", "--log-level=warn",
	); err != nil {
		return nil, err
	}
	if err := waitHTTP(etcdURL+"/health", nil, 60*time.Second, s.exits[0]); err != nil {
		return nil, fmt.Errorf("etcd did not become healthy: %w\n%s", err, s.logTail("etcd"))
	}
	apiPort := ports[2]
	if err := s.run(filepath.Join(bin, "kube-apiserver"), "kube-apiserver",
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(apiPort),
		"--tls-cert-file="+pki.serverCert, "--tls-private-key-file="+pki.serverKey,
		"--client-ca-file="+pki.ca,
		"--service-account-issuer="+Issuer,
		"--service-account-key-file="+pki.saPub,
		"--service-account-signing-key-file="+pki.saKey,
		"--service-account-extend-token-expiration=false",
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--cert-dir="+filepath.Join(dir, "apiserver-certs"),
		"--v=0",
	); err != nil {
		return nil, err
	}
	host := "https://127.0.0.1:" + strconv.Itoa(apiPort)
	s.Config = &rest.Config{
		Host: host,
		TLSClientConfig: rest.TLSClientConfig{
			CAData: pki.caPEM, CertData: pki.adminCertPEM, KeyData: pki.adminKeyPEM,
		},
		QPS: 1000, Burst: 1000,
	}
	tlsConf, err := rest.TLSConfigFor(s.Config)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(host+"/readyz", tlsConf, 120*time.Second, s.exits[1]); err != nil {
		return nil, fmt.Errorf("kube-apiserver did not become ready: %w\n%s", err, s.logTail("kube-apiserver"))
	}
	if s.Client, err = kubernetes.NewForConfig(s.Config); err != nil {
		return nil, err
	}
	s.StartupTime = time.Since(t0)
	return s, nil
}

// run starts a binary with its output in the server's directory; it is killed if the test process dies.
func (s *Server) run(path, name string, args ...string) error {
	logf, err := os.Create(filepath.Join(s.dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	exit := make(chan error, 1)
	go func() {
		exit <- cmd.Wait()
		logf.Close()
		close(exit)
	}()
	s.procs = append(s.procs, cmd)
	s.exits = append(s.exits, exit)
	return nil
}

// Stop ends kube-apiserver and etcd and removes their files.
func (s *Server) Stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		_ = p.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exits[i]:
		case <-time.After(15 * time.Second):
			_ = p.Process.Kill()
			<-s.exits[i]
		}
	}
	s.procs, s.exits = nil, nil
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

func (s *Server) logTail(name string) string {
	b, _ := os.ReadFile(filepath.Join(s.dir, name+".log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return name + " log (end):\n" + string(b)
}

func waitHTTP(url string, tlsConf *tls.Config, timeout time.Duration, exited <-chan error) error {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf}}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("exited: %v", err)
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			body := make([]byte, 512)
			n, _ := resp.Body.Read(body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("%s: %s %s", url, resp.Status, bytes.TrimSpace(body[:n]))
		} else {
			last = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("after %s: %w", timeout, last)
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

type pkiFiles struct {
	ca, serverCert, serverKey, saKey, saPub string
	caPEM, adminCertPEM, adminKeyPEM        []byte
}

// writePKI makes a CA, the API server's serving certificate, an administrator's client certificate and
// the service-account signing key.
func writePKI(dir string) (*pkiFiles, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubetest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, tmpl *x509.Certificate) (certPEM, keyPEM []byte, err error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return nil, nil, err
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
	}
	srvCert, srvKey, err := issue(2, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default.svc"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return nil, err
	}
	admCert, admKey, err := issue(3, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kubetest-admin", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	saDER, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return nil, err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	p := &pkiFiles{
		ca: filepath.Join(dir, "ca.crt"), serverCert: filepath.Join(dir, "apiserver.crt"),
		serverKey: filepath.Join(dir, "apiserver.key"), saKey: filepath.Join(dir, "sa.key"),
		saPub:        filepath.Join(dir, "sa.pub"),
		caPEM:        pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		adminCertPEM: admCert, adminKeyPEM: admKey,
	}
	for path, data := range map[string][]byte{
		p.ca: p.caPEM, p.serverCert: srvCert, p.serverKey: srvKey,
		p.saKey: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: saDER}),
		p.saPub: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER}),
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// unique returns a name no other call on this server returned: prefix-N.
func (s *Server) unique(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, s.names.Add(1))
}

func ctxOf(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Namespace creates a namespace with a unique name starting with prefix, and in it the service account
// "default" (no controller manager creates it here); it is deleted when the test ends.
func (s *Server) Namespace(t testing.TB, prefix string) string {
	t.Helper()
	ctx := ctxOf(t)
	name := s.unique(prefix)
	if _, err := s.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = s.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	s.ServiceAccount(t, name, "default")
	return name
}

// ServiceAccount creates the service account ns/name unless it exists.
func (s *Server) ServiceAccount(t testing.TB, ns, name string) *corev1.ServiceAccount {
	t.Helper()
	sa, err := s.Client.CoreV1().ServiceAccounts(ns).Create(ctxOf(t), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		sa, err = s.Client.CoreV1().ServiceAccounts(ns).Get(ctxOf(t), name, metav1.GetOptions{})
	}
	if err != nil {
		t.Fatalf("service account %s/%s: %v", ns, name, err)
	}
	return sa
}

// Node creates a node with a unique name starting with prefix (no kubelet runs it) and returns the name;
// it is deleted when the test ends.
func (s *Server) Node(t testing.TB, prefix string) string {
	t.Helper()
	name := s.unique(prefix)
	if _, err := s.Client.CoreV1().Nodes().Create(ctxOf(t), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create node %s: %v", name, err)
	}
	t.Cleanup(func() { _ = s.Client.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	return name
}

// Pod creates the pod ns/name of service account sa (created when missing) bound to node, as the
// scheduler leaves it (spec.nodeName set; no kubelet runs it, so it stays Pending).
func (s *Server) Pod(t testing.TB, ns, name, sa, node string) *corev1.Pod {
	t.Helper()
	s.ServiceAccount(t, ns, sa)
	no := false
	pod, err := s.Client.CoreV1().Pods(ns).Create(ctxOf(t), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			ServiceAccountName:           sa,
			NodeName:                     node,
			AutomountServiceAccountToken: &no,
			Containers:                   []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, name, err)
	}
	return pod
}

// HostNetworkPod is Pod with spec.hostNetwork: the pod uses its node's network namespace.
func (s *Server) HostNetworkPod(t testing.TB, ns, name, sa, node string) *corev1.Pod {
	t.Helper()
	s.ServiceAccount(t, ns, sa)
	no := false
	pod, err := s.Client.CoreV1().Pods(ns).Create(ctxOf(t), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			ServiceAccountName:           sa,
			NodeName:                     node,
			HostNetwork:                  true,
			AutomountServiceAccountToken: &no,
			Containers:                   []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, name, err)
	}
	return pod
}

// SetPodIPs writes the pod's status.podIPs (and podIP), as the kubelet does once the pod's sandbox has
// its network; for a host-network pod the same addresses are its hostIPs, as they are the node's.
// It returns the updated pod.
func (s *Server) SetPodIPs(t testing.TB, pod *corev1.Pod, ips ...string) *corev1.Pod {
	t.Helper()
	cur, err := s.Client.CoreV1().Pods(pod.Namespace).Get(ctxOf(t), pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	cur.Status.PodIPs, cur.Status.PodIP = nil, ""
	for _, ip := range ips {
		cur.Status.PodIPs = append(cur.Status.PodIPs, corev1.PodIP{IP: ip})
	}
	if len(ips) > 0 {
		cur.Status.PodIP = ips[0]
	}
	if cur.Spec.HostNetwork {
		cur.Status.HostIPs = nil
		for _, ip := range ips {
			cur.Status.HostIPs = append(cur.Status.HostIPs, corev1.HostIP{IP: ip})
		}
		cur.Status.HostIP = cur.Status.PodIP
	}
	out, err := s.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctxOf(t), cur, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("set the IPs of pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	return out
}

// DeletePod deletes a pod at once (grace period 0: no kubelet would confirm a graceful deletion).
func (s *Server) DeletePod(t testing.TB, pod *corev1.Pod) {
	t.Helper()
	zero := int64(0)
	err := s.Client.CoreV1().Pods(pod.Namespace).Delete(ctxOf(t), pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil {
		t.Fatalf("delete pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
}

// PodToken requests a token of the pod's service account bound to the pod, for audience, valid for
// expirationSeconds (the API's minimum is 600): what the kubelet writes into a projected
// serviceAccountToken volume.
func (s *Server) PodToken(t testing.TB, pod *corev1.Pod, audience string, expirationSeconds int64) string {
	t.Helper()
	tr, err := s.Client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctxOf(t), pod.Spec.ServiceAccountName, &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{
			Audiences:         []string{audience},
			ExpirationSeconds: &expirationSeconds,
			BoundObjectRef:    &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	return tr.Status.Token
}

// ServiceAccountToken requests a token of ns/sa bound to no object, for audience.
func (s *Server) ServiceAccountToken(t testing.TB, ns, sa, audience string) string {
	t.Helper()
	exp := int64(3600)
	tr, err := s.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctxOf(t), sa, &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{Audiences: []string{audience}, ExpirationSeconds: &exp},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for %s/%s: %v", ns, sa, err)
	}
	return tr.Status.Token
}

// ClientAs returns a client configuration that authenticates as the service account ns/sa (with a real
// token of it, so authorisation is exactly that service account's).
func (s *Server) ClientAs(t testing.TB, ns, sa string) *rest.Config {
	t.Helper()
	s.ServiceAccount(t, ns, sa)
	c := rest.AnonymousClientConfig(s.Config)
	c.BearerToken = s.ServiceAccountToken(t, ns, sa, Issuer)
	return c
}

// BindClusterRole binds the cluster role to the service account ns/sa (a ClusterRoleBinding deleted when
// the test ends).
func (s *Server) BindClusterRole(t testing.TB, role, ns, sa string) {
	t.Helper()
	name := s.unique("bind-" + role)
	_, err := s.Client.RbacV1().ClusterRoleBindings().Create(ctxOf(t), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: sa}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("bind cluster role %s to %s/%s: %v", role, ns, sa, err)
	}
	t.Cleanup(func() {
		_ = s.Client.RbacV1().ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// Kubeconfig writes a kubeconfig file of c (Config, or one of ClientAs) into the test's temporary
// directory and returns its path, for code that takes a kubeconfig path.
func Kubeconfig(t testing.TB, c *rest.Config) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := WriteKubeconfig(c, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// WriteKubeconfig writes a kubeconfig file of c (Config, or a service account's) to path, for code that
// takes a kubeconfig path, outside a test (cmd/bench); tests use Kubeconfig.
func WriteKubeconfig(c *rest.Config, path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: c.CAData}
	kc.AuthInfos["user"] = &clientcmdapi.AuthInfo{ClientCertificateData: c.CertData, ClientKeyData: c.KeyData, Token: c.BearerToken}
	kc.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "user"}
	kc.CurrentContext = "kubetest"
	return clientcmd.WriteToFile(*kc, path)
}
