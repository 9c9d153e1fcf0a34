package credfile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A real full disk: a 64 KiB tmpfs filled to the last byte. Mounting needs CAP_SYS_ADMIN (root on CI
// and on this project's dev machines); elsewhere the test is skipped and TestFailedWriteLeavesTheFileIntact
// (RLIMIT_FSIZE) still covers a write failing part-way. The failed Put must return ENOSPC naming the
// path and no secret, leave the previous file as it was and no temporary file behind; once space is
// freed, the next Put succeeds.
func TestPutOnAFullDiskKeepsThePreviousFileAndRecovers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "full")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k,mode=0700"); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (%v); TestFailedWriteLeavesTheFileIntact covers a failing write", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })

	path := filepath.Join(dir, "credentials")
	writeFile(t, path, "# keep me\n[other]\nregion = eu-west-1\n", 0o600)
	s := newSink(t, path, "app", nil)
	mustPut(t, s, testCreds("app", 1))
	before := readString(t, path)

	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 4096)
	for {
		if _, err := f.Write(block); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the file system: %v", err)
			}
			break
		}
	}
	for { // the last partial block
		if _, err := f.Write(block[:1]); err != nil {
			break
		}
	}
	f.Close()

	c := testCreds("app", 2)
	err = s.Put(context.Background(), c)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Put on a full disk = %v, want ENOSPC naming %s", err, path)
	}
	assertNoSecret(t, err.Error(), c)
	if got := readString(t, path); got != before {
		t.Errorf("the failed Put changed the file:\n%s", got)
	}
	if left := tempFiles(t, dir, "credentials"); len(left) != 0 {
		t.Errorf("temporary files left on the full disk: %v", left)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, c)
	if got := sectionKeys(t, path, "app"); !equalMaps(got, fileKeys(c)) {
		t.Errorf("after space was freed: %v", got[KeyAccessKeyID])
	}
	if got := readString(t, path); !strings.HasPrefix(got, "# keep me\n[other]\nregion = eu-west-1\n") {
		t.Errorf("the other profile was not kept:\n%s", got)
	}
}
