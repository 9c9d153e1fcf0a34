package daemon

import (
	"fmt"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs"
)

// fileOwner resolves the owner and group settings of a block that writes files (user and group names or
// numeric ids) to ids; the errors name the key and its value, e.g.
// `credentials_file.owner "app": no such user`.
func fileOwner(ownerKey, owner, groupKey, group string) (safefs.ID, safefs.ID, error) {
	uid, err := safefs.LookupOwner(owner)
	if err != nil {
		return safefs.ID{}, safefs.ID{}, fmt.Errorf("%s %q: %w", ownerKey, owner, err)
	}
	gid, err := safefs.LookupGroup(group)
	if err != nil {
		return safefs.ID{}, safefs.ID{}, fmt.Errorf("%s %q: %w", groupKey, group, err)
	}
	return uid, gid, nil
}
