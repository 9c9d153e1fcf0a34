package daemon

import (
	"io"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// Logger is the daemon's logger: an hclog.InterceptLogger whose level and format (log_level,
// log_format) change on every config reload, for the loggers already handed out too.
//
// Every line goes through one sink that formats it; Reconfigure swaps that sink. The root logger itself
// writes nowhere, it only keeps the level for IsDebug and friends.
type Logger struct {
	hclog.InterceptLogger
	w io.Writer

	mu     sync.Mutex
	sink   hclog.SinkAdapter
	level  hclog.Level
	format string
}

// NewLogger builds the daemon's logger from the config's log_level and log_format.
func NewLogger(w io.Writer, level, format string) *Logger {
	l := &Logger{
		InterceptLogger: hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "spiffe-aws-bridge", Output: io.Discard, Level: hclog.LevelFromString(level)}),
		w:               w,
	}
	l.Reconfigure(level, format)
	return l
}

// Reconfigure applies a new log_level and log_format (text or json) to every line logged from now on.
func (l *Logger) Reconfigure(level, format string) {
	lvl := hclog.LevelFromString(level)
	if lvl == hclog.NoLevel {
		lvl = hclog.Info
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sink != nil && lvl == l.level && format == l.format {
		return
	}
	next := hclog.NewSinkAdapter(&hclog.LoggerOptions{
		Level:      lvl,
		JSONFormat: format == "json",
		Output:     l.w,
		TimeFormat: "2006-01-02T15:04:05.000Z07:00",
	})
	l.InterceptLogger.RegisterSink(next)
	if l.sink != nil {
		l.InterceptLogger.DeregisterSink(l.sink)
	}
	l.sink, l.level, l.format = next, lvl, format
	l.InterceptLogger.SetLevel(lvl)
}

// SetLevel changes the level, keeping the format.
func (l *Logger) SetLevel(level hclog.Level) {
	l.mu.Lock()
	format := l.format
	l.mu.Unlock()
	l.Reconfigure(level.String(), format)
}
