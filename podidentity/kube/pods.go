package kube

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
)

// PodsOptions configure Pods.
type PodsOptions struct {
	// Client lists and watches pods. Required.
	Client kubernetes.Interface
	// NodeName is this node's name; only pods bound to it are followed. Required.
	NodeName string
	// OnGone, when set, is called once for each pod that leaves this node (deleted, or finished: phase
	// Succeeded or Failed), from the informer's goroutine; it must not block for long.
	OnGone func(Pod)
	// Logger receives pod arrivals and departures at debug level.
	Logger hclog.Logger
	// Resync is the informer's resync period; default none.
	Resync time.Duration
	// Wait bounds how long Await waits for the informer to list a pod it does not know yet (a pod's first
	// request can arrive before the watch event of its binding), or the pod's IPs; default
	// DefaultPodWait.
	Wait time.Duration
}

// DefaultPodWait is how long a request waits for this node's informer to list a pod whose token the API
// server accepted, or to learn its IPs: the watch lags the pod's binding by milliseconds, seconds on a
// loaded API server. Bounded, because a token of a pod this node never runs waits for it too.
const DefaultPodWait = 3 * time.Second

// Tombstones: how long and how many deleted pods' UIDs are remembered, so that a deleted pod's token is
// refused at once rather than after the Await bound. The API server's own TokenReview cache accepts a
// deleted pod's token for about 10 s, the reviewer's for at most its CacheTTL (it forgets a pod's reviews
// when the pod goes).
const (
	tombstoneTTL = 10 * time.Minute
	maxTombstone = 16384
)

// Pods follows the live pods of one node. Get and Gone are safe for concurrent use.
type Pods struct {
	opts     PodsOptions
	informer toolscache.SharedIndexInformer

	mu      sync.Mutex
	gone    map[string]chan struct{} // per pod UID, closed when it leaves
	ended   map[string]bool          // UIDs already announced as gone (finished, not yet deleted)
	tombs   map[string]time.Time     // tombstones: UIDs deleted lately, when
	order   []string                 // tombs's UIDs, oldest first
	changed chan struct{}            // closed and replaced at every pod event
	// arrival, when set (tests), is called with each pod a watch event brings, before the informer gets
	// the event: a test holds a pod back there, as a lagging watch does.
	arrival func(*corev1.Pod)
}

const uidIndex = "uid"

// NewPods returns the pod list of opts.NodeName; Run starts following it.
func NewPods(opts PodsOptions) (*Pods, error) {
	if opts.Client == nil {
		return nil, errors.New("pod identity: a Kubernetes client is required")
	}
	if opts.NodeName == "" {
		return nil, errors.New("pod identity: the node name is required (node_name, or NODE_NAME from the downward API)")
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Wait <= 0 {
		opts.Wait = DefaultPodWait
	}
	p := &Pods{opts: opts, gone: map[string]chan struct{}{}, ended: map[string]bool{},
		tombs: map[string]time.Time{}, changed: make(chan struct{})}
	selector := fields.OneTermEqualSelector("spec.nodeName", opts.NodeName).String()
	pods := opts.Client.CoreV1().Pods("")
	lw := &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = selector
			return pods.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = selector
			w, err := pods.Watch(ctx, o)
			if err != nil || p.arrival == nil {
				return w, err
			}
			return watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
				if pod, ok := e.Object.(*corev1.Pod); ok && e.Type != watch.Deleted {
					p.arrival(pod)
				}
				return e, true
			}), nil
		},
	}
	inf := toolscache.NewSharedIndexInformer(lw, &corev1.Pod{}, opts.Resync, toolscache.Indexers{
		uidIndex: func(obj any) ([]string, error) {
			if p, ok := obj.(*corev1.Pod); ok {
				return []string{string(p.UID)}, nil
			}
			return nil, nil
		},
	})
	p.informer = inf
	// Only what Pod needs is kept: a node's pods stay small in memory.
	if err := inf.SetTransform(slimPod); err != nil {
		return nil, fmt.Errorf("pod identity: pod informer: %w", err)
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.seen(obj) },
		UpdateFunc: func(_, obj any) { p.seen(obj) },
		DeleteFunc: p.deleted,
	}); err != nil {
		return nil, fmt.Errorf("pod identity: pod informer: %w", err)
	}
	return p, nil
}

