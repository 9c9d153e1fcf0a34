package kube

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
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
	onGone := func(p Pod) {
		r.Forget(p.UID)
		if o.OnGone != nil {
			o.OnGone(p)
		}
	}
	pods, err := NewPods(PodsOptions{Client: client, NodeName: o.NodeName, OnGone: onGone, Logger: o.Logger.Named("pods")})
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

// Reviewer is the token reviewer.
func (a *Authenticator) Reviewer() *Reviewer { return a.reviewer }

// Pods is the node's pod list.
func (a *Authenticator) Pods() *Pods { return a.pods }

// RouteKlog sends what client-go logs through klog (a watch that failed, a forbidden list) to l: warnings
// for klog's errors, debug for its information lines. klog's logger is process-wide, and replacing it
// while informers log is a data race: the first call installs a sink once, later calls (a reload, a second
// daemon in one process) only swap the hclog.Logger it writes to, atomically.
func RouteKlog(l hclog.Logger) {
	klogTarget.Store(&l)
	klogOnce.Do(func() { klog.SetLogger(logr.New(klogSink{})) })
}

// klogOnce and klogTarget mirror klog's own process-wide state: the sink installed once, and the logger it
// currently writes to.
var (
	klogOnce   sync.Once
	klogTarget atomic.Pointer[hclog.Logger]
)

// klogSink writes to the current klogTarget, with the names and values klog added on the way.
type klogSink struct {
	names []string
	kv    []any
}

func (s klogSink) logger() hclog.Logger {
	p := klogTarget.Load()
	if p == nil {
		return hclog.NewNullLogger()
	}
	l := *p
	for _, n := range s.names {
		l = l.Named(n)
	}
	if len(s.kv) > 0 {
		l = l.With(s.kv...)
	}
	return l
}

func (s klogSink) Init(logr.RuntimeInfo) {}
func (s klogSink) Enabled(level int) bool {
	l := s.logger()
	return level == 0 && l.IsDebug() || level > 0 && l.IsTrace()
}
func (s klogSink) Info(level int, msg string, kv ...any) {
	if level == 0 {
		s.logger().Debug(msg, kv...)
	} else {
		s.logger().Trace(msg, kv...)
	}
}
func (s klogSink) Error(err error, msg string, kv ...any) {
	s.logger().Warn(msg, append(kv, "error", err)...)
}
func (s klogSink) WithValues(kv ...any) logr.LogSink {
	return klogSink{names: s.names, kv: append(slices.Clip(s.kv), kv...)}
}
func (s klogSink) WithName(name string) logr.LogSink {
	return klogSink{names: append(slices.Clip(s.names), name), kv: s.kv}
}
