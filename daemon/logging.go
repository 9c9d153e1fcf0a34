package daemon

import (
	"io"

	"github.com/hashicorp/go-hclog"
)

// NewLogger builds the daemon's logger from the config's log_level and log_format.
func NewLogger(w io.Writer, level, format string) hclog.InterceptLogger {
	return hclog.NewInterceptLogger(&hclog.LoggerOptions{
		Name:       "spiffe-aws-bridge",
		Level:      hclog.LevelFromString(level),
		JSONFormat: format == "json",
		Output:     w,
		TimeFormat: "2006-01-02T15:04:05.000Z07:00",
	})
}
