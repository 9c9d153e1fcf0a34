// Package podidentity serves every pod of a Kubernetes node the AWS credentials of its own SPIFFE
// identity, on the container-credentials address AWS SDKs trust (169.254.170.23): EKS Pod Identity for any
// cluster, with SPIRE and IAM Roles Anywhere.
//
// A pod's SDK sends GET /v1/credentials with its projected service-account token in Authorization. The
// Server verifies the token through an Authenticator (package podidentity/kube: TokenReview, this node's
// pod informer), which names the pod; on the pod's first request it subscribes to the SPIRE agent's
// Delegated Identity API with the pod's selectors (k8s:ns, k8s:sa, k8s:pod-uid, k8s:pod-name) and follows
// the pod's SVID while the pod lives. The SVID's SPIFFE ID is mapped by ordered Rules to a session, which
// the node holds once per (SPIFFE ID, role and hops) however many pods share it: a bridge.Refresher built
// by the daemon, so sessions follow the same refresh policy, backoff, rotation spread and Roles Anywhere
// limiter as every profile. A session is fed the newest SVID of any live pod with its SPIFFE ID and stops
// when its last pod goes (PodDeleted).
//
// Subscribing on a pod's first request rather than on the informer's add is deliberate: most pods never
// ask for AWS credentials, and a stream per pod would have the agent mint and hand the bridge private
// keys of identities nobody uses on this node. The price is the first request's wait for the SVID and
// the first session (a few hundred milliseconds; docs/benchmarks.md).
//
// A token is a bearer token, so with Options.VerifySourceAddress a request is served only from its pod's
// own network address: its TCP source must be one of the pod's IPs (status.podIPs, both families), or,
// for a host-network pod, whose IPs are the node's, an address of this node. A token read by another pod
// or by a process of the node's network namespace then gets nothing.
//
// Answers: 200 with the container-credentials document; 401 for a missing or invalid token; 403 for a
// pod of another node, a request from an address that is not the pod's, a pod SPIRE issues no SVID, or a
// SPIFFE ID no rule matches (naming it); 503 with the reason while the first session is being made, the
// pod's address is not known yet or the API server cannot verify the token. Expired credentials are
// never served. Tokens, secret keys and session tokens are never logged.
package podidentity

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/netutil"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/delegated"
)

// Pod is what a verified token says about the pod it was issued to.
type Pod struct {
	Namespace      string
	ServiceAccount string
	Name           string
	UID            string
	// Node is the node the pod is bound to ("" when the authenticator does not say).
	Node string
	// IPs are the pod's addresses (status.podIPs), none while they are not known yet.
	IPs []netip.Addr
	// HostNetwork: the pod uses the node's network namespace (spec.hostNetwork), so its requests come
	// from an address of the node, and its IPs are the node's.
	HostNetwork bool
	// Created is when the pod was created (zero when the authenticator does not say): a pod younger than
	// Options.StartupGrace that SPIRE issues no SVID yet is waiting for its entry, not refused.
	Created time.Time
}

// same reports whether p and o are the same pod (addresses aside: they are learned after the pod).
func (p Pod) same(o Pod) bool {
	return p.Namespace == o.Namespace && p.Name == o.Name && p.ServiceAccount == o.ServiceAccount && p.UID == o.UID
}

// String names the pod for logs and answers: "namespace/name".
func (p Pod) String() string { return p.Namespace + "/" + p.Name }

// Selectors are the SPIRE k8s workload attestor's selectors for the pod, with which the bridge asks the
// Delegated Identity API for its SVIDs.
func (p Pod) Selectors() []string {
	return []string{"k8s:ns:" + p.Namespace, "k8s:sa:" + p.ServiceAccount, "k8s:pod-uid:" + p.UID, "k8s:pod-name:" + p.Name}
}

// Errors an Authenticator wraps to say how a token is refused.
var (
	// ErrUnauthenticated: the token proves nothing (malformed, expired, wrong audience, its pod is gone):
	// HTTP 401.
	ErrUnauthenticated = errors.New("token not valid")
	// ErrForbidden: the token is valid but names a pod this bridge must not serve (another node's): 403.
	ErrForbidden = errors.New("pod not served by this node")
)

