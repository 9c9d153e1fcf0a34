package podidentity_test

import (
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity"
)

// inFreshNetworkNamespace runs fn on a thread of its own in a new network namespace (its loopback up);
// the thread is discarded afterwards. It needs root: CI runs as root and never skips it.
func inFreshNetworkNamespace(t *testing.T, fn func() error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace (CI runs as root)")
	}
	done := make(chan error, 1)
	go func() {
		// Never unlocked: the thread, in its own namespace, exits with the goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			done <- err
			return
		}
		done <- fn()
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// EnsureAddresses adds EKS's IPv4 and IPv6 addresses to a dummy link it creates (or, on a kernel without
// the dummy driver, to the loopback link), so that they can be bound at once (no DAD wait); it is
// idempotent, leaves loopback listen addresses alone, and never adds an address to a link attached to a
// network (an uplink, a veth, a bridge would announce it there).
func TestSecurityPodIdentityAddressesOnALocalLinkOnly(t *testing.T) {
	listen := []string{"169.254.170.23:80", "[fd00:ec2::23]:80", "127.0.0.1:9000"}
	inFreshNetworkNamespace(t, func() error {
		name, added, err := podidentity.EnsureAddresses("spiffe-aws-pod0", listen)
		if err != nil {
			return err
		}
		if !slices.Equal(added, []string{"169.254.170.23", "fd00:ec2::23"}) {
			t.Errorf("added %v, want the two pod identity addresses", added)
		}
		link, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		switch {
		case name == "spiffe-aws-pod0" && link.Type() == "dummy":
		case name == "lo" && netlink.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "probe0"}}) != nil:
			t.Log("this kernel has no dummy link driver: the addresses went to lo")
		default:
			t.Errorf("addresses went to %s (%s)", name, link.Type())
		}
		if link.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("link %s is not up", name)
		}
		for _, l := range listen[:2] {
			ln, err := net.Listen("tcp", l)
			if err != nil {
				t.Errorf("binding %s after EnsureAddresses: %v", l, err)
				continue
			}
			ln.Close()
		}
		count := func() int {
			addrs, _ := netlink.AddrList(link, netlink.FAMILY_ALL)
			n := 0
			for _, a := range addrs {
				if s := a.IP.String(); s == "169.254.170.23" || s == "fd00:ec2::23" {
					n++
				}
			}
			return n
		}
		if n := count(); n != 2 {
			t.Errorf("%d pod identity addresses on %s, want 2", n, name)
		}
		_, again, err := podidentity.EnsureAddresses("spiffe-aws-pod0", listen)
		if err != nil || len(again) != 0 || count() != 2 {
			t.Errorf("second call: added %v, %v, %d addresses; want nothing new", again, err, count())
		}
		// A link attached to a network (here a veth) under the configured name: refused, nothing added.
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "sabveth0"}, PeerName: "sabveth1"}); err != nil {
			return err
		}
		_, _, err = podidentity.EnsureAddresses("sabveth0", []string{"169.254.170.99:80"})
		if err == nil || !strings.Contains(err.Error(), "neither a dummy nor the loopback one") {
			t.Errorf("adding to a veth: %v; want a refusal", err)
		}
		all, _ := netlink.AddrList(nil, netlink.FAMILY_V4)
		for _, a := range all {
			if a.IP.String() == "169.254.170.99" {
				t.Errorf("169.254.170.99 was added to link %d", a.LinkIndex)
			}
		}
		return nil
	})
}
