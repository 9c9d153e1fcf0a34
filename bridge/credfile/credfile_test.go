package credfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/gofrs/flock"
	"github.com/hashicorp/go-hclog"
	"gopkg.in/ini.v1"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs/safefstest"
)

// testCreds are distinct, recognizable credentials number i of profile; the secret and token contain
// "SeCrEt" and "ToKeN" so that tests can grep for leaks.
func testCreds(profile string, i int) creds.Credentials {
	return creds.Credentials{
		AccessKeyID:     fmt.Sprintf("ASIA%s%06d", strings.ToUpper(strings.ReplaceAll(profile, "-", "")), i),
		SecretAccessKey: fmt.Sprintf("SeCrEt/%s/%06d+wJalrXUtnFEMI", profile, i),
		SessionToken:    fmt.Sprintf("ToKeN/%s/%06d/%s", profile, i, strings.Repeat("AbCd+/", 60)),
		Expiration:      time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second),
		AssumedRoleARN:  "arn:aws:sts::123456789012:assumed-role/" + profile + "-role/session",
	}
}

// fileKeys is what a file written with c must hold in c's section.
func fileKeys(c creds.Credentials) map[string]string {
	return map[string]string{
		KeyAccessKeyID:     c.AccessKeyID,
		KeySecretAccessKey: c.SecretAccessKey,
		KeySessionToken:    c.SessionToken,
		KeyExpires:         c.Expiration.UTC().Format(time.RFC3339),
		KeyPrincipalARN:    c.AssumedRoleARN,
	}
}

// sectionKeys reads path with ini.v1 and returns profile's keys (nil when there is no such section).
func sectionKeys(t *testing.T, path, profile string) map[string]string {
	t.Helper()
	f, err := ini.Load(path)
	if err != nil {
		t.Fatalf("ini.v1 cannot read %s: %v", path, err)
	}
	s, err := f.GetSection(profile)
	if err != nil {
		return nil
	}
	return s.KeysHash()
}