// Authenticator verifies a pod's projected service-account token. Errors wrap ErrUnauthenticated or
// ErrForbidden, or have an HTTPStatus() int method saying 401 or 403; any other error (the API server
// unreachable) is answered 503. Error messages are shown to the pod and logged: they must not hold the
// token. Package
// podidentity/kube implements it with TokenReview and the node's pod informer.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Pod, error)
}

// AddressWaiter is implemented by an Authenticator whose pod list may learn a pod before its IPs (the
// kubelet reports them in a status update after the pod was bound to the node): the Server asks it to
// wait for them when a request must be tied to the pod's address and they are not known yet.
type AddressWaiter interface {
	// WaitAddresses returns the live pod with uid once its IPs are known (or it is a host-network pod),
	// or as it is when ctx ends or the waiter's own short bound passes. Errors are Authenticate's (the
	// pod went: 401).
	WaitAddresses(ctx context.Context, uid string) (Pod, error)
}

// Subscription follows one pod's SVID: *delegated.Subscription.
type Subscription interface {
	// C delivers the pod's SVID on every change, nil when it is withdrawn.
	C() <-chan *svid.SVID
	// State is the stream's state (why there is no SVID).
	State() delegated.StreamState
	// Close ends the subscription.
	Close()
}

// Options configures a Server.
type Options struct {
	// Listen are the host:port addresses to serve on (config's pod_identity.listen).
	Listen []string
	// AllowAnyAddress permits listen addresses that are neither link-local, loopback nor fd00:ec2::23
	// (other hosts could reach them). The unspecified address is refused regardless.
	AllowAnyAddress bool
	// NodeName is this node; a pod the authenticator places on another node gets 403.
	NodeName string
	// Rules map SPIFFE IDs to sessions.
	Rules *Rules
	// Authenticator verifies tokens (required).
	Authenticator Authenticator
	// Subscribe follows the SVIDs the agent issues to a workload with these selectors (required):
	// the daemon's delegated.Source.
	Subscribe func(selectors []string) (Subscription, error)
	// NewRefresher builds a session's refresher (required): the daemon's, with its signer, limiter,
	// refresh policy, clock and observers, reading svids and delivering to sinks.
	NewRefresher func(spec SessionSpec, svids <-chan *svid.SVID, sinks []bridge.Sink) (*bridge.Refresher, error)
	// VerifySourceAddress serves a request only when its TCP source address is one of the pod's IPs, or,
	// for a host-network pod, an address of this node (IsNodeAddress); else 403 naming the source and the
	// pod. Turn it off only when the network translates the pods' source addresses on their way to the
	// node (a CNI that SNATs pod traffic to node-local addresses).
	VerifySourceAddress bool
	// IsNodeAddress reports whether ip is an address of this node: of the network namespace the bridge
	// runs in, the node's with host networking. Default: loopback, or an address of one of the host's
	// interfaces (net.InterfaceAddrs, asked at each request of a host-network pod).
	IsNodeAddress func(ip netip.Addr) (bool, error)
	// FirstRequestWait is how long a request waits for a pod's SVID and its session's first credentials
	// before answering 503 with the reason (default 3s; SDKs retry).
	FirstRequestWait time.Duration
	// StartupGrace is how long after a pod's creation "SPIRE issues no SVID to the pod" is the normal
	// wait for its registration entry (made by the controller manager when the pod appears, and synced
	// to the agent seconds later): the answer is then 503 NoSVIDYet, which SDKs retry, rather than 403
	// NoSVID (default 1m: the daemon passes startup_grace; negative: no grace).
	StartupGrace time.Duration
	// Logger; default discard.
	Logger hclog.Logger
	// Clock is the time source for credential validity; default time.Now.
	Clock func() time.Time
	// Conns is the connection budget shared with the daemon's other servers.
	Conns *netutil.ConnLimit
	// OnRequest, if set, is called after each request with the response status.
	OnRequest func(status int)
}

// Server is the pod identity engine and its HTTP servers.
type Server struct {
	o       Options
	log     hclog.Logger
	servers []*netutil.Server

	mu       sync.Mutex
	rules    *Rules
	pods     map[string]*pod     // by pod UID
	sessions map[string]*session // by SessionSpec.Key
	changed  chan struct{}       // closed and replaced on every change a waiting request may care about
	closed   bool
	stopping sync.WaitGroup // sessions stopping in the background (their last pod went)
}

