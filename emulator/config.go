package emulator

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/gocty"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/awsarn"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/trusted"
)

// Config is what the emulated AWS account holds: trust anchors, profiles and roles. Write it in HCL:
//
//	account_id       = "123456789012"
//	quota_per_second = 10
//	trust_anchor "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/<uuid>" {
//	  ca_bundle_file = "ca.pem"
//	}
//	profile "arn:aws:rolesanywhere:us-east-1:123456789012:profile/<uuid>" {
//	  role_arns                = ["arn:aws:iam::123456789012:role/app"]
//	  duration_seconds         = 3600
//	  accept_role_session_name = true
//	  tip {                                  # trusted identity propagation
//	    status         = "ENABLED"
//	    subject_source = "x509SAN/URI"         # or x509Subject/CN
//	    subject_type   = "workload"            # or user
//	  }
//	  attribute_mapping {                    # replaces the default mapping of one field
//	    certificate_field = "x509SAN"
//	    specifiers        = ["URI"]
//	  }
//	  session_policy      = "{...}"          # inline session policy (JSON)
//	  managed_policy_arns = ["arn:aws:iam::123456789012:policy/read-only"]
//	}
//	role "arn:aws:iam::123456789012:role/app" {
//	  condition {
//	    tag    = "x509SAN/URI"
//	    values = ["spiffe://example.org/ns/prod/*"]
//	  }
//	  condition {                            # any condition key, StringEquals/StringLike/...
//	    test   = "StringEquals"
//	    key    = "aws:OriginIdentity/SubjectType"
//	    values = ["workload"]
//	  }
//	  identity_policy     = "{...}"          # the role's permissions (default: not modelled, all allowed)
//	  managed_policy_arns = ["arn:aws:iam::123456789012:policy/read-only"]
//	}
//	managed_policy "arn:aws:iam::123456789012:policy/read-only" {
//	  document = "{...}"
//	}
//	role "arn:aws:iam::123456789012:role/jwt-app" {
//	  web_identity {
//	    audiences = ["sts.amazonaws.com"]
//	    subjects  = ["spiffe://example.org/ns/prod/*"]
//	  }
//	}
//	jwt_bundle {
//	  jwks_file = "jwks.json"
//	}
//	# STS AssumeRole (role chaining) into a role of another account:
//	role "arn:aws:iam::210987654321:role/workload" {
//	  sts_trust {
//	    principals          = ["arn:aws:iam::123456789012:role/app"] # role ARNs, or arn:aws:iam::<account>:root
//	    external_id         = "tenant-7"  # optional: the sts:ExternalId condition
//	    tag_session         = true        # sts:TagSession: session tags (and incoming transitive tags) allowed
//	    set_source_identity = true        # sts:SetSourceIdentity: needed when the caller carries a source identity
//	    condition {                       # e.g. the SPIFFE ID as the origin identity (TIP)
//	      test   = "StringEquals"
//	      key    = "aws:OriginIdentity/Subject"
//	      values = ["spiffe://example.org/ns/prod/web"]
//	    }
//	  }
//	}
//	sts_regions = ["us-east-1"] # regions STS accepts in the SigV4 scope; default: the trust anchors' regions
//
// Roles may live in any account (the role ARN's account is the session's account); trust anchors and
// profiles live in account_id, as Roles Anywhere only assumes roles in its own account.
type Config struct {
	AccountID string
	// STSRegions are the regions STS accepts in a SigV4 credential scope; empty means the regions of
	// the trust anchors (us-east-1 when there are none).
	STSRegions []string
	// QuotaPerSecond is the CreateSession rate per region (AWS: 10); 0 means the default, -1 unlimited.
	QuotaPerSecond int
	TrustAnchors   []*TrustAnchor
	Profiles       []*Profile
	Roles          []*Role
	JWTBundle      *JWTBundle
	// ManagedPolicies are the customer managed policies that roles, profiles and AssumeRole's
	// PolicyArns may name.
	ManagedPolicies []*ManagedPolicy
}

// ManagedPolicy is an IAM managed policy: its ARN and JSON document (see ParsePolicy for the scope).
type ManagedPolicy struct {
	ARN      string
	Document string
	policy   *Policy
}