func newSink(t *testing.T, path, profile string, log hclog.Logger) *Sink {
	t.Helper()
	s, err := New(Options{Path: path, Profile: profile, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustPut(t *testing.T, s *Sink, c creds.Credentials) {
	t.Helper()
	if err := s.Put(context.Background(), c); err != nil {
		t.Fatalf("Put: %v", err)
	}
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, data string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // beyond the umask
		t.Fatal(err)
	}
}

func perm(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestNewValidatesOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"relative path", Options{Path: "aws/credentials", Profile: "app"}, `credfile: credentials file path "aws/credentials" is not absolute`},
		{"empty path", Options{Profile: "app"}, `credfile: credentials file path "" is not absolute`},
		{"empty profile", Options{Path: "/x/credentials"}, "credfile: empty profile name"},
		{"profile with a bracket", Options{Path: "/x/credentials", Profile: "a]"}, `credfile: profile name "a]" contains ']'; whitespace, control characters, '[', ']', '#' and ';' are not allowed`},
		{"negative lock timeout", Options{Path: "/x/credentials", Profile: "app", LockTimeout: -time.Second}, "credfile: negative lock timeout -1s"},
		{"valid", Options{Path: "/x/credentials", Profile: "app"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if got := errString(err); got != tt.want {
				t.Errorf("New error = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNameShowsPathAndProfile(t *testing.T) {
	s := newSink(t, "/home/app/.aws/credentials", "app", nil)
	if got, want := s.Name(), `credentials_file "/home/app/.aws/credentials" [app]`; got != want {
		t.Errorf("Name = %q, want %q", got, want)
	}
}

func TestPutCreatesFile0600AndMissingDirectories0700(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "home", ".aws", "credentials")
	c := testCreds("app", 1)
	mustPut(t, newSink(t, path, "app", nil), c)

	for _, d := range []string{filepath.Join(root, "home"), filepath.Join(root, "home", ".aws")} {
		if got := perm(t, d); got != 0o700 {
			t.Errorf("directory %s has mode %v, want 0700", d, got)
		}
	}
	if got := perm(t, path); got != 0o600 {
		t.Errorf("file mode %v, want 0600", got)
	}
	if got := perm(t, path+".lock"); got != 0o600 {
		t.Errorf("lock file mode %v, want 0600", got)
	}
	if got := sectionKeys(t, path, "app"); !equalMaps(got, fileKeys(c)) {
		t.Errorf("section holds %v, want %v", got, fileKeys(c))
	}
}

func TestPutResultIsReadByTheAWSSDK(t *testing.T) {
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"} {
		t.Setenv(v, "")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "credentials")
	// A CRLF file with a neighbour, a comment, our section duplicated and carrying a region and stale keys.
	writeFile(t, path, crlf("# edited by hand\n[default]\naws_access_key_id=AKIADEFAULT\naws_secret_access_key=defaultsecret\n\n[app]\nregion = eu-west-1\naws_access_key_id = STALE1\n\n[app]\naws_session_token = STALE2\n"), 0o600)
	c := testCreds("app", 7)
	mustPut(t, newSink(t, path, "app", nil), c)

	sc, err := config.LoadSharedConfigProfile(ctx, "app", func(o *config.LoadSharedConfigOptions) {
		o.CredentialsFiles = []string{path}
		o.ConfigFiles = []string{}
	})
	if err != nil {
		t.Fatalf("LoadSharedConfigProfile: %v", err)
	}
	if sc.Credentials.AccessKeyID != c.AccessKeyID || sc.Credentials.SecretAccessKey != c.SecretAccessKey || sc.Credentials.SessionToken != c.SessionToken {
		t.Errorf("SDK read %s / secret match %v / token match %v, want %s", sc.Credentials.AccessKeyID,
			sc.Credentials.SecretAccessKey == c.SecretAccessKey, sc.Credentials.SessionToken == c.SessionToken, c.AccessKeyID)
	}
	if sc.Region != "eu-west-1" {
		t.Errorf("SDK read region %q, want the kept eu-west-1", sc.Region)
	}

	cfg, err := config.LoadDefaultConfig(ctx, config.WithSharedCredentialsFiles([]string{path}),
		config.WithSharedConfigFiles([]string{}), config.WithSharedConfigProfile("app"))
	if err != nil {
		t.Fatalf("LoadDefaultConfig: %v", err)
	}
	got, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	if got.AccessKeyID != c.AccessKeyID || got.SecretAccessKey != c.SecretAccessKey || got.SessionToken != c.SessionToken {
		t.Errorf("Retrieve returned %s, want %s with the written secret and token", got.AccessKeyID, c.AccessKeyID)
	}

	def, err := config.LoadSharedConfigProfile(ctx, "default", func(o *config.LoadSharedConfigOptions) {
		o.CredentialsFiles = []string{path}
		o.ConfigFiles = []string{}
	})
	if err != nil || def.Credentials.AccessKeyID != "AKIADEFAULT" || def.Credentials.SecretAccessKey != "defaultsecret" {
		t.Errorf("default profile after Put: %s, %v", def.Credentials.AccessKeyID, err)
	}
}

func TestPutTightensWiderPermissionsTo0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials")
	writeFile(t, path, "[default]\naws_access_key_id = A\n", 0o644)
	var logs bytes.Buffer
	mustPut(t, newSink(t, path, "app", hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace})), testCreds("app", 1))
	if got := perm(t, path); got != 0o600 {
		t.Errorf("mode %v after Put, want 0600", got)
	}
	if !strings.Contains(logs.String(), "[WARN]  credentials file had wider permissions; now 0600") || !strings.Contains(logs.String(), "previous_mode=-rw-r--r--") {
		t.Errorf("no warning about the tightened mode in logs:\n%s", logs.String())
	}
}

