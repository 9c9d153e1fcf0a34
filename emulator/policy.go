package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// This file is the emulator's IAM policy evaluator. Its scope is deliberately small and written down
// (README, "The emulator"): it decides the actions the emulator serves — sts:AssumeRole, sts:TagSession,
// sts:SetSourceIdentity (sts:GetCallerIdentity needs no permission in AWS, and none here) — from
//
//   - the caller's identity policies (a role's identity_policy and managed_policy_arns; a role with
//     neither is not modelled and allows everything, as the emulator did before policies existed);
//   - its session policies (the inline policy and policy ARNs of the AssumeRole that made the session, or
//     the Roles Anywhere profile's session_policy and managed_policy_arns);
//
// as AWS does: an explicit Deny in any of them wins; otherwise the action is allowed only when an
// identity policy allows it and, when the session has session policies, one of them allows it too (the
// session's permissions are the intersection). Statements support Effect, Action / NotAction (with `*`
// and `?` wildcards, case-insensitive), Resource / NotResource (wildcards) and Condition with
// StringEquals, StringNotEquals, StringLike, StringNotLike (and their IgnoreCase forms), each optionally
// …IfExists. Anything else — other operators, policy variables, Principal in identity policies,
// permissions boundaries, SCPs — is refused when the policy is loaded, never silently ignored.

// Policy is a parsed IAM policy document.
type Policy struct {
	Statements []Statement
}

// Statement is one statement of a policy.
type Statement struct {
	Sid         string
	Effect      string // "Allow" or "Deny"
	Action      []string
	NotAction   []string
	Resource    []string
	NotResource []string
	// Conditions are all the statement's conditions; every one must hold.
	Conditions []*Condition
}

// stringOrList decodes a JSON string or array of strings.
type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("want a string or a list of strings")
	}
	*s = many
	return nil
}

// conditionOperators are the operators the evaluator knows (without the IfExists suffix).
var conditionOperators = map[string]bool{
	"StringEquals": true, "StringNotEquals": true, "StringLike": true, "StringNotLike": true,
	"StringEqualsIgnoreCase": true, "StringNotEqualsIgnoreCase": true,
}

// ParsePolicy parses an IAM policy document (JSON) within the evaluator's scope; what lies outside it
// is an error naming the element.
func ParsePolicy(doc string) (*Policy, error) {
	var raw struct {
		Version   string          `json:"Version"`
		Id        string          `json:"Id"`
		Statement json.RawMessage `json:"Statement"`
	}
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("not an IAM policy document: %w", err)
	}
	if raw.Version != "" && raw.Version != "2012-10-17" && raw.Version != "2008-10-17" {
		return nil, fmt.Errorf("Version %q is not 2012-10-17", raw.Version)
	}
	type rawStmt struct {
		Sid         string                             `json:"Sid"`
		Effect      string                             `json:"Effect"`
		Action      stringOrList                       `json:"Action"`
		NotAction   stringOrList                       `json:"NotAction"`
		Resource    stringOrList                       `json:"Resource"`
		NotResource stringOrList                       `json:"NotResource"`
		Condition   map[string]map[string]stringOrList `json:"Condition"`
	}
	var stmts []rawStmt
	rs := bytes.TrimSpace(raw.Statement)
	switch {
	case len(rs) == 0:
		return nil, fmt.Errorf("the policy has no Statement")
	case rs[0] == '{':
		var one rawStmt
		d := json.NewDecoder(bytes.NewReader(rs))
		d.DisallowUnknownFields()
		if err := d.Decode(&one); err != nil {
			return nil, fmt.Errorf("Statement: %w", err)
		}
		stmts = []rawStmt{one}
	default:
		d := json.NewDecoder(bytes.NewReader(rs))
		d.DisallowUnknownFields()
		if err := d.Decode(&stmts); err != nil {
			return nil, fmt.Errorf("Statement: %w", err)
		}
	}
	p := &Policy{}
	for i, r := range stmts {
		where := fmt.Sprintf("Statement %d", i+1)
		if r.Sid != "" {
			where += fmt.Sprintf(" (%s)", r.Sid)
		}
		if r.Effect != "Allow" && r.Effect != "Deny" {
			return nil, fmt.Errorf("%s: Effect %q is neither Allow nor Deny", where, r.Effect)
		}
		if (len(r.Action) == 0) == (len(r.NotAction) == 0) {
			return nil, fmt.Errorf("%s: exactly one of Action and NotAction is required", where)
		}
		if len(r.Resource) > 0 && len(r.NotResource) > 0 {
			return nil, fmt.Errorf("%s: Resource and NotResource cannot both be set", where)
		}
		s := Statement{Sid: r.Sid, Effect: r.Effect, Action: r.Action, NotAction: r.NotAction, Resource: r.Resource, NotResource: r.NotResource}
		if len(s.Resource) == 0 && len(s.NotResource) == 0 {
			s.Resource = []string{"*"} // session policies and trust-policy-like documents often omit it
		}
		for op, keys := range r.Condition {
			for key, values := range keys {
				c := &Condition{Test: op, Key: key, Values: values}
				if err := c.check(); err != nil {
					return nil, fmt.Errorf("%s: %w", where, err)
				}
				s.Conditions = append(s.Conditions, c)
			}
		}
		p.Statements = append(p.Statements, s)
	}
	return p, nil
}