// TIP is a profile's trusted identity propagation setting (Roles Anywhere's tipConfiguration).
type TIP struct {
	// Status is ENABLED or DISABLED.
	Status string
	// SubjectSource is the certificate field that becomes aws:OriginIdentity/Subject: x509SAN/URI (the
	// first URI SAN, a SPIFFE ID) or x509Subject/CN (AWS's default).
	SubjectSource string
	// SubjectType is aws:OriginIdentity/SubjectType: workload or user.
	SubjectType string
}

// Enabled reports whether t is set and ENABLED.
func (t *TIP) Enabled() bool { return t != nil && t.Status == "ENABLED" }

// TrustAnchor is a Roles Anywhere trust anchor with its CA bundle (at most 2 CAs, ≤ 8000 characters of
// PEM, as AWS allows).
type TrustAnchor struct {
	ARN          string
	CABundleFile string
	// CABundlePEM is the bundle itself (set directly from Go, or read from CABundleFile).
	CABundlePEM string
	// Roots are the parsed CAs.
	Roots []*x509.Certificate
}

// Profile is a Roles Anywhere profile.
type Profile struct {
	ARN      string
	RoleARNs []string
	// DurationSeconds caps the sessions this profile issues (AWS default 3600).
	DurationSeconds       int
	AcceptRoleSessionName bool
	// TIP is the profile's trusted identity propagation; nil is off (as profiles made with the API are).
	TIP *TIP
	// AttributeMappings replace the default mapping of the fields they name (DefaultAttributeMappings).
	AttributeMappings []*AttributeMapping
	// SessionPolicy (JSON) and ManagedPolicyARNs are session policies on every session of the profile.
	SessionPolicy     string
	ManagedPolicyARNs []string
	sessionPolicy     *Policy
}

// Role is an IAM role and its trust policy, reduced to what the emulator checks: for Roles Anywhere,
// conditions on the certificate's principal tags (all must hold; values match exactly or with `*`
// wildcards, as StringLike does); for STS web identity, the accepted audiences and subjects.
type Role struct {
	ARN         string
	Conditions  []*Condition
	WebIdentity *WebIdentity
	// STSTrust, when set, lets other roles' sessions assume this role with STS AssumeRole.
	STSTrust *STSTrust
	// IdentityPolicy (JSON) and ManagedPolicyARNs are the role's permissions, which bound what its
	// sessions may do (sts:AssumeRole, sts:TagSession, sts:SetSourceIdentity). A role with neither is not
	// modelled: its sessions may do everything.
	IdentityPolicy    string
	ManagedPolicyARNs []string
	identityPolicy    *Policy
}

// STSTrust is the part of a role's trust policy that STS AssumeRole checks: which principals may
// assume the role (sts:AssumeRole), the sts:ExternalId condition, and whether sts:TagSession and
// sts:SetSourceIdentity are granted.
type STSTrust struct {
	// Principals are role ARNs (arn:aws:iam::<account>:role/<name>) or account roots
	// (arn:aws:iam::<account>:root, any role of that account).
	Principals []string
	// ExternalID, when set, must equal the request's ExternalId.
	ExternalID string
	// TagSession grants sts:TagSession: without it a request carrying session tags, or a caller with
	// transitive tags, is refused.
	TagSession bool
	// SetSourceIdentity grants sts:SetSourceIdentity: without it a caller whose session carries a source
	// identity (every Roles Anywhere session) is refused, as AWS does.
	SetSourceIdentity bool
	// Conditions must all hold for the request (aws:PrincipalTag/*, aws:RequestTag/*,
	// aws:OriginIdentity/*, aws:SourceIdentity, sts:RoleSessionName, sts:ExternalId, aws:PrincipalArn,
	// aws:PrincipalAccount).
	Conditions []*Condition
}

// Condition is one IAM policy condition: operator Test on condition key Key, true when the key's value
// matches one of Values. Tag is the older short form: principal tag Tag (e.g. "x509SAN/URI") with
// StringLike, i.e. Key aws:PrincipalTag/<Tag>.
type Condition struct {
	// Test is StringEquals, StringNotEquals, StringLike (the default), StringNotLike, or an IgnoreCase
	// form, optionally ending in IfExists.
	Test string
	// Key is the condition key, e.g. aws:OriginIdentity/Subject.
	Key    string
	Tag    string
	Values []string
}

