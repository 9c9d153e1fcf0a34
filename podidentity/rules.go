package podidentity

import (
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/awsarn"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/idpattern"
)

// Rule maps the pods whose SPIFFE ID matches Pattern to a session. Pattern's "{name}" captures match one
// path segment each; RoleARN, RoleSessionName and the hops' role ARNs and session names may use them.
type Rule struct {
	// Name names the rule in messages, e.g. "rule[0]" (its place in the config).
	Name string
	// Pattern is the SPIFFE ID pattern, e.g. "spiffe://example.org/ns/{ns}/sa/{sa}".
	Pattern string
	// RoleARN is the Roles Anywhere role (template).
	RoleARN string
	// RoleSessionName is the optional Roles Anywhere role session name (template).
	RoleSessionName string
	// AssumeRoleARNs are the assume_role hops' role ARNs, in order (templates).
	AssumeRoleARNs []string
	// AssumeRoleSessionNames are the hops' role session names, by index ("" or absent: the default).
	AssumeRoleSessionNames []string
	// Settings are the caller's own settings for the rule's sessions (the daemon's config of the rule:
	// trust anchor, profile, refresh, hops' other fields), opaque here and handed back in SessionSpec.
	Settings any
	// SettingsKey identifies Settings: sessions of a rule whose SettingsKey changed (a reload) are new
	// sessions.
	SettingsKey string
}

// Rules is an ordered, compiled rule list: the first rule whose pattern matches decides.
type Rules struct {
	rules    []Rule
	patterns []*idpattern.Pattern
}

// CompileRules compiles rules in order; an error names the rule and what is wrong.
func CompileRules(rules []Rule) (*Rules, error) {
	out := &Rules{rules: append([]Rule(nil), rules...)}
	for i, r := range rules {
		p, err := idpattern.Compile(r.Pattern)
		if err != nil {
			return nil, fmt.Errorf("podidentity: %s: spiffe_id %w", ruleName(r, i), err)
		}
		caps := p.Captures()
		templates := append([]string{r.RoleARN, r.RoleSessionName}, r.AssumeRoleARNs...)
		templates = append(templates, r.AssumeRoleSessionNames...)
		for _, t := range templates {
			if err := idpattern.Check(t, caps); err != nil {
				return nil, fmt.Errorf("podidentity: %s: %q: %w", ruleName(r, i), t, err)
			}
		}
		out.patterns = append(out.patterns, p)
	}
	return out, nil
}

func ruleName(r Rule, i int) string {
	if r.Name != "" {
		return r.Name
	}
	return fmt.Sprintf("rule[%d]", i)
}

// Len is the number of rules.
func (rs *Rules) Len() int { return len(rs.rules) }

// SessionSpec is what a pod's SPIFFE ID maps to: the session the node holds for it, shared by every pod
// with that SPIFFE ID. It holds no secret.
type SessionSpec struct {
	// Rule is the index of the rule that matched; RuleName its name.
	Rule     int
	RuleName string
	// SpiffeID is the pods' SPIFFE ID.
	SpiffeID string
	// Captures are what the rule's pattern captured.
	Captures map[string]string
	// RoleARN, RoleSessionName, AssumeRoleARNs and AssumeRoleSessionNames are the rule's templates,
	// filled with Captures.
	RoleARN                string
	RoleSessionName        string
	AssumeRoleARNs         []string
	AssumeRoleSessionNames []string
	// Settings and SettingsKey are the matching rule's.
	Settings    any
	SettingsKey string
}

// Key identifies the session: the same key, the same session.
func (s SessionSpec) Key() string {
	parts := []string{fmt.Sprint(s.Rule), s.SettingsKey, s.SpiffeID, s.RoleARN, s.RoleSessionName}
	parts = append(parts, s.AssumeRoleARNs...)
	parts = append(parts, "|")
	parts = append(parts, s.AssumeRoleSessionNames...)
	return strings.Join(parts, "\x00")
}

// Name names the session in logs, /ready and metrics: "pod_identity:" and the SPIFFE ID.
func (s SessionSpec) Name() string { return "pod_identity:" + s.SpiffeID }

// NoRuleError is the answer for a SPIFFE ID no rule matches.
type NoRuleError struct{ SpiffeID string }

func (e *NoRuleError) Error() string {
	return fmt.Sprintf("SPIFFE ID %q matched no pod_identity rule", e.SpiffeID)
}

// Match maps id to its session by the first rule whose pattern matches: a *NoRuleError when none does,
// another error when the matching rule's templates, filled in, are not a valid role ARN or session name.
func (rs *Rules) Match(id spiffeid.ID) (SessionSpec, error) {
	for i, p := range rs.patterns {
		caps, ok := p.Match(id)
		if !ok {
			continue
		}
		r := rs.rules[i]
		spec := SessionSpec{Rule: i, RuleName: ruleName(r, i), SpiffeID: id.String(), Captures: caps, Settings: r.Settings, SettingsKey: r.SettingsKey}
		var err error
		fill := func(field, t string) string {
			if err != nil || t == "" {
				return t
			}
			var v string
			if v, err = idpattern.Expand(t, caps); err == nil && strings.Contains(field, "role_arn") {
				_, err = awsarn.Role(field, v)
			} else if err == nil && !validSessionName(v) {
				err = fmt.Errorf("%s %q must be 2–64 of [A-Za-z0-9_+=,.@-]", field, v)
			}
			return v
		}
		spec.RoleARN = fill("role_arn", r.RoleARN)
		spec.RoleSessionName = fill("role_session_name", r.RoleSessionName)
		for j, a := range r.AssumeRoleARNs {
			spec.AssumeRoleARNs = append(spec.AssumeRoleARNs, fill(fmt.Sprintf("assume_role[%d].role_arn", j), a))
		}
		for j, n := range r.AssumeRoleSessionNames {
			spec.AssumeRoleSessionNames = append(spec.AssumeRoleSessionNames, fill(fmt.Sprintf("assume_role[%d].role_session_name", j), n))
		}
		if err != nil {
			return SessionSpec{}, fmt.Errorf("%s maps SPIFFE ID %q to an invalid value: %w", spec.RuleName, spec.SpiffeID, err)
		}
		return spec, nil
	}
	return SessionSpec{}, &NoRuleError{SpiffeID: id.String()}
}

func validSessionName(s string) bool {
	if len(s) < 2 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_+=,.@-", r)) {
			return false
		}
	}
	return true
}
