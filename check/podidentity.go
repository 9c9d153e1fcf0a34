package check

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/idpattern"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/svid"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/wiring/podrules"
)

// The pod_identity section of the report: the block's settings, then each rule in order with what it
// maps and the warnings of rules that map too widely. Rules are compiled with podrules.Compile and
// matched with podidentity's engine, as the daemon does, so that check and the server cannot disagree.
//
// The warnings, each decided from the rule alone (and, for shadowing, the rules before it):
//   - one role for many pods: the pattern has captures but the role the pods end up with (the last
//     assume_role hop's, else role_arn) uses none, so every ID the pattern matches gets that one role;
//     named worse when the pattern is captures only (every ID of the trust domain of that length);
//   - a namespace capture (the segment after a literal "ns", SPIRE's Kubernetes ID layout) that the
//     final role does not use while it uses another capture: a service account of that name in any
//     namespace, including one created later, gets the role;
//   - ambiguous role: two captures meet in the final role with only characters both may hold between
//     them, so two different IDs fill in the same role (ns "a-b", sa "c" and ns "a", sa "b-c" both make
//     role/a-b-c). What a capture may hold: after a literal "ns" or "sa" segment, a Kubernetes namespace
//     or service account name (SPIRE's Kubernetes ID layout: lower-case letters, digits, "-", and "."
//     for service accounts), elsewhere any SPIFFE path segment (letters, digits, "-", ".", "_"). So
//     {ns}_{sa} is unambiguous, {ns}-{sa} is not. A capture used in the role is otherwise what the
//     README recommends (IAM decides who gets what): its values are whatever the trust domain's SPIRE
//     issues, which the role's trust policy must pin (aws:PrincipalTag/x509SAN/URI);
//   - shadowed: an earlier rule matches every ID this one matches, so it never matches. The test is
//     exact for this pattern language (idpattern.Covers): where the later rule has a literal, the
//     earlier one has the same literal or a capture; where it has a capture, the earlier one captures
//     too (a capture takes values no literal equals, and no union of earlier rules can cover what no
//     single one does, for the same reason).
//
// Partial overlaps (some IDs of a rule go to an earlier one) are noted, not warned: ordering narrow
// rules first is how rules are meant to be written.

// podSection prints the pod_identity block and its rules; it returns the number of problems (a rule
// list the engine refuses, which config.Load already prevents) and of warnings.
func podSection(out io.Writer, pi *config.PodIdentity, getenv func(string) string) (problems, warnings int) {
	fmt.Fprintf(out, "\nPod identity (%s)\n", pi.Pos)
	iface := "the host's addresses are left alone (interface = \"\")"
	if pi.Interface != "" {
		iface = fmt.Sprintf("added to link %s when no interface has them", pi.Interface)
	}
	fmt.Fprintf(out, "  listen             %s (%s)\n", strings.Join(pi.Listen, ", "), iface)
	fmt.Fprintf(out, "  audience           %s (the projected service-account tokens must carry it)\n", pi.Audience)
	if pi.NodeName != "" {
		fmt.Fprintf(out, "  node name          %s (node_name)\n", pi.NodeName)
	} else {
		here := "unset here"
		if v := getenv("NODE_NAME"); v != "" {
			here = fmt.Sprintf("%q here", v)
		}
		fmt.Fprintf(out, "  node name          $NODE_NAME, read when the daemon starts (%s)\n", here)
	}
	fmt.Fprintf(out, "  token cache TTL    %s (never past a token's own expiry)\n", pi.TokenCacheTTL)
	if pi.Kubeconfig != "" {
		fmt.Fprintf(out, "  API server         kubeconfig %s\n", pi.Kubeconfig)
	} else {
		fmt.Fprintln(out, "  API server         the in-cluster config")
	}
	rules, err := podrules.Compile(pi)
	if err != nil {
		fmt.Fprintf(out, "  FAIL %v\n", err)
		return 1, 0
	}
	pats := make([]*idpattern.Pattern, len(pi.Rules))
	for i, r := range pi.Rules {
		if pats[i], err = idpattern.Compile(r.SpiffeID); err != nil {
			fmt.Fprintf(out, "  FAIL %s (%s): %v\n", r.Name, r.Pos, err)
			return 1, 0
		}
	}
	fmt.Fprintf(out, "  %d rule(s), in order: the first whose spiffe_id pattern matches a pod's SPIFFE ID decides; a pod no rule matches gets 403\n", len(pi.Rules))
	for i, r := range pi.Rules {
		printRule(out, r)
		for _, f := range ruleFindings(pi.Rules, pats, rules, i) {
			fmt.Fprintf(out, "    %s %s\n", f.level, f.text)
			if f.level == "warn" {
				warnings++
			}
		}
	}
	if warnings > 0 {
		fmt.Fprintf(out, "  %d warning(s): the rules map as written; the warnings do not fail the check\n", warnings)
	}
	return 0, warnings
}

