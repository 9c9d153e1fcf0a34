package bridge

import (
	"context"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
)

// Sink is one way of delivering a profile's credentials to workloads: a credentials file, an IMDSv2 or
// container endpoint, a hook. Every delivery method implements it; sinks are independent, and a failing
// sink neither stops the refresher nor the other sinks (the refresher retries a sink that failed).
type Sink interface {
	// Name identifies the sink in logs, health output and metrics (no secrets).
	Name() string
	// Put delivers fresh, valid credentials.
	Put(ctx context.Context, c creds.Credentials) error
	// Clear withdraws credentials that expired without a replacement: from then on the sink must
	// fail loudly (HTTP 500, missing profile) rather than hand out stale credentials.
	Clear(ctx context.Context) error
}

// Hook is implemented by sinks that tell something else about a refresh and deliver no credentials
// themselves: the on_refresh command and the signal (package hook). A failing hook is a failing sink —
// its profile is degraded, never ready — but a hook that works does not make a profile deliver: one whose
// other sinks all fail is not ready (health.ProfileStatus.Readiness).
type Hook interface {
	Sink
	// IsHook marks the sink as a hook; it does nothing.
	IsHook()
}
