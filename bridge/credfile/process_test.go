package credfile

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/ini.v1"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs/safefstest"
)

// The test binary doubles as the child processes of the multi-process tests: with childEnv set, TestMain
// runs the child named by it instead of the tests.
const (
	childEnv        = "CREDFILE_TEST_CHILD"
	childPathEnv    = "CREDFILE_TEST_PATH"
	childProfileEnv = "CREDFILE_TEST_PROFILE"
	childCountEnv   = "CREDFILE_TEST_COUNT"
)

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "writer":
		os.Exit(childWriter())
	case "racer":
		os.Exit(childRacer())
	case "fsize":
		os.Exit(childFileSizeLimited())
	default:
		fmt.Fprintf(os.Stderr, "unknown child %q\n", os.Getenv(childEnv))
		os.Exit(2)
	}
}

func childSink(profile string) *Sink {
	s, err := New(Options{Path: os.Getenv(childPathEnv), Profile: profile})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	return s
}

// childWriter Puts testCreds(profile, 0), (…, 1), … until killed, printing "ready" after the first one.
func childWriter() int {
	profile := os.Getenv(childProfileEnv)
	s := childSink(profile)
	for i := 0; ; i++ {
		if err := s.Put(context.Background(), testCreds(profile, i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if i == 0 {
			fmt.Println("ready")
		}
	}
}

// childRacer prints "ready", waits for a line on stdin, then for i in [0, count) Puts testCreds(profile, i)
// into the profile and testCreds(profile-i, i) into a profile of its own: any lost update loses a section.
func childRacer() int {
	profile := os.Getenv(childProfileEnv)
	n, _ := strconv.Atoi(os.Getenv(childCountEnv))
	s := childSink(profile)
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return 1
	}
	for i := range n {
		extra := fmt.Sprintf("%s-%d", profile, i)
		for _, put := range []struct {
			s *Sink
			p string
		}{{s, profile}, {childSink(extra), extra}} {
			if err := put.s.Put(context.Background(), testCreds(put.p, i)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
	}
	return 0
}

// childFileSizeLimited Puts under RLIMIT_FSIZE = 100 bytes, so the write of the temporary file fails with
// EFBIG part-way, as it would on a full disk; it prints the error.
func childFileSizeLimited() int {
	signal.Ignore(syscall.SIGXFSZ)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	lim.Cur = 100
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	profile := os.Getenv(childProfileEnv)
	err := childSink(profile).Put(context.Background(), testCreds(profile, 2))
	if err == nil {
		return 3
	}
	fmt.Print(err.Error())
	return 0
}

func child(t *testing.T, kind, path, profile string, extraEnv ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+kind, childPathEnv+"="+path, childProfileEnv+"="+profile)
	cmd.Env = append(cmd.Env, extraEnv...)
	return cmd
}

func tempFiles(t *testing.T, dir, base string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if safefs.IsTempName(base, e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

// Writers are killed with SIGKILL at random moments while they rewrite the file in a loop; after every
// kill the file must parse, keep every other profile and comment byte for byte, and hold one complete
// credential set.
func TestCrashSafetyUnderKill9(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "credentials")
	const head = "# top comment\n[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = defaultsecret\n\n[app]\n"
	const tail = "region = eu-west-1\n\n[zeta]\n; keep me\nk = v\n"
	writeFile(t, path, head+tail, 0o600)

	const maxKills, budget = 100, 4 * time.Second
	start, kills, interrupted := time.Now(), 0, 0
	for kills < maxKills && time.Since(start) < budget {
		cmd := child(t, "writer", path, "app")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || line != "ready\n" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("writer did not start: %q %v; stderr: %s", line, err, stderr.String())
		}
		time.Sleep(time.Duration(rand.Int64N(int64(3 * time.Millisecond))))
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		kills++
		if len(tempFiles(t, dir, "credentials")) > 0 {
			interrupted++ // the kill landed while a new version was being written
		}

		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, []byte(head)) || !bytes.HasSuffix(data, []byte(tail)) {
			t.Fatalf("after kill %d the other profiles or comments changed:\n%s", kills, data)
		}
		f, err := ini.Load(data)
		if err != nil {
			t.Fatalf("after kill %d the file does not parse: %v", kills, err)
		}
		got := f.Section("app").KeysHash()
		var i int
		if _, err := fmt.Sscanf(got[KeyAccessKeyID], "ASIAAPP%06d", &i); err != nil {
			t.Fatalf("after kill %d: access key id %q: %v", kills, got[KeyAccessKeyID], err)
		}
		want := fileKeys(testCreds("app", i))
		want["region"] = "eu-west-1"
		if !equalMaps(got, want) {
			t.Fatalf("after kill %d the section is not one complete credential set: %v", kills, got[KeyAccessKeyID])
		}
	}
	if kills < 10 {
		t.Fatalf("only %d kills in %s", kills, budget)
	}
	t.Logf("%d kills in %s, %d of them during a write", kills, time.Since(start).Round(time.Millisecond), interrupted)

	mustPut(t, newSink(t, path, "app", nil), testCreds("app", 0))
	if left := tempFiles(t, dir, "credentials"); len(left) != 0 {
		t.Errorf("temporary files left after a successful Put: %v", left)
	}
}

// Two processes update two profiles of one file at the same time; the lock must keep every update.
func TestConcurrentProcessesLoseNoUpdate(t *testing.T) {
	t.Run("private directory (lock file)", func(t *testing.T) {
		concurrentProcessesLoseNoUpdate(t, filepath.Join(t.TempDir(), "credentials"))
	})
	// In a directory others can write, the lock is the credentials file itself (see updateInSharedDir);
	// a lock file another user planted there is ignored.
	t.Run("sticky directory (the file itself)", func(t *testing.T) {
		safefstest.NeedRoot(t, "needs a root-owned sticky directory and another user's file")
		path := filepath.Join(stickyDir(t), "credentials")
		writeFile(t, path+".lock", "", 0o600)
		safefstest.Give(t, path+".lock", nobody, nobody)
		concurrentProcessesLoseNoUpdate(t, path)
	})
}

// stickyDir returns a new root-owned directory with mode 1777, like /tmp (the test must run as root).
func stickyDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmp")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	return dir
}