// printRule prints one rule's pattern and templates.
func printRule(out io.Writer, r config.Profile) {
	fmt.Fprintf(out, "\n  %s at %s\n", r.Name, r.Pos)
	fmt.Fprintf(out, "    spiffe_id          %s\n", r.SpiffeID)
	fmt.Fprintf(out, "    trust_anchor_arn   %s\n", r.TrustAnchorARN)
	fmt.Fprintf(out, "    profile_arn        %s\n", r.ProfileARN)
	fmt.Fprintf(out, "    role_arn           %s\n", r.RoleARN)
	sn := r.RoleSessionName
	if sn == "" {
		sn = "(default: the SVID's serial number)"
	}
	fmt.Fprintf(out, "    role_session_name  %s\n", sn)
	for j, h := range r.AssumeRole {
		hsn := h.RoleSessionName
		if hsn == "" {
			hsn = "default, from the SPIFFE ID"
		}
		fmt.Fprintf(out, "    assume_role[%d]     %s (role_session_name %s)\n", j, h.RoleARN, hsn)
	}
	if len(r.AssumeRole) > 0 {
		fmt.Fprintf(out, "    pods get           the credentials of assume_role[%d]'s role\n", len(r.AssumeRole)-1)
	}
}

// finding is one line under a rule: level "warn" (a rule that maps too widely) or "note".
type finding struct {
	level, text string
}

// finalRole is the template of the role whose credentials the rule's pods get, and the key it is set by.
func finalRole(r config.Profile) (template, key string) {
	if n := len(r.AssumeRole); n > 0 {
		return r.AssumeRole[n-1].RoleARN, fmt.Sprintf("assume_role[%d].role_arn", n-1)
	}
	return r.RoleARN, "role_arn"
}

