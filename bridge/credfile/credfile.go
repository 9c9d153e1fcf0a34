// Package credfile is the credentials-file sink of the bridge: it keeps one named profile (INI section) of
// an AWS shared credentials file filled with a bridge profile's current credentials, in a file that other
// tools — aws configure, other bridges, people with an editor — edit too.
//
// # What is written
//
// Only the profile's credential keys change: aws_access_key_id, aws_secret_access_key, aws_session_token,
// x_security_token_expires (RFC 3339, UTC) and x_principal_arn (the assumed-role ARN, when known). The
// section's other keys (region, …), every other section and every comment stay byte for byte as they
// were, CRLF line endings included (only a UTF-8 byte order mark is dropped: the AWS SDKs cannot read
// past it). Duplicated sections get the keys in the first one and lose them in the others. The edit is a line-based splice (Merge, Remove) rather than a parse
// and re-serialization, which would reformat the user's file; the result is checked with
// gopkg.in/ini.v1 before it is written. A file the splice cannot edit safely — it is not INI, or it uses
// constructs on which INI readers disagree about where a section ends — is never overwritten: the sink
// fails with a *ParseError naming the file and line (never the line's text, which may hold a secret).
//
// # Atomicity
//
// Each update writes the whole new file to a temporary file in the same directory, fsyncs it, renames it
// over the target and fsyncs the directory (github.com/google/renameio/v2). A reader, or a crash at any
// moment, sees either the old file or the new one, never a mix or a truncated file; a failed write (disk
// full, permissions) leaves the old file untouched and returns an error naming the path, and the
// refresher retries. Temporary files left behind by a writer that was killed are removed by the next
// update.
//
// The file is always written with mode 0600, even when it replaced a file with wider permissions: it
// holds a secret from then on (the tightening is logged). Its owner and group are kept when the previous
// file had different ones (a bridge running as root writing a user's file); if that is not permitted the
// update fails rather than leave the user unable to read their own file. A missing parent directory is
// created with mode 0700. When Path is a symbolic link, the file it points to (following every link in
// the chain) is updated and the link is kept; temporary and lock files go beside that target.
//
// # Locking
//
// The read-modify-write runs under an exclusive advisory lock (flock(2), github.com/gofrs/flock), so two
// bridges — or two profiles of one bridge — writing different sections of one file never lose each
// other's update. The lock is taken on a separate file, "<target>.lock", not on the credentials file
// itself: the rename replaces the credentials file's inode, so a lock held on the old inode would not
// exclude a writer that opened the new one. The lock file is created once and left in place (removing it
// would let two writers lock two different inodes). Waiting for the lock honors the context and gives up
// after Options.LockTimeout.
//
// Tools that do not take the lock — aws configure among them — are not excluded by it. The sink re-reads
// the file right before each write, so their edits are lost only if one lands in the few milliseconds
// between that read and the rename; the rename itself never exposes a partial file to them.
//
// The package needs a Unix-like system (renameio's atomic replace is not available on Windows).
package credfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/gofrs/flock"
	"github.com/google/renameio/v2"
	"github.com/hashicorp/go-hclog"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
)

// DefaultLockTimeout is how long an update waits for the advisory lock when Options.LockTimeout is zero.
const DefaultLockTimeout = 10 * time.Second

// fileMode is the credentials file's mode, whatever the umask or the previous file's mode.
const fileMode fs.FileMode = 0o600

// ErrLockTimeout is wrapped by the error an update returns when it could not take the advisory lock within
// Options.LockTimeout.
var ErrLockTimeout = errors.New("credfile: timed out waiting for the lock")

// Options configures a Sink.
type Options struct {
	// Path is the absolute path of the credentials file, e.g. /home/app/.aws/credentials.
	Path string
	// Profile is the INI section the sink owns, e.g. "default" or "app". See ValidateProfile.
	Profile string
	// Logger receives debug and warning messages (never secrets); default: discard.
	Logger hclog.Logger
	// LockTimeout bounds the wait for the advisory lock; default DefaultLockTimeout.
	LockTimeout time.Duration
}