// Run follows the node's pods until ctx ends.
func (p *Pods) Run(ctx context.Context) { p.informer.RunWithContext(ctx) }

// HasSynced reports whether the node's pod list has been loaded once.
func (p *Pods) HasSynced() bool { return p.informer.HasSynced() }

// WaitForSync waits until the pod list has been loaded or ctx ends.
func (p *Pods) WaitForSync(ctx context.Context) error {
	if !toolscache.WaitForCacheSync(ctx.Done(), p.informer.HasSynced) {
		return fmt.Errorf("pod identity: the pods of node %s were not listed: %w", p.opts.NodeName, context.Cause(ctx))
	}
	return nil
}

// NodeName is the node whose pods are followed.
func (p *Pods) NodeName() string { return p.opts.NodeName }

// Get returns the live pod with this UID on this node; false when there is none (never was, deleted,
// or finished).
func (p *Pods) Get(uid string) (Pod, bool) {
	objs, err := p.informer.GetIndexer().ByIndex(uidIndex, uid)
	if err != nil {
		return Pod{}, false
	}
	for _, o := range objs {
		if pod, ok := o.(*corev1.Pod); ok && !finished(pod) {
			return podOf(pod), true
		}
	}
	return Pod{}, false
}

// Presence is what the informer knows of a pod UID.
type Presence int

// Presences.
const (
	// Unknown: the informer has not listed the pod (not yet, or it never ran here, or it was deleted
	// before the bridge started or longer ago than the tombstones are kept).
	Unknown Presence = iota
	// Live: the pod is bound to this node and has not finished.
	Live
	// Left: the pod was deleted or has finished.
	Left
)

// lookup returns the pod with uid and what the informer knows of it.
func (p *Pods) lookup(uid string) (Pod, Presence) {
	if pod, ok := p.Get(uid); ok {
		return pod, Live
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.tombs[uid]; ok || p.ended[uid] {
		return Pod{}, Left
	}
	objs, _ := p.informer.GetIndexer().ByIndex(uidIndex, uid)
	if len(objs) > 0 { // finished, and its event not handled yet
		return Pod{}, Left
	}
	return Pod{}, Unknown
}

// Await returns the pod with uid and what the informer knows of it, waiting up to the Wait bound (or
// until ctx ends) while the informer does not list it or, when addressed is set, while it lists it
// without IPs (and not on the host network). A pod it knows has left is answered at once.
func (p *Pods) Await(ctx context.Context, uid string, addressed bool) (Pod, Presence) {
	var timer *time.Timer
	for {
		p.mu.Lock()
		changed := p.changed
		p.mu.Unlock()
		pod, presence := p.lookup(uid)
		if presence == Left || presence == Live && (!addressed || len(pod.IPs) > 0 || pod.HostNetwork) {
			return pod, presence
		}
		if timer == nil {
			timer = time.NewTimer(p.opts.Wait)
			defer timer.Stop()
		}
		select {
		case <-changed:
		case <-timer.C:
			return pod, presence
		case <-ctx.Done():
			return pod, presence
		}
	}
}

// Wait is the Await bound.
func (p *Pods) Wait() time.Duration { return p.opts.Wait }

// notify wakes every Await.
func (p *Pods) notify() {
	p.mu.Lock()
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// Len is the number of live pods on this node.
func (p *Pods) Len() int {
	n := 0
	for _, o := range p.informer.GetStore().List() {
		if pod, ok := o.(*corev1.Pod); ok && !finished(pod) {
			n++
		}
	}
	return n
}

// Gone returns a channel closed when the pod with this UID leaves this node (at once when it is not
// here now).
func (p *Pods) Gone(uid string) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.gone[uid]; ok {
		return c
	}
	c := make(chan struct{})
	if _, ok := p.Get(uid); !ok {
		close(c)
		return c
	}
	p.gone[uid] = c
	return c
}

func (p *Pods) seen(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	defer p.notify()
	if finished(pod) {
		p.leave(podOf(pod), "finished ("+string(pod.Status.Phase)+")", false)
		return
	}
	p.opts.Logger.Trace("pod on node", "pod", podOf(pod).String(), "ips", podOf(pod).IPs)
}

func (p *Pods) deleted(obj any) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	defer p.notify()
	p.leave(podOf(pod), "deleted", true)
}