// normalize fills Key and Test from the short form and checks the condition.
func (c *Condition) normalize() error {
	if (c.Tag == "") == (c.Key == "") && (c.Tag == "" || c.Key != "aws:PrincipalTag/"+c.Tag) {
		return fmt.Errorf("condition: set exactly one of tag and key")
	}
	if c.Tag != "" {
		c.Key = "aws:PrincipalTag/" + c.Tag
	}
	if c.Test == "" {
		c.Test = "StringLike"
	}
	return c.check()
}

// WebIdentity lets AssumeRoleWithWebIdentity assume the role with a JWT from the jwt_bundle issuer whose
// audience is in Audiences and subject matches one of Subjects.
type WebIdentity struct {
	Audiences []string
	Subjects  []string
}

// JWTBundle holds the keys JWTs are verified with (a JWKS, e.g. SPIRE's OIDC discovery provider's).
type JWTBundle struct {
	JWKSFile string
	// JWKS is the key set itself (set directly from Go, or read from JWKSFile).
	JWKS string
	Keys jose.JSONWebKeySet
}

// LoadConfig reads and checks an emulator config file; relative file names inside it are relative to
// the file's directory. Run as root, the emulator reads the config, the CA bundles and the JWKS only when
// no one but root could have written them or a directory above them (internal/trusted): whoever could
// would choose whom the emulator issues credentials to.
func LoadConfig(path string) (*Config, error) {
	src, err := trusted.ReadFile(path, trusted.Options{What: "emulator config file"})
	if err != nil {
		return nil, fmt.Errorf("emulator config: %w", err)
	}
	return ParseConfig(src, path)
}

// ParseConfig parses and checks an emulator config and reads the files it names. filename is used in
// error positions and to resolve relative file names.
func ParseConfig(src []byte, filename string) (*Config, error) {
	return parseConfig(src, filename, true)
}

// DecodeConfig parses and checks an emulator config like ParseConfig, without reading the CA bundle and
// JWKS files it names (for checking configs whose files are made at deploy time, as in the examples).
func DecodeConfig(src []byte, filename string) (*Config, error) {
	return parseConfig(src, filename, false)
}

func parseConfig(src []byte, filename string, readFiles bool) (*Config, error) {
	f, diags := hclparse.NewParser().ParseHCL(src, filename)
	if diags.HasErrors() {
		return nil, diagError(diags)
	}
	var c Config
	if diags := decodeConfig(f.Body, &c); diags.HasErrors() {
		return nil, diagError(diags)
	}
	if err := c.load(filepath.Dir(filename), readFiles); err != nil {
		return nil, fmt.Errorf("%s: %w", filename, err)
	}
	return &c, nil
}

// diagError formats HCL diagnostics as the bridge's config errors are: one "file:line:col: message" line
// per error.
func diagError(d hcl.Diagnostics) error {
	var lines []string
	for _, e := range d {
		if e.Severity != hcl.DiagError {
			continue
		}
		msg := e.Summary
		if e.Detail != "" {
			msg += "; " + e.Detail
		}
		if e.Subject != nil {
			msg = fmt.Sprintf("%s:%d:%d: %s", e.Subject.Filename, e.Subject.Start.Line, e.Subject.Start.Column, msg)
		}
		lines = append(lines, msg)
	}
	return errors.New(strings.Join(lines, "\n"))
}

