package podidentity

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// EnsureAddresses makes the IP of every listen address ("host:port") an address of this host, so that
// the servers can bind it and pods reach it through their default route to the node: an IP the host has
// on any interface already, and a loopback one, is left alone; a missing one is added, as a /32 or
// /128, to the dummy link iface, which is created (and set up) when missing. On a kernel without the
// dummy link driver (some VM kernels) the addresses go to the loopback link instead, which is as local.
// It returns the link used and the addresses it added; a second call adds none.
//
// Only a dummy or the loopback link is used: a link of another kind (eth0, a bridge) is attached to a
// network, and an address on it is announced there (as the primary address of a /32 on that link), so
// an existing link named iface of another kind is refused. IPv6 addresses are added without duplicate
// address detection, which would keep them unusable ("tentative") for a second or two. It needs
// CAP_NET_ADMIN in the host's network namespace (the DaemonSet runs with host networking).
func EnsureAddresses(iface string, listen []string) (link string, added []string, err error) {
	var want []netip.Addr
	for _, l := range listen {
		host, _, err := net.SplitHostPort(l)
		if err != nil {
			return "", nil, fmt.Errorf("listen address %q: %w", l, err)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return "", nil, fmt.Errorf("listen address %q: host is not an IP address", l)
		}
		if ip = ip.Unmap(); !ip.IsLoopback() && !ip.IsUnspecified() {
			want = append(want, ip)
		}
	}
	if len(want) == 0 {
		return "", nil, nil
	}
	have, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return "", nil, fmt.Errorf("listing the host's addresses: %w", err)
	}
	present := map[netip.Addr]bool{}
	for _, a := range have {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			present[ip.Unmap()] = true
		}
	}
	var missing []netip.Addr
	for _, ip := range want {
		if !present[ip] {
			missing = append(missing, ip)
			present[ip] = true // listed twice: added once
		}
	}
	if len(missing) == 0 {
		return "", nil, nil
	}
	l, err := localLink(iface)
	if err != nil {
		return "", nil, err
	}
	link = l.Attrs().Name
	for _, ip := range missing {
		bits := 32
		var flags int
		if ip.Is6() {
			bits, flags = 128, unix.IFA_F_NODAD
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(bits, bits)}, Flags: flags}
		if err := netlink.AddrAdd(l, addr); err != nil && !errors.Is(err, unix.EEXIST) {
			return link, added, fmt.Errorf("adding %s to %s: %w", ip, link, err)
		}
		added = append(added, ip.String())
	}
	return link, added, nil
}

// localLink is the link named iface, up: a dummy one, created when missing, or the loopback link; the
// loopback link when the kernel has no dummy driver.
func localLink(iface string) (netlink.Link, error) {
	link, err := netlink.LinkByName(iface)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		err := netlink.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: iface}})
		if errors.Is(err, unix.EOPNOTSUPP) {
			// No dummy driver: the loopback link is the other link attached to no network.
			if link, err = loopback(); err != nil {
				return nil, fmt.Errorf("creating the dummy interface %s: this kernel has no dummy link driver, and %w", iface, err)
			}
			return link, nil
		}
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("creating the dummy interface %s: %w", iface, err)
		}
		if link, err = netlink.LinkByName(iface); err != nil {
			return nil, fmt.Errorf("interface %s: %w", iface, err)
		}
	case err != nil:
		return nil, fmt.Errorf("interface %s: %w", iface, err)
	}
	if link.Type() != "dummy" && link.Attrs().Flags&net.FlagLoopback == 0 {
		return nil, fmt.Errorf("interface %s exists and is a %s link, neither a dummy nor the loopback one: an address on it would be announced on its network; name another interface (pod_identity.interface)", iface, link.Type())
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("setting %s up: %w", iface, err)
	}
	return link, nil
}

func loopback() (netlink.Link, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing links: %w", err)
	}
	for _, l := range links {
		if l.Attrs().Flags&net.FlagLoopback != 0 {
			return l, netlink.LinkSetUp(l)
		}
	}
	return nil, errors.New("there is no loopback link")
}
