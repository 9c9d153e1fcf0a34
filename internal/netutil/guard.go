package netutil

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// AnyHost is the AllowedHosts entry that turns the Host check off (the Origin and Sec-Fetch-Site checks
// stay). A server configured with it is open to DNS rebinding from web pages.
const AnyHost = "*"

// RefusalLogInterval is the shortest time between two log lines about refused requests of one server:
// the first refusal is logged at once, later ones at most once per interval with a count of those not
// logged.
const RefusalLogInterval = time.Minute

// maxQuotedHost bounds how much of a received Host or Origin is quoted in refusals and logs.
const maxQuotedHost = 100

// GuardOptions configures Guard.
type GuardOptions struct {
	// Name names the server in refusals and logs, e.g. "imds".
	Name string
	// Addr is the host:port the server is bound to, with the actual port (the listener's address). A
	// host name (e.g. "localhost:9911") is accepted as the bind host name; an empty or unspecified host
	// (":9911", "0.0.0.0:9911", "[::]:9911") is a wildcard bind.
	Addr string
	// BindHost is the host name the operator configured for the bind (e.g. "localhost"), accepted with
	// the bound port; "" when the bind was given as an IP address.
	BindHost string
	// AllowedHosts are further accepted Host values: "name" (any port) or "name:port" (that port only);
	// the single entry AnyHost turns the Host check off. See ValidateAllowedHosts.
	AllowedHosts []string
	// Logger receives the rate-limited refusal warnings; default: discard.
	Logger hclog.Logger
}

// Guard returns next behind the checks that keep browsers and DNS rebinding away from a local server
// (design.md §7). A request is refused with 403 and a plain-text reason when it
//
//   - carries an Origin header (any value, "null" included): browsers send it on cross-origin and on
//     non-GET requests, no AWS SDK, kubelet or Prometheus does;
//   - carries Sec-Fetch-Site "cross-site" or "same-site" ("same-origin" and "none" pass);
//   - has a Host that does not name the bound address: the bound IP with the bound port, "localhost"
//     with the bound port when the IP is loopback, BindHost with the bound port, any IP literal with the
//     bound port on a wildcard bind, or an AllowedHosts entry. The port may be left out only when the
//     bound port is 80. Names compare case-insensitively, a trailing dot ignored. A page reached through
//     DNS rebinding always sends its own DNS name as Host.
//
// Refusals are logged at Warn, at most once per RefusalLogInterval, with the server name, the peer, the
// reason and the Host or Origin received (never any other header). Guard fails only on an invalid
// Addr or AllowedHosts.
func Guard(next http.Handler, o GuardOptions) (http.Handler, error) {
	g, err := newGuard(next, o.Name, o.BindHost, o.AllowedHosts, o.Logger)
	if err != nil {
		return nil, err
	}
	b, err := parseBind(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Name, err)
	}
	g.bind(b)
	return g, nil
}

// ValidateAllowedHosts checks allowed_hosts entries: each is a host name or IP address, optionally with
// a port ("name", "name:port", "10.0.0.5", "fd00::1", "[fd00::1]:8080"), with no scheme, path, user or
// spaces; AnyHost may only be the single entry. The error names the offending value.
func ValidateAllowedHosts(hosts []string) error {
	_, _, err := parseAllowed(hosts)
	return err
}

// hostPattern is one allowed_hosts entry: a normalized host and a port (-1: any port).
type hostPattern struct {
	host string
	port int
}

func parseAllowed(hosts []string) (pats []hostPattern, any bool, err error) {
	for _, h := range hosts {
		if h == AnyHost {
			if len(hosts) != 1 {
				return nil, false, fmt.Errorf("allowed_hosts entry %q must be the only entry (it accepts any Host)", h)
			}
			return nil, true, nil
		}
		p, err := parseAllowedEntry(h)
		if err != nil {
			return nil, false, fmt.Errorf("allowed_hosts entry %q: %s", h, err)
		}
		pats = append(pats, p)
	}
	return pats, false, nil
}

