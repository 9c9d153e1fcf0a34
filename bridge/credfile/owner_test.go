package credfile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/logtest"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs/safefstest"
)

// lookupIn is db's Lookup as the sink's owner lookup.
func lookupIn(db *safefstest.Accounts) func(string) (safefs.ID, error) {
	return func(name string) (safefs.ID, error) {
		uid, err := db.Lookup(name)
		return safefs.NewID(uid), err
	}
}

// logLine returns the log line containing substr, failing the test when there is none.
func logLine(t *testing.T, logs *logtest.Buffer, substr string) string {
	t.Helper()
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, substr) {
			return l
		}
	}
	t.Fatalf("no log line contains %q:\n%s", substr, logs)
	return ""
}

// putRefused asserts that Put fails and that the file at path holds no credential key of the profile.
func putRefused(t *testing.T, s *Sink, path string, i int, want string) {
	t.Helper()
	c := testCreds("app", i)
	err := s.Put(context.Background(), c)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Put = %v; want an error containing %q", err, want)
	}
	if b, err := os.ReadFile(path); err == nil && (strings.Contains(string(b), "aws_") || strings.Contains(string(b), c.AccessKeyID)) {
		t.Fatalf("%s still holds credentials:\n%s", path, b)
	}
}

// TestSecurityOwnerNameIsResolvedAgainBeforeEveryWrite: the file's owner is the user "app" (owner = "app",
// or node mode's unix:user:app). The account is deleted and re-created with another uid, and its old uid
// (65534) is handed to another user. The next write withdraws the credentials from the file uid 65534
// owns, logs an ERROR naming the user and both uids, and writes nothing that uid 65534 can read: the old
// file is refused until it is removed, then the file is created for the new uid. A deleted account's file
// is withdrawn too. Before, the name was resolved once and uid 65534 read every fresh credential.
func TestSecurityOwnerNameIsResolvedAgainBeforeEveryWrite(t *testing.T) {
	safefstest.NeedRoot(t, "gives files to other users (uids 65534 and 65533)")
	const oldUID, newUID = nobody, nobody - 1
	db := safefstest.NewAccounts("app", oldUID)
	path := filepath.Join(stickyDir(t), "credentials")
	log, logs := logtest.New()
	s := sinkWith(t, Options{Path: path, Owner: safefs.NewID(oldUID), OwnerName: "app", LookupOwner: lookupIn(db), Logger: log})
	mustPut(t, s, testCreds("app", 1))
	if uid, _, _ := owner(t, path); uid != oldUID {
		t.Fatalf("file owned by uid %d, want %d", uid, oldUID)
	}

	db.Set("app", newUID) // userdel app; useradd app (another uid); uid 65534 goes to someone else
	putRefused(t, s, path, 2, fmt.Sprintf("%s is owned by uid %d", path, oldUID))
	line := logLine(t, logs, "credentials file owner now has another uid")
	for _, want := range []string{"[ERROR]", "user=app", fmt.Sprintf("old_uid=%d", oldUID), fmt.Sprintf("new_uid=%d", newUID)} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q lacks %q", line, want)
		}
	}
	putRefused(t, s, path, 3, fmt.Sprintf("is owned by uid %d", oldUID)) // and stays so

	// The operator removes the old uid's file and lock: the new uid gets its own.
	for _, p := range []string{path, path + ".lock"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
	c := testCreds("app", 4)
	mustPut(t, s, c)
	if uid, _, _ := owner(t, path); uid != newUID || sectionKeys(t, path, "app")[KeyAccessKeyID] != c.AccessKeyID {
		t.Fatalf("after the old file was removed: owner uid %d (want %d), keys %v", uid, newUID, sectionKeys(t, path, "app"))
	}

	// The account is deleted: its credentials are withdrawn, none written.
	db.Remove("app")
	putRefused(t, s, path, 5, `owner "app": no such user`)
	logLine(t, logs, "credentials file owner has no uid any more")
	// Re-created with the same uid: writes resume.
	db.Set("app", newUID)
	mustPut(t, s, testCreds("app", 6))
}

// TestSecurityOwnerAccountRecreatedWithAnotherUIDRealUsers is the same story with real accounts in
// /etc/passwd (useradd, userdel) and the system's user database behind the sink.
func TestSecurityOwnerAccountRecreatedWithAnotherUIDRealUsers(t *testing.T) {
	safefstest.NeedRoot(t, "creates and deletes user accounts")
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("needs useradd and userdel: " + err.Error())
	}
	name := fmt.Sprintf("sabt%d", os.Getpid()%100000)
	useradd := func(uid int) {
		t.Helper()
		if out, err := exec.Command("useradd", "--no-create-home", "--uid", fmt.Sprint(uid), "--user-group", name).CombinedOutput(); err != nil {
			t.Fatalf("useradd %s: %v %s", name, err, out)
		}
	}
	userdel := func() {
		_ = exec.Command("userdel", name).Run()
	}
	userdel()
	t.Cleanup(userdel)
	const oldUID, newUID = 64901, 64902
	useradd(oldUID)
	id, err := safefs.LookupOwner(name)
	if err != nil || id.Int() != oldUID {
		t.Fatalf("lookup %s: %v %v", name, id, err)
	}
	path := filepath.Join(stickyDir(t), "credentials")
	log, logs := logtest.New()
	s := sinkWith(t, Options{Path: path, Owner: id, OwnerName: name, Logger: log})
	mustPut(t, s, testCreds("app", 1))

	userdel()
	useradd(newUID)
	if u, err := user.Lookup(name); err != nil || u.Uid != fmt.Sprint(newUID) {
		t.Fatalf("re-created %s: %v %v", name, u, err)
	}
	putRefused(t, s, path, 2, fmt.Sprintf("is owned by uid %d", oldUID))
	line := logLine(t, logs, "credentials file owner now has another uid")
	if !strings.Contains(line, "user="+name) || !strings.Contains(line, fmt.Sprintf("old_uid=%d", oldUID)) || !strings.Contains(line, fmt.Sprintf("new_uid=%d", newUID)) {
		t.Errorf("log line %q does not name the user and both uids", line)
	}
}
