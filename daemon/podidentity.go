package daemon

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/wiring"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/wiring/podrules"
)

// KubernetesBinary is the build of the bridge that supports pod identity: spiffe-aws-bridge-k8s links the
// Kubernetes client (podidentity/kube), which the other binaries leave out.
const KubernetesBinary = "spiffe-aws-bridge-k8s"

// noPodAuthenticator is the error for a pod_identity block in a daemon built without Kubernetes support
// (no Options.PodAuthenticator): it names the block and the command that runs the same config with it.
func noPodAuthenticator(pi *config.PodIdentity) error {
	file := pi.Pos
	if i := strings.LastIndexByte(file, ':'); i > 0 {
		file = file[:i]
	}
	return &ConfigError{Err: fmt.Errorf("pod_identity (%s): this spiffe-aws-bridge is built without Kubernetes support; run it with %s run --config %s (the chart's image ships both)",
		pi.Pos, KubernetesBinary, file)}
}

// podIdentity is the running pod_identity block.
type podIdentity struct {
	cfg     *config.PodIdentity
	srv     *podidentity.Server
	stopAut func()
}

// nodeName is the pod_identity block's node_name, else $NODE_NAME.
func (d *Daemon) nodeName(pi *config.PodIdentity) (string, error) {
	if pi.NodeName != "" {
		return pi.NodeName, nil
	}
	getenv := d.opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if n := getenv("NODE_NAME"); n != "" {
		return n, nil
	}
	return "", fmt.Errorf("pod_identity (%s): no node name: set node_name, or NODE_NAME from the downward API (fieldRef spec.nodeName)", pi.Pos)
}

// startPodIdentity starts the pod_identity block: the listen addresses on the host, the token
// authenticator, the server. The caller holds d.mu.
func (d *Daemon) startPodIdentity(ctx context.Context, pi *config.PodIdentity) (*podIdentity, error) {
	nodeName, err := d.nodeName(pi)
	if err != nil {
		return nil, err
	}
	newAuth := d.opts.PodAuthenticator
	if newAuth == nil {
		return nil, noPodAuthenticator(pi)
	}
	rules, err := podrules.Compile(pi)
	if err != nil {
		return nil, err
	}
	src, err := d.delegatedSource()
	if err != nil {
		return nil, err
	}
	if pi.Interface != "" {
		link, added, err := podidentity.EnsureAddresses(pi.Interface, pi.Listen)
		if err != nil {
			return nil, fmt.Errorf("pod_identity (%s): %w", pi.Pos, err)
		}
		if len(added) > 0 {
			args := []any{"interface", link, "addresses", added}
			if link != pi.Interface {
				args = append(args, "note", "the kernel has no dummy link driver: the addresses went to the loopback link")
			}
			d.log.Info("pod identity: added the listen addresses to the host", args...)
		}
	}
	p := &podIdentity{cfg: pi}
	var srv *podidentity.Server
	gone := func(uid string) {
		if srv != nil {
			srv.PodDeleted(uid)
		}
	}
	auth, stop, err := newAuth(ctx, podidentity.AuthenticatorOptions{
		Kubeconfig: pi.Kubeconfig, NodeName: nodeName, Audience: pi.Audience, CacheTTL: pi.TokenCacheTTL,
		PodDeleted: func(uid string) { gone(uid) },
	})
	if err != nil {
		return nil, fmt.Errorf("pod_identity (%s): %w", pi.Pos, err)
	}
	p.stopAut = stop
	srv, err = podidentity.New(podidentity.Options{
		Listen:              pi.Listen,
		AllowAnyAddress:     pi.AllowAnyAddress,
		VerifySourceAddress: pi.VerifySourceAddress,
		NodeName:            nodeName,
		Rules:               rules,
		Authenticator:       auth,
		Subscribe: func(selectors []string) (podidentity.Subscription, error) {
			sub, err := src.Subscribe(selectors, svid.Selector{})
			if err != nil {
				return nil, err
			}
			return sub, nil
		},
		NewRefresher: d.podRefresher,
		StartupGrace: podStartupGrace(d.startupGrace),
		Logger:       d.log.Named("pod_identity"),
		Clock:        d.opts.Clock.Now,
		Conns:        d.opts.Conns,
		OnRequest:    d.tel.endpointObserver("pod_identity", ""),
	})
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		if stop != nil {
			stop()
		}
		return nil, fmt.Errorf("pod_identity (%s): %w", pi.Pos, err)
	}
	p.srv = srv
	d.log.Info("pod identity started", "node", nodeName, "listen", srv.Addrs(), "rules", len(pi.Rules), "audience", pi.Audience,
		"verify_source_address", pi.VerifySourceAddress)
	return p, nil
}

