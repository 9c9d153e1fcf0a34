package podidentity_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity"
)

// nsThread is a thread of its own in a new network namespace (its loopback up) that runs the functions
// it is given: sockets created there belong to that namespace.
type nsThread struct{ do chan func() }

func newNSThread(t *testing.T) *nsThread {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace (CI runs as root)")
	}
	n := &nsThread{do: make(chan func())}
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		err := unix.Unshare(unix.CLONE_NEWNET)
		if err == nil {
			var lo netlink.Link
			if lo, err = netlink.LinkByName("lo"); err == nil {
				err = netlink.LinkSetUp(lo)
			}
		}
		ready <- err
		if err != nil {
			return
		}
		for f := range n.do {
			f()
		}
	}()
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(n.do) })
	return n
}

// run runs fn on the thread and returns its error.
func (n *nsThread) run(fn func() error) error {
	done := make(chan error, 1)
	n.do <- func() { done <- fn() }
	return <-done
}

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

// A pod reaches 169.254.170.23 through its default route to the node: a "node" namespace with the
// address on its local link and the bridge listening there, a "pod" namespace attached by a veth pair
// (as a CNI does) whose SDK-style request gets the pod's credentials.
func TestPodReachesTheLinkLocalAddressThroughItsDefaultRoute(t *testing.T) {
	host, podNS := newNSThread(t), newNSThread(t)
	var podFd int
	if err := podNS.run(func() error {
		var err error
		podFd, err = unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(podFd)
	if err := host.run(func() error {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "sabhost0"}, PeerName: "sabpod0"}); err != nil {
			return err
		}
		peer, err := netlink.LinkByName("sabpod0")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetNsFd(peer, podFd); err != nil {
			return err
		}
		veth, err := netlink.LinkByName("sabhost0")
		if err != nil {
			return err
		}
		addr, _ := netlink.ParseAddr("10.200.0.1/24")
		if err := netlink.AddrAdd(veth, addr); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(veth); err != nil {
			return err
		}
		_, _, err = podidentity.EnsureAddresses("spiffe-aws-pod0", []string{"169.254.170.23:80"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := podNS.run(func() error {
		link, err := netlink.LinkByName("sabpod0")
		if err != nil {
			return err
		}
		addr, _ := netlink.ParseAddr("10.200.0.2/24")
		if err := netlink.AddrAdd(link, addr); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(link); err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{Gw: net.ParseIP("10.200.0.1")})
	}); err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, worldOptions{identities: []identity{{"prod", "web"}}, listen: []string{"169.254.170.23:80"}, startIn: host.run})
	_, tok := w.pod("prod", "web", "web-1")
	var status int
	var body string
	if err := podNS.run(func() error {
		c, err := net.DialTimeout("tcp", "169.254.170.23:80", 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		req, _ := http.NewRequest(http.MethodGet, "http://169.254.170.23/v1/credentials", nil)
		req.Header.Set("Authorization", tok)
		if err := req.Write(c); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		status, body = resp.StatusCode, string(b)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if status != http.StatusOK || !strings.Contains(body, `"AccessKeyId":"ASIA`) || !strings.Contains(body, "assumed-role/prod-web/") {
		t.Fatalf("from the pod's namespace: %d %s", status, body)
	}
}