// followSink is a sink with follow_symlinks = true.
func followSink(t *testing.T, path, profile string) *Sink {
	t.Helper()
	s, err := New(Options{Path: path, Profile: profile, FollowSymlinks: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPutWritesTheTargetOfASymlinkWithFollowSymlinks(t *testing.T) {
	root := t.TempDir()
	realDir, linkDir := filepath.Join(root, "real"), filepath.Join(root, "links")
	for _, d := range []string{realDir, linkDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	target := filepath.Join(realDir, "credentials")
	writeFile(t, target, "[default]\nk = v\n", 0o600)
	// links/credentials -> links/hop -> ../real/credentials (relative links, resolved from their own directory)
	if err := os.Symlink("../real/credentials", filepath.Join(linkDir, "hop")); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(linkDir, "credentials")
	if err := os.Symlink("hop", link); err != nil {
		t.Fatal(err)
	}
	c := testCreds("app", 3)
	if err := newSink(t, link, "app", nil).Put(context.Background(), c); !errors.Is(err, safefs.ErrRefused) {
		t.Fatalf("Put through a symlink without follow_symlinks = %v, want a refusal", err)
	}
	mustPut(t, followSink(t, link, "app"), c)

	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", fi, err)
	}
	if got := sectionKeys(t, target, "app"); !equalMaps(got, fileKeys(c)) {
		t.Errorf("target holds %v", got)
	}
	if _, err := os.Stat(target + ".lock"); err != nil {
		t.Errorf("no lock beside the target: %v", err)
	}
	if _, err := os.Lstat(link + ".lock"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lock file created beside the link: %v", err)
	}

	// A dangling link: the file is created where it points.
	dangling := filepath.Join(linkDir, "new")
	if err := os.Symlink("../real/new-credentials", dangling); err != nil {
		t.Fatal(err)
	}
	mustPut(t, followSink(t, dangling, "app"), c)
	if got := sectionKeys(t, filepath.Join(realDir, "new-credentials"), "app"); !equalMaps(got, fileKeys(c)) {
		t.Errorf("dangling link target holds %v", got)
	}
}

func TestPutRefusesToModifyAnInvalidFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials")
	const original = "[default]\naws_access_key_id = A\nthis line is not INI\n"
	writeFile(t, path, original, 0o644)
	err := newSink(t, path, "app", nil).Put(context.Background(), testCreds("app", 1))
	want := fmt.Sprintf(`credfile: %s:3: expected "key = value", a [section] header or a comment; refusing to modify the file`, path)
	if errString(err) != want {
		t.Fatalf("Put error = %v, want %q", err, want)
	}
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Path != path || pe.Line != 3 {
		t.Errorf("error is not a *ParseError for %s line 3: %#v", path, pe)
	}
	if got := readString(t, path); got != original {
		t.Errorf("file changed to %q", got)
	}
	if got := perm(t, path); got != 0o644 {
		t.Errorf("refused file's mode changed to %v", got)
	}
}

func TestPutRefusesANonRegularFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	err := newSink(t, path, "app", nil).Put(context.Background(), testCreds("app", 1))
	if want := "credfile: " + path + " is not a regular file (d---------)"; errString(err) != want {
		t.Errorf("Put error = %v, want %q", err, want)
	}
}

func TestClearRemovesOnlyOurKeysAndAnEmptiedSection(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "credentials")
	const before = "# keep\n[default]\naws_access_key_id = A\n"
	writeFile(t, path, before, 0o600)
	app, other := newSink(t, path, "app", nil), newSink(t, path, "other", nil)
	mustPut(t, app, testCreds("app", 1))
	mustPut(t, other, testCreds("other", 1))

	if err := app.Clear(ctx); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	want := before + "\n[other]\n" + strings.Join([]string{
		"aws_access_key_id = " + testCreds("other", 1).AccessKeyID,
		"aws_secret_access_key = " + testCreds("other", 1).SecretAccessKey,
		"aws_session_token = " + testCreds("other", 1).SessionToken,
		"x_security_token_expires = 2031-01-01T00:00:01Z",
		"x_principal_arn = arn:aws:sts::123456789012:assumed-role/other-role/session",
	}, "\n") + "\n"
	if got := readString(t, path); got != want {
		t.Errorf("after Clear:\n%q\nwant\n%q", got, want)
	}
	if err := app.Clear(ctx); err != nil {
		t.Errorf("second Clear: %v", err)
	}
	if got := readString(t, path); got != want {
		t.Errorf("second Clear changed the file to %q", got)
	}
	if err := other.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, path); got != before {
		t.Errorf("after clearing both: %q, want %q", got, before)
	}
}

func TestClearKeepsASectionWithOtherKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials")
	writeFile(t, path, "[app]\nregion = us-east-2\n", 0o600)
	s := newSink(t, path, "app", nil)
	mustPut(t, s, testCreds("app", 1))
	if err := s.Clear(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, path); got != "[app]\nregion = us-east-2\n" {
		t.Errorf("after Clear: %q", got)
	}
}

func TestClearOfAMissingFileCreatesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials")
	if err := newSink(t, path, "app", nil).Clear(context.Background()); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Clear created the file: %v", err)
	}
}

func TestPutGivesUpWhenTheLockIsHeld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials")
	holder := flock.New(path + ".lock")
	if err := holder.Lock(); err != nil {
		t.Fatal(err)
	}
	defer holder.Unlock()

	s, err := New(Options{Path: path, Profile: "app", LockTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Put(context.Background(), testCreds("app", 1))
	if !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("Put error = %v, want ErrLockTimeout", err)
	}
	if want := "credfile: timed out waiting for the lock " + path + ".lock after 50ms (another writer holds it)"; err.Error() != want {
		t.Errorf("Put error = %q, want %q", err, want)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	err = newSink(t, path, "app", nil).Clear(ctx)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrLockTimeout) {
		t.Fatalf("Clear with a cancelled context = %v, want context.Canceled", err)
	}
	if want := "credfile: waiting for lock " + path + ".lock: context canceled"; err.Error() != want {
		t.Errorf("Clear error = %q, want %q", err, want)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the file was written without the lock: %v", err)
	}
}

func TestPutWithACancelledContextTouchesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "credentials")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := newSink(t, path, "app", nil).Put(ctx, testCreds("app", 1))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Put created the directory: %v", err)
	}
}

// A path whose parent is a regular file cannot be created by anyone, root included (ENOTDIR).
func TestPutFailsWhenTheParentIsAFile(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "notadir")
	writeFile(t, parent, "x", 0o600)
	path := filepath.Join(parent, "credentials")
	c := testCreds("app", 1)
	err := newSink(t, path, "app", nil).Put(context.Background(), c)
	if !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("Put = %v, want ENOTDIR", err)
	}
	if want := "credfile: open " + parent + ": not a directory"; err.Error() != want {
		t.Errorf("Put error = %q, want %q", err, want)
	}
	assertNoSecret(t, err.Error(), c)
}

// A read-only directory (permission denied) stops non-root writers only: root bypasses mode bits, so this
// test is skipped as root; TestFailedWriteLeavesTheFileIntact covers a failing write for every user.
func TestPutFailsInAReadOnlyDirectoryAndRecovers(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions; see TestFailedWriteLeavesTheFileIntact")
	}
	dir := filepath.Join(t.TempDir(), "aws")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "credentials")
	s := newSink(t, path, "app", nil)
	mustPut(t, s, testCreds("app", 1)) // creates the lock file too
	before := readString(t, path)
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })

	c := testCreds("app", 2)
	err := s.Put(context.Background(), c)
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Put = %v, want a permission error naming %s", err, path)
	}
	assertNoSecret(t, err.Error(), c)
	if got := readString(t, path); got != before {
		t.Errorf("file changed by the failed Put")
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, c)
	if got := sectionKeys(t, path, "app"); !equalMaps(got, fileKeys(c)) {
		t.Errorf("after recovery: %v", got)
	}
}

// A file owned by the configured owner keeps its owner and, with no group configured, its group.
func TestPutKeepsTheOwnerOfTheFile(t *testing.T) {
	safefstest.NeedRoot(t, "chowns files to another user")
	path := filepath.Join(t.TempDir(), "credentials")
	writeFile(t, path, "[default]\nk = v\n", 0o600)
	if err := os.Chown(path, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Path: path, Profile: "app", Owner: safefs.NewID(1234)})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, testCreds("app", 1))
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1234 || st.Gid != 5678 {
		t.Errorf("owner %d:%d after Put, want 1234:5678", st.Uid, st.Gid)
	}
}

