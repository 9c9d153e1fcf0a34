package endpoint

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/logtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs/safefstest"
)

// startContainer starts a container endpoint with a fresh token file and returns it with its token.
func startContainer(t *testing.T, clock *fakeClock, o ContainerOptions) (*Server, string, *logtest.Buffer) {
	t.Helper()
	log, buf := logtest.New()
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.AuthTokenFile == "" {
		o.AuthTokenFile = filepath.Join(t.TempDir(), "token")
	}
	o.Logger, o.Clock = log, clock.Now
	s, err := NewContainer(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	tok, err := os.ReadFile(s.TokenFile())
	if err != nil {
		t.Fatal(err)
	}
	return s, strings.TrimSpace(string(tok)), buf
}

func TestContainerCredentials(t *testing.T) {
	clock := newClock()
	s, tok, logs := startContainer(t, clock, ContainerOptions{})
	if s.Name() != "container_endpoint" {
		t.Errorf("Name = %q", s.Name())
	}
	if !strings.HasSuffix(s.URL(), ":"+strings.Split(s.Addr(), ":")[1]+"/v1/credentials") {
		t.Errorf("URL = %q", s.URL())
	}
	c := testCreds(clock.Now())
	if err := s.Put(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	r := do(t, http.MethodGet, s.URL(), map[string]string{"Authorization": tok})
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var doc map[string]string
	if err := json.Unmarshal([]byte(r.body), &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"AccessKeyId":     testAccessKey,
		"SecretAccessKey": testSecret,
		"Token":           testSession,
		"Expiration":      c.Expiration.UTC().Format(time.RFC3339),
		"RoleArn":         testRoleARN,
	}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %q, want %q", k, doc[k], v)
		}
	}
	if len(doc) != len(want) {
		t.Errorf("extra fields: %v", doc)
	}

	// RoleArn is omitted when unknown.
	c.AssumedRoleARN = ""
	if err := s.Put(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	r = do(t, http.MethodGet, s.URL(), map[string]string{"Authorization": tok})
	if strings.Contains(r.body, "RoleArn") {
		t.Errorf("RoleArn present: %s", r.body)
	}
	s.Close()
	assertNoSecrets(t, "log", logs.String(), tok)
}

func TestContainerUnauthorized(t *testing.T) {
	clock := newClock()
	s, tok, logs := startContainer(t, clock, ContainerOptions{Path: "/creds"})
	if err := s.Put(context.Background(), testCreds(clock.Now())); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(s.URL(), "/creds") {
		t.Errorf("URL = %q", s.URL())
	}
	for name, h := range map[string]map[string]string{
		"missing": nil,
		"wrong":   {"Authorization": "wrong-token"},
		"prefix":  {"Authorization": tok[:len(tok)-1]},
		"bearer":  {"Authorization": "Bearer " + tok},
	} {
		r := do(t, http.MethodGet, s.URL(), h)
		if r.status != http.StatusUnauthorized {
			t.Errorf("%s token: %d, want 401", name, r.status)
			continue
		}
		if e := decodeError(t, r.body); e.Code == "" {
			t.Errorf("%s token: error body %q", name, r.body)
		}
		assertNoSecrets(t, name+" body", r.body, tok)
	}
	auth := map[string]string{"Authorization": tok}
	if r := do(t, http.MethodGet, strings.TrimSuffix(s.URL(), "/creds")+"/v1/credentials", auth); r.status != http.StatusNotFound {
		t.Errorf("other path: %d, want 404", r.status)
	}
	if r := do(t, http.MethodPost, s.URL(), auth); r.status != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", r.status)
	}
	s.Close()
	assertNoSecrets(t, "log", logs.String(), tok)
}

func TestContainerNoCredentials(t *testing.T) {
	clock := newClock()
	s, tok, _ := startContainer(t, clock, ContainerOptions{})
	auth := map[string]string{"Authorization": tok}
	check := func(when string, want int) {
		t.Helper()
		r := do(t, http.MethodGet, s.URL(), auth)
		if r.status != want {
			t.Fatalf("%s: %d %s, want %d", when, r.status, r.body, want)
		}
		if want == http.StatusInternalServerError {
			if e := decodeError(t, r.body); e.Code != "NoCredentials" {
				t.Errorf("%s: %+v", when, e)
			}
		}
	}
	check("before Put", http.StatusInternalServerError)
	if err := s.Put(context.Background(), testCreds(clock.Now())); err != nil {
		t.Fatal(err)
	}
	check("after Put", http.StatusOK)
	clock.Advance(time.Hour + time.Second)
	check("after expiry", http.StatusInternalServerError)
	clock.Advance(-time.Hour)
	check("clock back", http.StatusOK)
	if err := s.Clear(context.Background()); err != nil {
		t.Fatal(err)
	}
	check("after Clear", http.StatusInternalServerError)
}

