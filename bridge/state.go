package bridge

import "time"

// ReadyMinRemaining is how much life a profile's credentials need for the profile to count as ready
// (design.md §4: SDKs refresh 5–15 minutes before expiry).
const ReadyMinRemaining = 15 * time.Minute

// ProfileState is what health checks and metrics report about a profile. It holds no secret.
type ProfileState struct {
	Profile  string `json:"profile"`
	SpiffeID string `json:"spiffe_id,omitempty"`
	RoleARN  string `json:"role_arn"`
	// LastSuccess is when CreateSession last succeeded.
	LastSuccess time.Time `json:"last_success,omitzero"`
	// Expiration of the credentials currently served; zero when none.
	Expiration time.Time `json:"expiration,omitzero"`
	// SVIDExpiry is the NotAfter of the profile's current SVID.
	SVIDExpiry  time.Time `json:"svid_expiry,omitzero"`
	NextRefresh time.Time `json:"next_refresh,omitzero"`
	// LastErrorType is the AWS error type ("AccessDeniedException"…), "network", "no_identity" or
	// "invalid_input" of the last failure, kept after a later success for diagnosis.
	LastErrorType       string    `json:"last_error_type,omitempty"`
	LastError           string    `json:"last_error,omitempty"`
	LastErrorAt         time.Time `json:"last_error_at,omitzero"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	Refreshes           int       `json:"refreshes"`
	FailingSinks        []string  `json:"failing_sinks,omitempty"`
}
