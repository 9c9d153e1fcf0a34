// Package sessionname derives STS role session names from SPIFFE IDs, injectively: two different IDs
// never get the same name (short of a 64-bit hash collision), so that CloudTrail and the
// sts:RoleSessionName / aws:userid conditions of a trust policy can tell workloads apart.
//
// A role session name is 2 to 64 characters of [A-Za-z0-9_+=,.@-]. The readable form of
// spiffe://example.org/ns/prod/app is example.org@ns.prod.app: the trust domain, "@", and the path with
// "/" written as ".". It is kept as it is when it says the ID exactly, that is when reading it back (the
// part before the first "@" is the trust domain, each "." after it a "/") gives the ID: a SPIFFE ID whose
// path segments hold no "." and that fits in 64 characters. Whenever the mapping loses information — a
// "." in a path segment (spiffe://td/team/a.b and spiffe://td/team/a/b would both read td@team.a.b), a
// character STS does not allow (replaced by "-"), a missing spiffe:// prefix, a name too short or over 64
// characters — "-" and 16 hex digits of the SHA-256 of the whole ID are appended, the readable part cut
// to 47 characters when needed. A readable form that already ends like such a hash gets one too, so a
// name without a hash never looks like one with.
package sessionname

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"sync"
)

// MaxLen and MinLen bound a role session name's length.
const (
	MaxLen = 64
	MinLen = 2
)

// hashLen is the number of hex digits of the ID's SHA-256 appended when the readable form loses
// information; keep is how much of the readable form fits before "-" and the hash.
const (
	hashLen = 16
	keep    = MaxLen - 1 - hashLen
)

var (
	validRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\w+=,.@-]{2,64}$`) })
	invalid  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[^\w+=,.@-]`) })
	hashedRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`-[0-9a-f]{16}$`) })
)

// Valid reports whether s is a valid role session name: 2 to 64 characters of [A-Za-z0-9_+=,.@-].
func Valid(s string) bool { return validRE().MatchString(s) }

// FromSPIFFEID is the role session name of a SPIFFE ID (see the package documentation):
// spiffe://example.org/ns/prod/app gives example.org@ns.prod.app, spiffe://example.org/team/a.b gives
// example.org@team.a.b-<16 hex digits>.
func FromSPIFFEID(id string) string {
	name := readable(id)
	if Valid(name) && decode(name) == id && !hashedRE().MatchString(name) {
		return name
	}
	sum := sha256.Sum256([]byte(id))
	if len(name) > keep {
		name = name[:keep]
	}
	return name + "-" + hex.EncodeToString(sum[:])[:hashLen]
}

// readable is the ID's readable form: trust domain "@" path with "/" as ".", characters STS does not
// allow as "-".
func readable(id string) string {
	s := strings.TrimPrefix(id, "spiffe://")
	td, path, hasPath := strings.Cut(s, "/")
	name := td
	if hasPath {
		name += "@" + strings.ReplaceAll(path, "/", ".")
	}
	return invalid().ReplaceAllString(name, "-")
}

// decode reads a readable form back into the SPIFFE ID it stands for.
func decode(name string) string {
	td, path, hasPath := strings.Cut(name, "@")
	if !hasPath {
		return "spiffe://" + td
	}
	return "spiffe://" + td + "/" + strings.ReplaceAll(path, ".", "/")
}
