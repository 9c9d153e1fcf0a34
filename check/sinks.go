package check

// This file proves, before the daemon runs, that each sink of a profile can work as the daemon
// would use it, leaving nothing behind: a credentials file's directory takes a file with the configured
// owner and mode (created and removed), a container endpoint's token file likewise, each endpoint's port
// can be bound, the on_refresh command is found and executable, and the signal's pid file is one the
// bridge would obey. It backs `check --config`; every failure names the path, address or command and why.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/credfile"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/hook"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/netutil"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/trusted"
)

// Status is a SinkResult's verdict.
type Status int

// Statuses.
const (
	// OK: the sink can work.
	OK Status = iota
	// Warn: nothing is wrong yet, but the sink fails until something outside the bridge changes (a pid
	// file the workload has not written yet). Not counted as a problem.
	Warn
	// Fail: the sink cannot work as configured; the daemon would report it failing.
	Fail
)

// SinkResult is what one sink probe found.
type SinkResult struct {
	// Sink names what was probed: the block and its path, address or command.
	Sink string
	// Status is the verdict.
	Status Status
	// Detail says what was proved, or what cannot work and why.
	Detail string
}

// SinkOptions configures the sink probes; the zero value is ready to use.
type SinkOptions struct {
	// Listen binds a port (default net.Listen): the port probe binds and closes.
	Listen func(network, addr string) (net.Listener, error)
	// HTTPClient asks a port that is already bound whether the bridge itself serves it (default: a
	// client with a 2 s timeout).
	HTTPClient *http.Client
	// LookPath finds the on_refresh command (default exec.LookPath).
	LookPath func(string) (string, error)
}

// Sinks probes every sink of p, in the order of the config reference.
func Sinks(ctx context.Context, p config.Profile, o SinkOptions) []SinkResult {
	if o.Listen == nil {
		o.Listen = net.Listen
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 2 * time.Second}
	}
	if o.LookPath == nil {
		o.LookPath = exec.LookPath
	}
	var out []SinkResult
	if f := p.CredentialsFile; f != nil {
		out = append(out, credentialsFile(f))
	}
	if m := p.IMDS; m != nil {
		out = append(out, port(ctx, o, "imds", m.BindAddress, m.BindPort, m.AllowRemote, imdsServes(p.Name)))
	}
	if c := p.ContainerEndpoint; c != nil {
		out = append(out, port(ctx, o, "container_endpoint", c.BindAddress, c.BindPort, c.AllowRemote, containerServes(c.Path)))
		out = append(out, tokenFile(c))
	}
	if h := p.OnRefresh; h != nil {
		out = append(out, command(o, h.Command[0]))
	}
	if s := p.Signal; s != nil {
		out = append(out, pidFile(s))
	}
	return out
}

func credentialsFile(f *config.CredentialsFile) SinkResult {
	r := SinkResult{Sink: "credentials_file " + f.Path}
	owner, group, err := ids("credentials_file.owner", f.Owner, "credentials_file.group", f.Group)
	if err != nil {
		return fail(r, err)
	}
	s, err := credfile.New(credfile.Options{Path: f.Path, Profile: f.ProfileName, Owner: owner, Group: group, Mode: f.Mode,
		FollowSymlinks: f.FollowSymlinks, AllowSharedDirectory: f.AllowSharedDirectory})
	if err != nil {
		return fail(r, err)
	}
	what, err := s.Probe()
	if err != nil {
		return fail(r, err)
	}
	r.Detail = what
	return r
}

func tokenFile(c *config.ContainerEndpoint) SinkResult {
	r := SinkResult{Sink: "container_endpoint.auth_token_file " + c.AuthTokenFile}
	owner, group, err := ids("container_endpoint.auth_token_owner", c.AuthTokenOwner, "container_endpoint.auth_token_group", c.AuthTokenGroup)
	if err != nil {
		return fail(r, err)
	}
	rules := safefs.Rules{Owner: owner, Group: group, Mode: c.AuthTokenMode, FollowSymlinks: c.FollowSymlinks, AllowSharedDirectory: c.AllowSharedDirectory}
	if err := rules.Check(); err != nil {
		return fail(r, fmt.Errorf("%s: %w", c.AuthTokenFile, err))
	}
	what, err := safefs.ProbeWrite(c.AuthTokenFile, rules)
	if err != nil {
		return fail(r, err)
	}
	r.Detail = what
	return r
}

// ids resolves owner and group names or ids as the daemon does; the error names the key and its value.
func ids(ownerKey, owner, groupKey, group string) (safefs.ID, safefs.ID, error) {
	uid, err := safefs.LookupOwner(owner)
	if err != nil {
		return safefs.ID{}, safefs.ID{}, fmt.Errorf("%s %q: %w (name an existing user or a numeric id)", ownerKey, owner, err)
	}
	gid, err := safefs.LookupGroup(group)
	if err != nil {
		return safefs.ID{}, safefs.ID{}, fmt.Errorf("%s %q: %w (name an existing group or a numeric id)", groupKey, group, err)
	}
	return uid, gid, nil
}

