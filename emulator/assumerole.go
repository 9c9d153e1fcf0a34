package emulator

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/awsarn"
)

// xmlTag is one session tag in an STS XML answer.
type xmlTag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

func tagList(m map[string]string) []xmlTag {
	out := make([]xmlTag, 0, len(m))
	for k, v := range m {
		out = append(out, xmlTag{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// stsRegions are the regions this STS serves (Config.STSRegions, else the trust anchors' regions, else
// us-east-1).
func (e *Emulator) stsRegions() []string {
	if len(e.cfg.STSRegions) > 0 {
		return e.cfg.STSRegions
	}
	var out []string
	for _, ta := range e.cfg.TrustAnchors {
		if p := strings.Split(ta.ARN, ":"); len(p) == 6 && !contains(out, p[3]) {
			out = append(out, p[3])
		}
	}
	if len(out) == 0 {
		out = []string{"us-east-1"}
	}
	return out
}

func (e *Emulator) stsRegion(r string) bool { return contains(e.stsRegions(), r) }

var tagKeyRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$`) })
var externalIDRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\w+=,.@:/-]*$`) })
var tagValueRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{0,256}$`) })

// members reads an awsquery list: prefix.member.1, prefix.member.2, … (with sub-field suffix).
func members(form url.Values, prefix, field string) []string {
	var out []string
	for i := 1; ; i++ {
		k := fmt.Sprintf("%s.member.%d", prefix, i)
		if field != "" {
			k += "." + field
		}
		v, ok := form[k]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

// principalAllowed reports whether the trust policy's principals admit a session of roleARN.
func principalAllowed(t *STSTrust, roleARN string) bool {
	account := ""
	if p := strings.Split(roleARN, ":"); len(p) == 6 {
		account = p[4]
	}
	for _, p := range t.Principals {
		if p == roleARN || p == "arn:aws:iam::"+account+":root" {
			return true
		}
	}
	return false
}

// assumeRole is STS AssumeRole as AWS evaluates it for a role session calling into a role of any
// account (role chaining): input validation, the 1-hour cap on chained sessions, the target's trust
// policy (principal, sts:ExternalId, sts:TagSession, sts:SetSourceIdentity), transitive tags and source
// identity carried over from the caller.
func (e *Emulator) assumeRole(w http.ResponseWriter, caller *session, form url.Values, now time.Time) {
	fail := func(status int, code, reason, msg string) {
		e.log.Info("AssumeRole refused", "code", code, "caller", caller.assumedRoleARN, "role", form.Get("RoleArn"), "reason", reason)
		writeSTSError(w, &stsError{status, code, msg})
	}
	invalid := func(msg string) { fail(400, "ValidationError", msg, msg) }
	roleARN, sessionName := form.Get("RoleArn"), form.Get("RoleSessionName")
	if _, err := awsarn.Role("RoleArn", roleARN); err != nil {
		invalid(fmt.Sprintf("1 validation error detected: Value '%s' at 'roleArn' failed to satisfy constraint: %v", roleARN, err))
		return
	}
	if !sessionNameRE().MatchString(sessionName) {
		invalid(fmt.Sprintf("1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length 2..64", sessionName))
		return
	}
	dur := 3600
	if d := form.Get("DurationSeconds"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 900 || n > 43200 {
			invalid(fmt.Sprintf("1 validation error detected: Value '%s' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200", d))
			return
		}
		dur = n
	}
	// Every session this emulator issues is a role session: AssumeRole from it is role chaining, which
	// AWS caps at one hour whatever the role's maximum.
	if dur > 3600 {
		invalid("The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
		return
	}
	var sessionPolicies []*Policy
	if p := form.Get("Policy"); p != "" {
		if len(p) > 2048 || !json.Valid([]byte(p)) {
			invalid("1 validation error detected: Value at 'policy' failed to satisfy constraint: a JSON policy document of at most 2048 characters")
			return
		}
		pol, err := ParsePolicy(p)
		if err != nil {
			fail(400, "MalformedPolicyDocument", err.Error(), "The session policy is not a valid IAM policy document (as the emulator evaluates them): "+err.Error())
			return
		}
		sessionPolicies = append(sessionPolicies, pol)
	}
	policyARNs := members(form, "PolicyArns", "arn")
	if len(policyARNs) > 10 {
		invalid("1 validation error detected: Value at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to 10")
		return
	}
	for _, a := range policyARNs {
		if p := strings.Split(a, ":"); len(p) != 6 || p[0] != "arn" || p[2] != "iam" || !strings.HasPrefix(p[5], "policy/") {
			invalid(fmt.Sprintf("Invalid ARN %s: not an IAM policy ARN", a))
			return
		}
		e.mu.Lock()
		pol := e.cfg.managedPolicy(a)
		e.mu.Unlock()
		if pol == nil {
			invalid(fmt.Sprintf("Policy %s does not exist or is not attachable (the emulator knows the managed policies its config declares: add a managed_policy %q block)", a, a))
			return
		}
		sessionPolicies = append(sessionPolicies, pol)
	}
	if x, ok := form["ExternalId"]; ok && (len(x[0]) < 2 || len(x[0]) > 1224 || !externalIDRE().MatchString(x[0])) {
		invalid("1 validation error detected: Value at 'externalId' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@:\\/-]* and have length between 2 and 1224")
		return
	}
	keys, values := members(form, "Tags", "Key"), members(form, "Tags", "Value")
	if len(keys) != len(values) || len(keys) > 50 {
		invalid("1 validation error detected: Value at 'tags' failed to satisfy constraint: at most 50 tags, each with a Key and a Value")
		return
	}
	reqTags := map[string]string{}
	for i, k := range keys {
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			invalid(fmt.Sprintf("1 validation error detected: Value at 'tags.%d.member.key' failed to satisfy constraint: tag keys cannot start with aws: (%q); aws: keys such as aws:OriginIdentity/Subject are set by AWS only", i+1, k))
			return
		}
		if !tagKeyRE().MatchString(k) || !tagValueRE().MatchString(values[i]) {
			invalid(fmt.Sprintf("1 validation error detected: Value at 'tags.%d' failed to satisfy constraint: tag key %q or its value has characters or a length STS does not allow", i+1, k))
			return
		}
		for seen := range reqTags {
			if strings.EqualFold(seen, k) {
				invalid(fmt.Sprintf("Duplicate tag keys found. Please note that Tag keys are case insensitive (%q)", k))
				return
			}
		}
		reqTags[k] = values[i]
	}
	transitive := members(form, "TransitiveTagKeys", "")
	for _, k := range transitive {
		found := false
		for rk := range reqTags {
			found = found || strings.EqualFold(rk, k)
		}
		if !found {
			invalid(fmt.Sprintf("The transitive tag key %q is not among the session tags of the request", k))
			return
		}
	}
	e.mu.Lock()
	callerTags := map[string]string{}
	for _, k := range caller.transitive {
		callerTags[k] = caller.tags[k]
	}
	callerTransitive := append([]string(nil), caller.transitive...)
	callerSource := caller.sourceIdentity
	callerOrigin := caller.origin
	callerChain := append(append([]string(nil), caller.chain...), caller.assumedRoleARN)
	callerProfile := caller.profileARN
	perms := permissions{session: caller.sessionPolicies}
	if r := e.role(caller.roleARN); r != nil && (r.identityPolicy != nil || len(r.ManagedPolicyARNs) > 0) {
		perms.identity = []*Policy{}
		if r.identityPolicy != nil {
			perms.identity = append(perms.identity, r.identityPolicy)
		}
		for _, a := range r.ManagedPolicyARNs {
			perms.identity = append(perms.identity, e.cfg.managedPolicy(a))
		}
	}
	// The request context the caller's policies and the target's trust policy are evaluated in.
	ctx := map[string]string{"aws:PrincipalArn": caller.roleARN, "aws:PrincipalAccount": caller.account,
		"sts:RoleSessionName": sessionName}
	for k, v := range caller.tags {
		ctx["aws:PrincipalTag/"+k] = v
	}
	e.mu.Unlock()
	callerOrigin.addTo(ctx)
	if callerSource != "" {
		ctx["aws:SourceIdentity"] = callerSource
	}
	if si := form.Get("SourceIdentity"); si != "" {
		ctx["sts:SourceIdentity"] = si
	}
	if x := form.Get("ExternalId"); x != "" {
		ctx["sts:ExternalId"] = x
	}
	for k, v := range reqTags {
		ctx["aws:RequestTag/"+k] = v
	}
	for ck := range callerTags {
		for rk := range reqTags {
			if strings.EqualFold(ck, rk) {
				invalid(fmt.Sprintf("One or more of the specified tag keys are already set as transitive tags by the calling session and cannot be overridden: %q", rk))
				return
			}
		}
	}
	if si := form.Get("SourceIdentity"); si != "" && callerSource != "" && si != callerSource {
		fail(400, "ValidationError", "source identity change", "Source identity cannot be changed once it is set on a session (it is "+callerSource+")")
		return
	}
	// The target's trust policy. AWS answers every refusal with the same generic message; the log says
	// which condition failed.
	deny := func(reason string) {
		fail(403, "AccessDenied", reason, fmt.Sprintf("User: %s is not authorized to perform: sts:AssumeRole on resource: %s", caller.assumedRoleARN, roleARN))
	}
	// The caller's own permissions: its role's identity policies and its session policies.
	actions := []string{"sts:AssumeRole"}
	if len(reqTags) > 0 || len(callerTags) > 0 {
		actions = append(actions, "sts:TagSession")
	}
	if callerSource != "" || form.Get("SourceIdentity") != "" {
		actions = append(actions, "sts:SetSourceIdentity")
	}
	for _, a := range actions {
		if d := perms.authorize(a, roleARN, ctx); d != nil {
			fail(403, "AccessDenied", "the caller's policies: "+d.reason,
				fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s %s", caller.assumedRoleARN, a, roleARN, d.reason))
			return
		}
	}
	var trust *STSTrust
	e.mu.Lock()
	if role := e.role(roleARN); role != nil && role.STSTrust != nil {
		t := *role.STSTrust
		trust = &t
	}
	e.mu.Unlock()
	switch {
	case trust == nil:
		deny("the role does not exist or its trust policy has no sts_trust statement")
		return
	case !principalAllowed(trust, caller.roleARN):
		deny(fmt.Sprintf("the trust policy does not name the caller's role %s as a principal", caller.roleARN))
		return
	case trust.ExternalID != "" && form.Get("ExternalId") != trust.ExternalID:
		deny("the sts:ExternalId condition does not match")
		return
	case (len(reqTags) > 0 || len(callerTags) > 0) && !trust.TagSession:
		fail(403, "AccessDenied", "sts:TagSession not granted",
			fmt.Sprintf("User: %s is not authorized to perform: sts:TagSession on resource: %s", caller.assumedRoleARN, roleARN))
		return
	case (callerSource != "" || form.Get("SourceIdentity") != "") && !trust.SetSourceIdentity:
		fail(403, "AccessDenied", "sts:SetSourceIdentity not granted",
			fmt.Sprintf("User: %s is not authorized to perform: sts:SetSourceIdentity on resource: %s", caller.assumedRoleARN, roleARN))
		return
	}
	for _, c := range trust.Conditions {
		if !c.holds(ctx) {
			v, present := lookupKey(ctx, c.Key)
			if !present {
				v = "(absent)"
			}
			deny(fmt.Sprintf("the trust policy's condition %s %s %q does not hold (the request's value: %q)", c.Test, c.Key, c.Values, v))
			return
		}
	}
	source := callerSource
	if source == "" {
		source = form.Get("SourceIdentity")
	}
	s := e.newSession(roleARN, sessionName, now.Add(time.Duration(dur)*time.Second), func(s *session) {
		s.issuedBy, s.chained, s.sourceIdentity = "AssumeRole", true, source
		for k, v := range callerTags {
			s.tags[k] = v
		}
		for k, v := range reqTags {
			s.tags[k] = v
		}
		s.transitive = append(callerTransitive, transitive...)
		s.origin, s.chain, s.profileARN = callerOrigin, callerChain, callerProfile
		s.sessionPolicies = sessionPolicies
	})
	e.log.Info("AssumeRole: issued", "access_key_id", s.id, "caller", caller.assumedRoleARN, "role", roleARN, "origin_subject", originSubject(callerOrigin),
		"session", sessionName, "expires", s.expires.UTC().Format(time.RFC3339))
	e.countSTSOK()
	type result struct {
		Credentials      stsCredentials     `xml:"Credentials"`
		AssumedRoleUser  stsAssumedRoleUser `xml:"AssumedRoleUser"`
		PackedPolicySize int                `xml:"PackedPolicySize"`
		SourceIdentity   string             `xml:"SourceIdentity,omitempty"`
	}
	writeXML(w, 200, struct {
		XMLName xml.Name         `xml:"AssumeRoleResponse"`
		XMLNS   string           `xml:"xmlns,attr"`
		Result  result           `xml:"AssumeRoleResult"`
		Meta    responseMetadata `xml:"ResponseMetadata"`
	}{XMLNS: stsNS, Result: result{
		Credentials:      s.xmlCredentials(),
		AssumedRoleUser:  stsAssumedRoleUser{s.assumedRoleARN, s.assumedRoleID},
		PackedPolicySize: min(100, 5*len(s.tags)+len(form.Get("Policy"))/40+3*len(policyARNs)),
		SourceIdentity:   source,
	}, Meta: responseMetadata{requestID()}})
}

// SetSTSTrust replaces the sts_trust of role roleARN (nil removes it), as an IAM administrator editing
// the trust policy would, creating the role (in the ARN's account) when it does not exist. It reports
// whether the role existed.
func (e *Emulator) SetSTSTrust(roleARN string, t *STSTrust) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.role(roleARN)
	existed := r != nil
	if r == nil {
		r = &Role{ARN: roleARN}
		e.cfg.Roles = append(e.cfg.Roles, r)
	}
	if t != nil {
		c := *t
		c.Conditions = nil
		for _, cond := range t.Conditions {
			cc := *cond
			cc.Values = append([]string(nil), cond.Values...)
			// An invalid condition (an unknown operator) is kept: it never holds, so the role fails closed.
			_ = cc.normalize()
			c.Conditions = append(c.Conditions, &cc)
		}
		t = &c
	}
	r.STSTrust = t
	return existed
}

// SessionView is one issued session as GET /_emulator/sessions shows it: no secret, no token.
type SessionView struct {
	AccessKeyID       string            `json:"access_key_id"`
	Arn               string            `json:"arn"`
	Account           string            `json:"account"`
	RoleArn           string            `json:"role_arn"`
	SessionName       string            `json:"session_name"`
	IssuedBy          string            `json:"issued_by"`
	SourceIdentity    string            `json:"source_identity,omitempty"`
	Tags              map[string]string `json:"tags,omitempty"`
	TransitiveTagKeys []string          `json:"transitive_tag_keys,omitempty"`
	Chained           bool              `json:"chained"`
	Expiration        time.Time         `json:"expiration"`
	// OriginIdentity is the session's aws:OriginIdentity context (trusted identity propagation).
	OriginIdentity *OriginIdentity `json:"origin_identity,omitempty"`
	// Chain lists the assumed-role ARNs this session was chained from, first the Roles Anywhere one.
	Chain []string `json:"chain,omitempty"`
	// Profile is the Roles Anywhere profile of the chain's first session.
	Profile string `json:"profile_arn,omitempty"`
	// SessionPolicies counts the session policies that narrow the session.
	SessionPolicies int `json:"session_policies,omitempty"`
}

// originSubject is o's subject for a log line ("" without TIP).
func originSubject(o *OriginIdentity) string {
	if o == nil {
		return ""
	}
	return o.Subject
}

// Sessions lists the sessions the emulator has issued (optionally only accessKeyID's), sorted by
// access key id.
func (e *Emulator) Sessions(accessKeyID string) []SessionView {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []SessionView
	for id, s := range e.sessions {
		if accessKeyID != "" && id != accessKeyID {
			continue
		}
		tags := map[string]string{}
		for k, v := range s.tags {
			tags[k] = v
		}
		out = append(out, SessionView{AccessKeyID: id, Arn: s.assumedRoleARN, Account: s.account, RoleArn: s.roleARN,
			SessionName: s.sessionName, IssuedBy: s.issuedBy, SourceIdentity: s.sourceIdentity, Tags: tags,
			TransitiveTagKeys: append([]string(nil), s.transitive...), Chained: s.chained, Expiration: s.expires.UTC(),
			OriginIdentity: s.origin.clone(), Chain: append([]string(nil), s.chain...), Profile: s.profileARN, SessionPolicies: len(s.sessionPolicies)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AccessKeyID < out[j].AccessKeyID })
	return out
}
