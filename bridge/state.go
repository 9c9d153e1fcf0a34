package bridge

import "github.com/spiffe-aws-bridge/spiffe-aws-bridge/bridge/health"

// ProfileState is what health checks and metrics report about a profile; it holds no secret. It is the
// health package's ProfileStatus, so that the refresher's state reaches /ready and /metrics unconverted.
type ProfileState = health.ProfileStatus

// SinkState is one sink's delivery state within a ProfileState: health's SinkStatus.
type SinkState = health.SinkStatus
