package endpoint

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/netutil"
)

const (
	imdsTokenPath     = "/latest/api/token"
	imdsCredsListPath = "/latest/meta-data/iam/security-credentials"
	imdsTTLHeader     = "X-aws-ec2-metadata-token-ttl-seconds"
	imdsTokenHeader   = "X-aws-ec2-metadata-token"
	imdsMaxTTLSeconds = 21600
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
	// AllowedClients are the networks whose clients may use the endpoint besides loopback ones (always
	// allowed: they are on this host). Required, non-empty, when Addr is not a loopback address: the IP TTL
	// of 1 on token answers keeps a token from crossing a router, but not from reaching a network namespace
	// attached to this host by a veth pair or a bridge (a container), which is one hop away. Requests from
	// any other address get 403.
	AllowedClients []netip.Prefix
	// TokenKey is the key session tokens are authenticated with (TokenKeySize bytes; NewTokenKey): servers
	// given the same key accept each other's tokens for the same RoleName, so a daemon gives its IMDS
	// servers one key, and tokens outlive a config reload. Default: a random key of the server's own.
	TokenKey []byte
	// Conns is the connection budget shared with the process's other servers (netutil.ServerOptions.Conns);
	// default: one of the server's own.
	Conns *netutil.ConnLimit
}

// NewIMDS returns an IMDSv2-compatible credentials endpoint (not yet started). It implements:
//
//   - PUT /latest/api/token with X-aws-ec2-metadata-token-ttl-seconds (1..21600): a session token,
//     sent with an IP TTL (hop limit) of 1 so it cannot be fetched through a router (a network
//     namespace attached to this host is not behind one: see AllowedClients). Tokens are self-contained
//     (HMAC-authenticated, carrying their expiry): no number of token requests makes another client's
//     token invalid before its own expiry;
//   - GET /latest/meta-data/iam/security-credentials/: the role name;
//   - GET /latest/meta-data/iam/security-credentials/<role>: the credentials document.
//
// Every GET needs a live session token in X-aws-ec2-metadata-token (IMDSv1 is not supported).
func NewIMDS(o IMDSOptions) (*Server, error) {
	if o.RoleName == "" || strings.ContainsAny(o.RoleName, "/\r\n") {
		return nil, fmt.Errorf("%s: invalid role name %q: must be non-empty and contain no '/'", nameIMDS, o.RoleName)
	}
	s, err := newServer(common{name: nameIMDS, addr: o.Addr, allowRemote: o.AllowRemote, allowedHosts: o.AllowedHosts,
		logger: o.Logger, clock: o.Clock, onRequest: o.OnRequest, conns: o.Conns})
	if err != nil {
		return nil, err
	}
	if s.remote && len(o.AllowedClients) == 0 {
		return nil, fmt.Errorf("%s: listening on non-loopback address %q needs allowed_clients, the client networks that may get credentials (e.g. [\"10.0.0.0/24\"]): the IP TTL of 1 does not keep them from a container or network namespace attached to this host", nameIMDS, o.Addr)
	}
	clients := make([]netip.Prefix, 0, len(o.AllowedClients))
	for _, p := range o.AllowedClients {
		if !p.IsValid() {
			return nil, fmt.Errorf("%s: invalid allowed_clients entry %q", nameIMDS, p)
		}
		clients = append(clients, p.Masked())
	}
	key := o.TokenKey
	if key == nil {
		if key, err = NewTokenKey(); err != nil {
			return nil, fmt.Errorf("%s: %w", nameIMDS, err)
		}
	}
	if len(key) < TokenKeySize {
		return nil, fmt.Errorf("%s: token key of %d bytes, want %d", nameIMDS, len(key), TokenKeySize)
	}
	h := &imdsHandler{s: s, role: o.RoleName, clients: clients, tokens: imdsTokens{key: key, scope: o.RoleName}}
	s.inner = s.wrap(h)
	return s, nil
}

// imdsHandler serves the IMDSv2 subset SDKs use for credentials.
type imdsHandler struct {
	s       *Server
	role    string
	clients []netip.Prefix // besides loopback; empty: loopback only
	tokens  imdsTokens
}

// allowedClient reports whether the request comes from loopback or an allowed client network.
func (h *imdsHandler) allowedClient(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	ip := ap.Addr().Unmap().WithZone("")
	if ip.IsLoopback() {
		return ip, true
	}
	for _, p := range h.clients {
		if p.Contains(ip) {
			return ip, true
		}
	}
	return ip, false
}

func (h *imdsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if ip, ok := h.allowedClient(r); !ok {
		http.Error(w, fmt.Sprintf("client address %s is not in imds.allowed_clients", ip), http.StatusForbidden)
		return
	}
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
	if c, ok := r.Context().Value(connKey{}).(net.Conn); ok {
		if err := setHopLimit(c, 1); err != nil {
			h.s.log.Debug("cannot set IP TTL 1 on the token response", "error", err)
		}
	}
	tok := h.tokens.issue(h.s.clock(), ttl)
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set(imdsTTLHeader, strconv.Itoa(ttl))
	_, _ = w.Write([]byte(tok))
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
