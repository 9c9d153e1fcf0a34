// Package podrules converts a pod_identity block's rules into package podidentity's, for the daemon that
// serves them and for `check`, which lists them and answers "which role does this SPIFFE ID get?": both
// compile the rules through this one conversion and match with podidentity's engine, so they cannot
// disagree. It is apart from package wiring because the lean spiffe-aws-credential-process binary links
// wiring and must not link pod identity; it imports nothing of Kubernetes.
package podrules

import (
	"fmt"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity"
)

// Rules converts pi's rules, in order. Each rule's config.Profile travels as the engine rule's Settings
// (positions included), and its SettingsKey is that profile without its position, so that a rule moved
// in the file is the same rule.
func Rules(pi *config.PodIdentity) []podidentity.Rule {
	var rules []podidentity.Rule
	for _, r := range pi.Rules {
		key := r
		key.Pos = ""
		pr := podidentity.Rule{Name: r.Name, Pattern: r.SpiffeID, RoleARN: r.RoleARN, RoleSessionName: r.RoleSessionName,
			Settings: r, SettingsKey: fmt.Sprintf("%+v", key)}
		for _, h := range r.AssumeRole {
			pr.AssumeRoleARNs = append(pr.AssumeRoleARNs, h.RoleARN)
			pr.AssumeRoleSessionNames = append(pr.AssumeRoleSessionNames, h.RoleSessionName)
		}
		rules = append(rules, pr)
	}
	return rules
}

// Compile converts and compiles pi's rules.
func Compile(pi *config.PodIdentity) (*podidentity.Rules, error) {
	return podidentity.CompileRules(Rules(pi))
}

// Profile is the session settings a SessionSpec stands for: the matching rule's profile (its Settings)
// with the SPIFFE ID, the filled role ARN, role session name and hops' role ARNs and session names, and
// the session's name. It reports false when spec's Settings are not a rule's profile.
func Profile(spec podidentity.SessionSpec) (config.Profile, bool) {
	pc, ok := spec.Settings.(config.Profile)
	if !ok {
		return config.Profile{}, false
	}
	pc.Name, pc.SpiffeID, pc.RoleARN, pc.RoleSessionName = spec.Name(), spec.SpiffeID, spec.RoleARN, spec.RoleSessionName
	pc.AssumeRole = append([]config.AssumeRole(nil), pc.AssumeRole...)
	for j := range pc.AssumeRole {
		pc.AssumeRole[j].RoleARN = spec.AssumeRoleARNs[j]
		pc.AssumeRole[j].RoleSessionName = spec.AssumeRoleSessionNames[j]
	}
	return pc, true
}
