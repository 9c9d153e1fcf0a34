package daemon

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/logtest"
)

// A reload's log_level and log_format apply to every logger already handed out, not only to new ones.
func TestReconfigureChangesLevelAndFormatOfExistingLoggers(t *testing.T) {
	buf := &logtest.Buffer{}
	root := NewLogger(buf, "info", "text")
	sub := root.Named("refresher").With("profile", "app")
	sub.Debug("hidden at info")
	sub.Info("as text")
	root.Reconfigure("debug", "json")
	sub.Debug("as json at debug")
	root.Reconfigure("warn", "text")
	sub.Info("hidden at warn")
	sub.Warn("text again")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], "[INFO]  spiffe-aws-bridge.refresher: as text: profile=app") {
		t.Errorf("line 1 is not the text line: %s", lines[0])
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &doc); err != nil || doc["@message"] != "as json at debug" || doc["profile"] != "app" || doc["@module"] != "spiffe-aws-bridge.refresher" {
		t.Errorf("line 2 is not the JSON debug line (%v): %s", err, lines[1])
	}
	if !strings.Contains(lines[2], "[WARN]  spiffe-aws-bridge.refresher: text again: profile=app") {
		t.Errorf("line 3 is not the text warning: %s", lines[2])
	}
}
