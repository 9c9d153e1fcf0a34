package netutil

import (
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestListenHintExplainsPrivilegedPortsAndPortsInUse: a port below 1024 refused for lack of privilege
// (health_checks' default 80 as non-root) and a port in use say what to configure.
func TestListenHintExplainsPrivilegedPortsAndPortsInUse(t *testing.T) {
	denied := &net.OpError{Op: "listen", Err: os.NewSyscallError("bind", syscall.EACCES)}
	if h := listenHint("localhost:80", denied); !strings.Contains(h, "ports below 1024 need root or CAP_NET_BIND_SERVICE") || !strings.Contains(h, "bind_port = 8080, instead of 80") {
		t.Errorf("port 80: %q", h)
	}
	if h := listenHint("localhost:8080", denied); h != "" {
		t.Errorf("a high port refused for another reason got the privileged-port hint: %q", h)
	}
	inUse := &net.OpError{Op: "listen", Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}
	if h := listenHint("127.0.0.1:9911", inUse); !strings.Contains(h, "another process listens there") {
		t.Errorf("in use: %q", h)
	}
}
