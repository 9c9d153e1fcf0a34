package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/netutil"
)

// DefaultListen is the webhook's default listen address (all interfaces: the API server calls it through
// its Service).
const DefaultListen = ":8443"

// DefaultCABundleCheck is how often the self-signed mode checks that the MutatingWebhookConfiguration
// still carries its CA (a helm upgrade or kubectl apply may have reset it).
const DefaultCABundleCheck = time.Minute

// Options configures NewServer.
type Options struct {
	// Listen is the host:port to serve HTTPS on; default DefaultListen.
	Listen string
	// Injection is what the webhook adds to pods.
	Injection InjectionOptions

	// Service and Namespace name the webhook's Service: its DNS names are the Host values accepted and,
	// self-signed, the names in the serving certificate. Both required.
	Service, Namespace string
	// ClusterDomain is the cluster's DNS domain, for the Service's full name; default "cluster.local".
	ClusterDomain string

	// CertFile and KeyFile serve a certificate from files (cert-manager's Secret), reloaded on change.
	// Either both, or SelfSigned.
	CertFile, KeyFile string
	// SelfSigned keeps a CA in the Secret CASecret (in Namespace) and puts it into the
	// MutatingWebhookConfiguration WebhookConfig's caBundle; Client talks to the API server for that.
	SelfSigned    bool
	CASecret      string
	WebhookConfig string
	Client        kubernetes.Interface
	// CABundleCheck is how often the caBundle is checked again; default DefaultCABundleCheck.
	CABundleCheck time.Duration

	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives the server's log; default: discard.
	Logger hclog.Logger
}

// Server is the running webhook: HTTPS on Options.Listen, MutatePath and HealthPath.
type Server struct {
	srv    *netutil.Server
	log    hclog.Logger
	ready  atomic.Bool
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewServer checks o, loads or makes the serving certificate, and starts serving. Errors name the
// offending option or file. Close stops it.
func NewServer(ctx context.Context, o Options) (*Server, error) {
	log := o.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.ClusterDomain == "" {
		o.ClusterDomain = "cluster.local"
	}
	if o.CABundleCheck <= 0 {
		o.CABundleCheck = DefaultCABundleCheck
	}
	if o.Service == "" || o.Namespace == "" {
		return nil, errors.New("webhook: the Service's name and namespace are required (they name the certificate and the accepted Host)")
	}
	inj, err := NewInjection(o.Injection)
	if err != nil {
		return nil, err
	}
	names := ServiceDNSNames(o.Service, o.Namespace, o.ClusterDomain)
	s := &Server{log: log}
	var getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	var boot *Bootstrap
	var ca *CA
	switch {
	case o.SelfSigned && (o.CertFile != "" || o.KeyFile != ""):
		return nil, errors.New("webhook: choose certificate files or the self-signed mode, not both")
	case o.SelfSigned:
		if o.CASecret == "" || o.WebhookConfig == "" || o.Client == nil {
			return nil, errors.New("webhook: the self-signed mode needs the CA Secret's name, the MutatingWebhookConfiguration's name and an API client")
		}
		boot = &Bootstrap{Client: o.Client, Namespace: o.Namespace, SecretName: o.CASecret, WebhookConfig: o.WebhookConfig, Now: now}
		if ca, err = boot.CA(ctx); err != nil {
			return nil, err
		}
		issued, err := NewIssuedCert(ca, names, now)
		if err != nil {
			return nil, err
		}
		getCert = issued.GetCertificate
	case o.CertFile != "" && o.KeyFile != "":
		files, err := LoadCertFiles(CertFilesOptions{CertFile: o.CertFile, KeyFile: o.KeyFile, Now: now, Logger: log})
		if err != nil {
			return nil, err
		}
		getCert = files.GetCertificate
		s.ready.Store(true)
	default:
		return nil, errors.New("webhook: a TLS certificate is required: both certificate and key files, or the self-signed mode")
	}

	mux := http.NewServeMux()
	mux.Handle(MutatePath, NewHandler(inj, log))
	mux.HandleFunc(HealthPath, func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "not ready: the MutatingWebhookConfiguration does not carry this webhook's CA yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	srv, err := netutil.NewServer(netutil.ServerOptions{
		Name: "webhook", Addr: o.Listen, Handler: mux, Logger: log,
		// The API server sends the Service's name as Host; the kubelet's probes send the pod's IP, which
		// the guard accepts on a wildcard bind.
		AllowedHosts: names,
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("webhook: listen on %s: %w", o.Listen, err)
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: getCert}
	if err := srv.StartOn(tls.NewListener(ln, tlsConf)); err != nil {
		ln.Close()
		return nil, err
	}
	s.srv = srv
	log.Info("webhook serving", "address", srv.Addr(), "names", names, "self_signed", o.SelfSigned)
	if boot != nil {
		bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		s.cancel = cancel
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.keepCABundle(bctx, boot, ca.CertPEM, o.CABundleCheck)
		}()
	}
	return s, nil
}

// keepCABundle puts the CA into the MutatingWebhookConfiguration now and checks it every interval,
// retrying a failure sooner (5 s doubling up to interval, with jitter). The server is ready from the
// first success.
func (s *Server) keepCABundle(ctx context.Context, boot *Bootstrap, caPEM []byte, interval time.Duration) {
	retry := 5 * time.Second
	var lastErr string
	for {
		wait := interval
		changed, err := boot.EnsureCABundle(ctx, caPEM)
		switch {
		case err != nil:
			if err.Error() != lastErr {
				s.log.Error("caBundle not set; the API server cannot call this webhook until it is", "error", err)
				lastErr = err.Error()
			}
			wait = min(retry, interval)
			wait = wait/2 + rand.N(wait/2+1)
			retry *= 2
		default:
			if changed {
				s.log.Info("caBundle set", "mutating_webhook_configuration", boot.WebhookConfig)
			}
			lastErr, retry = "", 5*time.Second
			s.ready.Store(true)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Addr is the bound host:port.
func (s *Server) Addr() string { return s.srv.Addr() }

// Ready reports whether the API server can call the webhook (always with certificate files; self-signed,
// once the caBundle was set).
func (s *Server) Ready() bool { return s.ready.Load() }

// Close stops serving and the caBundle checks.
func (s *Server) Close() error {
	if s.cancel != nil {
		s.cancel()
	}
	err := s.srv.Close()
	s.wg.Wait()
	return err
}

// NewKubeClient returns a client for the cluster: from the kubeconfig file when given, else the
// in-cluster configuration (the pod's service account).
func NewKubeClient(kubeconfig string) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		if kubeconfig == "" {
			return nil, fmt.Errorf("webhook: in-cluster Kubernetes configuration (outside a pod, give a kubeconfig): %w", err)
		}
		return nil, fmt.Errorf("webhook: kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.UserAgent = "spiffe-aws-bridge-webhook"
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("webhook: Kubernetes client: %w", err)
	}
	return c, nil
}
