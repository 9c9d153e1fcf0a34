// Package idpattern compiles the SPIFFE ID patterns of pod identity's rules and fills the templates
// (role ARNs, role session names) with what a pattern captured. A pattern is a SPIFFE ID whose path
// segments are literals or "{name}" captures; a capture matches exactly one non-empty path segment, never
// a "/". Templates use the same "{name}" placeholders. It is a leaf shared by config (which validates
// rules) and podidentity (which applies them), so both follow one rule.
package idpattern

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

var (
	captureName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) })
	placeholder = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\{([^{}]*)\}`) })
)

// Pattern is a compiled SPIFFE ID pattern.
type Pattern struct {
	text     string
	td       string
	segments []Segment
}

// Segment is one path segment of a pattern: a literal, or a capture.
type Segment struct {
	// Literal is the segment's text when it is a literal.
	Literal string
	// Capture is the capture's name; "" for a literal segment.
	Capture string
}

// Compile checks pattern: "spiffe://" trust domain, then path segments that are each a literal (valid in
// a SPIFFE ID) or a whole-segment "{name}" capture with a unique name of [A-Za-z_][A-Za-z0-9_]*. The trust
// domain is always literal.
func Compile(pattern string) (*Pattern, error) {
	rest, ok := strings.CutPrefix(pattern, "spiffe://")
	if !ok {
		return nil, fmt.Errorf("%q is not a spiffe:// ID pattern", pattern)
	}
	td, path, _ := strings.Cut(rest, "/")
	if _, err := spiffeid.TrustDomainFromString(td); err != nil {
		return nil, fmt.Errorf("%q: trust domain %q: %w", pattern, td, err)
	}
	p := &Pattern{text: pattern, td: td}
	if path == "" {
		if strings.HasSuffix(rest, "/") {
			return nil, fmt.Errorf("%q: a path must not end with \"/\"", pattern)
		}
		return p, nil
	}
	seen := map[string]bool{}
	for _, s := range strings.Split(path, "/") {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			name := s[1 : len(s)-1]
			if !captureName().MatchString(name) {
				return nil, fmt.Errorf("%q: capture %q must be a name of [A-Za-z_][A-Za-z0-9_]*", pattern, s)
			}
			if seen[name] {
				return nil, fmt.Errorf("%q: capture {%s} appears twice", pattern, name)
			}
			seen[name] = true
			p.segments = append(p.segments, Segment{Capture: name})
			continue
		}
		if strings.ContainsAny(s, "{}") {
			return nil, fmt.Errorf("%q: segment %q mixes a capture with text; a capture must be a whole segment such as {ns}", pattern, s)
		}
		if s == "" || s == "." || s == ".." {
			return nil, fmt.Errorf("%q: empty, \".\" or \"..\" path segment", pattern)
		}
		if err := spiffeid.ValidatePathSegment(s); err != nil {
			return nil, fmt.Errorf("%q: segment %q: %w", pattern, s, err)
		}
		p.segments = append(p.segments, Segment{Literal: s})
	}
	return p, nil
}

// String is the pattern as written.
func (p *Pattern) String() string { return p.text }

// TrustDomain is the pattern's trust domain (always literal).
func (p *Pattern) TrustDomain() string { return p.td }

// Segments are the pattern's path segments, in order (none for a bare trust domain).
func (p *Pattern) Segments() []Segment { return append([]Segment(nil), p.segments...) }

// Covers reports whether p matches every SPIFFE ID that q matches. Exactly when they have the same trust
// domain and number of segments, and wherever q has a literal, p has a capture or the same literal: a
// capture of q takes values no literal of p equals, so p must capture there too.
func (p *Pattern) Covers(q *Pattern) bool {
	if p.td != q.td || len(p.segments) != len(q.segments) {
		return false
	}
	for i, s := range p.segments {
		if s.Capture == "" && q.segments[i] != s {
			return false
		}
	}
	return true
}

// Overlap returns a SPIFFE ID that both p and q match ("x" in the segments both capture), and false
// when no ID matches both.
func (p *Pattern) Overlap(q *Pattern) (spiffeid.ID, bool) {
	if p.td != q.td || len(p.segments) != len(q.segments) {
		return spiffeid.ID{}, false
	}
	parts := make([]string, len(p.segments))
	for i, s := range p.segments {
		o := q.segments[i]
		switch {
		case s.Capture == "" && o.Capture == "" && s.Literal != o.Literal:
			return spiffeid.ID{}, false
		case s.Capture == "":
			parts[i] = s.Literal
		case o.Capture == "":
			parts[i] = o.Literal
		default:
			parts[i] = "x"
		}
	}
	td, err := spiffeid.TrustDomainFromString(p.td)
	if err != nil {
		return spiffeid.ID{}, false
	}
	if len(parts) == 0 {
		return td.ID(), true
	}
	id, err := spiffeid.FromSegments(td, parts...)
	return id, err == nil
}

// Captures are the pattern's capture names, in order.
func (p *Pattern) Captures() []string {
	var out []string
	for _, s := range p.segments {
		if s.Capture != "" {
			out = append(out, s.Capture)
		}
	}
	return out
}

// Match reports whether id matches the pattern and, if it does, what each capture matched.
func (p *Pattern) Match(id spiffeid.ID) (map[string]string, bool) {
	if id.TrustDomain().Name() != p.td {
		return nil, false
	}
	path := strings.TrimPrefix(id.Path(), "/")
	var parts []string
	if path != "" {
		parts = strings.Split(path, "/")
	}
	if len(parts) != len(p.segments) {
		return nil, false
	}
	caps := map[string]string{}
	for i, s := range p.segments {
		switch {
		case s.Capture != "":
			if parts[i] == "" {
				return nil, false
			}
			caps[s.Capture] = parts[i]
		case parts[i] != s.Literal:
			return nil, false
		}
	}
	return caps, true
}

// Placeholders are the "{name}" placeholders of template, in order (repeats included). A placeholder
// that is not a valid name is returned as written, so that the caller can report it.
func Placeholders(template string) []string {
	var out []string
	for _, m := range placeholder().FindAllStringSubmatch(template, -1) {
		out = append(out, m[1])
	}
	return out
}

// Check reports the first placeholder of template that captures does not hold (a capture name of the
// rule's pattern), and a stray brace.
func Check(template string, captures []string) error {
	for _, name := range Placeholders(template) {
		if !captureName().MatchString(name) {
			return fmt.Errorf("placeholder {%s} is not a capture name", name)
		}
		found := false
		for _, c := range captures {
			found = found || c == name
		}
		if !found {
			if len(captures) == 0 {
				return fmt.Errorf("placeholder {%s} is not captured: the rule's spiffe_id pattern has no captures", name)
			}
			return fmt.Errorf("placeholder {%s} is not captured by the rule's spiffe_id pattern (it captures {%s})", name, strings.Join(captures, "}, {"))
		}
	}
	if strings.ContainsAny(placeholder().ReplaceAllString(template, ""), "{}") {
		return fmt.Errorf("%q has an unmatched brace", template)
	}
	return nil
}

// Expand fills template's placeholders with values; a placeholder without a value is an error.
func Expand(template string, values map[string]string) (string, error) {
	var missing string
	out := placeholder().ReplaceAllStringFunc(template, func(m string) string {
		name := m[1 : len(m)-1]
		v, ok := values[name]
		if !ok && missing == "" {
			missing = name
		}
		return v
	})
	if missing != "" {
		return "", fmt.Errorf("%q: no value for placeholder {%s}", template, missing)
	}
	return out, nil
}

// Sample fills every placeholder of template with a value a capture could hold, for checking that the
// result still parses (an ARN, a session name).
func Sample(template string) string {
	return placeholder().ReplaceAllString(template, "sample")
}
