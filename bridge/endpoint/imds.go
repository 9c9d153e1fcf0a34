package endpoint

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

const (
	imdsTokenPath     = "/latest/api/token"
	imdsCredsListPath = "/latest/meta-data/iam/security-credentials"
	imdsTTLHeader     = "X-aws-ec2-metadata-token-ttl-seconds"
	imdsTokenHeader   = "X-aws-ec2-metadata-token"
	imdsMaxTTLSeconds = 21600
	// imdsMaxTokens caps the number of live session tokens kept in memory.
	imdsMaxTokens = 10000
)

// IMDSOptions configures an IMDSv2-compatible endpoint.
type IMDSOptions struct {
	// Addr is the host:port to bind, e.g. "127.0.0.1:9911"; port 0 picks an ephemeral port.
	Addr string
	// AllowRemote must be set to bind a non-loopback address.
	AllowRemote bool
	// RoleName is the name listed under /latest/meta-data/iam/security-credentials/. Required; no "/".
	RoleName string
	// Logger receives one Debug line per request and warnings; default: a null logger.
	Logger hclog.Logger
	// Clock is the time source for credential validity and token expiry; default time.Now.
	Clock func() time.Time
	// OnRequest, if set, is called after each request with the response status code.
	OnRequest func(status int)
	// AllowedHosts are Host values accepted besides the bound address (netutil.ServerOptions.AllowedHosts);
	// requests naming any other host, and requests from web pages, are refused with 403.
	AllowedHosts []string
}

// NewIMDS returns an IMDSv2-compatible credentials endpoint (not yet started). It implements:
//
//   - PUT /latest/api/token with X-aws-ec2-metadata-token-ttl-seconds (1..21600): a session token,
//     sent with an IP TTL (hop limit) of 1 so it cannot be fetched from beyond the local network hop;
//   - GET /latest/meta-data/iam/security-credentials/: the role name;
//   - GET /latest/meta-data/iam/security-credentials/<role>: the credentials document.
//
// Every GET needs a live session token in X-aws-ec2-metadata-token (IMDSv1 is not supported).
func NewIMDS(o IMDSOptions) (*Server, error) {
	if o.RoleName == "" || strings.ContainsAny(o.RoleName, "/\r\n") {
		return nil, fmt.Errorf("%s: invalid role name %q: must be non-empty and contain no '/'", nameIMDS, o.RoleName)
	}
	s, err := newServer(nameIMDS, o.Addr, o.AllowRemote, o.AllowedHosts, o.Logger, o.Clock, o.OnRequest)
	if err != nil {
		return nil, err
	}
	h := &imdsHandler{s: s, role: o.RoleName, tokens: newTokenStore(imdsMaxTokens)}
	s.inner = s.wrap(h)
	return s, nil
}

// imdsHandler serves the IMDSv2 subset SDKs use for credentials.
type imdsHandler struct {
	s      *Server
	role   string
	tokens *tokenStore
}

func (h *imdsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == imdsTokenPath {
		h.token(w, r)
		return
	}
	if r.Method != http.MethodGet {
		methodNotAllowed(w, "GET")
		return
	}
	if !h.tokens.valid(r.Header.Get(imdsTokenHeader), h.s.clock()) {
		http.Error(w, "missing, unknown or expired session token", http.StatusUnauthorized)
		return
	}
	switch r.URL.Path {
	case imdsCredsListPath, imdsCredsListPath + "/":
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(h.role))
	case imdsCredsListPath + "/" + h.role:
		h.credentials(w)
	default:
		http.NotFound(w, r)
	}
}

// imdsCredentials is the IMDS security-credentials document.
type imdsCredentials struct {
	Code            string
	LastUpdated     string
	Type            string
	AccessKeyId     string //nolint:revive // wire name fixed by AWS
	SecretAccessKey string
	Token           string
	Expiration      string
}

