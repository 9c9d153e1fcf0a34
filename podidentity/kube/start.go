package kube

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"github.com/hashicorp/go-hclog"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// Options configure Start: everything the daemon's pod_identity block says about Kubernetes.
type Options struct {
	// Kubeconfig is a kubeconfig file; "" for the in-cluster configuration.
	Kubeconfig string
	// NodeName is this node (required).
	NodeName string
	// Audience tokens must be issued for; default DefaultAudience.
	Audience string
	// CacheTTL bounds how long a token's review is reused; default DefaultCacheTTL (see ReviewerOptions).
	CacheTTL time.Duration
	// OnGone is called once for each pod that leaves this node (see PodsOptions).
	OnGone func(Pod)
	// Logger; default discard.
	Logger hclog.Logger
}

// Start connects to the API server and starts following this node's pods. It does not wait for the pod
// list: until it is loaded, Authenticate answers KindUnavailable (HasSynced tells). stop ends the
// informer and waits for it.
func Start(ctx context.Context, o Options) (a *Authenticator, stop func(), err error) {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	conf, err := RESTConfig(o.Kubeconfig)
	if err != nil {
		return nil, nil, err
	}
	client, err := kubernetes.NewForConfig(conf)
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes client for %s: %w", conf.Host, err)
	}
	r, err := NewReviewer(ReviewerOptions{Client: client.AuthenticationV1(), Audience: o.Audience, CacheTTL: o.CacheTTL, Logger: o.Logger.Named("tokenreview")})
	if err != nil {
		return nil, nil, err
	}
	pods, err := NewPods(PodsOptions{Client: client, NodeName: o.NodeName, OnGone: o.OnGone, Logger: o.Logger.Named("pods")})
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); pods.Run(ctx) }()
	o.Logger.Info("pod identity: following this node's pods", "api_server", conf.Host, "node", o.NodeName, "audience", r.Audience())
	return NewAuthenticator(r, pods), func() { cancel(); <-done }, nil
}

// HasSynced reports whether the node's pod list is loaded (before, every request is answered 503).
func (a *Authenticator) HasSynced() bool { return a.pods.HasSynced() }

// Pods is the node's pod list.
func (a *Authenticator) Pods() *Pods { return a.pods }

// RouteKlog sends what client-go logs through klog (a watch that failed, a forbidden list) to l: warnings
// for klog's errors, debug for its information lines. klog is process-wide: call it once, from main or
// the daemon.
func RouteKlog(l hclog.Logger) {
	klog.SetLogger(logr.New(klogSink{l: l}))
}

type klogSink struct{ l hclog.Logger }

func (s klogSink) Init(logr.RuntimeInfo) {}
func (s klogSink) Enabled(level int) bool {
	return level == 0 && s.l.IsDebug() || level > 0 && s.l.IsTrace()
}
func (s klogSink) Info(level int, msg string, kv ...any) {
	if level == 0 {
		s.l.Debug(msg, kv...)
	} else {
		s.l.Trace(msg, kv...)
	}
}
func (s klogSink) Error(err error, msg string, kv ...any) {
	s.l.Warn(msg, append(kv, "error", err)...)
}
func (s klogSink) WithValues(kv ...any) logr.LogSink { return klogSink{l: s.l.With(kv...)} }
func (s klogSink) WithName(name string) logr.LogSink { return klogSink{l: s.l.Named(name)} }
