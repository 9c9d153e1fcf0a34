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
// Each update writes the whole new file to a temporary file in the same directory (".<name><digits>"),
// fsyncs it, renames it over the target and fsyncs the directory. A reader, or a crash at any moment, sees
// either the old file or the new one, never a mix or a truncated file; a failed write (disk full,
// permissions) leaves the old file untouched and returns an error naming the path, and the refresher
// retries. Temporary files left behind by a writer that was killed are removed by the next update: only
// files of exactly that name owned by the bridge's user or Options.Owner (another user's file of that
// name in /tmp is theirs).
//
// # Symbolic links and ownership
//
// The bridge may run as root and write into a directory another user owns, so the file is reached the
// way internal/safefs does it: the directory is walked from "/" without following symbolic links, and the
// file, its lock and its temporary file are opened, created and renamed relative to the directory's
// descriptor. A symbolic link anywhere on the path — the file, "<name>.lock", a directory — is refused
// with an error naming it, unless Options.FollowSymlinks: then the path is resolved first (every link in
// the chain, a dangling last one included) and the file, lock and temporary files live beside the target;
// even then a link is followed only when it is owned by root or the bridge's user and no one else can
// write its directory or one above it (safefs.Resolve), so the owner of a directory on the path
// cannot point the bridge elsewhere. Every directory on the path, the file and the lock must be owned by
// root, the bridge's user or Options.Owner, and must not be writable by other users or an untrusted group
// (a root-owned sticky directory such as /tmp is accepted as a parent; Options.AllowSharedDirectory
// accepts shared directories, never shared files). A file that is not a regular file, or has more than one
// hard link, is refused.
//
// The file is always written with Options.Mode (default 0600), even when it replaced a file with wider
// permissions: it holds a secret from then on (the tightening is logged). With Options.Group set the file
// gets that group; otherwise an existing file's group is kept. With Options.Owner set to another user than
// the bridge's (root writing for a user), a new file is created for them only in a directory of theirs
// (or one they could write anyway, like /tmp), and an existing file must already be theirs: root never
// hands a file it may not have created to a user (the error names the chown that does it). Without
// Options.Owner an existing file's owner is kept, and a new file belongs to the bridge. Owner, group and
// mode are set on the temporary file before the rename, so no reader ever sees the secret with a wrong
// owner or mode. Missing directories are created with mode 0700 (0750 when Mode lets the group read),
// owned by Options.Owner and Options.Group when set; for another user, only the file's own directory (and
// directories inside one of theirs): missing directories above it are the bridge's, mode 0755.
//
// # Locking
//
// The read-modify-write runs under an exclusive advisory lock (flock(2)), so two bridges — or two profiles
// of one bridge — writing different sections of one file never lose each other's update. The lock is
// taken on a separate file, "<target>.lock", not on the credentials file itself: the rename replaces the
// credentials file's inode, so a lock held on the old inode would not exclude a writer that opened the
// new one. The lock file is opened without following a symbolic link, created exclusively (with the
// file's owner, group and mode) when missing, and left in place (removing it would let two writers lock
// two different inodes). An existing lock file of another user is refused by name, with what to do.
//
// In a directory other users can write (a sticky /tmp, a shared directory), anyone could take the name
// "<target>.lock" first and block every write, so there the lock is the credentials file itself, which
// no one else can open: a writer locks the file it opened and checks that the name still refers to it (a
// new file may have been renamed over it meanwhile), and a missing file is created exclusively. Every
// writer decides by the directory's mode, so all writers of one file use the same lock. Waiting for the
// lock honors the context and gives up after Options.LockTimeout.
//
// Tools that do not take the lock — aws configure among them — are not excluded by it. The sink re-reads
// the file right before each write, so their edits are lost only if one lands in the few milliseconds
// between that read and the rename; the rename itself never exposes a partial file to them.
//
// The package needs a Unix-like system.
package credfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs"
)