// load validates c and, with readFiles, reads the files it names (relative to dir).
func (c *Config) load(dir string, readFiles bool) error {
	if len(c.AccountID) != 12 || strings.Trim(c.AccountID, "0123456789") != "" {
		return fmt.Errorf("account_id %q is not 12 digits", c.AccountID)
	}
	if c.QuotaPerSecond == 0 {
		c.QuotaPerSecond = 10
	}
	for _, r := range c.STSRegions {
		if !awsarn.ValidRegion(r) {
			return fmt.Errorf("sts_regions: %q is not a valid AWS region", r)
		}
	}
	seen := map[string]bool{}
	dup := func(kind, arn string) error {
		if seen[arn] {
			return fmt.Errorf("%s %q is declared twice", kind, arn)
		}
		seen[arn] = true
		return nil
	}
	for _, ta := range c.TrustAnchors {
		a, err := awsarn.RolesAnywhere("trust_anchor", ta.ARN, "trust-anchor")
		if err != nil {
			return err
		}
		if a.AccountID != c.AccountID {
			return fmt.Errorf("trust_anchor %q: account differs from account_id %q", ta.ARN, c.AccountID)
		}
		if err := dup("trust_anchor", ta.ARN); err != nil {
			return err
		}
		if ta.CABundlePEM == "" && ta.CABundleFile == "" {
			return fmt.Errorf("trust_anchor %q: ca_bundle_file is required", ta.ARN)
		}
		if !readFiles {
			continue
		}
		if ta.CABundlePEM == "" {
			p := ta.CABundleFile
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			b, err := trusted.ReadFile(p, trusted.Options{What: "CA bundle file"})
			if err != nil {
				return fmt.Errorf("trust_anchor %q: ca_bundle_file: %w (write the trust anchor's CA bundle there, e.g. spire-server bundle show -format pem > %s)", ta.ARN, err, ta.CABundleFile)
			}
			ta.CABundlePEM = string(b)
		}
		if ta.Roots, err = parseBundle(ta.CABundlePEM); err != nil {
			return fmt.Errorf("trust_anchor %q: %w", ta.ARN, err)
		}
	}
	for _, p := range c.Profiles {
		a, err := awsarn.RolesAnywhere("profile", p.ARN, "profile")
		if err != nil {
			return err
		}
		if a.AccountID != c.AccountID {
			return fmt.Errorf("profile %q: account differs from account_id %q", p.ARN, c.AccountID)
		}
		if err := dup("profile", p.ARN); err != nil {
			return err
		}
		if p.DurationSeconds == 0 {
			p.DurationSeconds = 3600
		}
		if p.DurationSeconds < 900 || p.DurationSeconds > 43200 {
			return fmt.Errorf("profile %q: duration_seconds %d is outside 900..43200", p.ARN, p.DurationSeconds)
		}
		for _, r := range p.RoleARNs {
			if _, err := awsarn.Role("role_arns", r); err != nil {
				return fmt.Errorf("profile %q: %w", p.ARN, err)
			}
		}
	}
	for _, r := range c.Roles {
		if _, err := awsarn.Role("role", r.ARN); err != nil {
			return err
		}
		if err := dup("role", r.ARN); err != nil {
			return err
		}
		if t := r.STSTrust; t != nil {
			if len(t.Principals) == 0 {
				return fmt.Errorf("role %q: sts_trust: principals is empty", r.ARN)
			}
			for _, p := range t.Principals {
				if !validPrincipal(p) {
					return fmt.Errorf("role %q: sts_trust: principal %q is neither a role ARN nor arn:aws:iam::<account>:root", r.ARN, p)
				}
			}
		}
	}
	if err := c.compile(); err != nil {
		return err
	}
	if b := c.JWTBundle; b != nil && (readFiles || b.JWKS != "") {
		if b.JWKS == "" {
			p := b.JWKSFile
			if p == "" {
				return fmt.Errorf("jwt_bundle: jwks_file is required")
			}
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			raw, err := trusted.ReadFile(p, trusted.Options{What: "JWKS file"})
			if err != nil {
				return fmt.Errorf("jwt_bundle: jwks_file: %w (write the JWKS of SPIRE's OIDC discovery provider there, e.g. curl https://OIDC-HOST/keys > %s, or drop the jwt_bundle block when no role has web_identity)", err, b.JWKSFile)
			}
			b.JWKS = string(raw)
		}
		if err := json.Unmarshal([]byte(b.JWKS), &b.Keys); err != nil {
			return fmt.Errorf("jwt_bundle: not a JWKS document: %w", err)
		}
		// A JWKS without keys is fine until a JWT must be verified: only a role with web_identity needs one.
		if len(b.Keys.Keys) == 0 {
			for _, r := range c.Roles {
				if r.WebIdentity != nil {
					return fmt.Errorf("jwt_bundle: the JWKS has no keys, and role %q has web_identity: write the JWKS of SPIRE's OIDC discovery provider into %s", r.ARN, orInline(b.JWKSFile))
				}
			}
		}
	}
	return nil
}

