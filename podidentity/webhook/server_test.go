package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// fakeClock is a settable clock for certificate reloads.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// writePair issues a serving certificate for names from ca and writes it as cert-manager does (tls.crt,
// tls.key) into dir.
func writePair(t *testing.T, ca *CA, dir string, names []string) (certFile, keyFile string, serial string) {
	t.Helper()
	cert, err := ca.Issue(names, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writePEM(t, certFile+".new", "CERTIFICATE", cert.Certificate[0])
	writePEM(t, keyFile+".new", "PRIVATE KEY", keyDER)
	for _, f := range []string{certFile, keyFile} {
		if err := os.Rename(f+".new", f); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile, cert.Leaf.SerialNumber.String()
}

func writePEM(t *testing.T, name, typ string, der []byte) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("-----BEGIN " + typ + "-----\n")
	enc := base64.StdEncoding.EncodeToString(der)
	for len(enc) > 64 {
		b.WriteString(enc[:64] + "\n")
		enc = enc[64:]
	}
	b.WriteString(enc + "\n-----END " + typ + "-----\n")
	if err := os.WriteFile(name, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// review is an AdmissionReview v1 for creating pod in namespace ns.
func review(t *testing.T, ns string, pod *corev1.Pod) []byte {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "4f2c1f3e-0000-4000-8000-000000000001", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: ns,
			Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// startFileServer runs the webhook on loopback with a certificate from files, as cert-manager provides.
func startFileServer(t *testing.T, clock *fakeClock) (s *Server, ca *CA, dir string, serial string) {
	t.Helper()
	ca, err := NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	names := ServiceDNSNames("pi-webhook", "bridge", "cluster.local")
	certFile, keyFile, serial := writePair(t, ca, dir, names)
	s, err = NewServer(context.Background(), Options{
		Listen: "127.0.0.1:0", Service: "pi-webhook", Namespace: "bridge",
		CertFile: certFile, KeyFile: keyFile, Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, ca, dir, serial
}

// client trusts ca and dials addr whatever the URL's host, as the API server reaches the Service.
func client(ca *CA, addr string) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		DisableKeepAlives: true,
	}}
}

// TestWebhookHTTPSRoundTrip sends an AdmissionReview as the API server does (HTTPS to the Service's name,
// verified against the CA) and applies the JSONPatch it gets back.
func TestWebhookHTTPSRoundTrip(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	s, ca, _, _ := startFileServer(t, clock)
	c := client(ca, s.Addr())
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "orders-"}, Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "app", Image: "app"}}}}

	resp, err := c.Post("https://pi-webhook.bridge.svc:443"+MutatePath, "application/json", bytes.NewReader(review(t, "shop", pod)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	r := out.Response
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || r == nil || r.UID != "4f2c1f3e-0000-4000-8000-000000000001" || !r.Allowed {
		t.Fatalf("response %s", body)
	}
	if r.PatchType == nil || *r.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("patch type %v", r.PatchType)
	}
	var ops []PatchOp
	if err := json.Unmarshal(r.Patch, &ops); err != nil {
		t.Fatal(err)
	}
	got := applyPatch(t, pod, ops)
	env := got.Spec.Containers[0].Env
	if len(got.Spec.Volumes) != 1 || len(env) != 2 || env[0].Value != DefaultCredentialsURI || env[1].Value != MountPath+"/token" {
		t.Fatalf("pod after the patch: %+v", got.Spec)
	}

	// Health for the kubelet's probe (it connects to the pod's IP).
	hresp, err := c.Get("https://pi-webhook.bridge.svc" + HealthPath)
	if err != nil {
		t.Fatal(err)
	}
	hresp.Body.Close()
	if hresp.StatusCode != http.StatusOK {
		t.Fatalf("health: %d", hresp.StatusCode)
	}
}

