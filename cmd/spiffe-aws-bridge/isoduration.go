package main

import (
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// isoDurationRE matches the ISO 8601 durations spiffe-aws-assume-role accepts for sessions: days, hours,
// minutes and seconds (PT1H, PT90M, P1DT2H, PT3600S). Years, months and weeks make no sense for a session.
var isoDurationRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$`)
})

// parseISODuration parses an ISO 8601 duration such as PT1H.
func parseISODuration(s string) (time.Duration, error) {
	m := isoDurationRE().FindStringSubmatch(s)
	if m == nil || s == "P" || s == "PT" || s[len(s)-1] == 'T' {
		return 0, fmt.Errorf("%q is not an ISO 8601 duration like PT1H or PT30M", s)
	}
	units := []time.Duration{24 * time.Hour, time.Hour, time.Minute, time.Second}
	var d time.Duration
	for i, u := range units {
		if m[i+1] == "" {
			continue
		}
		n, err := strconv.ParseInt(m[i+1], 10, 32)
		if err != nil {
			return 0, fmt.Errorf("%q: %w", s, err)
		}
		d += time.Duration(n) * u
	}
	return d, nil
}