func TestPutRemovesTemporaryFilesOfKilledWriters(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "credentials")
	stale := []string{".credentials.tmp123", ".credentials.tmp8246031925"}
	// ".credentials2.tmp5" is another file's (credentials2's), which its own writer may be renaming.
	kept := []string{".credentials.bak", ".credentials", "credentials.tmp123", ".credentials.tmp12a", ".other.tmp1", ".credentials2.tmp5"}
	for _, n := range append(append([]string{}, stale...), kept...) {
		writeFile(t, filepath.Join(dir, n), "x", 0o600)
	}
	mustPut(t, newSink(t, path, "app", nil), testCreds("app", 1))
	for _, n := range stale {
		if _, err := os.Stat(filepath.Join(dir, n)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stale temporary file %s not removed", n)
		}
	}
	for _, n := range kept {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Errorf("unrelated file %s removed: %v", n, err)
		}
	}
}

func assertNoSecret(t *testing.T, text string, c creds.Credentials) {
	t.Helper()
	for _, s := range []string{c.SecretAccessKey, c.SessionToken, "SeCrEt", "ToKeN"} {
		if strings.Contains(text, s) {
			t.Errorf("secret material %q leaked into: %s", s[:min(len(s), 12)], text)
		}
	}
}

func TestSecretsNeverAppearInLogsOrErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "credentials")
	var logs bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace})
	s := newSink(t, path, "app", log)
	c := testCreds("app", 1)
	var errs []string
	note := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	writeFile(t, path, "[default]\nk = v\n", 0o644) // tightened: a warning
	note(s.Put(context.Background(), c))
	note(s.Clear(context.Background()))
	// A file whose broken line is a secret: the error names the line, never its text.
	writeFile(t, path, "[default]\n"+c.SecretAccessKey+"\n", 0o600)
	note(s.Put(context.Background(), c))
	// Credentials that cannot be written.
	bad := c
	bad.SessionToken += "\n#"
	note(s.Put(context.Background(), bad))
	// A failing write.
	note(newSink(t, filepath.Join(path, "x"), "app", log).Put(context.Background(), c))

	if len(errs) != 3 {
		t.Fatalf("expected 3 errors, got %q", errs)
	}
	assertNoSecret(t, strings.Join(errs, "\n"), c)
	if !strings.Contains(logs.String(), c.AccessKeyID) {
		t.Fatalf("logs do not mention the access key id; are they captured?\n%s", logs.String())
	}
	assertNoSecret(t, logs.String(), c)
}

func TestSinksOfOneProcessDoNotLoseEachOthersUpdates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials")
	const keep = "[keep]\naws_access_key_id = KEEP\n"
	writeFile(t, path, keep, 0o600)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for _, p := range []string{"a", "b"} {
		s := newSink(t, path, p, nil)
		wg.Go(func() {
			for i := range n {
				if err := s.Put(context.Background(), testCreds(p, i)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, p := range []string{"a", "b"} {
		if got := sectionKeys(t, path, p); !equalMaps(got, fileKeys(testCreds(p, n-1))) {
			t.Errorf("profile %s holds %v, want its last value", p, got[KeyAccessKeyID])
		}
	}
	if !strings.HasPrefix(readString(t, path), keep) {
		t.Errorf("the pre-existing profile was changed")
	}
}

// TestPutRefusesAFileOverOneMiB: a credentials file over MaxFileSize is not read, rewritten or grown; the
// error names the path and the size. A file of exactly the limit is still written.
func TestPutRefusesAFileOverOneMiB(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "credentials")
	big := "# " + strings.Repeat("x", MaxFileSize) + "\n"
	writeFile(t, path, big, 0o600)
	err := newSink(t, path, "app", nil).Put(context.Background(), testCreds("app", 1))
	var tl *TooLargeError
	want := fmt.Sprintf("credfile: %s is %d bytes, more than the 1048576 (1 MiB) a credentials file may hold", path, len(big))
	if !errors.As(err, &tl) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "point credentials_file.path at another file") {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if readString(t, path) != big {
		t.Fatal("the refused file was changed")
	}

	// At the limit: written.
	atLimit := "# " + strings.Repeat("x", MaxFileSize-3) + "\n"
	writeFile(t, path, atLimit, 0o600)
	mustPut(t, newSink(t, path, "app", nil), testCreds("app", 1))
	if got := readString(t, path); !strings.HasPrefix(got, atLimit) || !strings.Contains(got, "[app]") {
		t.Fatal("a file of exactly 1 MiB was not updated")
	}
}
