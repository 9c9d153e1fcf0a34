// Package hook holds the bridge sinks that tell something else that credentials were refreshed,
// rather than delivering the credentials themselves: running a command (Command) and signalling a
// process (Signal). Neither ever passes the secret access key or the session token on: a command sees
// the profile name, the access key id and the expiry in its environment; the workload is expected to
// re-read its credentials from another sink (credentials file, endpoint).
package hook

import (
	"context"
	"errors"
	"fmt"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/signame"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/trusted"
)

const (
	// DefaultTimeout is how long an on_refresh command may run when CommandOptions.Timeout is zero.
	DefaultTimeout = 30 * time.Second
	// maxOutput caps the combined output of a command kept for the log.
	maxOutput = 4 << 10
	// waitDelay is how long Wait waits for the output pipes after the process was killed.
	waitDelay = 2 * time.Second
)

// Environment variables set for an on_refresh command.
const (
	// EnvProfile holds the profile name.
	EnvProfile = "SPIFFE_AWS_BRIDGE_PROFILE"
	// EnvExpiration holds the credentials' expiry, RFC 3339 UTC.
	EnvExpiration = "SPIFFE_AWS_BRIDGE_EXPIRATION"
	// EnvAccessKeyID holds the access key id (not a secret on its own).
	EnvAccessKeyID = "SPIFFE_AWS_BRIDGE_ACCESS_KEY_ID"
	// EnvRoleARN holds the assumed-role ARN the credentials act as (empty when unknown).
	EnvRoleARN = "SPIFFE_AWS_BRIDGE_ROLE_ARN"
)

// CommandOptions configures an on_refresh command hook.
type CommandOptions struct {
	// Profile is the profile name, passed to the command as SPIFFE_AWS_BRIDGE_PROFILE.
	Profile string
	// Command is the program and its arguments; it is executed directly, not through a shell.
	Command []string
	// Timeout bounds one run; the process group is killed when it expires. Default DefaultTimeout.
	Timeout time.Duration
	// Logger receives the command's output (Debug) and failures (Warn); default: a null logger.
	Logger hclog.Logger
	// Trust, when set (a bridge running as root sets it to its own identity), holds the program to
	// internal/trusted's rules for that identity: NewCommand finds Command[0] once (on PATH when it has no
	// slash) and fails when it is not found or someone else could have written it; Put runs that absolute
	// path, never consulting PATH again, and checks it again right before every run, refusing to run it once
	// someone else could have written it. Nil: Command[0] is looked up on PATH at every run, so a program
	// missing at start may appear later.
	Trust *trusted.Process
}

// programWhat names the program in internal/trusted's refusals.
const programWhat = "on_refresh program"

// Command runs a program after each refresh. It implements the bridge Sink method set.
type Command struct {
	profile string
	argv    []string
	path    string           // the absolute path found at start, when trust is set
	trust   *trusted.Process // nil: argv[0] is looked up on PATH at every run
	timeout time.Duration
	log     hclog.Logger
}

