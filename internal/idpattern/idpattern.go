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
	segments []segment
}

type segment struct {
	literal string
	capture string // the capture's name; "" for a literal segment
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
			p.segments = append(p.segments, segment{capture: name})
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
		p.segments = append(p.segments, segment{literal: s})
	}
	return p, nil
}

// String is the pattern as written.
func (p *Pattern) String() string { return p.text }

// Captures are the pattern's capture names, in order.
func (p *Pattern) Captures() []string {
	var out []string
	for _, s := range p.segments {
		if s.capture != "" {
			out = append(out, s.capture)
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
		case s.capture != "":
			if parts[i] == "" {
				return nil, false
			}
			caps[s.capture] = parts[i]
		case parts[i] != s.literal:
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