func concurrentProcessesLoseNoUpdate(t *testing.T, path string) {
	const keep = "; shared file\n[third]\naws_access_key_id = THIRD\naws_secret_access_key = thirdsecret\n"
	writeFile(t, path, keep, 0o600)
	const n = 40
	type proc struct {
		cmd    *exec.Cmd
		stdin  io.WriteCloser
		stderr bytes.Buffer
	}
	var procs []*proc
	for _, p := range []string{"a", "b"} {
		pr := &proc{cmd: child(t, "racer", path, p, childCountEnv+"="+strconv.Itoa(n))}
		var err error
		if pr.stdin, err = pr.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		out, err := pr.cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		pr.cmd.Stderr = &pr.stderr
		if err := pr.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pr.cmd.Process.Kill(); _ = pr.cmd.Wait() })
		if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
			t.Fatalf("child %s did not start: %q %v", p, line, err)
		}
		procs = append(procs, pr)
	}
	for _, pr := range procs { // both start together
		if _, err := io.WriteString(pr.stdin, "go\n"); err != nil {
			t.Fatal(err)
		}
	}
	for _, pr := range procs {
		if err := pr.cmd.Wait(); err != nil {
			t.Fatalf("child failed: %v; stderr: %s", err, pr.stderr.String())
		}
	}

	if got := readString(t, path); !strings.HasPrefix(got, keep) {
		t.Errorf("the third profile or the comment changed:\n%s", got)
	}
	for _, p := range []string{"a", "b"} {
		if got := sectionKeys(t, path, p); !equalMaps(got, fileKeys(testCreds(p, n-1))) {
			t.Errorf("profile %s holds %q, want its last value %q", p, got[KeyAccessKeyID], testCreds(p, n-1).AccessKeyID)
		}
		for i := range n {
			extra := fmt.Sprintf("%s-%d", p, i)
			if got := sectionKeys(t, path, extra); !equalMaps(got, fileKeys(testCreds(extra, i))) {
				t.Errorf("update of profile %s was lost: %v", extra, got)
			}
		}
	}
}

// RLIMIT_FSIZE makes the write fail part-way for any user, root included — the closest stand-in for a
// full disk. The failed Put must leave the previous file as it was and no temporary file behind, return
// an error naming the path and no secret; the next Put without the limit succeeds.
func TestFailedWriteLeavesTheFileIntact(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "credentials")
	s := newSink(t, path, "app", nil)
	mustPut(t, s, testCreds("app", 1))
	before := readString(t, path)

	cmd := child(t, "fsize", path, "app")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v; stderr: %s", err, stderr.String())
	}
	msg := string(out)
	if !strings.HasPrefix(msg, "credfile: writing "+path+": ") || !strings.HasSuffix(msg, "file too large") {
		t.Errorf("error = %q, want one naming %s and ending in \"file too large\"", msg, path)
	}
	assertNoSecret(t, msg, testCreds("app", 2))
	if got := readString(t, path); got != before {
		t.Errorf("the failed write changed the file:\n%s", got)
	}
	if left := tempFiles(t, dir, "credentials"); len(left) != 0 {
		t.Errorf("temporary files left by the failed write: %v", left)
	}

	mustPut(t, s, testCreds("app", 2))
	if got := sectionKeys(t, path, "app"); !equalMaps(got, fileKeys(testCreds("app", 2))) {
		t.Errorf("Put after the failure: %v", got[KeyAccessKeyID])
	}
}
