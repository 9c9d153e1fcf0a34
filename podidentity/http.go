package podidentity

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/endpoint"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid/delegated"
)

// credentialsPath is the path AWS_CONTAINER_CREDENTIALS_FULL_URI names, as EKS Pod Identity's.
const credentialsPath = "/v1/credentials"

// pollInterval bounds how late a waiting request notices a change that sends no event (a Delegated
// Identity stream's status).
const pollInterval = 25 * time.Millisecond

// answer is a refusal: the status, the error code SDKs show and a message naming what is wrong.
type answer struct {
	status        int
	code, message string
}

func (s *Server) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if _, ok := r.Header["X-Forwarded-For"]; ok {
			endpoint.WriteError(w, http.StatusForbidden, "Forbidden", "forwarded requests are not accepted")
			return
		}
		if r.URL.Path != credentialsPath {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		src, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil { // net/http sets it from the connection: never
			endpoint.WriteError(w, http.StatusInternalServerError, "InternalError", "the request's source address is unknown")
			return
		}
		c, a := s.credentials(r.Context(), r.Header.Get("Authorization"), src.Addr().Unmap().WithZone(""))
		if a != nil {
			endpoint.WriteError(w, a.status, a.code, a.message)
			return
		}
		endpoint.WriteContainerCredentials(w, c)
	})
}

// credentials authenticates token, checks that the request comes from its pod (source, its TCP source
// address) and returns the pod's credentials, waiting up to FirstRequestWait for the pod's SVID and its
// session's first credentials.
func (s *Server) credentials(ctx context.Context, token string, source netip.Addr) (creds.Credentials, *answer) {
	if token == "" {
		return creds.Credentials{}, &answer{http.StatusUnauthorized, "Unauthorized",
			"no service-account token in the Authorization header: point AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE at the pod's projected token"}
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.FirstRequestWait+5*time.Second)
	defer cancel()
	info, err := s.o.Authenticator.Authenticate(ctx, token)
	if err != nil {
		return creds.Credentials{}, s.refusal(err)
	}
	if s.o.NodeName != "" && info.Node != "" && info.Node != s.o.NodeName {
		return creds.Credentials{}, &answer{http.StatusForbidden, "Forbidden",
			fmt.Sprintf("pod %s runs on node %q; this bridge serves node %q", info, info.Node, s.o.NodeName)}
	}
	if s.o.VerifySourceAddress {
		if a := s.checkSource(ctx, info, source); a != nil {
			return creds.Credentials{}, a
		}
	}
	p, err := s.podFor(info)
	if err != nil {
		return creds.Credentials{}, &answer{http.StatusServiceUnavailable, "ServiceUnavailable", err.Error()}
	}
	return s.await(ctx, p)
}

// refusal is the answer to an Authenticator's error.
func (s *Server) refusal(err error) *answer {
	var st interface{ HTTPStatus() int }
	if errors.As(err, &st) {
		switch code := st.HTTPStatus(); code {
		case http.StatusUnauthorized:
			err = fmt.Errorf("%w: %w", ErrUnauthenticated, err)
		case http.StatusForbidden:
			err = fmt.Errorf("%w: %w", ErrForbidden, err)
		}
	}
	switch {
	case errors.Is(err, ErrUnauthenticated):
		return &answer{http.StatusUnauthorized, "Unauthorized", err.Error()}
	case errors.Is(err, ErrForbidden):
		return &answer{http.StatusForbidden, "Forbidden", err.Error()}
	}
	s.log.Warn("pod identity: cannot verify a token", "error", err)
	return &answer{http.StatusServiceUnavailable, "ServiceUnavailable", "cannot verify the service-account token now: " + err.Error()}
}