func (h *imdsHandler) credentials(w http.ResponseWriter) {
	st, ok := h.s.valid()
	if !ok {
		writeNoCredentials(w)
		return
	}
	writeJSON(w, http.StatusOK, imdsCredentials{
		Code:            "Success",
		LastUpdated:     st.updated.UTC().Format(time.RFC3339),
		Type:            "AWS-HMAC",
		AccessKeyId:     st.creds.AccessKeyID,
		SecretAccessKey: st.creds.SecretAccessKey,
		Token:           st.creds.SessionToken,
		Expiration:      st.creds.Expiration.UTC().Format(time.RFC3339),
	})
}

func (h *imdsHandler) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		methodNotAllowed(w, "PUT")
		return
	}
	ttl, err := strconv.Atoi(strings.TrimSpace(r.Header.Get(imdsTTLHeader)))
	if err != nil || ttl < 1 || ttl > imdsMaxTTLSeconds {
		http.Error(w, fmt.Sprintf("%s must be an integer between 1 and %d", imdsTTLHeader, imdsMaxTTLSeconds),
			http.StatusBadRequest)
		return
	}
	tok, err := randomToken()
	if err != nil {
		h.s.log.Error("cannot generate an IMDS session token", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if c, ok := r.Context().Value(connKey{}).(net.Conn); ok {
		if err := setHopLimit(c, 1); err != nil {
			h.s.log.Debug("cannot set IP TTL 1 on the token response", "error", err)
		}
	}
	now := h.s.clock()
	h.tokens.add(tok, now, now.Add(time.Duration(ttl)*time.Second))
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set(imdsTTLHeader, strconv.Itoa(ttl))
	_, _ = w.Write([]byte(tok))
}

// randomToken is 32 random bytes, base64url-encoded.
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// setHopLimit sets the IP TTL (IPv4) and the unicast hop limit (IPv6) of a TCP connection, so the
// packets it sends from now on go at most hops routers away. The setting stays for the rest of the
// connection, which only ever talks to the same, nearby, peer. It succeeds if either option applies
// (an IPv6 socket carrying IPv4-mapped traffic accepts both).
func setHopLimit(c net.Conn, hops int) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return fmt.Errorf("connection %T has no socket", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var v4err, v6err error
	if err := raw.Control(func(fd uintptr) {
		v4err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_TTL, hops)
		v6err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS, hops)
	}); err != nil {
		return err
	}
	if v4err != nil && v6err != nil {
		return errors.Join(v4err, v6err)
	}
	return nil
}

// tokenStore keeps the live IMDS session tokens (by SHA-256, never in clear) with their expiry.
type tokenStore struct {
	mu     sync.Mutex
	limit  int
	expiry map[[sha256.Size]byte]time.Time
}

func newTokenStore(limit int) *tokenStore {
	return &tokenStore{limit: limit, expiry: make(map[[sha256.Size]byte]time.Time)}
}

// add records tok until exp. When the store is full it first forgets the tokens expired at now, then,
// if still full, the one expiring soonest.
func (t *tokenStore) add(tok string, now, exp time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.expiry) >= t.limit {
		for k, e := range t.expiry {
			if !now.Before(e) {
				delete(t.expiry, k)
			}
		}
	}
	for len(t.expiry) >= t.limit {
		var soonestKey [sha256.Size]byte
		var soonest time.Time
		first := true
		for k, e := range t.expiry {
			if first || e.Before(soonest) {
				soonestKey, soonest, first = k, e, false
			}
		}
		delete(t.expiry, soonestKey)
	}
	t.expiry[sha256.Sum256([]byte(tok))] = exp
}

// valid reports whether tok is a live token at now; expired tokens are forgotten.
func (t *tokenStore) valid(tok string, now time.Time) bool {
	if tok == "" {
		return false
	}
	k := sha256.Sum256([]byte(tok))
	t.mu.Lock()
	defer t.mu.Unlock()
	exp, ok := t.expiry[k]
	if !ok {
		return false
	}
	if !now.Before(exp) {
		delete(t.expiry, k)
		return false
	}
	return true
}