// PodIdentityAddrs are the addresses pod identity listens on (nil without a pod_identity block).
func (d *Daemon) PodIdentityAddrs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pod == nil {
		return nil
	}
	return d.pod.srv.Addrs()
}

func (p *podIdentity) stop() {
	if p == nil {
		return
	}
	p.srv.Close()
	if p.stopAut != nil {
		p.stopAut()
	}
}

// podRefresher builds the refresher of a pod identity session with the daemon's machinery (signer,
// STS hops, refresh policy, limiter, wall clock, observers), as a profile's.
func (d *Daemon) podRefresher(spec podidentity.SessionSpec, svids <-chan *svid.SVID, sinks []bridge.Sink) (*bridge.Refresher, error) {
	pc, ok := podrules.Profile(spec)
	if !ok {
		return nil, fmt.Errorf("pod_identity: %s: no settings", spec.RuleName)
	}
	var observer bridge.Observer = d.tel
	if d.opts.Observer != nil {
		observer = multiObserver{d.tel, d.opts.Observer}
	}
	return bridge.NewRefresher(bridge.RefresherOptions{
		Profile:        pc.Name,
		Session:        wiring.Session(pc),
		SVIDs:          svids,
		Client:         d.creator(pc),
		AssumeRoleARNs: assumeRoleARNs(pc),
		Sinks:          sinks,
		Policy:         d.policy(pc),
		OnIdentityLoss: bridge.IdentityLossPolicy(pc.OnIdentityLoss),
		Clock:          d.opts.Clock,
		WallClock:      d.wall,
		Limiter:        d.limiter(pc),
		Logger:         d.log,
		Observer:       observer,
	})
}

// reloadPodIdentity applies a new pod_identity block, or says why it needs a restart. It returns the
// function that commits the change (run once the profiles are applied) and the one that undoes it. The
// caller holds d.mu.
func (d *Daemon) reloadPodIdentity(ctx context.Context, cfg *config.Config) (commit, undo func(), err error) {
	old, now := d.pod, cfg.PodIdentity
	nop := func() {}
	switch {
	case old == nil && now == nil:
		return nop, nop, nil
	case old == nil:
		p, err := d.startPodIdentity(ctx, now)
		if err != nil {
			return nil, nil, err
		}
		return func() { d.pod = p }, p.stop, nil
	case now == nil:
		return func() { old.stop(); d.pod = nil; d.log.Info("pod_identity removed; stopped it") }, nop, nil
	}
	a, b := *old.cfg, *now
	a.Rules, b.Rules, a.Pos, b.Pos = nil, nil, "", ""
	if !reflect.DeepEqual(a, b) {
		return nil, nil, fmt.Errorf("pod_identity (%s): listen, interface, node_name, audience, kubeconfig, token_cache_ttl and verify_source_address changes need a restart of the bridge; only rules are reloaded", now.Pos)
	}
	rules, err := podrules.Compile(now)
	if err != nil {
		return nil, nil, err
	}
	if old.cfg.Equal(now) {
		return nop, nop, nil
	}
	return func() {
		old.srv.SetRules(rules)
		old.cfg = now
		d.log.Info("pod_identity rules reloaded; pods were mapped again", "rules", len(now.Rules))
	}, nop, nil
}

// podStartupGrace is the config's startup_grace for the pod identity server, where 0s means none (the
// server's zero means its default).
func podStartupGrace(g time.Duration) time.Duration {
	if g == 0 {
		return -1
	}
	return g
}
