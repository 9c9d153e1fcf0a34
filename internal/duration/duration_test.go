package duration

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseTakesTheThreeForms(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90m": 90 * time.Minute, "1h": time.Hour, "1h30m": 90 * time.Minute, "500ms": 500 * time.Millisecond, "0s": 0,
		"3600": time.Hour, "900": 15 * time.Minute, "0": 0, " 3600 ": time.Hour,
		"PT1H": time.Hour, "PT15M": 15 * time.Minute, "PT3600S": time.Hour, "PT1H30M": 90 * time.Minute,
		"P1D": 24 * time.Hour, "P1DT2H": 26 * time.Hour, "PT0S": 0,
	} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "forever", "1.5", "-3600", "P", "PT", "P1DT", "PT1.5H", "P1Y", "P1W", "pt1h", "PT-1H", "1 h",
		"99999999999999999999"} {
		_, err := Parse(bad)
		var de *Error
		if !errors.As(err, &de) || de.Reason != ReasonSyntax {
			t.Errorf("Parse(%q) = %v, want a syntax error", bad, err)
		}
	}
}

// TestCheckMessages: every message starts with the value as written (the caller puts the flag or key in
// front), says what is wrong, and gives the range in the three forms and an example.
func TestCheckMessages(t *testing.T) {
	session := Range{Min: 15 * time.Minute, Max: 12 * time.Hour, Example: "1h, 3600 or PT1H"}
	atLeast := Range{Min: time.Second, Example: "30s"}
	for _, tc := range []struct {
		r    Range
		in   string
		want string
	}{
		{session, "5m", "5m is too short: the minimum is 15m; give 15m to 12h (900 to 43200 seconds, PT15M to PT12H), e.g. 1h, 3600 or PT1H"},
		{session, "300", "300 is too short: the minimum is 15m; give 15m to 12h (900 to 43200 seconds, PT15M to PT12H), e.g. 1h, 3600 or PT1H"},
		{session, "PT5M", "PT5M is too short: the minimum is 15m"},
		{session, "13h", "13h is too long: the maximum is 12h; give 15m to 12h"},
		{session, "abc", `"abc" is not a duration: write a Go duration (90m, 1h), seconds (3600) or ISO 8601 (PT1H); give 15m to 12h (900 to 43200 seconds, PT15M to PT12H), e.g. 1h, 3600 or PT1H`},
		{atLeast, "0s", "0s is too short: the minimum is 1s; give at least 1s, e.g. 30s"},
		{Range{}, "-1s", "-1s is negative; give at least 0s"},
	} {
		_, err := tc.r.Check(tc.in)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Check(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
	for _, in := range []string{"5m", "90m", "3600", "PT1H"} {
		want := map[string]time.Duration{"5m": 5 * time.Minute, "90m": 90 * time.Minute, "3600": time.Hour, "PT1H": time.Hour}[in]
		if d, err := atLeast.Check(in); err != nil || d != want {
			t.Errorf("atLeast.Check(%q) = %v, %v", in, d, err)
		}
	}
}

func TestFormatAndISO(t *testing.T) {
	for d, want := range map[time.Duration][2]string{
		15 * time.Minute: {"15m", "PT15M"}, 12 * time.Hour: {"12h", "PT12H"}, 90 * time.Minute: {"1h30m", "PT1H30M"},
		time.Second: {"1s", "PT1S"}, 0: {"0s", "PT0S"}, 3661 * time.Second: {"1h1m1s", "PT1H1M1S"},
	} {
		if got := [2]string{Format(d), ISO(d)}; got != want {
			t.Errorf("%v: got %q, want %q", d, got, want)
		}
	}
}

func TestValueKeepsTheTextAndRefusesOutOfRange(t *testing.T) {
	v := NewValue("3600", Range{Min: 15 * time.Minute, Max: 12 * time.Hour})
	if v.String() != "3600" || v.Duration() != time.Hour || v.Type() != "duration" {
		t.Fatalf("default: %q %v %q", v.String(), v.Duration(), v.Type())
	}
	if err := v.Set("90m"); err != nil || v.Duration() != 90*time.Minute || v.String() != "90m" {
		t.Fatalf("Set(90m): %v, %v %q", err, v.Duration(), v.String())
	}
	if err := v.Set("5m"); err == nil || v.Duration() != 90*time.Minute {
		t.Fatalf("Set(5m) accepted, or changed the value: %v", v.Duration())
	}
}
