// Package x509tags derives the principal tags IAM Roles Anywhere puts on a session from the
// authenticating certificate, with its default attribute mapping:
//
//   - x509Subject/<RDN> and x509Issuer/<RDN> for every supported relative distinguished name of the
//     subject and issuer (CN, OU, O, L, ST, C, DC, SERIALNUMBER, STREET, postalCode, UID, emailAddress,
//     title, GN, SN, initials, pseudonym, generationQualifier);
//   - x509SAN/URI and x509SAN/DNS: the first URI and first DNS name;
//   - x509SAN/Name/<RDN>: the RDNs of the first directory name (DN) in the SAN extension.
//
// Multi-value rule: when a name holds the same attribute several times (two OUs, say), the tag's value is
// the values in certificate order joined with ","; SAN entries of one kind after the first are ignored.
// Empty values produce no tag.
//
// It is a leaf (standard library only) shared by `check` (package check) and the emulator, so both
// describe a certificate the same way; the emulator's request verification stays independent of the
// signer.
package x509tags

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"strings"
)

// Tag is one principal tag: use it in a trust policy as aws:PrincipalTag/<Key>.
type Tag struct{ Key, Value string }

// rdnNames maps attribute type OIDs to the names Roles Anywhere uses in tag keys, in output order.
var rdnNames = []struct {
	oid  asn1.ObjectIdentifier
	name string
}{
	{asn1.ObjectIdentifier{2, 5, 4, 3}, "CN"},
	{asn1.ObjectIdentifier{2, 5, 4, 11}, "OU"},
	{asn1.ObjectIdentifier{2, 5, 4, 10}, "O"},
	{asn1.ObjectIdentifier{2, 5, 4, 7}, "L"},
	{asn1.ObjectIdentifier{2, 5, 4, 8}, "ST"},
	{asn1.ObjectIdentifier{2, 5, 4, 6}, "C"},
	{asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}, "DC"},
	{asn1.ObjectIdentifier{2, 5, 4, 5}, "SERIALNUMBER"},
	{asn1.ObjectIdentifier{2, 5, 4, 9}, "STREET"},
	{asn1.ObjectIdentifier{2, 5, 4, 17}, "postalCode"},
	{asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}, "UID"},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, "emailAddress"},
	{asn1.ObjectIdentifier{2, 5, 4, 12}, "title"},
	{asn1.ObjectIdentifier{2, 5, 4, 42}, "GN"},
	{asn1.ObjectIdentifier{2, 5, 4, 4}, "SN"},
	{asn1.ObjectIdentifier{2, 5, 4, 43}, "initials"},
	{asn1.ObjectIdentifier{2, 5, 4, 65}, "pseudonym"},
	{asn1.ObjectIdentifier{2, 5, 4, 44}, "generationQualifier"},
}

// nameTags turns a distinguished name into tags under prefix, joining repeated attributes with ",".
func nameTags(prefix string, names []pkix.AttributeTypeAndValue) []Tag {
	var out []Tag
	for _, rn := range rdnNames {
		var vals []string
		for _, atv := range names {
			if !atv.Type.Equal(rn.oid) {
				continue
			}
			if s, ok := atv.Value.(string); ok && s != "" {
				vals = append(vals, s)
			}
		}
		if len(vals) > 0 {
			out = append(out, Tag{prefix + "/" + rn.name, strings.Join(vals, ",")})
		}
	}
	return out
}

var oidSAN = asn1.ObjectIdentifier{2, 5, 29, 17}

// firstDirectoryName returns the first directoryName [4] of the SAN extension, parsed.
func firstDirectoryName(c *x509.Certificate) []pkix.AttributeTypeAndValue {
	for _, ext := range c.Extensions {
		if !ext.Id.Equal(oidSAN) {
			continue
		}
		var seq asn1.RawValue
		if rest, err := asn1.Unmarshal(ext.Value, &seq); err != nil || len(rest) > 0 {
			return nil
		}
		rest := seq.Bytes
		for len(rest) > 0 {
			var gn asn1.RawValue
			var err error
			if rest, err = asn1.Unmarshal(rest, &gn); err != nil {
				return nil
			}
			if gn.Class != asn1.ClassContextSpecific || gn.Tag != 4 {
				continue
			}
			var rdns pkix.RDNSequence
			if r, err := asn1.Unmarshal(gn.Bytes, &rdns); err != nil || len(r) > 0 {
				return nil
			}
			var n pkix.Name
			n.FillFromRDNSequence(&rdns)
			return n.Names
		}
	}
	return nil
}

// Of returns the principal tags Roles Anywhere derives from leaf, subject first, then issuer, then SAN.
func Of(leaf *x509.Certificate) []Tag {
	tags := nameTags("x509Subject", leaf.Subject.Names)
	tags = append(tags, nameTags("x509Issuer", leaf.Issuer.Names)...)
	if len(leaf.URIs) > 0 {
		tags = append(tags, Tag{"x509SAN/URI", leaf.URIs[0].String()})
	}
	if len(leaf.DNSNames) > 0 && leaf.DNSNames[0] != "" {
		tags = append(tags, Tag{"x509SAN/DNS", leaf.DNSNames[0]})
	}
	tags = append(tags, nameTags("x509SAN/Name", firstDirectoryName(leaf))...)
	return tags
}

// Map is Of as a map from key to value.
func Map(leaf *x509.Certificate) map[string]string {
	m := map[string]string{}
	for _, t := range Of(leaf) {
		m[t.Key] = t.Value
	}
	return m
}