// ruleFindings are the warnings and notes of rule i (see the comment at the top of this file).
func ruleFindings(all []config.Profile, pats []*idpattern.Pattern, rules *podidentity.Rules, i int) []finding {
	var out []finding
	r, p := all[i], pats[i]
	role, roleKey := finalRole(r)
	used := idpattern.Placeholders(role)
	caps := p.Captures()
	segs := p.Segments()
	allCaptures := len(segs) > 0 && len(caps) == len(segs)
	nsCapture := ""
	for j := 1; j < len(segs); j++ {
		if segs[j].Capture != "" && segs[j-1].Capture == "" && segs[j-1].Literal == "ns" {
			nsCapture = segs[j].Capture
		}
	}
	switch {
	case len(caps) > 0 && len(used) == 0:
		why := fmt.Sprintf("{%s} takes any value", strings.Join(caps, "}, {"))
		if len(caps) > 1 {
			why = fmt.Sprintf("{%s} take any values", strings.Join(caps, "}, {"))
		}
		if allCaptures {
			why = fmt.Sprintf("the pattern is captures only, so it matches every SPIFFE ID of %s with %d path segment(s), whatever its namespace or service account", p.TrustDomain(), len(segs))
		} else if nsCapture != "" {
			why = fmt.Sprintf("{%s} takes every namespace, including ones created later", nsCapture)
		}
		out = append(out, finding{"warn", fmt.Sprintf("maps too widely: every pod whose SPIFFE ID matches gets the one role %s (%s uses no capture) and %s; "+
			"write literals where you mean them, or use the captures in the role (e.g. role/{%s}) so that IAM decides who gets what", role, roleKey, why, caps[len(caps)-1])})
	case nsCapture != "" && !slices.Contains(used, nsCapture):
		out = append(out, finding{"warn", fmt.Sprintf("maps too widely: {%s} takes every namespace, including ones created later, and %s does not use it: "+
			"a pod of any namespace gets %s by the other captures alone, so whoever may create a service account of a matching name in any namespace gets that role; "+
			"write the namespace as a literal or use {%s} in the role", nsCapture, roleKey, role, nsCapture)})
	}
	if a, b, sep, ok := ambiguousPair(p, role); ok {
		ex := func(x, y string) string {
			v, _ := idpattern.Expand(role, sampleValues(used, map[string]string{a: x, b: y}))
			return v
		}
		ab, c := "p"+sep+"q", "r"
		out = append(out, finding{"warn", fmt.Sprintf("ambiguous role: {%s} and {%s} meet with %q between them, which both may hold, so different SPIFFE IDs get the same role: "+
			"{%s}=%q, {%s}=%q and {%s}=%q, {%s}=%q both make %s; separate them with a character one of them cannot hold (\"_\" between a Kubernetes namespace and service account; \"+\", \"=\", \",\" or \"@\" between any two)",
			a, b, sep, a, ab, b, c, a, "p", b, "q"+sep+c, ex(ab, c))})
	}
	for j := 0; j < i; j++ {
		if pats[j].Covers(p) {
			out = append(out, finding{"warn", fmt.Sprintf("shadowed: never matches, because %s (%s) comes first and matches every SPIFFE ID this rule does; move this rule above it, or remove it", all[j].Name, all[j].Pos)})
			return out
		}
	}
	noted := map[int]bool{}
	for j := 0; j < i; j++ {
		id, ok := pats[j].Overlap(p)
		if !ok {
			continue
		}
		spec, err := rules.Match(id)
		if err != nil || spec.Rule == i || noted[spec.Rule] {
			continue
		}
		noted[spec.Rule] = true
		out = append(out, finding{"note", fmt.Sprintf("some IDs this rule matches go to %s (%s), which comes first: e.g. %s", spec.RuleName, all[spec.Rule].Pos, id)})
	}
	return out
}

// charset reports which characters a capture's values may hold: a Kubernetes namespace's (a DNS label:
// a-z, 0-9, "-") after a literal "ns" segment, a service account's (a DNS subdomain: a-z, 0-9, "-", ".")
// after a literal "sa" segment, as in SPIRE's Kubernetes IDs (ns/<namespace>/sa/<service account>);
// elsewhere a SPIFFE path segment's (letters, digits, "-", ".", "_").
func charset(p *idpattern.Pattern, capture string) func(rune) bool {
	segs := p.Segments()
	for i, s := range segs {
		if s.Capture != capture || i == 0 || segs[i-1].Capture != "" {
			continue
		}
		lower := func(r rune) bool { return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' }
		switch segs[i-1].Literal {
		case "ns":
			return lower
		case "sa":
			return func(r rune) bool { return lower(r) || r == '.' }
		}
	}
	return func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_'
	}
}

// ambiguousPair finds two different captures of p that meet in template, each used there once, with
// only characters both may hold between them: a value can then give part of itself to the other across
// the separator ("p-q"+"-"+"r" = "p"+"-"+"q-r"), and two SPIFFE IDs fill in the same text. A separator
// character one of them cannot hold keeps every split apart.
func ambiguousPair(p *idpattern.Pattern, template string) (a, b, sep string, ok bool) {
	names := idpattern.Placeholders(template)
	count := map[string]int{}
	for _, n := range names {
		count[n]++
	}
	for k := 0; k+1 < len(names); k++ {
		x, y := names[k], names[k+1]
		if x == y || count[x] != 1 || count[y] != 1 {
			continue
		}
		start := strings.Index(template, "{"+x+"}") + len(x) + 2
		end := strings.Index(template, "{"+y+"}")
		if end < start {
			continue
		}
		between := template[start:end]
		inX, inY := charset(p, x), charset(p, y)
		if strings.IndexFunc(between, func(r rune) bool { return !inX(r) || !inY(r) }) < 0 {
			return x, y, between, true
		}
	}
	return "", "", "", false
}