// DefaultLockTimeout is how long an update waits for the advisory lock when Options.LockTimeout is zero.
const DefaultLockTimeout = 10 * time.Second

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
	// Owner, when set, owns the file, its lock and the directories the sink creates, and is trusted as
	// the owner of the directories on the path. Giving files to another user needs root.
	Owner safefs.ID
	// Group, when set, is the group of the file, its lock and created directories, and is trusted as the
	// group of group-writable directories.
	Group safefs.ID
	// Mode is the file's mode: 0600 (the default when zero), 0640 or 0660.
	Mode fs.FileMode
	// FollowSymlinks resolves symbolic links in Path instead of refusing them: only links owned by root or
	// the bridge's user, where no one else can write (safefs.Resolve).
	FollowSymlinks bool
	// AllowSharedDirectory accepts directories on the path that other users can write (a disk-backed
	// Kubernetes emptyDir; a memory-backed one is sticky and needs no flag): only when every user who can write there is trusted.
	AllowSharedDirectory bool
	// OwnerName, when set, is the user name Owner was looked up from (owner = "app", or node mode's
	// unix:user:NAME selector). It is looked up again before every write, since an account can be deleted
	// and re-created with another uid while its old uid goes to someone else. When the name resolves to
	// another uid, or to none, the credentials are withdrawn from the file (written for the old uid, under
	// the old rules), an ERROR names the user and both uids, and from then on the file is written for the
	// new uid only: whatever the old uid still owns on the path is refused until the operator removes it.
	OwnerName string
	// LookupOwner resolves OwnerName; default safefs.LookupOwner (the system's user database).
	LookupOwner func(name string) (safefs.ID, error)
}

// Sink writes one profile of a credentials file. It is safe for concurrent use, also with other Sinks
// and other processes writing the same file. It implements bridge.Sink.
type Sink struct {
	path, profile string
	log           hclog.Logger
	lockTimeout   time.Duration

	ownerName   string
	lookupOwner func(string) (safefs.ID, error)
	mu          sync.Mutex   // guards rules and ownerGone
	rules       safefs.Rules // Owner follows ownerName
	ownerGone   bool         // ownerName resolved to no user at the last look; withdrawn already
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
	rules := safefs.Rules{
		Owner: opts.Owner, Group: opts.Group, Mode: opts.Mode,
		FollowSymlinks: opts.FollowSymlinks, AllowSharedDirectory: opts.AllowSharedDirectory,
	}
	if err := rules.Check(); err != nil {
		return nil, fmt.Errorf("credfile: %s: %w", opts.Path, err)
	}
	s := &Sink{path: filepath.Clean(opts.Path), profile: opts.Profile, log: opts.Logger, lockTimeout: opts.LockTimeout, rules: rules,
		ownerName: opts.OwnerName, lookupOwner: opts.LookupOwner}
	if s.lookupOwner == nil {
		s.lookupOwner = safefs.LookupOwner
	}
	if s.log == nil {
		s.log = hclog.NewNullLogger()
	}
	if s.lockTimeout == 0 {
		s.lockTimeout = DefaultLockTimeout
	}
	return s, nil
}

// Check verifies, without writing anything, that the file can be used: every existing directory on its
// path and the file itself (when it exists) pass the same checks as Put. A missing directory or file is
// not an error (Put creates them). The daemon calls it before a profile replaces a running one, so that
// a reload to a path that cannot be used is refused.
func (s *Sink) Check() error {
	s.mu.Lock()
	rules := s.rules
	s.mu.Unlock()
	target := s.path
	if rules.FollowSymlinks {
		var err error
		if target, err = safefs.Resolve(s.path); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("credfile: %w", err)
		}
	}
	dir, base := filepath.Split(target)
	d, err := safefs.OpenDir(dir, rules, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("credfile: %w", err)
	}
	defer d.Close()
	f, info, err := d.OpenFile(base)
	if err == nil {
		_ = f.Close()
		if err := d.CheckReplace(base, info); err != nil {
			return fmt.Errorf("credfile: %w", err)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("credfile: %w", err)
	}
	if err := d.CheckNew(base); err != nil {
		return fmt.Errorf("credfile: %w", err)
	}
	return nil
}

// Probe proves, leaving nothing behind, that Put can write the file as configured: every directory on
// the path and the file and its lock, when they exist, pass the same checks as Put, and a temporary file
// is created in the file's directory with the file's final owner, group and mode, then removed (a missing
// directory: one is created and removed where Put would create it). It returns what it proved; the error
// names the path that cannot be used and why. `check --config` calls it.
func (s *Sink) Probe() (string, error) {
	what, err := safefs.ProbeWrite(s.path, s.rules, ".lock")
	if err != nil {
		return "", fmt.Errorf("credfile: %w", err)
	}
	return what, nil
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
	if s.log.IsDebug() {
		s.log.Debug("credentials written", "path", target, "profile", s.profile,
			"access_key_id", c.AccessKeyID, "expiration", c.Expiration.UTC().Format(time.RFC3339))
	}
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
// replaces the file with the result. It returns the path it wrote (Path with symbolic links resolved
// when FollowSymlinks is set).
func (s *Sink) update(ctx context.Context, edit func([]byte) ([]byte, error)) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("credfile: %s: %w", s.path, err)
	}
	rules, err := s.currentRules(ctx)
	if err != nil {
		return "", err
	}
	return s.updateWith(ctx, rules, edit)
}

