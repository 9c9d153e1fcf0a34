package chain

import (
	"encoding/json"
	"strings"
)

// TrustPolicy is the trust policy the role of hop h needs so that a session of callerRoleARN (the
// previous hop's role, first the Roles Anywhere role) can assume it: the caller's role as the AWS
// principal, sts:AssumeRole, sts:SetSourceIdentity (a Roles Anywhere session carries a source identity,
// which STS keeps across hops), sts:TagSession when the hop sends session tags (the SPIFFE ID tag
// included) or tagged is set (transitive tags arrive from an earlier hop), and an sts:ExternalId
// condition when h has an external id.
func TrustPolicy(callerRoleARN string, h Hop, tagged bool) string {
	return OriginTrustPolicy(callerRoleARN, h, tagged, "")
}

// OriginTrustPolicy is TrustPolicy with, when subject is not empty, the condition that admits only the
// sessions whose origin identity is subject: StringEquals aws:OriginIdentity/Subject, which Roles
// Anywhere sets from the certificate when the profile has trusted identity propagation on (subject
// source x509SAN/URI: the SPIFFE ID), and which no caller can set or change, across every hop.
func OriginTrustPolicy(callerRoleARN string, h Hop, tagged bool, subject string) string {
	actions := []string{"sts:AssumeRole", "sts:SetSourceIdentity"}
	if tagged || h.SPIFFEIDTag != "" || len(h.SessionTags) > 0 {
		actions = append(actions, "sts:TagSession")
	}
	stmt := map[string]any{
		"Effect":    "Allow",
		"Principal": map[string]any{"AWS": callerRoleARN},
		"Action":    actions,
	}
	equals := map[string]string{}
	if h.ExternalID != "" {
		equals["sts:ExternalId"] = h.ExternalID
	}
	if subject != "" {
		equals["aws:OriginIdentity/Subject"] = subject
	}
	if len(equals) > 0 {
		stmt["Condition"] = map[string]any{"StringEquals": equals}
	}
	b, _ := json.MarshalIndent(map[string]any{"Version": "2012-10-17", "Statement": []any{stmt}}, "", "  ")
	return string(b)
}

// CallerPolicy is the permission policy the caller's role (callerRoleARN's account) needs to assume the
// role of hop h: sts:AssumeRole, and sts:TagSession when tags are sent, on h's role.
func CallerPolicy(h Hop, tagged bool) string {
	actions := []string{"sts:AssumeRole"}
	if tagged || h.SPIFFEIDTag != "" || len(h.SessionTags) > 0 {
		actions = append(actions, "sts:TagSession")
	}
	b, _ := json.MarshalIndent(map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
		"Effect": "Allow", "Action": actions, "Resource": h.RoleARN,
	}}}, "", "  ")
	return string(b)
}

// Transitive reports whether hops up to and including hops[i] make any tag transitive, so that later
// hops receive tags (and their roles must allow sts:TagSession).
func Transitive(hops []Hop, i int) bool {
	for _, h := range hops[:i+1] {
		if len(h.TransitiveTagKeys) > 0 {
			return true
		}
	}
	return false
}

// AccountOf is the account id of an ARN ("" when it has none).
func AccountOf(arn string) string {
	if p := strings.Split(arn, ":"); len(p) >= 5 {
		return p[4]
	}
	return ""
}
