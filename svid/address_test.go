package svid_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
)

func TestCheckAddressFormSaysWhatToWrite(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"unix:///tmp/agent.sock", ""},
		{"tcp://127.0.0.1:8081", ""},
		{"tcp://[::1]:8081", ""},
		{"unix://tmp/agent.sock", `"tmp" is read as a host name, not as the start of the path (two slashes): use "unix:///tmp/agent.sock"`},
		{"unix:tmp/agent.sock", `use "unix:///tmp/agent.sock"`},
		{"unix://", "needs an absolute path"},
		{"tcp://agent:8081", `host "agent" is not an IP address`},
		{"tcp://127.0.0.1", "want tcp://IP:port"},
		{"tcp://127.0.0.1:99999", `port "99999" is not a port number`},
		{"http://127.0.0.1:1", `scheme "http" is not unix or tcp`},
	} {
		err := svid.CheckAddressForm(tc.addr)
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckAddressForm(%q) = %v, want %q", tc.addr, err, tc.want)
		}
	}
}

func TestLocateNamesWhereTheAddressCameFrom(t *testing.T) {
	t.Setenv(svid.EnvEndpointSocket, "unix:///env.sock")
	if a, err := svid.Locate("/x.sock", "the agent_address key"); err != nil || a.Addr != "unix:///x.sock" || a.From != "the agent_address key" {
		t.Errorf("configured: %+v %v", a, err)
	}
	if a, err := svid.Locate("", "--workload-socket"); err != nil || a.Addr != "unix:///env.sock" || a.From != "$SPIFFE_ENDPOINT_SOCKET" {
		t.Errorf("env: %+v %v", a, err)
	}
	t.Setenv(svid.EnvEndpointSocket, "")
	if a, err := svid.Locate("", "--workload-socket"); err != nil || a.Addr != svid.DefaultAddress || a.From != "the default" {
		t.Errorf("default: %+v %v", a, err)
	}
	t.Setenv(svid.EnvEndpointSocket, "unix://run/agent.sock")
	if _, err := svid.Locate("", "--workload-socket"); err == nil || !strings.Contains(err.Error(), `(from $SPIFFE_ENDPOINT_SOCKET)`) || !strings.Contains(err.Error(), `use "unix:///run/agent.sock"`) {
		t.Errorf("bad env: %v", err)
	}
}

// TestDiagnoseTellsMissingNotASocketAndRefused fetches from a real path in each state and checks that
// the error says which it is, with the address and where it came from.
func TestDiagnoseTellsMissingNotASocketAndRefused(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "file.sock")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.sock"), "no socket at " + filepath.Join(dir, "missing.sock") + ": is the SPIRE agent running, and is this its socket_path?"},
		{regular, regular + " is not a socket (it is a regular file): point at the SPIRE agent's socket_path"},
		{stale, "connection refused: nothing listens there (is the SPIRE agent running?"},
	} {
		a := svid.Address{Addr: "unix://" + tc.path, From: "the agent_address key"}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := svid.FetchX509(ctx, a.Addr, svid.Selector{})
		cancel()
		got := svid.Diagnose(a, err)
		if got == nil || !strings.Contains(got.Error(), tc.want) || !strings.Contains(got.Error(), "Workload API unix://"+tc.path+" (from the agent_address key)") {
			t.Errorf("%s: %v\nwant it to contain %q", tc.path, got, tc.want)
		}
	}
}
