package podidentity

import (
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
)

// pod is a pod that asked for credentials and still runs: its Delegated Identity subscription and the
// session its SVID maps to.
type pod struct {
	s    *Server
	info Pod
	sub  Subscription
	done chan struct{}

	// Under s.mu.
	svid    *svid.SVID // the pod's current SVID; nil before the first or once withdrawn
	session *session   // the session the SVID maps to
	err     error      // why the SVID maps to no session (no rule, an invalid expansion, …)
}

// follow reads the pod's SVIDs until the subscription closes (the pod went, or the server closes).
func (p *pod) follow() {
	defer close(p.done)
	for v := range p.sub.C() {
		p.s.mu.Lock()
		p.svid = v
		p.resolveLocked()
		p.s.notifyLocked()
		p.s.mu.Unlock()
	}
	p.s.mu.Lock()
	p.svid = nil
	if p.session != nil {
		p.s.detachLocked(p.session, p)
		p.session = nil
	}
	p.s.notifyLocked()
	p.s.mu.Unlock()
}

// remap maps the pod's SVID again (the rules changed).
func (p *pod) remap() {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	p.resolveLocked()
	p.s.notifyLocked()
}

// resolveLocked maps the pod's SVID to its session, moving the pod when the mapping changed. The caller
// holds s.mu.
func (p *pod) resolveLocked() {
	if p.svid == nil {
		// Withdrawn: the session loses the identity unless another pod still has it.
		if p.session != nil {
			p.session.offerNewest()
		}
		return
	}
	spec, err := p.s.rules.Match(p.svid.ID)
	if err != nil {
		if p.err == nil || p.err.Error() != err.Error() {
			p.s.log.Warn("pod identity: pod gets no credentials", "pod", p.info.String(), "error", err)
		}
		p.err = err
		if p.session != nil {
			p.s.detachLocked(p.session, p)
			p.session = nil
		}
		return
	}
	p.err = nil
	if p.session != nil && p.session.key == spec.Key() {
		p.session.offer(p.svid)
		return
	}
	if p.session != nil {
		p.s.detachLocked(p.session, p)
		p.session = nil
	}
	ss, err := p.s.attachLocked(spec, p)
	if err != nil {
		p.err = err
		p.s.log.Error("pod identity: cannot start the session", "pod", p.info.String(), "session", spec.Name(), "error", err)
		return
	}
	p.session = ss
	ss.offer(p.svid)
}