// port binds host:port and closes it. A port already bound is fine when serves finds the bridge's own
// endpoint behind it (the daemon runs with this config); otherwise it cannot work.
func port(ctx context.Context, o SinkOptions, block, host string, p int, allowRemote bool, serves func(context.Context, *http.Client, string) bool) SinkResult {
	addr := net.JoinHostPort(host, strconv.Itoa(p))
	r := SinkResult{Sink: block + " " + addr}
	if _, err := netutil.CheckBind(addr, allowRemote); err != nil {
		return fail(r, fmt.Errorf("%s: %w", block, err))
	}
	if p == 0 {
		r.Detail = "port 0: the bridge binds a free port at start"
		return r
	}
	ln, err := o.Listen("tcp", addr)
	if err == nil {
		ln.Close()
		r.Detail = "the port can be bound"
		return r
	}
	if errors.Is(err, syscall.EADDRINUSE) && serves(ctx, o.HTTPClient, addr) {
		r.Detail = "the port is bound by a running bridge serving this endpoint"
		return r
	}
	hint := ""
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		hint = " (another process listens there: stop it, or choose another bind_port)"
	case errors.Is(err, syscall.EACCES):
		hint = " (ports below 1024 need root or CAP_NET_BIND_SERVICE: choose a port above 1023)"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		hint = " (no interface of this host has that address: fix bind_address)"
	}
	return fail(r, fmt.Errorf("%s: cannot listen on %s: %w%s", block, addr, err, hint))
}

// imdsServes reports whether an IMDSv2 endpoint at addr lists role (the profile's name): the bridge's.
// It asks for a token and the role list, never for credentials.
func imdsServes(role string) func(context.Context, *http.Client, string) bool {
	return func(ctx context.Context, c *http.Client, addr string) bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+addr+"/latest/api/token", nil)
		if err != nil {
			return false
		}
		req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "10")
		token, ok := fetch(c, req)
		if !ok {
			return false
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/latest/meta-data/iam/security-credentials/", nil)
		if err != nil {
			return false
		}
		req.Header.Set("X-aws-ec2-metadata-token", token)
		roles, ok := fetch(c, req)
		return ok && strings.TrimSpace(roles) == role
	}
}

// containerServes reports whether a container credentials endpoint at addr answers a request without
// the token at path as the bridge does (401, code Unauthorized). It sends no token.
func containerServes(path string) func(context.Context, *http.Client, string) bool {
	return func(ctx context.Context, c *http.Client, addr string) bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
		if err != nil {
			return false
		}
		resp, err := c.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return resp.StatusCode == http.StatusUnauthorized && strings.Contains(string(body), `"Code":"Unauthorized"`)
	}
}

func fetch(c *http.Client, req *http.Request) (string, bool) {
	resp, err := c.Do(req)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return string(body), err == nil && resp.StatusCode == http.StatusOK
}

// command finds the on_refresh program as exec does: a name with a slash must be an executable file, a
// bare name is looked up in this process's PATH (the daemon's may differ: a path is safer).
func command(o SinkOptions, name string) SinkResult {
	r := SinkResult{Sink: "on_refresh " + name}
	path, err := o.LookPath(name)
	if err != nil {
		return fail(r, fmt.Errorf("on_refresh.command %q cannot be run: %w", name, err))
	}
	r.Detail = "found " + path + " (executable)"
	// A bridge running as root runs only a program no one else could have written (hook.CommandOptions.Trust):
	// check proves that rule too, as the daemon applies it.
	if self := trusted.Self(); self.UID == 0 {
		if _, err := hook.NewCommand(hook.CommandOptions{Command: []string{path}, Trust: &self}); err != nil {
			return fail(r, err)
		}
		r.Detail += ", writable by root only"
	}
	if !strings.Contains(name, "/") {
		r.Detail += " in this PATH; the daemon's PATH may differ: an absolute path is safer"
	}
	return r
}

func pidFile(s *config.Signal) SinkResult {
	r := SinkResult{Sink: "signal.pid_file " + s.PIDFile}
	sig, err := hook.NewSignal(hook.SignalOptions{PIDFile: s.PIDFile, Signal: s.Signal})
	if err != nil {
		return fail(r, err)
	}
	pid, err := sig.Check()
	if errors.Is(err, fs.ErrNotExist) {
		r.Status = Warn
		r.Detail = fmt.Sprintf("%s does not exist yet: the signal fails (the profile degraded) until the workload writes it", s.PIDFile)
		return r
	}
	if err != nil {
		return fail(r, err)
	}
	r.Detail = fmt.Sprintf("names process %d, which the bridge would signal (%s)", pid, s.Signal)
	return r
}

func fail(r SinkResult, err error) SinkResult {
	r.Status, r.Detail = Fail, err.Error()
	return r
}

// checkSinks proves each profile's sinks as the daemon would use them (Sinks), printing one
// line per probe, and returns the number that cannot work. Without a config there is nothing to probe.
func checkSinks(ctx context.Context, out io.Writer, cfg *config.Config, o SinkOptions) int {
	if cfg == nil {
		return 0
	}
	failures := 0
	for _, p := range cfg.Profiles {
		results := Sinks(ctx, p, o)
		if len(results) == 0 {
			continue
		}
		fmt.Fprintf(out, "\nSinks of profile %q\n", p.Name)
		for _, r := range results {
			verdict := "ok  "
			switch r.Status {
			case Warn:
				verdict = "warn"
			case Fail:
				verdict = "FAIL"
				failures++
			}
			fmt.Fprintf(out, "  %s %s: %s\n", verdict, r.Sink, strings.ReplaceAll(r.Detail, "\n", "\n       "))
		}
	}
	return failures
}
