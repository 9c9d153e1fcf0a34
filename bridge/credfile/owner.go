package credfile

import (
	"context"
	"fmt"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs"
)

// currentRules returns the rules for the next write, with Owner looked up again from Options.OwnerName.
// When the name now resolves to another uid, or to no user, the credentials are withdrawn from the file
// under the old rules first (the old uid may belong to someone else by now) and an ERROR says so.
func (s *Sink) currentRules(ctx context.Context) (safefs.Rules, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ownerName == "" {
		return s.rules, nil
	}
	id, err := s.lookupOwner(s.ownerName)
	old := s.rules
	switch {
	case err != nil:
		if !s.ownerGone {
			s.ownerGone = true
			s.log.Error("credentials file owner has no uid any more: withdrawing the credentials from the file its old uid owns, and writing none until the user exists again (the old uid may be handed to someone else)",
				"path", s.path, "profile", s.profile, "user", s.ownerName, "old_uid", old.Owner.String(), "error", err)
			s.withdraw(ctx, old)
		}
		return old, fmt.Errorf("credfile: %s: owner %q: %w (was uid %s); the credentials were withdrawn: create the user, or change the owner",
			s.path, s.ownerName, err, old.Owner)
	case id == old.Owner:
		if s.ownerGone {
			s.ownerGone = false
			s.log.Info("credentials file owner exists again with its old uid", "path", s.path, "user", s.ownerName, "uid", id.String())
		}
		return old, nil
	}
	s.log.Error("credentials file owner now has another uid: the account was re-created, and its old uid may belong to someone else; "+
		"the credentials are withdrawn from the file the old uid owns, and written only for the new uid (remove what the old uid still owns on the path, after checking it)",
		"path", s.path, "profile", s.profile, "user", s.ownerName, "old_uid", old.Owner.String(), "new_uid", id.String())
	if !s.ownerGone {
		s.withdraw(ctx, old)
	}
	s.ownerGone = false
	s.rules.Owner = id
	return s.rules, nil
}

// withdraw removes the profile's credentials from the file under rules (the old owner's), logging a
// failure: the write for the new owner goes on either way, and refuses what the old uid owns.
func (s *Sink) withdraw(ctx context.Context, rules safefs.Rules) {
	if _, err := s.updateWith(ctx, rules, func(old []byte) ([]byte, error) { return Remove(old, s.profile) }); err != nil {
		s.log.Error("could not withdraw the credentials from the file of the owner's old uid", "path", s.path, "profile", s.profile, "error", err)
	}
}