func TestContainerTokenFileCreated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "dir", "token")
	s, err := NewContainer(ContainerOptions{Addr: "127.0.0.1:0", AuthTokenFile: path})
	if err != nil {
		t.Fatal(err)
	}
	if s.TokenFile() != path {
		t.Errorf("TokenFile = %q", s.TokenFile())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("token dir mode %v, want 0700", di.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if raw, err := hex.DecodeString(string(b)); err != nil || len(raw) != 32 {
		t.Errorf("token %q is not 32 hex-encoded bytes", b)
	}
	// A second server reuses the token.
	s2, err := NewContainer(ContainerOptions{Addr: "127.0.0.1:0", AuthTokenFile: path})
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := os.ReadFile(path)
	if string(b2) != string(b) || s2.TokenFile() != path {
		t.Error("token file rewritten")
	}
}

func TestContainerExistingTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte("  my-own-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clock := newClock()
	s, _, _ := startContainer(t, clock, ContainerOptions{AuthTokenFile: path})
	if err := s.Put(context.Background(), testCreds(clock.Now())); err != nil {
		t.Fatal(err)
	}
	if r := do(t, http.MethodGet, s.URL(), map[string]string{"Authorization": "my-own-token"}); r.status != http.StatusOK {
		t.Errorf("existing token: %d, want 200", r.status)
	}
}

func TestContainerTokenFileErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewContainer(ContainerOptions{Addr: "127.0.0.1:0", AuthTokenFile: empty}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty token file: %v", err)
	}
	if _, err := NewContainer(ContainerOptions{Addr: "127.0.0.1:0"}); err == nil {
		t.Error("missing auth_token_file accepted")
	}
	if _, err := NewContainer(ContainerOptions{Addr: "127.0.0.1:0", AuthTokenFile: filepath.Join(dir, "t"), Path: "v1"}); err == nil {
		t.Error("relative path accepted")
	}
	if _, err := NewContainer(ContainerOptions{Addr: "127.0.0.1:0", AuthTokenFile: dir}); err == nil {
		t.Error("directory as token file accepted")
	}
}