// Sink writes one profile of a credentials file. It is safe for concurrent use, also with other Sinks
// and other processes writing the same file. It implements bridge.Sink.
type Sink struct {
	path, profile string
	log           hclog.Logger
	lockTimeout   time.Duration
}

// New returns a Sink for opts. It checks the options only; the file is first touched by Put or Clear.
func New(opts Options) (*Sink, error) {
	if !filepath.IsAbs(opts.Path) {
		return nil, fmt.Errorf("credfile: credentials file path %q is not absolute", opts.Path)
	}
	if err := ValidateProfile(opts.Profile); err != nil {
		return nil, err
	}
	if opts.LockTimeout < 0 {
		return nil, fmt.Errorf("credfile: negative lock timeout %s", opts.LockTimeout)
	}
	s := &Sink{path: filepath.Clean(opts.Path), profile: opts.Profile, log: opts.Logger, lockTimeout: opts.LockTimeout}
	if s.log == nil {
		s.log = hclog.NewNullLogger()
	}
	if s.lockTimeout == 0 {
		s.lockTimeout = DefaultLockTimeout
	}
	return s, nil
}

// Name identifies the sink in logs, health output and metrics: credentials_file "<path>" [<profile>].
func (s *Sink) Name() string { return fmt.Sprintf("credentials_file %q [%s]", s.path, s.profile) }

// Put writes c into the profile's section, replacing the credential keys written before and keeping
// everything else in the file.
func (s *Sink) Put(ctx context.Context, c creds.Credentials) error {
	target, err := s.update(ctx, func(old []byte) ([]byte, error) { return Merge(old, s.profile, c) })
	if err != nil {
		return err
	}
	s.log.Debug("credentials written", "path", target, "profile", s.profile,
		"access_key_id", c.AccessKeyID, "expiration", c.Expiration.UTC().Format(time.RFC3339))
	return nil
}

// Clear removes the profile's credential keys, and its section when nothing else is left in it, so that
// no tool reads expired credentials from the file. A missing file or section is not an error.
func (s *Sink) Clear(ctx context.Context) error {
	target, err := s.update(ctx, func(old []byte) ([]byte, error) { return Remove(old, s.profile) })
	if err != nil {
		return err
	}
	s.log.Debug("credentials removed", "path", target, "profile", s.profile)
	return nil
}

// update runs edit on the file's contents (nil when it does not exist) under the lock and atomically
// replaces the file with the result. It returns the path it wrote (Path with symbolic links resolved).
func (s *Sink) update(ctx context.Context, edit func([]byte) ([]byte, error)) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("credfile: %s: %w", s.path, err)
	}
	target, err := resolve(s.path)
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("credfile: creating directory for %s: %w", target, err)
	}
	unlock, err := s.lock(ctx, target+".lock")
	if err != nil {
		return "", err
	}
	defer unlock()

	old, info, err := readFile(target)
	if err != nil {
		return "", err
	}
	data, err := edit(old)
	if pe := (*ParseError)(nil); errors.As(err, &pe) {
		pe.Path = target
		return "", pe
	}
	if err != nil {
		return "", err
	}
	s.removeStaleTemps(dir, filepath.Base(target))
	if info == nil && len(data) == 0 {
		return target, nil // Clear on a missing file
	}
	if info != nil && info.Mode().Perm() == fileMode && string(data) == string(old) {
		return target, nil // nothing to change
	}
	if err := s.write(target, data, info); err != nil {
		return "", err
	}
	return target, nil
}

// resolve follows path while it is a symbolic link (a dangling one included) and returns the final name.
func resolve(path string) (string, error) {
	p := path
	for range 64 {
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return p, nil
		}
		if err != nil {
			return "", fmt.Errorf("credfile: %w", err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return p, nil
		}
		link, err := os.Readlink(p)
		if err != nil {
			return "", fmt.Errorf("credfile: %w", err)
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(p), link)
		}
		p = filepath.Clean(link)
	}
	return "", fmt.Errorf("credfile: %s: too many levels of symbolic links", path)
}