// New checks opts and prepares the servers (not listening yet: Start).
func New(opts Options) (*Server, error) {
	switch {
	case opts.Authenticator == nil:
		return nil, errors.New("podidentity: no authenticator")
	case opts.Subscribe == nil:
		return nil, errors.New("podidentity: no Delegated Identity API subscriber")
	case opts.NewRefresher == nil:
		return nil, errors.New("podidentity: no refresher factory")
	case opts.Rules == nil:
		return nil, errors.New("podidentity: no rules")
	case len(opts.Listen) == 0:
		return nil, errors.New("podidentity: no listen address")
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.IsNodeAddress == nil {
		opts.IsNodeAddress = IsHostAddress
	}
	if opts.FirstRequestWait <= 0 {
		opts.FirstRequestWait = 3 * time.Second
	}
	if opts.StartupGrace == 0 {
		opts.StartupGrace = time.Minute
	}
	s := &Server{o: opts, log: opts.Logger, rules: opts.Rules, pods: map[string]*pod{}, sessions: map[string]*session{}, changed: make(chan struct{})}
	h := s.handler()
	for _, addr := range opts.Listen {
		if err := checkListen(addr, opts.AllowAnyAddress); err != nil {
			return nil, fmt.Errorf("podidentity: listen %q: %w", addr, err)
		}
		srv, err := netutil.NewServer(netutil.ServerOptions{
			Name: "pod_identity", Addr: addr, Handler: h, Logger: opts.Logger, Conns: opts.Conns, Observe: s.observe,
		})
		if err != nil {
			return nil, fmt.Errorf("podidentity: %w", err)
		}
		s.servers = append(s.servers, srv)
	}
	return s, nil
}

// Start listens on every address (net.Listen; see EnsureAddresses for adding them to the host). On
// failure nothing listens.
func (s *Server) Start() error {
	for i, srv := range s.servers {
		if err := srv.Start(); err != nil {
			for _, started := range s.servers[:i] {
				started.Close()
			}
			return fmt.Errorf("pod_identity: %w", err)
		}
		s.log.Info("pod identity: serving container credentials", "url", "http://"+srv.Addr()+credentialsPath)
	}
	return nil
}

// Addrs are the addresses the servers listen on (the bound ones after Start).
func (s *Server) Addrs() []string {
	var out []string
	for _, srv := range s.servers {
		out = append(out, srv.Addr())
	}
	return out
}

// Close stops the servers, every pod's subscription and every session.
func (s *Server) Close() {
	for _, srv := range s.servers {
		srv.Close()
	}
	s.mu.Lock()
	s.closed = true
	pods := s.pods
	s.pods = map[string]*pod{}
	s.mu.Unlock()
	for _, p := range pods {
		p.sub.Close()
		<-p.done // the pod's goroutine detached it from its session
	}
	s.mu.Lock()
	sessions := s.sessions
	s.sessions = map[string]*session{}
	s.mu.Unlock()
	for _, ss := range sessions {
		ss.stop()
	}
	s.stopping.Wait()
}

// PodDeleted drops what the pod with uid holds: its Delegated Identity stream, and its session when it
// was the last pod using it. The node's pod informer calls it when a pod is deleted.
func (s *Server) PodDeleted(uid string) {
	s.mu.Lock()
	p := s.pods[uid]
	delete(s.pods, uid)
	s.mu.Unlock()
	if p == nil {
		return
	}
	p.sub.Close() // the pod's goroutine sees C close, detaches from its session and ends
	<-p.done
	s.log.Info("pod identity: pod gone; dropped its SVID stream", "pod", p.info.String(), "pod_uid", p.info.UID)
}

// SetRules replaces the rules (a config reload): every pod is mapped again, moving to its new session;
// sessions no pod uses any more stop.
func (s *Server) SetRules(rules *Rules) {
	s.mu.Lock()
	s.rules = rules
	pods := make([]*pod, 0, len(s.pods))
	for _, p := range s.pods {
		pods = append(pods, p)
	}
	s.mu.Unlock()
	for _, p := range pods {
		p.remap()
	}
}

// Pods is how many pods the bridge follows (they asked for credentials and still run).
func (s *Server) Pods() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pods)
}

