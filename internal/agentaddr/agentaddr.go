// Package agentaddr holds the SPIRE agent's address rules: where the Workload API address comes from
// (configuration, $SPIFFE_ENDPOINT_SOCKET, the default), the forms go-spiffe accepts (unix:///path,
// tcp://IP:port) and the admin API's unix-only form. The svid and svid/delegated sources apply them when
// they connect, and package config checks a file with them; it imports nothing of the project, so that
// config need not import the sources.
package agentaddr

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// Default is SPIRE's default agent socket, used when neither the configuration nor
// SPIFFE_ENDPOINT_SOCKET names one.
const Default = "unix:///tmp/spire-agent/public/api.sock"

// EnvEndpointSocket is the standard SPIFFE environment variable naming the Workload API address.
const EnvEndpointSocket = "SPIFFE_ENDPOINT_SOCKET"

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
// Default. A bare absolute path is taken as a unix socket. The address's form is checked
// (CheckForm), with the fix in the error.
func Locate(configured, configuredFrom string) (Address, error) {
	a := Address{Addr: configured, From: configuredFrom}
	if a.Addr == "" {
		a = Address{Addr: os.Getenv(EnvEndpointSocket), From: "$" + EnvEndpointSocket}
	}
	if a.Addr == "" {
		return Address{Addr: Default, From: "the default"}, nil
	}
	if strings.HasPrefix(a.Addr, "/") {
		a.Addr = "unix://" + a.Addr
	}
	if err := CheckForm(a.Addr); err != nil {
		return a, fmt.Errorf("invalid Workload API address %q (from %s): %w", a.Addr, a.From, err)
	}
	return a, nil
}

// CheckForm checks a Workload API address as written: unix:///absolute/path (three slashes: a
// unix address has no host) or tcp://IP:port. Its errors say what to write instead.
func CheckForm(addr string) error {
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

// Resolve returns the Workload API address to use: configured if set, else $SPIFFE_ENDPOINT_SOCKET, else
// Default. A bare absolute path is taken as a unix socket. The result is validated as go-spiffe accepts
// it (unix:///path or tcp://ip:port).
func Resolve(configured string) (string, error) {
	a, err := Locate(configured, "configuration")
	if err != nil {
		return "", err
	}
	if err := workloadapi.ValidateAddress(a.Addr); err != nil {
		return "", fmt.Errorf("invalid Workload API address %q (from %s): %w; want unix:///path/to/socket or tcp://IP:port", a.Addr, a.From, err)
	}
	return a.Addr, nil
}

// CheckAdmin checks an admin API address: unix:///absolute/path (SPIRE serves the admin API on a unix
// socket only).
func CheckAdmin(addr string) error {
	if err := CheckForm(addr); err != nil {
		return err
	}
	if !strings.HasPrefix(addr, "unix:") {
		return errors.New("the SPIRE agent's admin API listens on a unix socket only: want unix:///path/to/admin.sock")
	}
	return nil
}
