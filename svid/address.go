package svid

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"syscall"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/agentaddr"
)

// Address is a Workload API address and where it came from, for messages: the setting that named it
// ("the agent_address key", "--workload-socket"), "$SPIFFE_ENDPOINT_SOCKET", or "the default".
type Address = agentaddr.Address

// Locate returns the Workload API address to use and where it came from: configured (named by
// configuredFrom, e.g. "the agent_address key") if set, else $SPIFFE_ENDPOINT_SOCKET, else
// DefaultAddress. A bare absolute path is taken as a unix socket. The address's form is checked
// (CheckAddressForm), with the fix in the error.
func Locate(configured, configuredFrom string) (Address, error) {
	return agentaddr.Locate(configured, configuredFrom)
}

// CheckAddressForm checks a Workload API address as written: unix:///absolute/path (three slashes: a
// unix address has no host) or tcp://IP:port. Its errors say what to write instead.
func CheckAddressForm(addr string) error { return agentaddr.CheckForm(addr) }

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
