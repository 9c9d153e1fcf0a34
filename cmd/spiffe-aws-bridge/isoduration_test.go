package main

import (
	"testing"
	"time"
)

func TestParseISODuration(t *testing.T) {
	good := map[string]time.Duration{
		"PT1H": time.Hour, "PT15M": 15 * time.Minute, "PT3600S": time.Hour, "PT1H30M": 90 * time.Minute,
		"P1D": 24 * time.Hour, "P1DT2H": 26 * time.Hour, "PT0S": 0,
	}
	for in, want := range good {
		if got, err := parseISODuration(in); err != nil || got != want {
			t.Errorf("parseISODuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "1h", "P", "PT", "P1DT", "PT1.5H", "P1Y", "P1W", "pt1h", "PT-1H"} {
		if _, err := parseISODuration(bad); err == nil {
			t.Errorf("parseISODuration(%q) accepted", bad)
		}
	}
}