// leave announces once that pod is gone; deleted forgets it entirely.
func (p *Pods) leave(pod Pod, why string, deleted bool) {
	p.mu.Lock()
	already := p.ended[pod.UID]
	if deleted {
		delete(p.ended, pod.UID)
		p.tombstoneLocked(pod.UID, time.Now())
	} else {
		p.ended[pod.UID] = true
	}
	if c, ok := p.gone[pod.UID]; ok {
		close(c)
		delete(p.gone, pod.UID)
	}
	p.mu.Unlock()
	if already {
		return
	}
	p.opts.Logger.Debug("pod left the node", "pod", pod.String(), "why", why)
	if p.opts.OnGone != nil {
		p.opts.OnGone(pod)
	}
}

// tombstoneLocked remembers that the pod with uid was deleted, forgetting the tombstones older than
// tombstoneTTL and the oldest beyond maxTombstone. The caller holds p.mu.
func (p *Pods) tombstoneLocked(uid string, now time.Time) {
	if _, ok := p.tombs[uid]; !ok {
		p.order = append(p.order, uid)
	}
	p.tombs[uid] = now
	drop := 0
	for drop < len(p.order) && (len(p.order)-drop > maxTombstone || now.Sub(p.tombs[p.order[drop]]) > tombstoneTTL) {
		delete(p.tombs, p.order[drop])
		drop++
	}
	if drop > 0 {
		p.order = append([]string(nil), p.order[drop:]...)
	}
}

func finished(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

func podOf(pod *corev1.Pod) Pod {
	out := Pod{
		Namespace:      pod.Namespace,
		Name:           pod.Name,
		UID:            string(pod.UID),
		ServiceAccount: pod.Spec.ServiceAccountName,
		NodeName:       pod.Spec.NodeName,
		HostNetwork:    pod.Spec.HostNetwork,
		Created:        pod.CreationTimestamp.Time,
	}
	ips := pod.Status.PodIPs
	if len(ips) == 0 && pod.Status.PodIP != "" {
		ips = []corev1.PodIP{{IP: pod.Status.PodIP}}
	}
	for _, ip := range ips {
		if a, err := netip.ParseAddr(ip.IP); err == nil {
			out.IPs = append(out.IPs, a.Unmap())
		}
	}
	return out
}

// slimPod keeps only the fields Pod and the informer use.
func slimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	slim := &corev1.Pod{}
	slim.Name, slim.Namespace, slim.UID = pod.Name, pod.Namespace, pod.UID
	slim.ResourceVersion = pod.ResourceVersion
	slim.DeletionTimestamp = pod.DeletionTimestamp
	slim.CreationTimestamp = pod.CreationTimestamp
	slim.Spec.ServiceAccountName = pod.Spec.ServiceAccountName
	slim.Spec.NodeName = pod.Spec.NodeName
	slim.Spec.HostNetwork = pod.Spec.HostNetwork
	slim.Status.Phase = pod.Status.Phase
	slim.Status.PodIP = pod.Status.PodIP
	slim.Status.PodIPs = pod.Status.PodIPs
	return slim, nil
}