// compile checks and parses what the emulator evaluates at request time: TIP settings, attribute
// mappings, conditions and policies. New calls it too, for configs built in Go.
func (c *Config) compile() error {
	managed := map[string]*ManagedPolicy{}
	for _, m := range c.ManagedPolicies {
		if p := strings.Split(m.ARN, ":"); len(p) != 6 || p[0] != "arn" || p[2] != "iam" || !strings.HasPrefix(p[5], "policy/") {
			return fmt.Errorf("managed_policy %q is not an IAM policy ARN (arn:aws:iam::<account>:policy/<name>)", m.ARN)
		}
		if managed[m.ARN] != nil {
			return fmt.Errorf("managed_policy %q is declared twice", m.ARN)
		}
		pol, err := ParsePolicy(m.Document)
		if err != nil {
			return fmt.Errorf("managed_policy %q: document: %w", m.ARN, err)
		}
		m.policy, managed[m.ARN] = pol, m
	}
	known := func(where string, arns []string) error {
		for _, a := range arns {
			if managed[a] == nil {
				return fmt.Errorf("%s: managed policy %q is not declared (add a managed_policy %q block with its document)", where, a, a)
			}
		}
		return nil
	}
	for _, p := range c.Profiles {
		where := fmt.Sprintf("profile %q", p.ARN)
		if t := p.TIP; t != nil {
			if t.Status != "ENABLED" && t.Status != "DISABLED" {
				return fmt.Errorf("%s: tip: status %q is neither ENABLED nor DISABLED", where, t.Status)
			}
			if t.SubjectSource == "" {
				t.SubjectSource = "x509Subject/CN"
			}
			if t.SubjectSource != "x509SAN/URI" && t.SubjectSource != "x509Subject/CN" {
				return fmt.Errorf("%s: tip: subject_source %q is neither x509SAN/URI nor x509Subject/CN", where, t.SubjectSource)
			}
			if t.SubjectType == "" {
				t.SubjectType = "workload"
			}
			if t.SubjectType != "workload" && t.SubjectType != "user" {
				return fmt.Errorf("%s: tip: subject_type %q is neither workload nor user", where, t.SubjectType)
			}
		}
		seen := map[string]bool{}
		for _, m := range p.AttributeMappings {
			if err := checkMapping(m); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			if seen[m.CertificateField] {
				return fmt.Errorf("%s: attribute_mapping for %s is declared twice", where, m.CertificateField)
			}
			seen[m.CertificateField] = true
		}
		if p.TIP.Enabled() && !p.maps(p.TIP.SubjectSource) {
			return fmt.Errorf("%s: tip: subject_source %s is not in the profile's attribute mapping (Roles Anywhere requires a mapping rule for it)", where, p.TIP.SubjectSource)
		}
		p.sessionPolicy = nil
		if p.SessionPolicy != "" {
			pol, err := ParsePolicy(p.SessionPolicy)
			if err != nil {
				return fmt.Errorf("%s: session_policy: %w", where, err)
			}
			p.sessionPolicy = pol
		}
		if err := known(where+": managed_policy_arns", p.ManagedPolicyARNs); err != nil {
			return err
		}
	}
	for _, r := range c.Roles {
		where := fmt.Sprintf("role %q", r.ARN)
		for _, cond := range r.Conditions {
			if err := cond.normalize(); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
		}
		if t := r.STSTrust; t != nil {
			for _, cond := range t.Conditions {
				if err := cond.normalize(); err != nil {
					return fmt.Errorf("%s: sts_trust: %w", where, err)
				}
			}
		}
		r.identityPolicy = nil
		if r.IdentityPolicy != "" {
			pol, err := ParsePolicy(r.IdentityPolicy)
			if err != nil {
				return fmt.Errorf("%s: identity_policy: %w", where, err)
			}
			r.identityPolicy = pol
		}
		if err := known(where+": managed_policy_arns", r.ManagedPolicyARNs); err != nil {
			return err
		}
	}
	return nil
}