// States reports each session (identity) the node serves, sorted by name: the refresher's state with the
// number of pods using it. No secrets.
func (s *Server) States() []bridge.ProfileState {
	s.mu.Lock()
	sessions := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	out := make([]bridge.ProfileState, 0, len(sessions))
	for _, ss := range sessions {
		st := ss.refresher.State()
		st.Pods = ss.podCount()
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Profile < out[j].Profile })
	return out
}

// notifyLocked wakes every request waiting for a change. The caller holds s.mu.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) notify() {
	s.mu.Lock()
	s.notifyLocked()
	s.mu.Unlock()
}

// podFor returns the followed pod with info's UID, subscribing for it on its first request.
func (s *Server) podFor(info Pod) (*pod, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("pod identity is shutting down")
	}
	if p := s.pods[info.UID]; p != nil {
		if !p.info.same(info) {
			return nil, fmt.Errorf("pod uid %s is followed as %s (service account %s), not %s (%s)", info.UID, p.info, p.info.ServiceAccount, info, info.ServiceAccount)
		}
		return p, nil
	}
	sub, err := s.o.Subscribe(info.Selectors())
	if err != nil {
		return nil, fmt.Errorf("subscribing to the Delegated Identity API for pod %s: %w", info, err)
	}
	info.IPs = nil // what a request's source is checked against is the authenticator's, at each request
	p := &pod{s: s, info: info, sub: sub, done: make(chan struct{})}
	s.pods[info.UID] = p
	go p.follow()
	s.log.Info("pod identity: following a pod's SVIDs", "pod", info.String(), "pod_uid", info.UID, "service_account", info.ServiceAccount,
		"selectors", info.Selectors())
	return p, nil
}

// attachLocked returns the session of spec, creating and starting it; it counts p as one of its pods.
// The caller holds s.mu.
func (s *Server) attachLocked(spec SessionSpec, p *pod) (*session, error) {
	key := spec.Key()
	ss := s.sessions[key]
	if ss == nil {
		var err error
		if ss, err = s.newSession(spec); err != nil {
			return nil, err
		}
		s.sessions[key] = ss
		s.log.Info("pod identity: session started", "session", spec.Name(), "rule", spec.RuleName, "role", spec.RoleARN,
			"assume_role", spec.AssumeRoleARNs, "first_pod", p.info.String())
	}
	ss.pods[p] = struct{}{}
	return ss, nil
}

// detachLocked removes p from ss; the last pod's going stops the session. The caller holds s.mu.
func (s *Server) detachLocked(ss *session, p *pod) {
	delete(ss.pods, p)
	if len(ss.pods) > 0 {
		ss.offerNewest()
		return
	}
	if s.sessions[ss.key] == ss {
		delete(s.sessions, ss.key)
	}
	s.stopping.Add(1)
	go func() { defer s.stopping.Done(); ss.stop() }() // waits for the refresher, which may be in a refresh: not under s.mu
	s.log.Info("pod identity: session stopped: no pod uses it any more", "session", ss.spec.Name(), "role", ss.spec.RoleARN)
}

// checkListen refuses a listen address other hosts could reach: unspecified always, any but link-local,
// loopback and EKS's fd00:ec2::23 unless allowAny.
func checkListen(addr string, allowAny bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return errors.New("the host must be an IP address")
	}
	ip = ip.Unmap()
	switch {
	case ip.IsUnspecified():
		return errors.New("the unspecified address would serve every pod's credentials on every address of the node")
	case ip.IsLinkLocalUnicast() || ip.IsLoopback() || ip == netip.MustParseAddr("fd00:ec2::23") || allowAny:
		return nil
	}
	return fmt.Errorf("%s is neither link-local nor loopback: other hosts could reach it", ip)
}

// IsHostAddress reports whether ip is a loopback address or an address of one of this host's interfaces
// (in the network namespace of the calling thread: the process's, the node's for a bridge with host
// networking). It is Options.IsNodeAddress's default.
func IsHostAddress(ip netip.Addr) (bool, error) {
	ip = ip.Unmap()
	if ip.IsLoopback() {
		return true, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false, fmt.Errorf("listing this host's addresses: %w", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if have, ok := netip.AddrFromSlice(n.IP); ok && have.Unmap() == ip {
				return true, nil
			}
		}
	}
	return false, nil
}
