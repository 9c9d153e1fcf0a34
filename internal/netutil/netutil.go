// Package netutil holds what every local HTTP server of the bridge shares (credential endpoints, health,
// metrics, the emulator): bind to loopback unless the operator explicitly allows otherwise, start once,
// and shut down promptly.
package netutil

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// ShutdownGrace is how long Close lets in-flight requests finish before closing every connection.
const ShutdownGrace = time.Second

// IsLoopbackHost reports whether host is "localhost" or a loopback IP (127.0.0.0/8, ::1, with or without
// a zone). An empty host (all interfaces) is not loopback.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckBind validates a host:port listen address and refuses a non-loopback host unless allowRemote.
// It reports whether the address is remote (for a warning).
func CheckBind(addr string, allowRemote bool) (remote bool, err error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("invalid listen address %q: %w", addr, err)
	}
	if IsLoopbackHost(host) {
		return false, nil
	}
	if !allowRemote {
		return true, fmt.Errorf("refusing to listen on non-loopback address %q: set allow_remote = true to allow it", addr)
	}
	return true, nil
}

// Close shuts srv down: requests in flight get ShutdownGrace to finish, then every connection is
// closed (including connections opened but never used, which http.Server.Shutdown would wait for).
func Close(srv *http.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	err := srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return srv.Close()
	}
	return err
}

// PlainHTTPAllowed is the one rule for a plain http:// Roles Anywhere endpoint, in flags and config
// alike: allowed to a loopback host (the local emulator) without any flag, and elsewhere only when
// insecure is set. Any other scheme is not this rule's business: it returns true.
func PlainHTTPAllowed(u *url.URL, insecure bool) bool {
	if u == nil || u.Scheme != "http" {
		return true
	}
	return insecure || IsLoopbackHost(u.Hostname())
}

// ParseClientNetwork parses one allowed_clients entry: a network in CIDR notation ("10.0.0.0/24",
// "fd00::/64") or a single address ("10.0.0.5", a /32 or /128). A network with host bits set
// ("10.0.0.5/24") is refused, naming the network it probably means; zones are refused.
func ParseClientNetwork(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or a network in CIDR notation such as \"10.0.0.0/24\"", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a network in CIDR notation such as \"10.0.0.0/24\"", s)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q is an IPv4-mapped IPv6 network: write it as an IPv4 network", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%q has bits set after its /%d prefix: write the network, %q", s, p.Bits(), m.String())
	}
	return p, nil
}