// managedPolicy finds a declared managed policy; the caller holds e.mu or the config is not shared yet.
func (c *Config) managedPolicy(arn string) *Policy {
	for _, m := range c.ManagedPolicies {
		if m.ARN == arn {
			return m.policy
		}
	}
	return nil
}

// orInline names where a JWKS came from: its file, or the config itself.
func orInline(file string) string {
	if file == "" {
		return "the jwks attribute"
	}
	return file
}

// validPrincipal reports whether p is a role ARN or an account root ARN.
func validPrincipal(p string) bool {
	if _, err := awsarn.Role("principal", p); err == nil {
		return true
	}
	parts := strings.Split(p, ":")
	return len(parts) == 6 && parts[0] == "arn" && parts[2] == "iam" && parts[5] == "root" &&
		len(parts[4]) == 12 && strings.Trim(parts[4], "0123456789") == ""
}

// parseBundle parses a trust anchor's PEM bundle with AWS's limits.
func parseBundle(s string) ([]*x509.Certificate, error) {
	if len(s) > 8000 {
		return nil, fmt.Errorf("CA bundle is %d characters; AWS allows at most 8000", len(s))
	}
	var out []*x509.Certificate
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CA bundle: %w", err)
		}
		if !c.IsCA {
			return nil, fmt.Errorf("CA bundle: certificate %q is not a CA", c.Subject)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("CA bundle holds no PEM certificate")
	}
	if len(out) > 2 {
		return nil, fmt.Errorf("CA bundle holds %d CAs; AWS allows at most 2", len(out))
	}
	return out, nil
}

// attr is one attribute of a block and the Go value it decodes into.
type attr struct {
	name     string
	required bool
	dst      any
}

// block is one kind of nested block: its labels, and how to decode one occurrence.
type block struct {
	typ    string
	labels []string
	decode func(b *hcl.Block) hcl.Diagnostics
}

// decodeBody decodes body's attributes into attrs and hands each nested block to its kind's decoder.
// Unknown attributes and blocks, and missing required attributes, are errors with their positions (a
// small hand-written decoder: gohcl would link hclwrite and go-cmp into every credential_process call).
func decodeBody(body hcl.Body, attrs []attr, blocks []block) hcl.Diagnostics {
	schema := &hcl.BodySchema{}
	for _, a := range attrs {
		schema.Attributes = append(schema.Attributes, hcl.AttributeSchema{Name: a.name, Required: a.required})
	}
	for _, b := range blocks {
		schema.Blocks = append(schema.Blocks, hcl.BlockHeaderSchema{Type: b.typ, LabelNames: b.labels})
	}
	content, diags := body.Content(schema)
	for _, a := range attrs {
		at, ok := content.Attributes[a.name]
		if !ok {
			continue
		}
		v, d := at.Expr.Value(nil)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		ty, err := gocty.ImpliedType(reflect.ValueOf(a.dst).Elem().Interface())
		if err == nil {
			v, err = convert.Convert(v, ty) // e.g. an HCL tuple ["a", "b"] into list(string)
		}
		if err == nil {
			err = gocty.FromCtyValue(v, a.dst)
		}
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value for " + a.name,
				Detail: err.Error(), Subject: at.Expr.Range().Ptr()})
		}
	}
	for _, b := range content.Blocks {
		for _, kind := range blocks {
			if kind.typ == b.Type {
				diags = append(diags, kind.decode(b)...)
			}
		}
	}
	return diags
}

