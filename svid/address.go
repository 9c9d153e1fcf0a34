package svid

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Address is a Workload API address and where it came from, for messages: the setting that named it
// ("the agent_address key", "--workload-socket"), "$SPIFFE_ENDPOINT_SOCKET", or "the default".
type Address struct {
	// Addr is the address, unix:///path or tcp://ip:port.
	Addr string
	// From says where Addr came from.
	From string
}

// String is "ADDR (from FROM)".
func (a Address) String() string { return fmt.Sprintf("%s (from %s)", a.Addr, a.From) }

// Locate returns the Workload API address to use and where it came from: configured (named by
// configuredFrom, e.g. "the agent_address key") if set, else $SPIFFE_ENDPOINT_SOCKET, else
// DefaultAddress. A bare absolute path is taken as a unix socket. The address's form is checked
// (CheckAddressForm), with the fix in the error.
func Locate(configured, configuredFrom string) (Address, error) {
	a := Address{Addr: configured, From: configuredFrom}
	if a.Addr == "" {
		a = Address{Addr: os.Getenv(EnvEndpointSocket), From: "$" + EnvEndpointSocket}
	}
	if a.Addr == "" {
		return Address{Addr: DefaultAddress, From: "the default"}, nil
	}
	if strings.HasPrefix(a.Addr, "/") {
		a.Addr = "unix://" + a.Addr
	}
	if err := CheckAddressForm(a.Addr); err != nil {
		return a, fmt.Errorf("invalid Workload API address %q (from %s): %w", a.Addr, a.From, err)
	}
	return a, nil
}

// CheckAddressForm checks a Workload API address as written: unix:///absolute/path (three slashes: a
// unix address has no host) or tcp://IP:port. Its errors say what to write instead.
func CheckAddressForm(addr string) error {
	u, err := url.Parse(addr)
	if err != nil {
		return fmt.Errorf("not a URL (%w); want unix:///path/to/socket or tcp://IP:port", err)
	}
	switch u.Scheme {
	case "unix":
		switch {
		case u.Opaque != "":
			return fmt.Errorf("a unix socket address needs an absolute path after three slashes: use %q", "unix:///"+strings.TrimPrefix(u.Opaque, "/"))
		case u.Host != "":
			return fmt.Errorf("%q is read as a host name, not as the start of the path (two slashes): use %q", u.Host, "unix:///"+u.Host+u.Path)
		case u.Path == "" || !strings.HasPrefix(u.Path, "/"):
			return errors.New("a unix socket address needs an absolute path: unix:///path/to/socket")
		case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			return errors.New("a unix socket address has only a path: unix:///path/to/socket")
		}
		return nil
	case "tcp":
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || u.Path != "" && u.Path != "/" {
			return errors.New("want tcp://IP:port, e.g. tcp://127.0.0.1:8081")
		}
		if net.ParseIP(host) == nil {
			return fmt.Errorf("host %q is not an IP address: want tcp://IP:port, e.g. tcp://127.0.0.1:8081", host)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not a port number (1-65535)", port)
		}
		return nil
	default:
		return fmt.Errorf("scheme %q is not unix or tcp: want unix:///path/to/socket or tcp://IP:port", u.Scheme)
	}
}

// Diagnose wraps a failure to reach the Workload API at a with what is wrong, as far as the local
// system tells: the socket is missing, the path is not a socket, nobody listens, or this user may not
// connect. The address and where it came from are always named.
func Diagnose(a Address, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("Workload API %s: %s: %w", a, Hint(a.Addr, err), err)
}

// Hint says in plain words why the Workload API at addr could not be reached, given the error seen.
func Hint(addr string, err error) string {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	u, perr := url.Parse(addr)
	if perr == nil && u.Scheme == "unix" && u.Path != "" {
		fi, serr := os.Stat(u.Path)
		switch {
		case errors.Is(serr, fs.ErrNotExist):
			return fmt.Sprintf("no socket at %s: is the SPIRE agent running, and is this its socket_path?", u.Path)
		case errors.Is(serr, fs.ErrPermission) || strings.Contains(msg, "permission denied"):
			return fmt.Sprintf("permission denied on %s: this user may not reach the agent's socket (check the directory's and socket's permissions)", u.Path)
		case serr == nil && fi.Mode().Type() != fs.ModeSocket:
			return fmt.Sprintf("%s is not a socket (it is a %s): point at the SPIRE agent's socket_path", u.Path, fileKind(fi.Mode()))
		}
	}
	switch {
	case strings.Contains(msg, "connection refused") || errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused: nothing listens there (is the SPIRE agent running? a stale socket of a stopped agent?)"
	case strings.Contains(msg, "PermissionDenied") || strings.Contains(msg, "no identity issued"):
		return "the agent answered but issued no identity to this process: register an entry whose selectors match it"
	}
	return "the Workload API could not be reached"
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "regular file"
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	default:
		return m.Type().String()
	}
}