// NewCommand returns an on_refresh hook running o.Command.
func NewCommand(o CommandOptions) (*Command, error) {
	if len(o.Command) == 0 || o.Command[0] == "" {
		return nil, errors.New("on_refresh: command is empty")
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("on_refresh: negative timeout %s", o.Timeout)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	c := &Command{
		profile: o.Profile,
		argv:    append([]string(nil), o.Command...),
		timeout: o.Timeout,
		log:     o.Logger,
	}
	if o.Trust != nil {
		p := *o.Trust
		path, err := findProgram(o.Command[0])
		if err != nil {
			return nil, err
		}
		if _, err := trusted.Check(path, p, programWhat); err != nil {
			return nil, fmt.Errorf("on_refresh.command %q: %w", o.Command[0], err)
		}
		c.path, c.trust = path, &p
	}
	return c, nil
}

// findProgram finds name as exec.Command would (on PATH when it has no slash) and returns its absolute
// path; not finding it is an error naming the program and the PATH searched.
func findProgram(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		if strings.Contains(name, "/") {
			return "", fmt.Errorf("on_refresh.command %q: program not found: %w (a bridge running as root runs only a program it found and checked when the config was loaded)", name, err)
		}
		return "", fmt.Errorf("on_refresh.command %q: program not found in PATH %q: %w (a bridge running as root runs only a program it found and checked when the config was loaded; an absolute path is safer)", name, os.Getenv("PATH"), err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("on_refresh.command %q: %w", name, err)
	}
	return abs, nil
}

// Name identifies the sink: "on_refresh".
func (c *Command) Name() string { return "on_refresh" }

// Put runs the command once, with the profile name, expiry and access key id in its environment
// (never the secret access key or session token), and waits for it. A non-zero exit, a failure to
// start, or running past the timeout (the whole process group is then killed) is an error.
//
// With CommandOptions.Trust set, the program found at start is checked again first (a few stats) and
// run by that path (its first argument stays as configured); one that someone else could now have
// written (replaced by a file another user owns, a directory above it made writable by others) or that
// is gone is not run: the error names the file, its owner and mode, and the fix.
func (c *Command) Put(ctx context.Context, cr creds.Credentials) error {
	name := c.argv[0]
	if c.trust != nil {
		resolved, err := trusted.Check(c.path, *c.trust, programWhat)
		if err != nil {
			err = fmt.Errorf("on_refresh: not running command %q: %w", c.argv[0], err)
			c.log.Warn("on_refresh command refused", "command", c.argv[0], "path", c.path, "error", err)
			return err
		}
		name = resolved
	}

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, name, c.argv[1:]...)
	cmd.Args[0] = c.argv[0]
	cmd.Env = append(os.Environ(),
		EnvProfile+"="+c.profile,
		EnvExpiration+"="+cr.Expiration.UTC().Format(time.RFC3339),
		EnvAccessKeyID+"="+cr.AccessKeyID,
		EnvRoleARN+"="+cr.AssumedRoleARN,
	)
	out := &cappedBuffer{limit: maxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// Kill the whole group, so that children of a shell die too.
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
			return cmd.Process.Kill()
		}
		return nil
	}
	cmd.WaitDelay = waitDelay

	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	if b := out.String(); b != "" {
		c.log.Debug("command output", "command", c.argv[0], "output", b, "truncated", out.truncated())
	}
	if err == nil {
		c.log.Debug("command succeeded", "command", c.argv[0], "duration", elapsed)
		return nil
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		err = fmt.Errorf("on_refresh: command %q timed out after %s and was killed: %w", c.argv[0], c.timeout, err)
	case ctx.Err() != nil:
		err = fmt.Errorf("on_refresh: command %q canceled: %w", c.argv[0], err)
	default:
		err = fmt.Errorf("on_refresh: command %q failed: %w", c.argv[0], err)
	}
	c.log.Warn("on_refresh command failed", "command", c.argv[0], "error", err, "duration", elapsed)
	return err
}

// Clear does nothing: there is nothing to run when credentials expire.
func (c *Command) Clear(context.Context) error { return nil }

// IsHook marks Command as a hook (bridge.Hook): it delivers no credentials itself, so its success does
// not make a profile deliver, while its failure makes the profile degraded.
func (c *Command) IsHook() {}

// cappedBuffer keeps the first limit bytes written to it and discards the rest.
type cappedBuffer struct {
	mu    sync.Mutex
	limit int
	buf   []byte
	lost  int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(len(p), b.limit-len(b.buf))
	b.buf = append(b.buf, p[:n]...)
	b.lost += len(p) - n
	return len(p), nil
}

func (b *cappedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

func (b *cappedBuffer) truncated() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lost > 0
}

// SignalOptions configures a signal hook.
type SignalOptions struct {
	// PIDFile holds the process id to signal; it is read on every refresh. Required. It must be a regular
	// file (not a symbolic link) owned by root or by the bridge's user and writable by nobody else: see
	// Signal.Put.
	PIDFile string
	// Signal is the signal to send; default SIGHUP.
	Signal syscall.Signal
	// Logger; default: a null logger.
	Logger hclog.Logger
}

// Signal sends a signal to the process named in a pid file after each refresh. It implements the
// bridge Sink method set.
//
// A pid file is an instruction to a bridge that may run as root ("signal this process"), so it is only
// obeyed when it comes from someone entitled to give it: see Put for the rules. A workload that can
// write the pid file (or its directory) cannot make the bridge signal PID 1, the bridge itself, or any
// process of another user.
type Signal struct {
	pidFile string
	sig     syscall.Signal
	log     hclog.Logger
	self    int // the bridge's pid
	euid    int // the bridge's effective uid
	egid    int // the bridge's effective gid
}

