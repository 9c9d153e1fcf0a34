// Package awsarn validates the ARNs a Roles Anywhere session names (trust anchor, profile, role) and
// derives the regional endpoint from them. The signer and the config loader share it, so that a bad ARN
// gets the same message whether it comes from a flag or from a config file.
package awsarn

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
)

// The patterns compile on first use, not at package init: init runs on every credential_process call.
var (
	account  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]{12}$`) })
	region   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`) })
	uuidLike = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	})
	// IAM role names: 1-64 of [\w+=,.@-]; paths: /, or /…/ of printable ASCII without spaces.
	roleResource = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^role(/[\x21-\x7e]+)?/[\w+=,.@-]{1,64}$`) })
)

// partitions maps each AWS partition to the DNS suffix of its Roles Anywhere endpoints.
var partitions = map[string]string{
	"aws":        "amazonaws.com",
	"aws-cn":     "amazonaws.com.cn",
	"aws-us-gov": "amazonaws.com",
	"aws-iso":    "c2s.ic.gov",
	"aws-iso-b":  "sc2s.sgov.gov",
}

// Error is a malformed or inconsistent ARN. Field names the setting ("trust_anchor_arn", …) and Value
// holds the offending ARN (ARNs are not secrets).
type Error struct {
	Field  string
	Value  string
	Reason string
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("%s %q: %s", e.Field, e.Value, e.Reason)
}

// RolesAnywhere parses and checks a Roles Anywhere ARN of the given resource type ("trust-anchor" or
// "profile"): arn:<partition>:rolesanywhere:<region>:<account>:<kind>/<uuid>.
func RolesAnywhere(field, s, kind string) (arn.ARN, error) {
	a, err := parse(field, s)
	if err != nil {
		return a, err
	}
	if a.Service != "rolesanywhere" {
		return a, &Error{field, s, fmt.Sprintf("service is %q, want \"rolesanywhere\"", a.Service)}
	}
	if !region().MatchString(a.Region) {
		return a, &Error{field, s, fmt.Sprintf("region %q is not a valid AWS region", a.Region)}
	}
	id, ok := strings.CutPrefix(a.Resource, kind+"/")
	if !ok {
		return a, &Error{field, s, fmt.Sprintf("resource %q is not a %s (want %s/<id>)", a.Resource, kind, kind)}
	}
	if !uuidLike().MatchString(id) {
		return a, &Error{field, s, fmt.Sprintf("%s id %q is not a UUID", kind, id)}
	}
	return a, nil
}

// Role parses and checks an IAM role ARN: arn:<partition>:iam::<account>:role/[path/]name.
func Role(field, s string) (arn.ARN, error) {
	a, err := parse(field, s)
	if err != nil {
		return a, err
	}
	if a.Service != "iam" {
		return a, &Error{field, s, fmt.Sprintf("service is %q, want \"iam\"", a.Service)}
	}
	if a.Region != "" {
		return a, &Error{field, s, "IAM ARNs have no region"}
	}
	if !roleResource().MatchString(a.Resource) {
		return a, &Error{field, s, fmt.Sprintf("resource %q is not a role (want role/<name>, name of 1-64 [A-Za-z0-9+=,.@_-])", a.Resource)}
	}
	return a, nil
}

func parse(field, s string) (arn.ARN, error) {
	if strings.TrimSpace(s) == "" {
		return arn.ARN{}, &Error{field, s, "is empty"}
	}
	a, err := arn.Parse(s)
	if err != nil {
		return a, &Error{field, s, "is not an ARN (want arn:partition:service:region:account:resource)"}
	}
	if _, ok := partitions[a.Partition]; !ok {
		return a, &Error{field, s, fmt.Sprintf("unknown partition %q", a.Partition)}
	}
	if !account().MatchString(a.AccountID) {
		return a, &Error{field, s, fmt.Sprintf("account %q is not 12 digits", a.AccountID)}
	}
	return a, nil
}

// Session is a checked set of ARNs for one CreateSession call.
type Session struct {
	TrustAnchor, Profile, Role arn.ARN
	// Region is where the session is created: the requested one, or the trust anchor's.
	Region string
}

// CheckSession validates the three ARNs and their agreement: the trust anchor and profile must be in the
// same partition, region and account; the role in the same partition; and the region asked for (if any)
// must be the trust anchor's, because Roles Anywhere resources are regional.
func CheckSession(trustAnchorARN, profileARN, roleARN, requestedRegion string) (Session, error) {
	var s Session
	var err error
	if s.TrustAnchor, err = RolesAnywhere("trust_anchor_arn", trustAnchorARN, "trust-anchor"); err != nil {
		return s, err
	}
	if s.Profile, err = RolesAnywhere("profile_arn", profileARN, "profile"); err != nil {
		return s, err
	}
	if s.Role, err = Role("role_arn", roleARN); err != nil {
		return s, err
	}
	ta, p, r := s.TrustAnchor, s.Profile, s.Role
	switch {
	case p.Partition != ta.Partition:
		return s, &Error{"profile_arn", profileARN, fmt.Sprintf("partition %q differs from the trust anchor's %q", p.Partition, ta.Partition)}
	case p.Region != ta.Region:
		return s, &Error{"profile_arn", profileARN, fmt.Sprintf("region %q differs from the trust anchor's %q", p.Region, ta.Region)}
	case p.AccountID != ta.AccountID:
		return s, &Error{"profile_arn", profileARN, fmt.Sprintf("account %q differs from the trust anchor's %q", p.AccountID, ta.AccountID)}
	case r.Partition != ta.Partition:
		return s, &Error{"role_arn", roleARN, fmt.Sprintf("partition %q differs from the trust anchor's %q", r.Partition, ta.Partition)}
	}
	s.Region = ta.Region
	if requestedRegion != "" && requestedRegion != ta.Region {
		return s, &Error{"region", requestedRegion, fmt.Sprintf("differs from the trust anchor's region %q (Roles Anywhere resources are regional)", ta.Region)}
	}
	return s, nil
}

// Endpoint is the Roles Anywhere endpoint for a partition and region, e.g.
// https://rolesanywhere.us-east-1.amazonaws.com or https://rolesanywhere.cn-north-1.amazonaws.com.cn.
func Endpoint(partition, region string) string {
	suffix, ok := partitions[partition]
	if !ok {
		suffix = partitions["aws"]
	}
	return "https://rolesanywhere." + region + "." + suffix
}

// Partition is the partition a region belongs to, from its prefix.
func Partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	case strings.HasPrefix(region, "us-isob-"):
		return "aws-iso-b"
	case strings.HasPrefix(region, "us-iso-"):
		return "aws-iso"
	}
	return "aws"
}

// ValidRegion reports whether s looks like an AWS region name (e.g. "eu-west-1").
func ValidRegion(s string) bool { return region().MatchString(s) }