func decodeConfig(body hcl.Body, c *Config) hcl.Diagnostics {
	return decodeBody(body, []attr{
		{"account_id", true, &c.AccountID},
		{"quota_per_second", false, &c.QuotaPerSecond},
		{"sts_regions", false, &c.STSRegions},
	}, []block{
		{"trust_anchor", []string{"arn"}, func(b *hcl.Block) hcl.Diagnostics {
			ta := &TrustAnchor{ARN: b.Labels[0]}
			c.TrustAnchors = append(c.TrustAnchors, ta)
			return decodeBody(b.Body, []attr{{"ca_bundle_file", false, &ta.CABundleFile}, {"ca_bundle_pem", false, &ta.CABundlePEM}}, nil)
		}},
		{"profile", []string{"arn"}, func(b *hcl.Block) hcl.Diagnostics {
			p := &Profile{ARN: b.Labels[0]}
			c.Profiles = append(c.Profiles, p)
			return decodeBody(b.Body, []attr{{"role_arns", true, &p.RoleARNs}, {"duration_seconds", false, &p.DurationSeconds},
				{"accept_role_session_name", false, &p.AcceptRoleSessionName}, {"session_policy", false, &p.SessionPolicy},
				{"managed_policy_arns", false, &p.ManagedPolicyARNs}}, []block{
				{"tip", nil, func(b *hcl.Block) hcl.Diagnostics {
					if p.TIP != nil {
						return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Duplicate tip block", Subject: b.DefRange.Ptr()}}
					}
					p.TIP = &TIP{}
					return decodeBody(b.Body, []attr{{"status", true, &p.TIP.Status}, {"subject_source", false, &p.TIP.SubjectSource},
						{"subject_type", false, &p.TIP.SubjectType}}, nil)
				}},
				{"attribute_mapping", nil, func(b *hcl.Block) hcl.Diagnostics {
					m := &AttributeMapping{}
					p.AttributeMappings = append(p.AttributeMappings, m)
					return decodeBody(b.Body, []attr{{"certificate_field", true, &m.CertificateField}, {"specifiers", true, &m.Specifiers}}, nil)
				}},
			})
		}},
		{"role", []string{"arn"}, func(b *hcl.Block) hcl.Diagnostics {
			r := &Role{ARN: b.Labels[0]}
			c.Roles = append(c.Roles, r)
			return decodeBody(b.Body, []attr{{"identity_policy", false, &r.IdentityPolicy}, {"managed_policy_arns", false, &r.ManagedPolicyARNs}}, []block{
				{"condition", nil, decodeCondition(&r.Conditions)},
				{"web_identity", nil, func(b *hcl.Block) hcl.Diagnostics {
					if r.WebIdentity != nil {
						return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Duplicate web_identity block", Subject: b.DefRange.Ptr()}}
					}
					r.WebIdentity = &WebIdentity{}
					return decodeBody(b.Body, []attr{{"audiences", true, &r.WebIdentity.Audiences}, {"subjects", true, &r.WebIdentity.Subjects}}, nil)
				}},
				{"sts_trust", nil, func(b *hcl.Block) hcl.Diagnostics {
					if r.STSTrust != nil {
						return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Duplicate sts_trust block", Subject: b.DefRange.Ptr()}}
					}
					t := &STSTrust{}
					r.STSTrust = t
					return decodeBody(b.Body, []attr{{"principals", true, &t.Principals}, {"external_id", false, &t.ExternalID},
						{"tag_session", false, &t.TagSession}, {"set_source_identity", false, &t.SetSourceIdentity}},
						[]block{{"condition", nil, decodeCondition(&t.Conditions)}})
				}},
			})
		}},
		{"managed_policy", []string{"arn"}, func(b *hcl.Block) hcl.Diagnostics {
			m := &ManagedPolicy{ARN: b.Labels[0]}
			c.ManagedPolicies = append(c.ManagedPolicies, m)
			return decodeBody(b.Body, []attr{{"document", true, &m.Document}}, nil)
		}},
		{"jwt_bundle", nil, func(b *hcl.Block) hcl.Diagnostics {
			if c.JWTBundle != nil {
				return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Duplicate jwt_bundle block", Subject: b.DefRange.Ptr()}}
			}
			c.JWTBundle = &JWTBundle{}
			return decodeBody(b.Body, []attr{{"jwks_file", false, &c.JWTBundle.JWKSFile}, {"jwks", false, &c.JWTBundle.JWKS}}, nil)
		}},
	})
}

// decodeCondition decodes a condition block (tag, or test + key) into a list.
func decodeCondition(list *[]*Condition) func(b *hcl.Block) hcl.Diagnostics {
	return func(b *hcl.Block) hcl.Diagnostics {
		cond := &Condition{}
		*list = append(*list, cond)
		return decodeBody(b.Body, []attr{{"tag", false, &cond.Tag}, {"test", false, &cond.Test}, {"key", false, &cond.Key},
			{"values", true, &cond.Values}}, nil)
	}
}