// lock takes the exclusive advisory lock on lockPath, waiting at most the lock timeout.
func (s *Sink) lock(ctx context.Context, lockPath string) (func(), error) {
	lctx, cancel := context.WithTimeoutCause(ctx, s.lockTimeout, ErrLockTimeout)
	defer cancel()
	fl := flock.New(lockPath, flock.SetPermissions(fileMode))
	ok, err := fl.TryLockContext(lctx, 20*time.Millisecond)
	if ok {
		return func() { _ = fl.Unlock() }, nil
	}
	_ = fl.Close()
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("credfile: waiting for lock %s: %w", lockPath, ctx.Err())
	case errors.Is(context.Cause(lctx), ErrLockTimeout):
		return nil, fmt.Errorf("%w %s after %s (another writer holds it)", ErrLockTimeout, lockPath, s.lockTimeout)
	case err != nil:
		return nil, fmt.Errorf("credfile: locking %s: %w", lockPath, err)
	}
	return nil, fmt.Errorf("credfile: could not lock %s", lockPath)
}

// readFile returns the contents and file info of path, or nil, nil when it does not exist.
func readFile(path string) ([]byte, fs.FileInfo, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("credfile: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("credfile: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("credfile: %s is not a regular file (%s)", path, info.Mode().Type())
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, fmt.Errorf("credfile: %w", err)
	}
	return data, info, nil
}

// write atomically replaces path with data, mode 0600, keeping prev's owner when there was a file.
func (s *Sink) write(path string, data []byte, prev fs.FileInfo) error {
	dir := filepath.Dir(path)
	pf, err := renameio.NewPendingFile(path, renameio.WithTempDir(dir), renameio.WithStaticPermissions(fileMode))
	if err != nil {
		return fmt.Errorf("credfile: writing %s: %w", path, err)
	}
	defer func() { _ = pf.Cleanup() }()
	if err := keepOwner(pf.File, prev); err != nil {
		return fmt.Errorf("credfile: writing %s: keeping the owner of the previous file: %w", path, err)
	}
	if _, err := pf.Write(data); err != nil {
		return fmt.Errorf("credfile: writing %s: %w", path, err)
	}
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("credfile: writing %s: %w", path, err)
	}
	if prev != nil && prev.Mode().Perm() != fileMode {
		s.log.Warn("credentials file had wider permissions; now 0600", "path", path, "previous_mode", prev.Mode().Perm().String())
	}
	// Make the rename itself durable. Some file systems cannot sync a directory; the data is in place.
	if d, err := os.Open(dir); err == nil {
		if err := d.Sync(); err != nil {
			s.log.Debug("syncing directory failed", "dir", dir, "error", err)
		}
		_ = d.Close()
	}
	return nil
}

// keepOwner gives f the owner and group of prev when they differ.
func keepOwner(f *os.File, prev fs.FileInfo) error {
	if prev == nil {
		return nil
	}
	want, ok := prev.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	info, err := f.Stat()
	if err != nil {
		return err
	}
	have, ok := info.Sys().(*syscall.Stat_t)
	if !ok || (have.Uid == want.Uid && have.Gid == want.Gid) {
		return nil
	}
	return f.Chown(int(want.Uid), int(want.Gid))
}

// tempName matches the names renameio gives temporary files for base: "." + base + a decimal number.
func tempName(base string) *regexp.Regexp {
	return regexp.MustCompile(`^\.` + regexp.QuoteMeta(base) + `[0-9]+$`)
}

// removeStaleTemps deletes temporary files a killed writer left in dir. It runs under the lock, and
// writers create temporary files only under the lock, so none of them is in use.
func (s *Sink) removeStaleTemps(dir, base string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	re := tempName(base)
	for _, e := range entries {
		if e.Type().IsRegular() && re.MatchString(e.Name()) {
			p := filepath.Join(dir, e.Name())
			if err := os.Remove(p); err == nil {
				s.log.Debug("removed a temporary file left by an interrupted write", "path", p)
			}
		}
	}
}