// checkSource refuses a request whose source address is not info's pod's: one of its IPs, or for a
// host-network pod an address of this node. A pod whose IPs are not known yet is waited for (AddressWaiter)
// and, if they are still unknown, answered 503: the request cannot be tied to the pod yet.
func (s *Server) checkSource(ctx context.Context, info Pod, source netip.Addr) *answer {
	if !info.HostNetwork && len(info.IPs) == 0 {
		if w, ok := s.o.Authenticator.(AddressWaiter); ok {
			p, err := w.WaitAddresses(ctx, info.UID)
			if err != nil {
				return s.refusal(err)
			}
			info = p
		}
	}
	switch {
	case info.HostNetwork:
		local, err := s.o.IsNodeAddress(source)
		if err != nil {
			s.log.Warn("pod identity: cannot tell whether a source address is this node's", "source", source, "error", err)
			return &answer{http.StatusServiceUnavailable, "ServiceUnavailable", fmt.Sprintf("cannot tell whether %s is an address of this node: %v", source, err)}
		}
		if local {
			return nil
		}
		s.log.Warn("pod identity: refused a host-network pod's token from outside the node's network namespace", "pod", info.String(),
			"pod_uid", info.UID, "source", source)
		return &answer{http.StatusForbidden, "SourceAddress", fmt.Sprintf(
			"the request comes from %s, which is not an address of this node; the token of pod %s (host network) is honoured only from the node's own addresses",
			source, info)}
	case len(info.IPs) == 0:
		s.log.Warn("pod identity: a pod's IP is not known yet; cannot tie the request to it", "pod", info.String(), "pod_uid", info.UID, "source", source)
		return &answer{http.StatusServiceUnavailable, "PodAddressUnknown", fmt.Sprintf(
			"the IP address of pod %s is not known yet (its status lists none), so the request from %s cannot be tied to it; retry", info, source)}
	case slices.ContainsFunc(info.IPs, func(ip netip.Addr) bool { return ip.Unmap() == source }):
		return nil
	}
	s.log.Warn("pod identity: refused a pod's token from another address", "pod", info.String(), "pod_uid", info.UID,
		"source", source, "pod_ips", info.IPs)
	return &answer{http.StatusForbidden, "SourceAddress", fmt.Sprintf(
		"the request comes from %s, which is not an address of pod %s: a pod's token is honoured only from the pod itself", source, info)}
}

// await waits for p's credentials, or answers why there are none.
func (s *Server) await(ctx context.Context, p *pod) (creds.Credentials, *answer) {
	deadline := time.NewTimer(s.o.FirstRequestWait)
	defer deadline.Stop()
	var poll *time.Ticker
	for {
		s.mu.Lock()
		changed := s.changed
		ss, perr := p.session, p.err
		gone := s.pods[p.info.UID] != p
		s.mu.Unlock()
		if gone {
			return creds.Credentials{}, &answer{http.StatusUnauthorized, "Unauthorized", fmt.Sprintf("pod %s is gone", p.info)}
		}
		if ss != nil {
			if c, ok := ss.sink.valid(); ok {
				return c, nil
			}
		}
		if perr != nil {
			var nr *NoRuleError
			if errors.As(perr, &nr) {
				return creds.Credentials{}, &answer{http.StatusForbidden, "NoRule", fmt.Sprintf("pod %s: %v, so it gets no AWS credentials", p.info, perr)}
			}
			return creds.Credentials{}, &answer{http.StatusForbidden, "RuleError", fmt.Sprintf("pod %s: %v", p.info, perr)}
		}
		if poll == nil {
			poll = time.NewTicker(pollInterval)
			defer poll.Stop()
		}
		select {
		case <-changed:
		case <-poll.C:
		case <-ctx.Done():
			return creds.Credentials{}, s.why(p, ss)
		case <-deadline.C:
			return creds.Credentials{}, s.why(p, ss)
		}
	}
}

// why says why p has no credentials after the wait.
func (s *Server) why(p *pod, ss *session) *answer {
	if ss == nil {
		st := p.sub.State()
		detail := string(st.Status)
		if st.Err != nil {
			detail += ": " + st.Err.Error()
		}
		if st.Status == delegated.StatusNoMatch {
			if age := s.o.Clock().Sub(p.info.Created); !p.info.Created.IsZero() && age < s.o.StartupGrace {
				return &answer{http.StatusServiceUnavailable, "NoSVIDYet", fmt.Sprintf(
					"SPIRE issues no SVID to pod %s yet (selectors %v): the pod is %s old, and a new pod's registration entry reaches the SPIRE agent seconds after the pod appears (startup_grace %s); retry",
					p.info, p.info.Selectors(), age.Round(time.Second), s.o.StartupGrace)}
			}
			return &answer{http.StatusForbidden, "NoSVID",
				fmt.Sprintf("SPIRE issues no SVID to pod %s (selectors %v): %s", p.info, p.info.Selectors(), detail)}
		}
		return &answer{http.StatusServiceUnavailable, "NoSVIDYet",
			fmt.Sprintf("waiting for the SPIRE agent to issue pod %s its SVID (Delegated Identity API %s); retry", p.info, detail)}
	}
	st := ss.refresher.State()
	msg := fmt.Sprintf("the AWS session for %s (role %s) is being made; retry", ss.spec.SpiffeID, ss.spec.RoleARN)
	if st.LastError != "" {
		msg = fmt.Sprintf("the AWS session for %s (role %s) has no valid credentials: %s", ss.spec.SpiffeID, ss.spec.RoleARN, st.LastError)
	}
	return &answer{http.StatusServiceUnavailable, "NoCredentials", msg}
}

// observe logs and counts every request: method, path, status and peer, never a header (the token).
func (s *Server) observe(r *http.Request, status int) {
	s.log.Debug("pod identity request", "method", r.Method, "path", r.URL.Path, "status", status, "remote", r.RemoteAddr)
	if s.o.OnRequest != nil {
		s.o.OnRequest(status)
	}
}
