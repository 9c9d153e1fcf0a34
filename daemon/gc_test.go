package daemon

import (
	"testing"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
)

// A daemon with node-mode profiles collects at NodeModeGCPercent unless GOGC is set; one serving only its
// own identity keeps Go's default.
func TestNodeModeLowersGOGCUnlessTheEnvironmentSetsIt(t *testing.T) {
	own := config.Profile{Name: "own"}
	node := config.Profile{Name: "billing", WorkloadSelectors: []string{"unix:uid:1001"}}
	for _, tc := range []struct {
		name     string
		profiles []config.Profile
		env      string
		want     int
		set      bool
	}{
		{"own identity only", []config.Profile{own}, "", 0, false},
		{"node mode", []config.Profile{own, node}, "", NodeModeGCPercent, true},
		{"node mode, GOGC set", []config.Profile{node}, "100", 0, false},
		{"node mode, GOGC=off", []config.Profile{node}, "off", 0, false},
	} {
		got, set := gcPercent(&config.Config{Profiles: tc.profiles}, tc.env)
		if got != tc.want || set != tc.set {
			t.Errorf("%s: gcPercent = %d, %v; want %d, %v", tc.name, got, set, tc.want, tc.set)
		}
	}
}
