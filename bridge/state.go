package bridge

import (
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/health"
)

// ReadyMinRemaining is how much life a profile's credentials need for the profile to count as ready
// (design.md §4: SDKs refresh 5–15 minutes before expiry).
const ReadyMinRemaining = 15 * time.Minute

// ProfileState is what health checks and metrics report about a profile; it holds no secret. It is the
// health package's ProfileStatus, so that the refresher's state reaches /ready and /metrics unconverted.
type ProfileState = health.ProfileStatus