// NewSignal returns a signal hook.
func NewSignal(o SignalOptions) (*Signal, error) {
	if o.PIDFile == "" {
		return nil, errors.New("signal: pid_file is required")
	}
	if o.Signal < 0 {
		return nil, fmt.Errorf("signal: invalid signal %d", int(o.Signal))
	}
	if o.Signal == 0 {
		o.Signal = syscall.SIGHUP
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	return &Signal{pidFile: o.PIDFile, sig: o.Signal, log: o.Logger,
		self: os.Getpid(), euid: os.Geteuid(), egid: os.Getegid()}, nil
}

// Name identifies the sink: "signal".
func (s *Signal) Name() string { return "signal" }

// maxPIDFile bounds what is read of a pid file.
const maxPIDFile = 64

// Put reads the pid file and sends the signal to that process, refusing (with an error that says why)
// when:
//   - a directory above the pid file is owned by anyone but root or the bridge's user, or writable by
//     others (a root-owned sticky directory excepted), or is a symbolic link someone else could have made
//     (see readPIDFile);
//   - the pid file is a symbolic link, not a regular file, owned by anyone but root or the bridge's
//     user, writable by others, group-writable with a group other than root's or the bridge's, or has
//     more than one hard link;
//   - the pid is 1 (init) or the bridge's own;
//   - the process's owner (the owner of /proc/<pid>) differs from the pid file's owner.
//
// The process is pinned with pidfd_open before its owner is checked and signalled through that pidfd,
// so a pid reused between the check and the signal is never hit.
func (s *Signal) Put(context.Context, creds.Credentials) error {
	pid, fileUID, err := s.readPIDFile()
	if err != nil {
		return err
	}
	switch pid {
	case 1:
		return fmt.Errorf("signal: pid file %s names pid 1 (init); refusing to signal it", s.pidFile)
	case s.self:
		return fmt.Errorf("signal: pid file %s names the bridge's own pid %d; refusing to signal it", s.pidFile, pid)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	pinned := err == nil
	switch {
	case pinned:
		defer unix.Close(pidfd)
	case errors.Is(err, syscall.ENOSYS):
		// A kernel before 5.3: check, then kill(2).
	default:
		return fmt.Errorf("signal: process %d (from %s): %w", pid, s.pidFile, err)
	}
	var st unix.Stat_t
	procDir := "/proc/" + strconv.Itoa(pid)
	if err := unix.Stat(procDir, &st); err != nil {
		return fmt.Errorf("signal: process %d (from %s): cannot find its owner in %s: %w", pid, s.pidFile, procDir, err)
	}
	if int(st.Uid) != fileUID {
		return fmt.Errorf("signal: pid file %s (owned by uid %d) names process %d, owned by uid %d; refusing to "+
			"signal a process of another user", s.pidFile, fileUID, pid, st.Uid)
	}
	if pinned {
		err = unix.PidfdSendSignal(pidfd, s.sig, nil, 0)
	} else {
		err = syscall.Kill(pid, s.sig)
	}
	if err != nil {
		return fmt.Errorf("signal: send %s to pid %d (from %s): %w", s.sig, pid, s.pidFile, err)
	}
	s.log.Debug("signalled process", "pid", pid, "signal", s.sig.String(), "pid_file", s.pidFile)
	return nil
}

// readPIDFile opens the pid file without following a symbolic link (and without blocking on a FIFO),
// checks who may have written it, and returns the pid it holds and the file's owner.
//
// Its directory is walked from "/" without following a symbolic link that someone other than root or the
// bridge's user could have made or could replace (internal/safefs, with the protected_symlinks rule: an
// operator's /var/run -> /run is followed), and every directory on the way must be owned by root or the
// bridge's user and writable by no one else (a root-owned sticky directory such as /tmp is accepted): a
// workload that owned a directory above the pid file could otherwise swap it for a link to a directory
// holding another root-owned pid file, and have root signal that process.
func (s *Signal) readPIDFile() (pid, uid int, err error) {
	dir, base := filepath.Split(s.pidFile)
	d, err := safefs.OpenDir(dir, safefs.Rules{FollowSymlinks: true}, false)
	if err != nil {
		return 0, 0, fmt.Errorf("signal: pid file %s: %w (a pid file is obeyed only in directories that root or the bridge's user alone can write, such as /run)", s.pidFile, err)
	}
	defer d.Close()
	f, err := d.OpenNoFollow(base)
	if errors.Is(err, unix.ELOOP) {
		return 0, 0, fmt.Errorf("signal: pid file %s is a symbolic link; refusing to follow it (point pid_file at the file itself)", s.pidFile)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("signal: read pid file: %w", err)
	}
	defer f.Close()
	fd := int(f.Fd())
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, 0, fmt.Errorf("signal: read pid file %s: %w", s.pidFile, err)
	}
	mode := fs.FileMode(st.Mode & 0o777)
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return 0, 0, fmt.Errorf("signal: pid file %s is not a regular file", s.pidFile)
	case st.Uid != 0 && int(st.Uid) != s.euid:
		return 0, 0, fmt.Errorf("signal: pid file %s is owned by uid %d; only a pid file owned by root or by the "+
			"bridge's user (uid %d) is obeyed", s.pidFile, st.Uid, s.euid)
	case mode&0o002 != 0:
		return 0, 0, fmt.Errorf("signal: pid file %s is writable by other users (mode %s); refusing to trust it", s.pidFile, mode)
	case mode&0o020 != 0 && st.Gid != 0 && int(st.Gid) != s.egid:
		return 0, 0, fmt.Errorf("signal: pid file %s is writable by group %d (mode %s); refusing to trust it", s.pidFile, st.Gid, mode)
	case st.Nlink > 1:
		return 0, 0, fmt.Errorf("signal: pid file %s has %d hard links; refusing to trust it (another name may be someone else's pid file)", s.pidFile, st.Nlink)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPIDFile+1))
	if err != nil {
		return 0, 0, fmt.Errorf("signal: read pid file %s: %w", s.pidFile, err)
	}
	content := strings.TrimSpace(string(b))
	pid, err = strconv.Atoi(content)
	if err != nil || pid <= 0 || len(b) > maxPIDFile {
		if len(content) > 32 {
			content = content[:32] + "…"
		}
		return 0, 0, fmt.Errorf("signal: pid file %s does not hold a positive process id: %q", s.pidFile, content)
	}
	return pid, int(st.Uid), nil
}

