package podidentity_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
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

// node is a "node" network namespace with 169.254.170.23 on its local link and pods attached by veth
// pairs (as a CNI does), each pod namespace with a default route to the node.
type nodeNS struct {
	t    *testing.T
	host *nsThread
	pods int
}

func newNodeNS(t *testing.T) *nodeNS {
	t.Helper()
	n := &nodeNS{t: t, host: newNSThread(t)}
	if err := n.host.run(func() error {
		_, _, err := podidentity.EnsureAddresses("spiffe-aws-pod0", []string{"169.254.170.23:80"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// pod adds a pod namespace; its address is 10.200.N.2, the node's end 10.200.N.1.
func (n *nodeNS) pod() (*nsThread, netip.Addr) {
	t := n.t
	t.Helper()
	i := n.pods
	n.pods++
	podNS := newNSThread(t)
	var podFd int
	if err := podNS.run(func() error {
		var err error
		podFd, err = unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(podFd)
	hostIf, podIf := fmt.Sprintf("sabhost%d", i), fmt.Sprintf("sabpod%d", i)
	if err := n.host.run(func() error {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostIf}, PeerName: podIf}); err != nil {
			return err
		}
		peer, err := netlink.LinkByName(podIf)
		if err != nil {
			return err
		}
		if err := netlink.LinkSetNsFd(peer, podFd); err != nil {
			return err
		}
		veth, err := netlink.LinkByName(hostIf)
		if err != nil {
			return err
		}
		addr, _ := netlink.ParseAddr(fmt.Sprintf("10.200.%d.1/24", i))
		if err := netlink.AddrAdd(veth, addr); err != nil {
			return err
		}
		return netlink.LinkSetUp(veth)
	}); err != nil {
		t.Fatal(err)
	}
	if err := podNS.run(func() error {
		link, err := netlink.LinkByName(podIf)
		if err != nil {
			return err
		}
		addr, _ := netlink.ParseAddr(fmt.Sprintf("10.200.%d.2/24", i))
		if err := netlink.AddrAdd(link, addr); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(link); err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{Gw: net.ParseIP(fmt.Sprintf("10.200.%d.1", i))})
	}); err != nil {
		t.Fatal(err)
	}
	return podNS, netip.MustParseAddr(fmt.Sprintf("10.200.%d.2", i))
}

// nsGet sends a pod SDK's request to http://169.254.170.23/v1/credentials from a socket of ns's
// namespace (dialled on its thread; the request and answer travel from this one, leaving the thread free).
func nsGet(t *testing.T, ns *nsThread, token string) (int, string) {
	t.Helper()
	var c net.Conn
	if err := ns.run(func() error {
		var err error
		c, err = net.DialTimeout("tcp", "169.254.170.23:80", 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	req, _ := http.NewRequest(http.MethodGet, "http://169.254.170.23/v1/credentials", nil)
	req.Header.Set("Authorization", token)
	if err := req.Write(c); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A pod reaches 169.254.170.23 through its default route to the node: a "node" namespace with the
// address on its local link and the bridge listening there, a "pod" namespace attached by a veth pair
// (as a CNI does) whose SDK-style request gets the pod's credentials.
func TestPodReachesTheLinkLocalAddressThroughItsDefaultRoute(t *testing.T) {
	n := newNodeNS(t)
	podNS, ip := n.pod()
	w := newWorld(t, worldOptions{identities: []identity{{"prod", "web"}}, listen: []string{"169.254.170.23:80"}, startIn: n.host.run})
	_, tok := w.podAt("prod", "web", "web-1", ip)
	status, body := nsGet(t, podNS, tok)
	if status != http.StatusOK || !strings.Contains(body, `"AccessKeyId":"ASIA`) || !strings.Contains(body, "assumed-role/prod-web/") {
		t.Fatalf("from the pod's namespace: %d %s", status, body)
	}
}

// A token stolen by a process outside its pod's network namespace gets nothing, on a real topology (a
// node namespace, pods behind veth pairs): pod A's token from pod B, or from a process of the node
// (whose connection to 169.254.170.23 comes from a node address), is 403; a host-network pod's token is
// honoured from the node's own addresses only, so not from a pod.
func TestSecurityTokenStolenOutsideThePodsNetworkNamespace(t *testing.T) {
	n := newNodeNS(t)
	nsA, ipA := n.pod()
	nsB, ipB := n.pod()
	// The node's addresses are those of the node namespace, asked there (the bridge runs in it).
	isNode := func(ip netip.Addr) (ok bool, err error) {
		err = n.host.run(func() error { ok, err = podidentity.IsHostAddress(ip); return err })
		return ok, err
	}
	w := newWorld(t, worldOptions{identities: []identity{{"prod", "web"}, {"kube-system", "agent"}},
		listen: []string{"169.254.170.23:80"}, startIn: n.host.run, isNodeAddress: isNode})
	_, tokA := w.podAt("prod", "web", "web-a", ipA)
	hostPod := podNamed("kube-system", "agent", "agent-x", node)
	hostPod.HostNetwork, hostPod.IPs = true, []netip.Addr{netip.MustParseAddr("192.0.2.10")} // the node's InternalIP
	tokHost := w.auth.Issue(hostPod)

	for _, c := range []struct {
		what, token string
		from        *nsThread
		want        int
		says        string
	}{
		{"pod A's token from pod A", tokA, nsA, http.StatusOK, ""},
		{"pod A's token from pod B", tokA, nsB, http.StatusForbidden, ipB.String()},
		{"pod A's token from a process of the node", tokA, n.host, http.StatusForbidden, "169.254.170.23"},
		{"a host-network pod's token from the node", tokHost, n.host, http.StatusOK, ""},
		{"a host-network pod's token from pod A", tokHost, nsA, http.StatusForbidden, ipA.String()},
	} {
		code, body := nsGet(t, c.from, c.token)
		if code != c.want || !strings.Contains(body, c.says) || (code != http.StatusOK && strings.Contains(body, "AccessKeyId")) {
			t.Errorf("%s: %d %s; want %d saying %q", c.what, code, body, c.want, c.says)
		}
	}
}
