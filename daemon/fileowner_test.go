package daemon

import (
	"errors"
	"testing"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs"
)

func TestFileOwnerResolvesNamesAndIDs(t *testing.T) {
	cases := []struct {
		owner, group string
		uid, gid     safefs.ID
		err          string
	}{
		{"", "", safefs.ID{}, safefs.ID{}, ""},
		{"root", "root", safefs.NewID(0), safefs.NewID(0), ""},
		{"65534", "65534", safefs.NewID(65534), safefs.NewID(65534), ""},
		{"4242", "", safefs.NewID(4242), safefs.ID{}, ""}, // a numeric id need not exist (containers)
		{"no-such-user-x", "", safefs.ID{}, safefs.ID{}, `credentials_file.owner "no-such-user-x": no such user (name an existing user or a numeric id)`},
		{"", "no-such-group-x", safefs.ID{}, safefs.ID{}, `credentials_file.group "no-such-group-x": no such group (name an existing group or a numeric id)`},
	}
	for _, c := range cases {
		uid, gid, err := fileOwner(nil, "credentials_file.owner", c.owner, "credentials_file.group", c.group)
		got := ""
		if err != nil {
			got = err.Error()
		}
		var ce *ConfigError
		if err != nil && !errors.As(err, &ce) {
			t.Errorf("fileOwner(%q, %q): %v is not a ConfigError (exit status 2)", c.owner, c.group, err)
		}
		if got != c.err || (err == nil && (uid != c.uid || gid != c.gid)) {
			t.Errorf("fileOwner(%q, %q) = %v, %v, %q; want %v, %v, %q", c.owner, c.group, uid, gid, got, c.uid, c.gid, c.err)
		}
	}
}