func TestContainerWithAWSSDK(t *testing.T) {
	clock := newClock()
	s, tok, logs := startContainer(t, clock, ContainerOptions{})
	c := testCreds(clock.Now())
	if err := s.Put(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	p := endpointcreds.New(s.URL(), func(o *endpointcreds.Options) { o.AuthorizationToken = tok })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, err := p.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessKeyID != testAccessKey || got.SecretAccessKey != testSecret || got.SessionToken != testSession ||
		!got.CanExpire || !got.Expires.Equal(c.Expiration) {
		t.Errorf("SDK got %+v", got)
	}

	// A wrong token is an error for the SDK too.
	bad := endpointcreds.New(s.URL(), func(o *endpointcreds.Options) { o.AuthorizationToken = "nope" })
	if _, err := bad.Retrieve(ctx); err == nil {
		t.Error("SDK accepted a wrong token")
	}
	s.Close()
	assertNoSecrets(t, "log", logs.String(), tok)
}

// The token file's adversarial suite. Tests named TestSecurity… are counted by CI.

const nobody = safefstest.Nobody

// tokenRefused asserts that NewContainer refuses the token file with an error containing want.
func tokenRefused(t *testing.T, o ContainerOptions, want string) {
	t.Helper()
	o.Addr = "127.0.0.1:0"
	_, err := NewContainer(o)
	if !errors.Is(err, safefs.ErrRefused) || !strings.Contains(err.Error(), want) {
		t.Fatalf("NewContainer = %v, want a refusal containing %q", err, want)
	}
}

// The owner of the token's directory plants token -> a file elsewhere, or a path that does not exist:
// the bridge (root) must neither read the target as its token nor create it.
func TestSecurityTokenSymlinkPlantedIsRefused(t *testing.T) {
	safefstest.NeedRoot(t, "chowns files to another user")
	root := t.TempDir()
	dir, outside := filepath.Join(root, "nobody"), filepath.Join(root, "outside")
	for _, d := range []string{dir, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	safefstest.Give(t, dir, nobody, nobody)
	existing, missing := filepath.Join(outside, "known"), filepath.Join(outside, "created")
	if err := os.WriteFile(existing, []byte("known-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "token")
	for _, target := range []string{existing, missing} {
		_ = os.Remove(path)
		safefstest.Symlink(t, target, path, nobody, nobody)
		// A link of uid 65534 would not be followed with follow_symlinks either: the message says so.
		tokenRefused(t, ContainerOptions{AuthTokenFile: path, TokenOwner: safefs.NewID(nobody)},
			path+" is a symbolic link owned by uid 65534; refusing to follow it (follow_symlinks would not follow it either")
		if b, _ := os.ReadFile(existing); string(b) != "known-token" {
			t.Errorf("the link's target changed to %q", b)
		}
		if _, err := os.Lstat(missing); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the link's missing target was created: %v", err)
		}
	}
	// With follow_symlinks, the link of uid 65534 is still refused and its missing target not created.
	tokenRefused(t, ContainerOptions{AuthTokenFile: path, TokenOwner: safefs.NewID(nobody), FollowSymlinks: true},
		path+" is a symbolic link owned by uid 65534; refusing to follow it, even with follow_symlinks")
	if _, err := os.Lstat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the link's missing target was created with follow_symlinks: %v", err)
	}
	// An intended link, root's in a directory only root writes, is read with follow_symlinks.
	intended := filepath.Join(outside, "token-link")
	if err := os.Symlink(existing, intended); err != nil {
		t.Fatal(err)
	}
	if _, err := NewContainer(ContainerOptions{Addr: "127.0.0.1:0", AuthTokenFile: intended, FollowSymlinks: true}); err != nil {
		t.Fatalf("with follow_symlinks: %v", err)
	}
}

// A workload whose token file lives in its own directory (auth_token_owner, follow_symlinks = true)
// deletes the file and links its path into a root-owned directory: the endpoint, which re-creates a
// deleted token file, must not create one there for the workload (an ld.so.preload stand-in), nor adopt
// a root file there as the token. It fails closed until the link is gone. Before, it created the file
// there, owned by the workload.
func TestSecurityTokenFileIsNeverRecreatedWhereTheWorkloadPointsIt(t *testing.T) {
	safefstest.NeedRoot(t, "plants links owned by another user")
	root := t.TempDir()
	dir, etc := filepath.Join(root, "workload"), filepath.Join(root, "etc")
	for _, d := range []string{dir, etc} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	safefstest.Give(t, dir, nobody, nobody)
	path := filepath.Join(dir, "token")
	clock := newClock()
	s, tok, _ := startContainer(t, clock, ContainerOptions{AuthTokenFile: path, TokenOwner: safefs.NewID(nobody), FollowSymlinks: true})
	if err := s.Put(context.Background(), testCreds(clock.Now())); err != nil {
		t.Fatal(err)
	}
	status := func(tok string) int {
		return do(t, http.MethodGet, s.URL(), map[string]string{"Authorization": tok}).status
	}
	if got := status(tok); got != http.StatusOK {
		t.Fatalf("the workload's own token: %d", got)
	}
	preload := filepath.Join(etc, "ld.so.preload")
	secret := filepath.Join(etc, "shadow")
	if err := os.WriteFile(secret, []byte("root-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{preload, secret} {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		safefstest.Symlink(t, target, path, nobody, nobody)
		eventually(t, "the endpoint fails closed", func() bool { return status(tok) == http.StatusInternalServerError })
		for _, guess := range []string{tok, "root-secret", ""} {
			if got := status(guess); got != http.StatusInternalServerError {
				t.Errorf("token %q while the path is the workload's link to %s: %d, want 500", guess, target, got)
			}
		}
		if _, err := os.Lstat(preload); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the endpoint created %s: %v", preload, err)
		}
		if fi, err := os.Stat(secret); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 0 {
			t.Errorf("%s changed hands: %v", secret, err)
		}
	}
}

func TestSecurityTokenFileOfAnotherUserIsRefused(t *testing.T) {
	safefstest.NeedRoot(t, "chowns files to another user")
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte("theirs"), 0o600); err != nil {
		t.Fatal(err)
	}
	safefstest.Give(t, path, nobody, nobody)
	tokenRefused(t, ContainerOptions{AuthTokenFile: path}, path+" is owned by uid 65534; refusing to use it")
	if b, _ := os.ReadFile(path); string(b) != "theirs" {
		t.Errorf("token file changed to %q", b)
	}
	// The configured owner is trusted.
	if _, err := NewContainer(ContainerOptions{Addr: "127.0.0.1:0", AuthTokenFile: path, TokenOwner: safefs.NewID(nobody)}); err != nil {
		t.Errorf("owned by the configured owner: %v", err)
	}
}

func TestSecurityTokenFileWritableByOthersIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte("tok"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	tokenRefused(t, ContainerOptions{AuthTokenFile: path}, path+" is writable by other users (mode -rw-rw-rw-)")
}

func TestSecurityTokenFileGroupWritableByAForeignGroupIsRefused(t *testing.T) {
	safefstest.NeedRoot(t, "gives a file to another group")
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte("tok"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		t.Fatal(err)
	}
	safefstest.Give(t, path, 0, nobody)
	tokenRefused(t, ContainerOptions{AuthTokenFile: path}, path+" is writable by its group (gid 65534, mode -rw-rw----)")
	if _, err := NewContainer(ContainerOptions{Addr: "127.0.0.1:0", AuthTokenFile: path, TokenGroup: safefs.NewID(nobody)}); err != nil {
		t.Errorf("group-writable by the configured group: %v", err)
	}
}

func TestSecurityTokenFileSharedDirectoryNeedsAllowSharedDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "token")
	tokenRefused(t, ContainerOptions{AuthTokenFile: path}, dir+" is writable by other users")
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("token created in the refused directory: %v", err)
	}
	if _, err := NewContainer(ContainerOptions{Addr: "127.0.0.1:0", AuthTokenFile: path, AllowSharedDirectory: true}); err != nil {
		t.Errorf("with allow_shared_directory: %v", err)
	}
}

