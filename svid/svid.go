// Package svid follows the SPIFFE Workload API: it streams the workload's X.509-SVIDs (no polling) from
// the SPIRE agent, keeps the latest of each, and hands the selected one to every subscriber on each
// rotation. It also fetches JWT-SVIDs for the STS web-identity path.
//
// It is built on go-spiffe v2's workloadapi client. When the agent is down or restarting, the Source keeps
// the last SVIDs it had, reconnects with capped exponential backoff and jitter, and reports its state for
// health checks and metrics. When the agent answers PermissionDenied ("no identity issued": the
// workload's registration entries were deleted), the identities are revoked: the Source drops them and
// tells its subscribers (a nil SVID), and delivers them again if the agent issues them again.
package svid

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/agentaddr"
)

// DefaultAddress is SPIRE's default agent socket, used when neither the configuration nor
// SPIFFE_ENDPOINT_SOCKET names one.
const DefaultAddress = agentaddr.Default

// EnvEndpointSocket is the standard SPIFFE environment variable naming the Workload API address.
const EnvEndpointSocket = agentaddr.EnvEndpointSocket

// SVID is one X.509-SVID: the certificate chain (leaf first) and its private key, which never leaves
// memory.
type SVID struct {
	ID           spiffeid.ID
	Hint         string
	Certificates []*x509.Certificate
	PrivateKey   crypto.Signer
}

// Leaf is the SVID's own certificate.
func (s *SVID) Leaf() *x509.Certificate { return s.Certificates[0] }

// Intermediates are the certificates after the leaf, in the order the agent sent them.
func (s *SVID) Intermediates() []*x509.Certificate { return s.Certificates[1:] }

// ExpiresAt is the leaf's NotAfter.
func (s *SVID) ExpiresAt() time.Time { return s.Leaf().NotAfter }

// String describes the SVID for logs: SPIFFE ID, hint, serial and expiry (no key material).
func (s *SVID) String() string {
	h := ""
	if s.Hint != "" {
		h = " hint=" + s.Hint
	}
	return fmt.Sprintf("%s%s serial=%x expires=%s", s.ID, h, s.Leaf().SerialNumber, s.ExpiresAt().UTC().Format(time.RFC3339))
}

// Selector picks one SVID among those the agent offers: by exact SPIFFE ID, else by hint, else the
// first (default) one. Setting both requires both to match.
type Selector struct {
	ID   string
	Hint string
}

// String describes the selector for logs and errors.
func (s Selector) String() string {
	switch {
	case s.ID != "" && s.Hint != "":
		return fmt.Sprintf("spiffe_id=%s hint=%s", s.ID, s.Hint)
	case s.ID != "":
		return "spiffe_id=" + s.ID
	case s.Hint != "":
		return "hint=" + s.Hint
	}
	return "default SVID"
}

// pick returns the selected SVID among offered, or a *NotFoundError.
func (s Selector) pick(offered []*SVID) (*SVID, error) {
	for _, o := range offered {
		if (s.ID == "" || o.ID.String() == s.ID) && (s.Hint == "" || o.Hint == s.Hint) {
			return o, nil
		}
	}
	nf := &NotFoundError{Selector: s}
	for _, o := range offered {
		nf.OfferedIDs = append(nf.OfferedIDs, o.ID.String())
		if o.Hint != "" {
			nf.OfferedHints = append(nf.OfferedHints, o.Hint)
		}
	}
	return nil, nf
}

// NotFoundError says the selected SVID is not among those the agent issued, and lists what it did issue.
type NotFoundError struct {
	Selector     Selector
	OfferedIDs   []string
	OfferedHints []string
}

// Error implements error.
func (e *NotFoundError) Error() string {
	if len(e.OfferedIDs) == 0 {
		return fmt.Sprintf("no X.509-SVID matching %s: the Workload API has not issued any SVID yet", e.Selector)
	}
	hints := "none"
	if len(e.OfferedHints) > 0 {
		hints = strings.Join(e.OfferedHints, ", ")
	}
	return fmt.Sprintf("no X.509-SVID matching %s: the Workload API offered SPIFFE IDs [%s], hints [%s]",
		e.Selector, strings.Join(e.OfferedIDs, ", "), hints)
}

// ResolveAddress returns the Workload API address to use: configured if set, else
// $SPIFFE_ENDPOINT_SOCKET, else DefaultAddress. A bare absolute path is taken as a unix socket. The
// result is validated as go-spiffe accepts it (unix:///path or tcp://ip:port).
func ResolveAddress(configured string) (string, error) { return agentaddr.Resolve(configured) }

// Pick returns the SVID s selects among offered, or a *NotFoundError listing what was offered. Sources
// other than the Workload API (the Delegated Identity API) select with it too.
func (s Selector) Pick(offered []*SVID) (*SVID, error) { return s.pick(offered) }
