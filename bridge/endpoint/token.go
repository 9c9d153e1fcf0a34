package endpoint

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs"
)

// tokenCheckInterval is how often, at most, a request makes the endpoint look at its token file again.
const tokenCheckInterval = time.Second

// maxTokenFileSize bounds what is read from the token file.
const maxTokenFileSize = 4096

// tokenFile is the container endpoint's authorization token, kept in step with its file: on a request at
// most once per tokenCheckInterval, the file is opened again (through safefs: no symbolic link followed,
// owner and permissions checked) and re-read when its identity (device, inode, size, times) changed. A
// deleted file is created afresh; a file that became unusable makes the endpoint fail closed until it is
// fixed.
type tokenFile struct {
	path  string
	rules safefs.Rules
	log   hclog.Logger
	now   func() time.Time // monotonic: the request clock, not the credentials clock

	owner tokenOwner // looked up again at every load

	state   atomic.Pointer[tokenState]
	refresh sync.Mutex // held by the one request that looks at the file
	logged  string     // the last problem logged, so each distinct cause is logged once
}

// tokenState is the token as last read, or why there is none.
type tokenState struct {
	token   []byte
	err     error // non-nil: no usable token; every request fails
	key     safefs.FileKey
	checked time.Time
}

// newTokenFile reads the token file, creating it when missing; an unusable file is an error.
func newTokenFile(path string, rules safefs.Rules, log hclog.Logger, owner tokenOwner) (*tokenFile, error) {
	t := &tokenFile{path: path, rules: rules, log: log, now: time.Now, owner: owner}
	st := t.load(nil)
	if st.err != nil {
		return nil, st.err
	}
	t.state.Store(st)
	return t, nil
}

// current returns the token to compare requests with, or why there is none.
func (t *tokenFile) current() ([]byte, error) {
	st := t.state.Load()
	if t.now().Sub(st.checked) < tokenCheckInterval || !t.refresh.TryLock() {
		return st.token, st.err
	}
	defer t.refresh.Unlock()
	if st = t.state.Load(); t.now().Sub(st.checked) >= tokenCheckInterval {
		st = t.load(st)
		t.state.Store(st)
		t.report(st.err)
	}
	return st.token, st.err
}

// report logs a new problem at ERROR, once per distinct cause, and the recovery from one.
func (t *tokenFile) report(err error) {
	switch {
	case err == nil && t.logged != "":
		t.log.Info("auth token file is usable again; serving requests", "path", t.path)
		t.logged = ""
	case err != nil && err.Error() != t.logged:
		t.log.Error("auth token file cannot be used; refusing every request until it is fixed", "path", t.path, "error", err)
		t.logged = err.Error()
	}
}

// load looks at the file: prev is the state before (nil at start), kept when the file did not change.
func (t *tokenFile) load(prev *tokenState) *tokenState {
	now := t.now()
	if err := t.resolveOwner(); err != nil {
		return &tokenState{err: err, checked: now}
	}
	target := t.path
	if t.rules.FollowSymlinks {
		p, err := safefs.Resolve(t.path)
		if err != nil {
			return &tokenState{err: fmt.Errorf("auth token file %s: %w", t.path, err), checked: now}
		}
		target = p
	}
	dir, base := filepath.Split(target)
	d, err := safefs.OpenDir(dir, t.rules, true)
	if err != nil {
		return &tokenState{err: fmt.Errorf("auth token file: %w", err), checked: now}
	}
	defer d.Close()
	for range 3 {
		f, info, err := d.OpenFile(base)
		if errors.Is(err, fs.ErrNotExist) {
			if err := t.create(d, base); err != nil && !errors.Is(err, fs.ErrExist) {
				return &tokenState{err: err, checked: now}
			}
			continue // read what was created (by us, or by someone faster)
		}
		if err != nil {
			return &tokenState{err: fmt.Errorf("auth token file: %w", err), checked: now}
		}
		if err := checkTokenMode(d.Join(base), info, t.rules); err != nil {
			f.Close()
			return &tokenState{err: err, checked: now}
		}
		if prev != nil && prev.err == nil && prev.key == info.Key {
			f.Close()
			return &tokenState{token: prev.token, key: info.Key, checked: now}
		}
		data, err := readLimited(f, maxTokenFileSize)
		f.Close()
		if err != nil {
			return &tokenState{err: fmt.Errorf("auth token file %s: %w", d.Join(base), err), checked: now}
		}
		tok, err := checkToken(d.Join(base), data)
		if err != nil {
			return &tokenState{err: err, checked: now}
		}
		if prev != nil {
			t.log.Info("auth token file changed; serving with the new token", "path", d.Join(base))
		}
		return &tokenState{token: []byte(tok), key: info.Key, checked: now}
	}
	return &tokenState{err: fmt.Errorf("auth token file %s keeps disappearing", d.Join(base)), checked: now}
}

// create writes a new random token (32 bytes, hex) to name in d, atomically and only if it is missing.
func (t *tokenFile) create(d *safefs.Dir, name string) error {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return fmt.Errorf("generate auth token: %w", err)
	}
	if err := d.CreateFile(name, []byte(hex.EncodeToString(raw))); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("create auth token file: %w", err)
	}
	t.log.Info("created container endpoint auth token file", "path", d.Join(name))
	return nil
}

// readLimited reads r to the end, refusing more than limit bytes.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("longer than %d bytes", limit)
	}
	return b, nil
}

// checkToken returns the token in a file's contents: one line, surrounding white space trimmed.
func checkToken(path string, b []byte) (string, error) {
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("auth token file %s is empty", path)
	}
	if strings.ContainsAny(tok, "\r\n") {
		return "", fmt.Errorf("auth token file %s must hold a single line", path)
	}
	return tok, nil
}