// check validates a condition's operator and key.
func (c *Condition) check() error {
	if c.Key == "" {
		return fmt.Errorf("condition: a key is required")
	}
	op := strings.TrimSuffix(c.Test, "IfExists")
	if !conditionOperators[op] {
		return fmt.Errorf("condition operator %q is not supported by the emulator (StringEquals, StringNotEquals, StringLike, StringNotLike, their IgnoreCase forms, each with IfExists)", c.Test)
	}
	if strings.Contains(strings.Join(c.Values, ""), "${") {
		return fmt.Errorf("condition %s: policy variables (${...}) are not supported by the emulator", c.Key)
	}
	return nil
}

// holds evaluates the condition against ctx (condition keys are case-insensitive, as in AWS; tag keys
// within them keep their case as sent).
func (c *Condition) holds(ctx map[string]string) bool {
	key, test := c.Key, c.Test
	if key == "" {
		key = "aws:PrincipalTag/" + c.Tag
	}
	if test == "" {
		test = "StringLike"
	}
	v, present := lookupKey(ctx, key)
	op, ifExists := strings.CutSuffix(test, "IfExists")
	if !conditionOperators[op] {
		return false // an operator outside the evaluator's scope never holds: fail closed
	}
	if !present {
		// A missing key fails a positive operator and satisfies a negated one (and every …IfExists).
		return ifExists || strings.Contains(op, "Not")
	}
	var match bool
	switch op {
	case "StringEquals", "StringNotEquals":
		match = contains(c.Values, v)
	case "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase":
		for _, want := range c.Values {
			match = match || strings.EqualFold(want, v)
		}
	case "StringLike", "StringNotLike":
		for _, p := range c.Values {
			match = match || like(p, v)
		}
	}
	if strings.Contains(op, "Not") {
		return !match
	}
	return match
}

// lookupKey finds key in ctx: the prefix (aws:PrincipalTag/, aws:OriginIdentity/ …) compares
// case-insensitively, a tag key after it exactly.
func lookupKey(ctx map[string]string, key string) (string, bool) {
	if v, ok := ctx[key]; ok {
		return v, true
	}
	for k, v := range ctx {
		kp, kt, _ := strings.Cut(k, "/")
		qp, qt, _ := strings.Cut(key, "/")
		if strings.EqualFold(kp, qp) && (kt == qt || (!strings.HasSuffix(strings.ToLower(kp), "tag") && strings.EqualFold(kt, qt))) {
			return v, true
		}
	}
	return "", false
}

// like is StringLike: `*` matches any run of characters, `?` any one character.
func like(pattern, v string) bool {
	// Iterative wildcard match with backtracking on the last `*`.
	p, s := []rune(pattern), []rune(v)
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*': // before the literal case: a '*' in the value is no wildcard
			star, mark = pi, si
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// matchesAction reports whether the statement applies to action (service:Name, case-insensitive).
func (s *Statement) matchesAction(action string) bool {
	anyOf := func(patterns []string) bool {
		for _, p := range patterns {
			if like(strings.ToLower(p), strings.ToLower(action)) {
				return true
			}
		}
		return false
	}
	if len(s.NotAction) > 0 {
		return !anyOf(s.NotAction)
	}
	return anyOf(s.Action)
}

func (s *Statement) matchesResource(resource string) bool {
	anyOf := func(patterns []string) bool {
		for _, p := range patterns {
			if like(p, resource) {
				return true
			}
		}
		return false
	}
	if len(s.NotResource) > 0 {
		return !anyOf(s.NotResource)
	}
	return anyOf(s.Resource)
}

// decision is what one policy says about a request.
type decision int

const (
	notApplicable decision = iota // no statement matches: an implicit deny
	allowed
	explicitDeny
)

// decide evaluates the policy for action on resource with the request context ctx.
func (p *Policy) decide(action, resource string, ctx map[string]string) decision {
	d := notApplicable
	for i := range p.Statements {
		s := &p.Statements[i]
		if !s.matchesAction(action) || !s.matchesResource(resource) {
			continue
		}
		ok := true
		for _, c := range s.Conditions {
			ok = ok && c.holds(ctx)
		}
		if !ok {
			continue
		}
		if s.Effect == "Deny" {
			return explicitDeny
		}
		d = allowed
	}
	return d
}

// permissions are the policies that bound what a session may do.
type permissions struct {
	// identity are the role's identity policies; nil means not modelled (everything allowed).
	identity []*Policy
	// session are the session policies; none means the session is not narrowed.
	session []*Policy
}

// denial says why a request was refused, in AWS's words ("because no session policy allows …").
type denial struct {
	reason string
}

// authorize decides action on resource; it returns nil when allowed.
func (p permissions) authorize(action, resource string, ctx map[string]string) *denial {
	for _, pol := range p.identity {
		if pol.decide(action, resource, ctx) == explicitDeny {
			return &denial{"with an explicit deny in an identity-based policy"}
		}
	}
	for _, pol := range p.session {
		if pol.decide(action, resource, ctx) == explicitDeny {
			return &denial{"with an explicit deny in a session policy"}
		}
	}
	if p.identity != nil {
		ok := false
		for _, pol := range p.identity {
			ok = ok || pol.decide(action, resource, ctx) == allowed
		}
		if !ok {
			return &denial{"because no identity-based policy allows the " + action + " action"}
		}
	}
	if len(p.session) > 0 {
		ok := false
		for _, pol := range p.session {
			ok = ok || pol.decide(action, resource, ctx) == allowed
		}
		if !ok {
			return &denial{"because no session policy allows the " + action + " action"}
		}
	}
	return nil
}