// A token file created for a configured owner belongs to them with the configured mode, and that user
// can read it (as the workload does through AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE).
func TestSecurityTokenFileCreatedForTheConfiguredOwner(t *testing.T) {
	safefstest.NeedRoot(t, "chowns files to another user")
	root := t.TempDir()
	safefstest.Traversable(t, root)
	path := filepath.Join(root, "run", "token")
	if _, err := NewContainer(ContainerOptions{Addr: "127.0.0.1:0", AuthTokenFile: path,
		TokenOwner: safefs.NewID(nobody), TokenGroup: safefs.NewID(nobody), TokenMode: 0o640}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]fs.FileMode{filepath.Dir(path): 0o750, path: 0o640} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != nobody || st.Gid != nobody || fi.Mode().Perm() != want {
			t.Errorf("%s is %d:%d %v, want nobody %v", p, st.Uid, st.Gid, fi.Mode().Perm(), want)
		}
	}
	cat := exec.Command("cat", path)
	cat.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cat.CombinedOutput()
	if err != nil {
		t.Fatalf("nobody cannot read the token: %v: %s", err, out)
	}
	if raw, err := hex.DecodeString(string(out)); err != nil || len(raw) != 32 {
		t.Errorf("nobody read %d bytes that are not a 32-byte hex token", len(out))
	}
}

