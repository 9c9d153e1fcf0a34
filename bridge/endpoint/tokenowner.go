package endpoint

import (
	"fmt"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs"
)

// tokenOwner is the user name the token file's owner was configured by, looked up again each time the
// file is looked at (ContainerOptions.TokenOwnerName).
type tokenOwner struct {
	name   string
	lookup func(string) (safefs.ID, error)
}

// resolveOwner looks the owner's name up again and makes t.rules trust the uid it has now. A changed uid
// is logged at ERROR with the user and both uids: the file the old uid owns is refused from then on (the
// old uid may be someone else's now). It is called with t.refresh held, or before t is shared.
func (t *tokenFile) resolveOwner() error {
	if t.owner.name == "" {
		return nil
	}
	lookup := t.owner.lookup
	if lookup == nil {
		lookup = safefs.LookupOwner
	}
	id, err := lookup(t.owner.name)
	if err != nil {
		return fmt.Errorf("auth token file %s: owner %q: %w (was uid %s); refusing every request until the user exists again or auth_token_owner changes",
			t.path, t.owner.name, err, t.rules.Owner)
	}
	if id != t.rules.Owner {
		t.log.Error("auth token file owner now has another uid: the account was re-created, and its old uid may belong to someone else; "+
			"the token file the old uid owns is refused (remove it, after checking, to get a new one for the new uid)",
			"path", t.path, "user", t.owner.name, "old_uid", t.rules.Owner.String(), "new_uid", id.String())
		t.rules.Owner = id
	}
	return nil
}