// Check reads the pid file and checks, without sending anything, what Put checks before it signals: the
// pid file's owner and mode, a pid that is neither 1 nor the bridge's, and a live process owned by the pid
// file's owner. It returns the pid. A missing pid file is an error wrapping fs.ErrNotExist.
func (s *Signal) Check() (int, error) {
	pid, fileUID, err := s.readPIDFile()
	if err != nil {
		return 0, err
	}
	switch pid {
	case 1:
		return 0, fmt.Errorf("signal: pid file %s names pid 1 (init); the bridge refuses to signal it", s.pidFile)
	case s.self:
		return 0, fmt.Errorf("signal: pid file %s names the bridge's own pid %d; the bridge refuses to signal it", s.pidFile, pid)
	}
	var st unix.Stat_t
	procDir := "/proc/" + strconv.Itoa(pid)
	if err := unix.Stat(procDir, &st); err != nil {
		return 0, fmt.Errorf("signal: pid file %s names process %d, which does not run (%s: %w)", s.pidFile, pid, procDir, err)
	}
	if int(st.Uid) != fileUID {
		return 0, fmt.Errorf("signal: pid file %s (owned by uid %d) names process %d, owned by uid %d; the bridge refuses to "+
			"signal a process of another user", s.pidFile, fileUID, pid, st.Uid)
	}
	return pid, nil
}

// Clear does nothing: there is nothing to signal when credentials expire.
func (s *Signal) Clear(context.Context) error { return nil }

// IsHook marks Signal as a hook (bridge.Hook), as Command.
func (s *Signal) IsHook() {}

// ParseSignal parses a signal name, with or without the SIG prefix and in any case: "SIGHUP", "HUP",
// "hup"; accepted are HUP, USR1, USR2, TERM, INT and QUIT (the rule of package signame, which the config
// applies too).
func ParseSignal(name string) (syscall.Signal, error) { return signame.Parse(name) }