func parseAllowedEntry(h string) (hostPattern, error) {
	switch {
	case h == "":
		return hostPattern{}, fmt.Errorf("empty")
	case strings.Contains(h, "://"):
		return hostPattern{}, fmt.Errorf("has a scheme; give a host name or name:port")
	case strings.ContainsAny(h, "/?#"):
		return hostPattern{}, fmt.Errorf("has a path; give a host name or name:port")
	case strings.Contains(h, "@"):
		return hostPattern{}, fmt.Errorf("has a user; give a host name or name:port")
	case strings.IndexFunc(h, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
		return hostPattern{}, fmt.Errorf("has spaces or control characters")
	case strings.Contains(h, "*"):
		return hostPattern{}, fmt.Errorf(`wildcards are not supported (only the single entry "*", which accepts any Host)`)
	}
	if !strings.HasPrefix(h, "[") && strings.Count(h, ":") > 1 {
		// A bare IPv6 address: any port.
		ip, err := netip.ParseAddr(h)
		if err != nil {
			return hostPattern{}, fmt.Errorf("not an IPv6 address (an IPv6 address with a port goes in brackets: [fd00::1]:8080)")
		}
		return hostPattern{host: ipKey(ip), port: -1}, nil
	}
	key, port, ok := parseHost(h)
	if !ok {
		return hostPattern{}, fmt.Errorf("not a host name, IP address, name:port or [IPv6]:port")
	}
	return hostPattern{host: key, port: port}, nil
}

// parseHost parses a Host value: "name", "name:port", "1.2.3.4[:port]" or "[v6][:port]". It returns the
// normalized host (lower case without a trailing dot, or the canonical IP) and the port (-1 if absent).
func parseHost(h string) (key string, port int, ok bool) {
	port = -1
	var host string
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", 0, false
		}
		host, h = h[1:end], h[end+1:]
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() {
			return "", 0, false
		}
		host = ipKey(ip)
		if h != "" {
			if h[0] != ':' {
				return "", 0, false
			}
			if port, ok = parsePort(h[1:]); !ok {
				return "", 0, false
			}
		}
		return host, port, true
	}
	host = h
	if i := strings.IndexByte(h, ':'); i >= 0 {
		host = h[:i]
		if port, ok = parsePort(h[i+1:]); !ok {
			return "", 0, false
		}
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !ip.Is4() {
			return "", 0, false
		}
		return ipKey(ip), port, true
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "" || strings.ContainsAny(host, "[]:") {
		return "", 0, false
	}
	return host, port, true
}

// parsePort accepts 1 to 5 decimal digits naming 0..65535.
func parsePort(s string) (int, bool) {
	if s == "" || len(s) > 5 || strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, false
	}
	p, err := strconv.Atoi(s)
	return p, err == nil && p <= 65535
}

// ipKey is the normalized form of an IP: IPv4-mapped addresses unmapped, no zone.
func ipKey(ip netip.Addr) string { return ip.Unmap().WithZone("").String() }

// boundAddr is what the guard accepts for the bound address.
type boundAddr struct {
	ip       string // ipKey of the bound IP; "" for a host name or a wildcard bind
	name     string // normalized host name configured for the bind (e.g. "localhost"); "" if none
	loopback bool
	wildcard bool
	port     int
	accepted string // description for refusals
}

// parseBind reads a bound (or configured) host:port.
func parseBind(addr string) (*boundAddr, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("invalid bound address %q: %w", addr, err)
	}
	port, ok := parsePort(portText)
	if !ok {
		return nil, fmt.Errorf("invalid port in bound address %q", addr)
	}
	b := &boundAddr{port: port}
	if host == "" {
		b.wildcard = true
	} else if ip, err := netip.ParseAddr(host); err == nil {
		b.wildcard = ip.IsUnspecified()
		b.loopback = ip.Unmap().IsLoopback()
		if !b.wildcard {
			b.ip = ipKey(ip)
		}
	} else {
		b.name = strings.ToLower(strings.TrimSuffix(host, "."))
		b.loopback = b.name == "localhost"
	}
	return b, nil
}

// guard is the handler Guard returns; Server rebinds it to the listener's address at Start.
type guard struct {
	name     string
	next     http.Handler
	log      hclog.Logger
	bindHost string
	allowed  []hostPattern
	allowedT []string
	any      bool
	bound    atomic.Pointer[boundAddr]
	now      func() time.Time

	mu         sync.Mutex
	lastLog    time.Time
	suppressed int
}

func newGuard(next http.Handler, name, bindHost string, allowed []string, log hclog.Logger) (*guard, error) {
	pats, any, err := parseAllowed(allowed)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if name == "" {
		name = "server"
	}
	g := &guard{name: name, next: next, log: log, allowed: pats, any: any, now: time.Now,
		allowedT: append([]string(nil), allowed...)}
	if bindHost != "" {
		if _, err := netip.ParseAddr(strings.Trim(bindHost, "[]")); err != nil {
			g.bindHost = strings.ToLower(strings.TrimSuffix(bindHost, "."))
		}
	}
	return g, nil
}