// eventually retries check for up to 3 s (the endpoint looks at its token file at most once a second).
func eventually(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 3s: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeAtomically replaces path with data the way an operator's rotation script should: temp + rename.
func writeAtomically(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// The operator rotates the token without a restart; a deleted token file is created afresh; a token file
// replaced by a symbolic link makes the endpoint fail closed, logging the cause once.
func TestSecurityTokenFileRotation(t *testing.T) {
	clock := newClock()
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	s, tokA, logs := startContainer(t, clock, ContainerOptions{AuthTokenFile: path})
	if err := s.Put(context.Background(), testCreds(clock.Now())); err != nil {
		t.Fatal(err)
	}
	status := func(tok string) int {
		return do(t, http.MethodGet, s.URL(), map[string]string{"Authorization": tok}).status
	}
	if got := status(tokA); got != http.StatusOK {
		t.Fatalf("token A: %d", got)
	}

	// Rotation: B works within a second or two, A no longer does.
	const tokB = "rotated-token-B"
	writeAtomically(t, path, tokB+"\n")
	eventually(t, "the rotated token is accepted", func() bool { return status(tokB) == http.StatusOK })
	if got := status(tokA); got != http.StatusUnauthorized {
		t.Errorf("old token after rotation: %d, want 401", got)
	}
	// Rewritten in place (same inode): also noticed.
	const tokB2 = "rotated-token-B2"
	if err := os.WriteFile(path, []byte(tokB2), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the token rewritten in place is accepted", func() bool { return status(tokB2) == http.StatusOK })

	// Deleted: a new token is created and served.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	var tokC string
	eventually(t, "a new token file is created", func() bool {
		status("any")
		b, err := os.ReadFile(path)
		tokC = string(b)
		return err == nil && tokC != ""
	})
	if raw, err := hex.DecodeString(tokC); err != nil || len(raw) != 32 {
		t.Errorf("the recreated token is not 32 hex-encoded bytes")
	}
	if got := status(tokC); got != http.StatusOK {
		t.Errorf("recreated token: %d", got)
	}
	if got := status(tokB2); got != http.StatusUnauthorized {
		t.Errorf("deleted token: %d, want 401", got)
	}

	// Replaced by a symbolic link (to a file holding a token the attacker knows): fail closed.
	known := filepath.Join(dir, "known")
	if err := os.WriteFile(known, []byte("known"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(known, path); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the endpoint fails closed", func() bool { return status(tokC) == http.StatusInternalServerError })
	for _, tok := range []string{"known", tokC, ""} {
		r := do(t, http.MethodGet, s.URL(), map[string]string{"Authorization": tok})
		if r.status != http.StatusInternalServerError {
			t.Errorf("token %q while the file is a link: %d, want 500", tok, r.status)
			continue
		}
		if e := decodeError(t, r.body); e.Code != "AuthTokenUnavailable" || !strings.Contains(e.Message, path+" is a symbolic link") {
			t.Errorf("error document %+v does not name the problem", e)
		}
	}
	time.Sleep(1100 * time.Millisecond) // another look at the file: same cause, not logged again
	status(tokC)
	if n := strings.Count(logs.String(), "[ERROR] auth token file cannot be used"); n != 1 {
		t.Errorf("the cause was logged %d times, want once:\n%s", n, logs.String())
	}

	// Fixed: served again, and the recovery is logged.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	const tokD = "repaired-token-D"
	writeAtomically(t, path, tokD)
	eventually(t, "served again once fixed", func() bool { return status(tokD) == http.StatusOK })
	if !strings.Contains(logs.String(), "auth token file is usable again") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
	s.Close()
	assertNoSecrets(t, "log", logs.String(), tokA, tokB, tokB2, tokC, tokD)
}

// TestSecurityTokenFileReadableByOthersIsRefused: a token file any local user can read (0644: an
// operator's echo under umask 022, or the write-and-rename rotation done with such a file) gives every
// user the credentials. It is refused at start, and on re-read the endpoint fails closed (500 naming the
// chmod) even for the right token, until the mode is fixed. A group the configuration names (or a
// group-readable auth_token_mode for root's group) may read it.
func TestSecurityTokenFileReadableByOthersIsRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	if err := os.WriteFile(path, []byte("tok"), 0o600); err != nil {
		t.Fatal(err)
	}
	for mode, fix := range map[os.FileMode]string{0o644: "chmod g-r,o-r ", 0o604: "chmod o-r ", 0o640: "chmod g-r "} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		tokenRefused(t, ContainerOptions{AuthTokenFile: path}, fmt.Sprintf("auth token file %s (owner uid %d, mode %04o) can be read or written by", path, os.Geteuid(), uint32(mode)))
		tokenRefused(t, ContainerOptions{AuthTokenFile: path}, "fix: "+fix+path)
	}
	// Group-readable, as configured: accepted (root's or the bridge's own group, with auth_token_mode 0640).
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := NewContainer(ContainerOptions{Addr: "127.0.0.1:0", AuthTokenFile: path, TokenMode: 0o640}); err != nil {
		t.Fatalf("0640 with auth_token_mode 0640: %v", err)
	}

	// Re-read: the operator rotates with a file written under umask 022.
	clock := newClock()
	s, tok, logs := startContainer(t, clock, ContainerOptions{AuthTokenFile: filepath.Join(dir, "rotated")})
	if err := s.Put(context.Background(), testCreds(clock.Now())); err != nil {
		t.Fatal(err)
	}
	get := func(tok string) response {
		return do(t, http.MethodGet, s.URL(), map[string]string{"Authorization": tok})
	}
	if r := get(tok); r.status != http.StatusOK {
		t.Fatalf("created token: %d", r.status)
	}
	const rotated = "rotated-token-readable-by-all"
	tmp := s.TokenFile() + ".new"
	if err := os.WriteFile(tmp, []byte(rotated), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, s.TokenFile()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the endpoint refuses the world-readable token", func() bool { return get(rotated).status == http.StatusInternalServerError })
	if r := get(rotated); strings.Contains(r.body, "SecretAccessKey") || !strings.Contains(r.body, "chmod g-r,o-r "+s.TokenFile()) {
		t.Errorf("refusal body %q: want no credentials and the chmod that fixes it", r.body)
	}
	if r := get(tok); r.status != http.StatusInternalServerError {
		t.Errorf("old token while the file is refused: %d, want 500", r.status)
	}
	if !strings.Contains(logs.String(), "can be read or written by its group") {
		t.Errorf("the refusal was not logged:\n%s", logs)
	}
	if err := os.Chmod(s.TokenFile(), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the fixed token file is served", func() bool { return get(rotated).status == http.StatusOK })
}

// TestSecurityTokenOwnerNameIsResolvedAgain: the token file belongs to the user "app" (auth_token_owner,
// or node mode's unix:user:app). The account is re-created with another uid and its old uid (65534) goes
// to someone else, who can read the old token file: from the next look at the file the endpoint refuses
// every request (the old uid's file is refused), logging the user and both uids; once the old file is
// removed, a new token is created for the new uid. Before, the old uid's token kept opening the endpoint.
func TestSecurityTokenOwnerNameIsResolvedAgain(t *testing.T) {
	safefstest.NeedRoot(t, "gives token files to other users (uids 65534 and 65533)")
	const oldUID, newUID = nobody, nobody - 1
	db := safefstest.NewAccounts("app", oldUID)
	lookup := func(name string) (safefs.ID, error) {
		uid, err := db.Lookup(name)
		return safefs.NewID(uid), err
	}
	clock := newClock()
	dir := t.TempDir() // as /tmp: root's, sticky, every user can create files in it
	if err := os.Chmod(dir, os.ModeSticky|0o777); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "token")
	s, tok, logs := startContainer(t, clock, ContainerOptions{AuthTokenFile: path, TokenOwner: safefs.NewID(oldUID), TokenOwnerName: "app", LookupOwner: lookup})
	if err := s.Put(context.Background(), testCreds(clock.Now())); err != nil {
		t.Fatal(err)
	}
	get := func(tok string) int {
		return do(t, http.MethodGet, s.URL(), map[string]string{"Authorization": tok}).status
	}
	if got := get(tok); got != http.StatusOK {
		t.Fatalf("token of uid %d: %d", oldUID, got)
	}

	db.Set("app", newUID)
	eventually(t, "the old uid's token is refused", func() bool { return get(tok) == http.StatusInternalServerError })
	if l := logs.String(); !strings.Contains(l, "auth token file owner now has another uid") ||
		!strings.Contains(l, "user=app") || !strings.Contains(l, fmt.Sprintf("old_uid=%d", oldUID)) || !strings.Contains(l, fmt.Sprintf("new_uid=%d", newUID)) {
		t.Errorf("no ERROR naming the user and both uids:\n%s", l)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	var fresh string
	eventually(t, "a token for the new uid", func() bool {
		get("any")
		b, err := os.ReadFile(path)
		fresh = string(b)
		return err == nil && fresh != ""
	})
	if st, err := os.Stat(path); err != nil || st.Sys().(*syscall.Stat_t).Uid != newUID {
		t.Fatalf("new token file: %v, owner %v; want uid %d", err, st, newUID)
	}
	if got := get(fresh); got != http.StatusOK {
		t.Errorf("new uid's token: %d", got)
	}
	if got := get(tok); got != http.StatusUnauthorized {
		t.Errorf("old uid's token: %d, want 401", got)
	}
}