func TestWebhookRefusesWhatIsNotAnAdmissionReview(t *testing.T) {
	s, ca, _, _ := startFileServer(t, &fakeClock{t: time.Now()})
	c := client(ca, s.Addr())
	for _, tt := range []struct {
		name, method, ctype, body string
		status                    int
		want                      string
	}{
		{"GET", http.MethodGet, "", "", http.StatusMethodNotAllowed, "POSTed"},
		{"not JSON", http.MethodPost, "text/plain", "{}", http.StatusUnsupportedMediaType, `Content-Type "text/plain"`},
		{"v1beta1", http.MethodPost, "application/json", `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{}}`, http.StatusBadRequest, "set admissionReviewVersions: [v1]"},
		{"no request", http.MethodPost, "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, http.StatusBadRequest, "no request"},
		{"broken pod", http.MethodPost, "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","resource":{"version":"v1","resource":"pods"},"operation":"CREATE","object":{"spec":7}}}`, http.StatusBadRequest, "decoding the pod of request u1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, "https://pi-webhook.bridge.svc"+MutatePath, strings.NewReader(tt.body))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.want) {
				t.Fatalf("got %d %q, want %d saying %q", resp.StatusCode, b, tt.status, tt.want)
			}
		})
	}
}

// TestWebhookAllowsOtherRequestsUnchanged: an UPDATE, a subresource or another kind passes with no patch.
func TestWebhookAllowsOtherRequestsUnchanged(t *testing.T) {
	inj, _ := NewInjection(InjectionOptions{})
	h := NewHandler(inj, nil)
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	for _, mod := range []func(*admissionv1.AdmissionReview){
		func(r *admissionv1.AdmissionReview) { r.Request.Operation = admissionv1.Update },
		func(r *admissionv1.AdmissionReview) { r.Request.SubResource = "ephemeralcontainers" },
		func(r *admissionv1.AdmissionReview) {
			r.Request.Resource = metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
		},
	} {
		var r admissionv1.AdmissionReview
		if err := json.Unmarshal(review(t, "shop", pod), &r); err != nil {
			t.Fatal(err)
		}
		mod(&r)
		b, _ := json.Marshal(r)
		out, err := h.Review(b)
		if err != nil {
			t.Fatal(err)
		}
		if !out.Response.Allowed || out.Response.Patch != nil || out.Response.PatchType != nil {
			t.Errorf("request %+v answered %+v", r.Request.Operation, out.Response)
		}
	}
}

// TestWebhookReloadsRenewedCertificate renews the files as cert-manager does and checks that a new
// handshake gets the new certificate once CertCheckInterval has passed, and that a broken renewal keeps
// the previous one.
func TestWebhookReloadsRenewedCertificate(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	s, ca, dir, first := startFileServer(t, clock)
	served := func() string {
		t.Helper()
		pool := x509.NewCertPool()
		pool.AddCert(ca.Cert)
		conn, err := tls.Dial("tcp", s.Addr(), &tls.Config{RootCAs: pool, ServerName: "pi-webhook.bridge.svc"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	if got := served(); got != first {
		t.Fatalf("served %s, want %s", got, first)
	}
	_, _, second := writePair(t, ca, dir, ServiceDNSNames("pi-webhook", "bridge", "cluster.local"))
	if got := served(); got != first {
		t.Fatalf("reloaded before the check interval: served %s", got)
	}
	clock.Add(CertCheckInterval)
	if got := served(); got != second {
		t.Fatalf("after the interval served %s, want the renewed %s", got, second)
	}
	// A half-written renewal (the key does not match the certificate) keeps the good pair.
	other, _ := NewCA(time.Now())
	cert, _ := other.Issue([]string{"x"}, time.Now())
	writePEM(t, filepath.Join(dir, "tls.crt"), "CERTIFICATE", cert.Certificate[0])
	clock.Add(CertCheckInterval)
	if got := served(); got != second {
		t.Fatalf("a broken renewal replaced the pair: served %s", got)
	}
}

// TestSecurityWebhookRefusesPlainHTTPAndHugeReviews: the webhook speaks only TLS, and a body larger
// than any AdmissionReview the API server sends is refused without being held in memory.
func TestSecurityWebhookRefusesPlainHTTPAndHugeReviews(t *testing.T) {
	s, ca, _, _ := startFileServer(t, &fakeClock{t: time.Now()})
	plain := &http.Client{Timeout: 5 * time.Second}
	if resp, err := plain.Post("http://"+s.Addr()+MutatePath, "application/json", strings.NewReader("{}")); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("plain HTTP answered 200: %s", b)
		}
	}
	c := client(ca, s.Addr())
	huge := io.MultiReader(strings.NewReader(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"object":"`),
		io.LimitReader(zeros{}, MaxReviewBytes+1), strings.NewReader(`"}}`))
	resp, err := c.Post("https://pi-webhook.bridge.svc"+MutatePath, "application/json", huge)
	if err != nil {
		// The server may close the connection while the client still sends: refused either way.
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a %d-byte review got %d, want 413", MaxReviewBytes+1, resp.StatusCode)
	}
	// A Host that names none of the Service's names (DNS rebinding, a confused client) is refused.
	req, _ := http.NewRequest(http.MethodPost, "https://pi-webhook.bridge.svc"+MutatePath, bytes.NewReader(review(t, "shop", &corev1.Pod{})))
	req.Host = "attacker.example"
	req.Header.Set("Content-Type", "application/json")
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	resp, err = client(ca, s.Addr()).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("Host attacker.example got %d, want 403", resp.StatusCode)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'A'
	}
	return len(p), nil
}

func TestNewServerRefusesIncompleteOptions(t *testing.T) {
	for _, tt := range []struct {
		o    Options
		want string
	}{
		{Options{}, "the Service's name and namespace are required"},
		{Options{Service: "s", Namespace: "n"}, "a TLS certificate is required"},
		{Options{Service: "s", Namespace: "n", SelfSigned: true, CertFile: "a"}, "not both"},
		{Options{Service: "s", Namespace: "n", SelfSigned: true}, "needs the CA Secret's name"},
		{Options{Service: "s", Namespace: "n", CertFile: "/nonexistent/tls.crt", KeyFile: "/nonexistent/tls.key"}, "/nonexistent/tls.crt"},
	} {
		if _, err := NewServer(context.Background(), tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewServer(%+v) = %v, want an error saying %q", tt.o, err, tt.want)
		}
	}
}
