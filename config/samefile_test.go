package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSameCredentialsFileThroughLinksIsAConfigError: two profiles writing the same INI section of one
// file are refused when the paths differ only by a symbolic link (to the file or a directory above it,
// existing or not yet) or a hard link.
func TestSameCredentialsFileThroughLinksIsAConfigError(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(real, "credentials")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	mustLink := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	mustLink(os.Symlink(real, filepath.Join(dir, "alias")))
	mustLink(os.Symlink(file, filepath.Join(dir, "file-link")))
	mustLink(os.Link(file, filepath.Join(dir, "hard")))
	block := func(name, path, section string) string {
		return `profile "` + name + `" {
  trust_anchor_arn = "` + ta + `"
  profile_arn      = "` + pa + `"
  role_arn         = "` + ra + `"
  credentials_file {
    path         = "` + path + `"
    profile_name = "` + section + `"
  }
}
`
	}
	for _, tc := range []struct {
		name, a, b string
		clash      bool
	}{
		{"symlinked directory", file, filepath.Join(dir, "alias", "credentials"), true},
		{"symlink to the file", file, filepath.Join(dir, "file-link"), true},
		{"hard link", file, filepath.Join(dir, "hard"), true},
		{"not yet existing file under a symlinked directory", filepath.Join(real, "new"), filepath.Join(dir, "alias", "new"), true},
		{"different files", file, filepath.Join(real, "other"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(block("a", tc.a, "x")+block("b", tc.b, "x")), "test.hcl")
			want := `profile "b": credentials_file ` + tc.b + ` is the same file as ` + tc.a + ` (through a symbolic or hard link), whose section [x] profile "a" already writes`
			if tc.clash != (err != nil) || err != nil && !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want clash %v: %q", err, tc.clash, want)
			}
			// Another section of the same file is fine.
			if _, err := Parse([]byte(block("a", tc.a, "x")+block("b", tc.b, "y")), "test.hcl"); err != nil {
				t.Fatalf("different sections: %v", err)
			}
		})
	}
}
