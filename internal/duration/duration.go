// Package duration is the one duration grammar of every flag and config key of the bridge's binaries:
// a Go duration ("90m", "1h30m"), a whole number of seconds ("3600", as AWS's aws_signing_helper takes
// --session-duration) or an ISO 8601 duration ("PT1H", as spiffe-aws-assume-role takes it). Each of the
// three means the same wherever a duration is taken, and a bad value's error gives the forms and the
// accepted range.
//
// It is a leaf package (standard library only), so that the lean spiffe-aws-credential-process links
// nothing more for it.
package duration

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Forms names the accepted forms, for messages and help texts.
const Forms = "a Go duration (90m, 1h), seconds (3600) or ISO 8601 (PT1H)"

// isoRE matches the ISO 8601 durations that make sense for a session or a timeout: days, hours, minutes
// and seconds (PT1H, PT90M, P1DT2H, PT3600S). Years, months and weeks are refused.
var isoRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$`)
})

// secondsRE matches a whole number of seconds.
var secondsRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]+$`) })

// Parse reads s in any of the three forms. Its error is an *Error without a range.
func Parse(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	switch {
	case t == "":
	case secondsRE().MatchString(t):
		n, err := strconv.ParseInt(t, 10, 64)
		if err == nil && n <= int64(1<<63-1)/int64(time.Second) {
			return time.Duration(n) * time.Second, nil
		}
	case t[0] == 'P':
		if d, ok := parseISO(t); ok {
			return d, nil
		}
	default:
		if d, err := time.ParseDuration(t); err == nil {
			return d, nil
		}
	}
	return 0, &Error{Value: s, Reason: ReasonSyntax}
}

// parseISO parses an ISO 8601 duration such as PT1H.
func parseISO(s string) (time.Duration, bool) {
	m := isoRE().FindStringSubmatch(s)
	if m == nil || s == "P" || s == "PT" || s[len(s)-1] == 'T' {
		return 0, false
	}
	units := []time.Duration{24 * time.Hour, time.Hour, time.Minute, time.Second}
	var d time.Duration
	for i, u := range units {
		if m[i+1] == "" {
			continue
		}
		n, err := strconv.ParseInt(m[i+1], 10, 32)
		if err != nil {
			return 0, false
		}
		d += time.Duration(n) * u
	}
	return d, true
}

// Range is what a setting accepts: Min to Max inclusive (Max 0: no upper bound), and an example in the
// setting's own form ("1h", "3600", "PT1H").
type Range struct {
	Min, Max time.Duration
	Example  string
}

// Check parses s and checks it against r.
func (r Range) Check(s string) (time.Duration, error) {
	d, err := Parse(s)
	if err != nil {
		err.(*Error).Range = r
		return 0, err
	}
	switch {
	case d < 0 && r.Min == 0:
		return 0, &Error{Value: s, Reason: ReasonNegative, Range: r}
	case d < r.Min:
		return 0, &Error{Value: s, Reason: ReasonTooShort, Range: r}
	case r.Max > 0 && d > r.Max:
		return 0, &Error{Value: s, Reason: ReasonTooLong, Range: r}
	}
	return d, nil
}

// String describes the range in the three forms: "15m to 12h (900 to 43200 seconds, PT15M to PT12H)",
// or "at least 1s" without a maximum.
func (r Range) String() string {
	if r.Max == 0 {
		return "at least " + Format(r.Min)
	}
	return fmt.Sprintf("%s to %s (%d to %d seconds, %s to %s)", Format(r.Min), Format(r.Max),
		int64(r.Min/time.Second), int64(r.Max/time.Second), ISO(r.Min), ISO(r.Max))
}

// Reason says what is wrong with a value.
type Reason int

// Reasons.
const (
	// ReasonSyntax: the value is in none of the three forms.
	ReasonSyntax Reason = iota
	// ReasonTooShort: below the range's minimum.
	ReasonTooShort
	// ReasonTooLong: above the range's maximum.
	ReasonTooLong
	// ReasonNegative: below zero.
	ReasonNegative
)

// Error is a duration that cannot be used. Its message starts with the value as written, so that a
// caller prefixes the flag or key: "--session-duration 5m is too short: …".
type Error struct {
	Value  string
	Reason Reason
	Range  Range // zero when unknown
}

func (e *Error) Error() string {
	var b strings.Builder
	switch e.Reason {
	case ReasonSyntax:
		fmt.Fprintf(&b, "%q is not a duration: write %s", e.Value, Forms)
		if e.Range != (Range{}) {
			fmt.Fprintf(&b, "; give %s", e.Range)
		}
	case ReasonTooShort, ReasonTooLong:
		what, bound := "too short: the minimum is", e.Range.Min
		if e.Reason == ReasonTooLong {
			what, bound = "too long: the maximum is", e.Range.Max
		}
		fmt.Fprintf(&b, "%s is %s %s; give %s", e.Value, what, Format(bound), e.Range)
	case ReasonNegative:
		fmt.Fprintf(&b, "%s is negative; give %s", e.Value, e.Range)
	}
	if e.Range.Example != "" {
		fmt.Fprintf(&b, ", e.g. %s", e.Range.Example)
	}
	return b.String()
}

// Format writes d the short way: 15m, 12h, 1h30m, 90s, 500ms (time.Duration's String without its
// trailing zero units).
func Format(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// ISO writes d, rounded down to the second, as an ISO 8601 duration: PT15M, PT12H, PT1H30M.
func ISO(d time.Duration) string {
	if d < time.Second {
		return "PT0S"
	}
	s := int64(d / time.Second)
	var b strings.Builder
	b.WriteString("PT")
	if h := s / 3600; h > 0 {
		fmt.Fprintf(&b, "%dH", h)
	}
	if m := s % 3600 / 60; m > 0 {
		fmt.Fprintf(&b, "%dM", m)
	}
	if sec := s % 60; sec > 0 {
		fmt.Fprintf(&b, "%dS", sec)
	}
	return b.String()
}

// Value is a duration flag (pflag.Value) in the one grammar, checked against its Range as it is set;
// String gives the value as written, so that help shows a default in the form its users know ("3600",
// "PT1H").
type Value struct {
	text  string
	d     time.Duration
	Range Range
}

// NewValue returns a flag value with the default def (which must be valid) and the accepted range r.
func NewValue(def string, r Range) *Value {
	d, err := Parse(def)
	if err != nil {
		panic(fmt.Sprintf("duration.NewValue: default %q: %v", def, err))
	}
	return &Value{text: def, d: d, Range: r}
}

// Set parses and checks s.
func (v *Value) Set(s string) error {
	d, err := v.Range.Check(s)
	if err != nil {
		return err
	}
	v.text, v.d = s, d
	return nil
}

// String is the value as written.
func (v *Value) String() string { return v.text }

// Type is the type shown in help.
func (v *Value) Type() string { return "duration" }

// Duration is the parsed value.
func (v *Value) Duration() time.Duration { return v.d }