// updateWith is update under rules.
func (s *Sink) updateWith(ctx context.Context, rules safefs.Rules, edit func([]byte) ([]byte, error)) (string, error) {
	target := s.path
	if rules.FollowSymlinks {
		var err error
		if target, err = safefs.Resolve(s.path); err != nil {
			return "", fmt.Errorf("credfile: %w", err)
		}
	}
	dir, base := filepath.Split(target)
	d, err := safefs.OpenDir(dir, rules, true)
	if err != nil {
		return "", fmt.Errorf("credfile: %w", err)
	}
	defer d.Close()
	target = d.Join(base)
	// A file the rules refuse is reported before the lock file is created beside it.
	if f, info, err := d.OpenFile(base); err == nil {
		_ = f.Close()
		if err := d.CheckReplace(base, info); err != nil {
			return "", fmt.Errorf("credfile: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("credfile: %w", err)
	} else if err := d.CheckNew(base); err != nil {
		return "", fmt.Errorf("credfile: %w", err)
	}
	if d.OthersCanCreate() {
		return s.updateInSharedDir(ctx, rules, d, base, edit)
	}
	unlock, err := s.lock(ctx, d, base+".lock")
	if err != nil {
		return "", err
	}
	defer unlock()

	old, info, err := readFile(d, base)
	if err != nil {
		return "", err
	}
	return s.write(rules, d, base, old, info, edit)
}

// updateInSharedDir is update in a directory where other users can create names (a sticky /tmp, a
// shared directory): there "<name>.lock" could be taken first by anyone, so the lock is the credentials
// file itself, which no one else can open (its mode gives others nothing). A writer locks the file it
// opened, then checks that the name still refers to it (another writer may have renamed a new file over
// it meanwhile) and starts again if not. A missing file is created exclusively, so two first writers
// cannot both create it; the second one then edits what the first wrote.
func (s *Sink) updateInSharedDir(ctx context.Context, rules safefs.Rules, d *safefs.Dir, base string, edit func([]byte) ([]byte, error)) (string, error) {
	target := d.Join(base)
	for range 100 {
		f, info, err := d.OpenFile(base)
		if errors.Is(err, fs.ErrNotExist) {
			data, err := edit(nil)
			if err != nil || len(data) == 0 {
				return target, err // Clear on a missing file: nothing to do
			}
			err = d.CreateFile(base, data)
			if errors.Is(err, fs.ErrExist) {
				continue // another writer created it: edit theirs under the lock
			}
			if err != nil {
				return "", fmt.Errorf("credfile: writing %s: %w", target, err)
			}
			return target, nil
		}
		if err != nil {
			return "", fmt.Errorf("credfile: %w", err)
		}
		unlock, err := s.flock(ctx, f, target)
		if err != nil {
			return "", err
		}
		now, err := d.Stat(base)
		if err != nil || now.Key.Dev != info.Key.Dev || now.Key.Ino != info.Key.Ino {
			unlock()
			continue // replaced while we waited: lock the new file
		}
		out, err := func() (string, error) {
			defer unlock()
			if err := d.CheckReplace(base, info); err != nil {
				return "", fmt.Errorf("credfile: %w", err)
			}
			old, err := readOpen(f, target)
			if err != nil {
				return "", err
			}
			return s.write(rules, d, base, old, info, edit)
		}()
		return out, err
	}
	return "", fmt.Errorf("credfile: %s keeps being replaced or removed while waiting for it", target)
}

// write runs edit on old (the contents of base in d, nil when missing; info its status) and atomically
// replaces the file with the result under rules, under the caller's lock. It returns the path written.
func (s *Sink) write(rules safefs.Rules, d *safefs.Dir, base string, old []byte, info *safefs.FileInfo, edit func([]byte) ([]byte, error)) (string, error) {
	target := d.Join(base)
	data, err := edit(old)
	if pe := (*ParseError)(nil); errors.As(err, &pe) {
		pe.Path = target
		return "", pe
	}
	if err != nil {
		return "", err
	}
	for _, p := range d.RemoveTemps(base) {
		s.log.Debug("removed a temporary file left by an interrupted write", "path", p)
	}
	if info == nil && len(data) == 0 {
		return target, nil // Clear on a missing file
	}
	if info != nil && settled(rules, info) && string(data) == string(old) {
		return target, nil // nothing to change
	}
	if err := d.WriteFile(base, data, info); err != nil {
		return "", fmt.Errorf("credfile: writing %s: %w", target, err)
	}
	if mode := rules.FileMode(); info != nil && info.Mode&^mode != 0 {
		s.log.Warn(fmt.Sprintf("credentials file had wider permissions; now %04o", uint32(mode)), "path", target, "previous_mode", info.Mode.String())
	}
	return target, nil
}

// settled reports whether an existing file already has the mode, owner and group a write under rules
// would give it.
func settled(rules safefs.Rules, info *safefs.FileInfo) bool {
	return info.Mode == rules.FileMode() &&
		(!rules.Owner.IsSet() || int(info.UID) == rules.Owner.Int()) &&
		(!rules.Group.IsSet() || int(info.GID) == rules.Group.Int())
}

// lockPoll is how often a busy lock is tried again.
const lockPoll = 20 * time.Millisecond

// lock takes the exclusive advisory lock on the lock file name in d, waiting at most the lock timeout.
func (s *Sink) lock(ctx context.Context, d *safefs.Dir, name string) (func(), error) {
	lockPath := d.Join(name)
	f, err := d.OpenOrCreate(name)
	if errors.Is(err, safefs.ErrRefused) {
		if info, serr := d.Stat(name); serr == nil {
			return nil, fmt.Errorf("credfile: lock file %s (owned by uid %d) cannot be used, so the file is not written: %w; "+
				"if neither you nor a bridge sharing the file made it, remove it (rm %s): it holds no data, and the bridge creates its own",
				lockPath, info.UID, err, lockPath)
		}
		return nil, fmt.Errorf("credfile: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("credfile: locking %s: %w", lockPath, err)
	}
	return s.flock(ctx, f, lockPath)
}

// flock takes the exclusive advisory lock on f (lockPath names it), waiting at most the lock timeout.
// The returned function unlocks and closes f; on error f is closed.
func (s *Sink) flock(ctx context.Context, f *os.File, lockPath string) (func(), error) {
	lctx, cancel := context.WithTimeoutCause(ctx, s.lockTimeout, ErrLockTimeout)
	defer cancel()
	var tick *time.Ticker
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() {
				_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("credfile: locking %s: %w", lockPath, err)
		}
		if tick == nil {
			tick = time.NewTicker(lockPoll)
			defer tick.Stop()
		}
		select {
		case <-lctx.Done():
			_ = f.Close()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("credfile: waiting for lock %s: %w", lockPath, ctx.Err())
			}
			return nil, fmt.Errorf("%w %s after %s (another writer holds it)", ErrLockTimeout, lockPath, s.lockTimeout)
		case <-tick.C:
		}
	}
}

// readFile returns the contents and file info of name in d, or nil, nil when it does not exist.
func readFile(d *safefs.Dir, name string) ([]byte, *safefs.FileInfo, error) {
	f, info, err := d.OpenFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("credfile: %w", err)
	}
	defer f.Close()
	data, err := readOpen(f, d.Join(name))
	if err != nil {
		return nil, nil, err
	}
	return data, info, nil
}

// readOpen reads the open credentials file f (at path) to its end, at most MaxFileSize bytes.
func readOpen(f *os.File, path string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("credfile: %w", err)
	}
	if len(data) > MaxFileSize {
		size := int64(len(data))
		if st, err := f.Stat(); err == nil {
			size = st.Size()
		}
		return nil, &TooLargeError{Path: path, Size: size}
	}
	return data, nil
}

// MaxFileSize is the largest credentials file the sink reads and rewrites: 1 MiB, thousands of profiles.
// A larger file is not a credentials file (or something keeps appending to it); rewriting it on every
// refresh would cost seconds and memory in proportion.
const MaxFileSize = 1 << 20

// TooLargeError is a credentials file over MaxFileSize; the sink refuses to touch it.
type TooLargeError struct {
	// Path is the file; Size its size in bytes.
	Path string
	Size int64
}

// Error implements error.
func (e *TooLargeError) Error() string {
	return fmt.Sprintf("credfile: %s is %d bytes, more than the %d (1 MiB) a credentials file may hold: "+
		"is it the right file? Move it away or point credentials_file.path at another file", e.Path, e.Size, MaxFileSize)
}