// sampleValues gives every name a sample value, overridden by set.
func sampleValues(names []string, set map[string]string) map[string]string {
	out := map[string]string{}
	for _, n := range names {
		out[n] = n
	}
	for k, v := range set {
		out[k] = v
	}
	return out
}

// checkPodSpiffeID answers "which role does a pod with this SPIFFE ID get?" with podidentity's engine:
// the rule that matches, its captures and the filled role ARN, hops and session names, or no rule (the
// 403 the server answers). When the Workload API at addr offers an X.509-SVID with that ID (the dev and
// test worlds), it proves the role end to end with one CreateSession and the hops; otherwise it says the
// answer is static. It returns the number of problems.
func checkPodSpiffeID(ctx context.Context, out io.Writer, pi *config.PodIdentity, raw string, addr svid.Address) int {
	id, err := spiffeid.FromString(raw)
	if err != nil {
		fmt.Fprintf(out, "\nSPIFFE ID %q\n  FAIL not a SPIFFE ID: %v\n", raw, err)
		return 1
	}
	fmt.Fprintf(out, "\nSPIFFE ID %s, by the rules of pod_identity (%s)\n", id, pi.Pos)
	rules, err := podrules.Compile(pi)
	if err != nil {
		fmt.Fprintf(out, "  FAIL %v\n", err)
		return 1
	}
	spec, err := rules.Match(id)
	if err != nil {
		fmt.Fprintf(out, "  FAIL %v: a pod with this SPIFFE ID gets HTTP 403 and no credentials\n", err)
		return 1
	}
	r := pi.Rules[spec.Rule]
	fmt.Fprintf(out, "  ok   %s (%s) matches: spiffe_id %s\n", spec.RuleName, r.Pos, r.SpiffeID)
	if len(spec.Captures) > 0 {
		var cs []string
		for _, n := range slices.Sorted(maps.Keys(spec.Captures)) {
			cs = append(cs, fmt.Sprintf("{%s}=%s", n, spec.Captures[n]))
		}
		fmt.Fprintf(out, "    captures           %s\n", strings.Join(cs, " "))
	}
	fmt.Fprintf(out, "    trust_anchor_arn   %s\n    profile_arn        %s\n    role_arn           %s\n", r.TrustAnchorARN, r.ProfileARN, spec.RoleARN)
	sn := spec.RoleSessionName
	if sn == "" {
		sn = "(default: the SVID's serial number)"
	}
	fmt.Fprintf(out, "    role_session_name  %s\n", sn)
	for j, a := range spec.AssumeRoleARNs {
		hsn := spec.AssumeRoleSessionNames[j]
		if hsn == "" {
			hsn = "default, from the SPIFFE ID"
		}
		fmt.Fprintf(out, "    assume_role[%d]     %s (role_session_name %s)\n", j, a, hsn)
	}
	final := spec.RoleARN
	if n := len(spec.AssumeRoleARNs); n > 0 {
		final = spec.AssumeRoleARNs[n-1]
	}
	fmt.Fprintf(out, "    pods get           %s (session %s, shared by the node's pods with this SPIFFE ID)\n", final, spec.Name())

	svids, err := fetchRawSVIDs(ctx, addr.Addr)
	var offered []rawSVID
	for _, s := range svids {
		if s.id == id.String() {
			offered = append(offered, s)
		}
	}
	if err != nil || len(offered) == 0 {
		why := fmt.Sprintf("the Workload API at %s offers no X.509-SVID for it", addr)
		if err != nil {
			why = fmt.Sprintf("the Workload API at %s is not reachable (%v)", addr, err)
		}
		fmt.Fprintf(out, "  info static answer, no CreateSession tried: %s, and check cannot ask the Delegated Identity API for a pod's SVID without the pod's selectors\n", why)
		return 0
	}
	pc, ok := podrules.Profile(spec)
	if !ok {
		fmt.Fprintf(out, "  FAIL %s: no settings\n", spec.RuleName)
		return 1
	}
	fmt.Fprintf(out, "  info the Workload API at %s offers an X.509-SVID for this ID: proving the role end to end with it\n", addr)
	return checkProfile(ctx, out, pc, offered)
}
