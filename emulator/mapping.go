package emulator

import (
	"crypto/x509"
	"fmt"
	"sort"
	"strings"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/x509tags"
)

// Certificate fields of attribute mappings (PutAttributeMapping's certificateField).
const (
	FieldSubject = "x509Subject"
	FieldIssuer  = "x509Issuer"
	FieldSAN     = "x509SAN"
)

// rdnSpecifiers are the Subject and Issuer specifiers the default mapping holds (x509tags' RDN names).
var rdnSpecifiers = []string{"CN", "OU", "O", "L", "ST", "C", "DC", "SERIALNUMBER", "STREET", "postalCode", "UID",
	"emailAddress", "title", "GN", "SN", "initials", "pseudonym", "generationQualifier"}

// sanSpecifiers are the SAN specifiers: the first DNS name, the first URI, the first directory name.
var sanSpecifiers = []string{"DNS", "URI", "Name"}

// AttributeMapping is one certificate field's mapping rules (PutAttributeMapping): which of the field's
// values become principal tags. A profile's mapping for a field replaces the default for that field;
// an empty Specifiers list maps nothing from it (DeleteAttributeMapping).
type AttributeMapping struct {
	// CertificateField is x509Subject, x509Issuer or x509SAN.
	CertificateField string
	// Specifiers are RDN names (CN, OU, O, …) for x509Subject and x509Issuer; DNS, URI or Name for x509SAN.
	Specifiers []string
}

// DefaultAttributeMappings is what a new profile maps, as Roles Anywhere documents: every supported
// Subject and Issuer RDN, and the first DNS, URI and directory name of the SAN.
func DefaultAttributeMappings() []*AttributeMapping {
	return []*AttributeMapping{
		{CertificateField: FieldSubject, Specifiers: append([]string(nil), rdnSpecifiers...)},
		{CertificateField: FieldIssuer, Specifiers: append([]string(nil), rdnSpecifiers...)},
		{CertificateField: FieldSAN, Specifiers: append([]string(nil), sanSpecifiers...)},
	}
}

// checkMapping validates one mapping block.
func checkMapping(m *AttributeMapping) error {
	valid := rdnSpecifiers
	switch m.CertificateField {
	case FieldSubject, FieldIssuer:
	case FieldSAN:
		valid = sanSpecifiers
	default:
		return fmt.Errorf("attribute_mapping: certificate_field %q is not x509Subject, x509Issuer or x509SAN", m.CertificateField)
	}
	for _, s := range m.Specifiers {
		if !contains(valid, s) {
			return fmt.Errorf("attribute_mapping %s: specifier %q is not one of %s", m.CertificateField, s, strings.Join(valid, ", "))
		}
	}
	return nil
}

// effectiveMappings is the profile's mapping: its own blocks, the defaults for fields it does not name.
func (p *Profile) effectiveMappings() []*AttributeMapping {
	out := []*AttributeMapping{}
	for _, d := range DefaultAttributeMappings() {
		m := d
		for _, own := range p.AttributeMappings {
			if own.CertificateField == d.CertificateField {
				m = &AttributeMapping{CertificateField: own.CertificateField, Specifiers: append([]string(nil), own.Specifiers...)}
			}
		}
		out = append(out, m)
	}
	return out
}

// maps reports whether the profile's mapping has a rule for tag key (e.g. "x509SAN/URI",
// "x509Subject/CN", "x509SAN/Name/CN").
func (p *Profile) maps(key string) bool {
	field, rest, _ := strings.Cut(key, "/")
	spec, _, _ := strings.Cut(rest, "/") // x509SAN/Name/<RDN> is the Name specifier
	for _, m := range p.effectiveMappings() {
		if m.CertificateField == field && contains(m.Specifiers, spec) {
			return true
		}
	}
	return false
}

// mappedTags are the principal tags a session of profile p gets from leaf: the certificate's tags
// (package x509tags, shared with `check`) that the profile's mapping keeps.
func mappedTags(p *Profile, leaf *x509.Certificate) map[string]string {
	out := map[string]string{}
	for _, t := range x509tags.Of(leaf) {
		if p == nil || p.maps(t.Key) {
			out[t.Key] = t.Value
		}
	}
	return out
}

// AttributeMappingView is one field's mapping as Roles Anywhere's GetProfile returns it.
type AttributeMappingView struct {
	CertificateField string        `json:"certificateField"`
	MappingRules     []MappingRule `json:"mappingRules"`
}

// MappingRule is one specifier of an AttributeMappingView.
type MappingRule struct {
	Specifier string `json:"specifier"`
}

func viewMappings(ms []*AttributeMapping) []AttributeMappingView {
	out := make([]AttributeMappingView, 0, len(ms))
	for _, m := range ms {
		v := AttributeMappingView{CertificateField: m.CertificateField, MappingRules: []MappingRule{}}
		specs := append([]string(nil), m.Specifiers...)
		sort.Strings(specs)
		for _, s := range specs {
			v.MappingRules = append(v.MappingRules, MappingRule{s})
		}
		out = append(out, v)
	}
	return out
}
