package delegated

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Kind classifies why the Delegated Identity API gave a profile no SVID; callers branch on it (health,
// metrics, check's exit status).
type Kind string

// Kinds of failure, each with its own fix (Error.Fix).
const (
	// KindNoAdminSocket: nothing listens at the admin address (the agent has no admin_socket_path, is
	// down, or the address is wrong).
	KindNoAdminSocket Kind = "no_admin_socket"
	// KindNotAuthorized: PermissionDenied "caller not configured as an authorized delegate": the bridge's
	// own SPIFFE ID is not in the agent's authorized_delegates.
	KindNotAuthorized Kind = "not_authorized_delegate"
	// KindNoCallerIdentity: PermissionDenied "no identity issued": the agent attests the bridge process
	// but no registration entry matches the bridge itself, so it cannot be a delegate at all.
	KindNoCallerIdentity Kind = "no_delegate_identity"
	// KindNoMatch: the stream is up but no registration entry matches the workload's selectors (never
	// did, or the entry was deleted).
	KindNoMatch Kind = "no_matching_entry"
	// KindUnimplemented: the agent does not serve the Delegated Identity API (too old, or not SPIRE).
	KindUnimplemented Kind = "unimplemented"
	// KindOther is any other failure.
	KindOther Kind = "error"
)

// Error is a failure to obtain a workload's SVIDs from the Delegated Identity API, with what the
// operator has to do about it.
type Error struct {
	Kind Kind
	// Address is the admin API address.
	Address string
	// Selectors are the workload's selectors ("type:value").
	Selectors []string
	// Err is the underlying gRPC or dial error, if any.
	Err error
}

// Error says what failed, where and for which selectors, then the fix.
func (e *Error) Error() string {
	what := ""
	switch e.Kind {
	case KindNoAdminSocket:
		what = "no SPIRE agent admin API (Delegated Identity API) at " + e.Address
	case KindNotAuthorized:
		what = fmt.Sprintf("the SPIRE agent at %s does not authorise this bridge as a delegate (PermissionDenied: caller not configured as an authorized delegate)", e.Address)
	case KindNoCallerIdentity:
		what = fmt.Sprintf("the SPIRE agent at %s issues no identity to the bridge process itself (PermissionDenied: no identity issued), so it cannot be an authorized delegate", e.Address)
	case KindNoMatch:
		what = fmt.Sprintf("no SPIRE registration entry matches workload_selectors %s (the agent at %s issued no X.509-SVID for them)", quoteList(e.Selectors), e.Address)
	case KindUnimplemented:
		what = fmt.Sprintf("the agent at %s does not serve the Delegated Identity API (SPIRE agent 1.1 or later serves it on admin_socket_path)", e.Address)
	default:
		what = fmt.Sprintf("Delegated Identity API at %s, workload_selectors %s", e.Address, quoteList(e.Selectors))
	}
	msg := what
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if fix := e.Fix(); fix != "" {
		msg += "\n  fix: " + fix
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Fix is what the operator should change, with the agent configuration lines to add.
func (e *Error) Fix() string {
	path := socketPath(e.Address)
	switch e.Kind {
	case KindNoAdminSocket:
		return fmt.Sprintf("enable the agent's admin API: in the SPIRE agent's configuration, agent { admin_socket_path = %q  authorized_delegates = [\"spiffe://<trust domain>/spiffe-aws-bridge\"] } (the admin socket must not be in the directory of socket_path), restart the agent, and check that delegated_identity.admin_address names that socket", path)
	case KindNotAuthorized:
		return "add the SPIFFE ID the agent issues to the bridge process to the agent's configuration, agent { authorized_delegates = [\"spiffe://<trust domain>/spiffe-aws-bridge\"] }, and restart the agent (`spire-agent api fetch x509` run as the bridge's user shows that ID)"
	case KindNoCallerIdentity:
		return "register the bridge itself: spire-server entry create -parentID <the agent's SPIFFE ID> -spiffeID spiffe://<trust domain>/spiffe-aws-bridge -selector unix:uid:0 (the bridge's uid), and list that ID in the agent's authorized_delegates"
	case KindNoMatch:
		var sel strings.Builder
		for _, s := range e.Selectors {
			sel.WriteString(" -selector " + s)
		}
		return fmt.Sprintf("register the workload: spire-server entry create -parentID <the agent's SPIFFE ID> -spiffeID spiffe://<trust domain>/<service>%s (an entry matches when all its selectors are among workload_selectors)", sel.String())
	case KindUnimplemented:
		return "upgrade the SPIRE agent, and point delegated_identity.admin_address at its admin_socket_path (not at socket_path, the Workload API)"
	}
	return ""
}

// Classify wraps a stream or dial error from the agent at addr into an *Error of the right Kind.
func Classify(addr string, selectors []string, err error) *Error {
	e := &Error{Kind: KindOther, Address: addr, Selectors: selectors, Err: err}
	if err == nil {
		e.Kind = KindNoMatch
		return e
	}
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.PermissionDenied:
		if strings.Contains(st.Message(), "no identity issued") {
			e.Kind = KindNoCallerIdentity
		} else {
			e.Kind = KindNotAuthorized
		}
	case codes.Unimplemented:
		e.Kind = KindUnimplemented
	case codes.Unavailable:
		if p := socketPath(addr); p != "" {
			if fi, serr := os.Stat(p); errors.Is(serr, fs.ErrNotExist) || (serr == nil && fi.Mode().Type() != fs.ModeSocket) {
				e.Kind = KindNoAdminSocket
			} else if strings.Contains(st.Message(), "connection refused") {
				e.Kind = KindNoAdminSocket
			}
		}
	}
	return e
}

func socketPath(addr string) string {
	u, err := url.Parse(addr)
	if err != nil || u.Scheme != "unix" {
		return ""
	}
	return u.Path
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