// bind sets the address the guard accepts from now on.
func (g *guard) bind(b *boundAddr) {
	if b.name == "" {
		b.name = g.bindHost
	}
	ps := strconv.Itoa(b.port)
	var acc []string
	switch {
	case b.wildcard:
		acc = append(acc, "any IP address with port "+ps)
	case b.ip != "":
		acc = append(acc, net.JoinHostPort(b.ip, ps))
	}
	if b.loopback || b.wildcard {
		acc = append(acc, "localhost:"+ps)
	}
	if b.name != "" && b.name != "localhost" {
		acc = append(acc, b.name+":"+ps)
	}
	if b.port == 80 {
		acc = append(acc, "the same without the port")
	}
	if len(g.allowedT) > 0 {
		acc = append(acc, "allowed_hosts "+strings.Join(g.allowedT, ", "))
	}
	b.accepted = strings.Join(acc, "; ")
	g.bound.Store(b)
}

// hostOK reports whether the Host h names the bound address or an allowed host.
func (g *guard) hostOK(h string) bool {
	if g.any {
		return true
	}
	key, port, ok := parseHost(h)
	if !ok {
		return false
	}
	for _, p := range g.allowed {
		if p.host == key && (p.port < 0 || p.port == port) {
			return true
		}
	}
	b := g.bound.Load()
	if b == nil {
		return false
	}
	if port < 0 {
		port = 80
	}
	if port != b.port {
		return false
	}
	if _, err := netip.ParseAddr(key); err == nil {
		return b.wildcard || key == b.ip
	}
	return key == "localhost" && (b.loopback || b.wildcard) || key == b.name
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if origin, ok := r.Header["Origin"]; ok {
		o := ""
		if len(origin) > 0 {
			o = origin[0]
		}
		g.refuse(w, r, "Origin header", "requests from web pages (Origin header) are not accepted", "origin", truncate(o))
		return
	}
	for _, v := range r.Header.Values("Sec-Fetch-Site") {
		v = strings.ToLower(strings.TrimSpace(v))
		if v == "cross-site" || v == "same-site" {
			g.refuse(w, r, "Sec-Fetch-Site "+v, "requests from web pages (Sec-Fetch-Site: "+v+") are not accepted")
			return
		}
	}
	if !g.hostOK(r.Host) {
		accepted := ""
		if b := g.bound.Load(); b != nil {
			accepted = b.accepted
		}
		what := fmt.Sprintf("Host %s", quoteShort(r.Host))
		if r.Host == "" {
			what = "a request without a Host header"
		}
		g.refuse(w, r, "Host not accepted",
			fmt.Sprintf("%s does not name this server (%s accepts %s); a web page using DNS rebinding sends such a Host. If it is legitimate, add it to allowed_hosts",
				what, g.name, accepted),
			"host", truncate(r.Host))
		return
	}
	g.next.ServeHTTP(w, r)
}

// refuse answers 403 with why, and logs (rate-limited) reason with the extra key/values.
func (g *guard) refuse(w http.ResponseWriter, r *http.Request, reason, why string, kv ...any) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusForbidden)
	_, _ = fmt.Fprintf(w, "spiffe-aws-bridge: refused: %s\n", why)

	now := g.now()
	g.mu.Lock()
	if !g.lastLog.IsZero() && now.Sub(g.lastLog) < RefusalLogInterval {
		g.suppressed++
		g.mu.Unlock()
		return
	}
	suppressed := g.suppressed
	g.lastLog, g.suppressed = now, 0
	g.mu.Unlock()
	args := append([]any{"server", g.name, "remote", r.RemoteAddr, "reason", reason}, kv...)
	if suppressed > 0 {
		args = append(args, "refused_since_last_log", suppressed)
	}
	g.log.Warn("refused a request that may come from a web page (browser or DNS rebinding)", args...)
}

// truncate cuts s to maxQuotedHost bytes (logs quote what needs it).
func truncate(s string) string {
	if len(s) > maxQuotedHost {
		return s[:maxQuotedHost] + "…"
	}
	return s
}

// quoteShort quotes s (%q), truncated to maxQuotedHost bytes.
func quoteShort(s string) string {
	if len(s) > maxQuotedHost {
		return strconv.Quote(s[:maxQuotedHost]) + "…"
	}
	return strconv.Quote(s)
}
