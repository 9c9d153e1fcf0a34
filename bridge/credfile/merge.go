package credfile

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/ininame"
	"strings"
	"time"
	"unicode"

	"gopkg.in/ini.v1"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
)

// The keys this package owns inside its profile's section, in the order they are written. Any other key
// of the section (region, output, …) and every comment is kept. Keys are matched case-insensitively,
// because the AWS SDKs lower-case key names when they read the file.
const (
	KeyAccessKeyID     = "aws_access_key_id"
	KeySecretAccessKey = "aws_secret_access_key"
	KeySessionToken    = "aws_session_token"
	KeyExpires         = "x_security_token_expires" // RFC 3339, UTC; read by humans and some tools
	KeyPrincipalARN    = "x_principal_arn"          // the assumed-role ARN; written only when known
)

var managedKeys = []string{KeyAccessKeyID, KeySecretAccessKey, KeySessionToken, KeyExpires, KeyPrincipalARN}

func isManaged(lowerKey string) bool {
	for _, k := range managedKeys {
		if k == lowerKey {
			return true
		}
	}
	return false
}

// ParseError reports that an existing credentials file is not INI this package can edit without risk of
// misreading (and so damaging) the user's data. The file is left untouched. The error names the line but
// never quotes it: a credentials file's lines may hold secrets.
type ParseError struct {
	// Path is the file, when known (Sink sets it; Merge and Remove leave it empty).
	Path string
	// Line is the 1-based line number of the offending line.
	Line int
	// Reason says what is wrong with the line.
	Reason string
}

// Error implements error.
func (e *ParseError) Error() string {
	if e.Path != "" {
		return fmt.Sprintf("credfile: %s:%d: %s; refusing to modify the file", e.Path, e.Line, e.Reason)
	}
	return fmt.Sprintf("credfile: line %d: %s", e.Line, e.Reason)
}

// errVerify marks a merge result that failed the post-merge check (a bug in this package, never the
// user's fault); it is never expected to happen, and the file is not written when it does.
var errVerify = errors.New("credfile: internal error: the updated file failed verification; not writing it")

type lineKind int

const (
	kindBlank lineKind = iota
	kindComment
	kindHeader
	kindKey
)

// line is one physical line of the file. text excludes the terminator; eol is "\n", "\r\n", or "" for a
// last line without one. Unmodified lines are written back exactly as read.
type line struct {
	text          string
	eol           string
	kind          lineKind
	name          string // kindHeader: the section name as the AWS SDKs read it (trimmed)
	headerComment bool   // kindHeader: a comment follows the closing bracket
	key           string // kindKey: the key, lower-cased
	value         string // kindKey: the value with surrounding space trimmed (comment not removed)
	indented      bool   // kindKey: the line starts with a space or tab (an SDK sub-property candidate)
	emptyValue    bool   // kindKey: the value is empty as the SDKs read it (it may own sub-properties)
}

// document is a parsed credentials file.
type document struct {
	lines []line
	eol   string // terminator for lines this package adds: that of the file's first line, else "\n"
}

// section is a [name] header and its body: lines[header+1:end].
type section struct{ header, end int }

const utf8BOM = "\xef\xbb\xbf"

// parse splits data into classified lines. It accepts what both the AWS SDKs' reader and gopkg.in/ini.v1
// read the same way, and refuses the constructs on which they disagree about where sections and keys
// begin (multi-line values, quoted key names, odd headers), since editing such a file could change a
// section other than ours.
func parse(data []byte) (*document, error) {
	s := string(data)
	d := &document{eol: "\n"}
	if strings.HasPrefix(s, "\xfe\xff") || strings.HasPrefix(s, "\xff\xfe") {
		return nil, &ParseError{Line: 1, Reason: "UTF-16 byte order mark; only UTF-8 files are supported"}
	}
	if strings.HasPrefix(s, utf8BOM) {
		s = s[len(utf8BOM):] // dropped: the AWS SDKs do not skip it, and would miss the first section
	}
	first := true
	for n := 1; s != ""; n++ {
		var l line
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			l.text, l.eol, s = s[:i], "\n", s[i+1:]
			if strings.HasSuffix(l.text, "\r") {
				l.text, l.eol = l.text[:len(l.text)-1], "\r\n"
			}
			if first {
				d.eol, first = l.eol, false
			}
		} else {
			l.text, s = s, ""
		}
		if err := classify(&l); err != "" {
			return nil, &ParseError{Line: n, Reason: err}
		}
		d.lines = append(d.lines, l)
	}
	return d, nil
}

// classify sets l's kind and fields, or returns why the line is refused.
func classify(l *line) string {
	for i := 0; i < len(l.text); i++ {
		if b := l.text[i]; (b < 0x20 && b != '\t') || b == 0x7f {
			return fmt.Sprintf("control character 0x%02x", b)
		}
	}
	if strings.TrimSpace(l.text) == "" {
		l.kind = kindBlank
		return ""
	}
	t := strings.TrimLeftFunc(l.text, unicode.IsSpace)
	if len(t) != len(strings.TrimLeft(l.text, " \t")) {
		return "line starts with whitespace other than spaces and tabs"
	}
	switch t[0] {
	case '#', ';':
		l.kind = kindComment
		return ""
	case '[':
		return classifyHeader(l, strings.TrimRightFunc(t, unicode.IsSpace))
	}
	l.kind = kindKey
	l.indented = t != l.text
	i := strings.IndexAny(t, "=:")
	switch {
	case t[0] == '"' || t[0] == '`':
		return "quoted key names are not supported"
	case i < 0:
		return `expected "key = value", a [section] header or a comment`
	case i == 0:
		return "empty key name"
	}
	l.key = strings.ToLower(strings.TrimSpace(t[:i]))
	v := strings.TrimLeftFunc(t[i+1:], unicode.IsSpace)
	// gopkg.in/ini.v1 (and tools built on it) continue such values on the following lines, the AWS SDKs do
	// not: the two would disagree about which section the following lines belong to.
	switch {
	case strings.HasPrefix(v, `"""`) && !strings.Contains(v[3:], `"""`),
		strings.HasPrefix(v, "`") && !strings.Contains(v[1:], "`"):
		return "multi-line quoted values are not supported"
	case strings.HasSuffix(strings.TrimRightFunc(v, unicode.IsSpace), `\`):
		return `value ends in a backslash (a line continuation in some INI readers); continuations are not supported`
	}
	l.value = strings.TrimSpace(v)
	sdk := l.value
	for _, c := range []string{" #", " ;", "\t#", "\t;"} { // the SDKs' inline comment rule
		sdk, _, _ = strings.Cut(sdk, c)
	}
	sdk = strings.TrimSpace(sdk)
	if len(sdk) >= 2 && (sdk[0] == '"' || sdk[0] == '\'') && sdk[len(sdk)-1] == sdk[0] {
		sdk = sdk[1 : len(sdk)-1]
	}
	l.emptyValue = sdk == ""
	return ""
}

// classifyHeader parses t, a trimmed line starting with '['.
func classifyHeader(l *line, t string) string {
	end := strings.IndexByte(t, ']')
	if end < 0 {
		return "section header without a closing ']'"
	}
	inner, rest := t[1:end], strings.TrimLeftFunc(t[end+1:], unicode.IsSpace)
	switch {
	case strings.ContainsAny(inner, "[#;"):
		return "section name contains '[', '#' or ';'"
	case strings.TrimSpace(inner) == "":
		return "empty section name"
	case rest != "" && rest[0] != '#' && rest[0] != ';':
		return "unexpected text after a section header (only a # or ; comment may follow it)"
	case strings.ContainsRune(rest, ']'):
		return "']' in the comment after a section header"
	}
	l.kind, l.name, l.headerComment = kindHeader, strings.TrimSpace(inner), rest != ""
	return ""
}

// sections lists the document's sections named name, in file order. A section ends at the next header
// of any name.
func (d *document) sections(name string) []section {
	var out []section
	for i, l := range d.lines {
		if l.kind != kindHeader || l.name != name {
			continue
		}
		end := i + 1
		for end < len(d.lines) && d.lines[end].kind != kindHeader {
			end++
		}
		out = append(out, section{header: i, end: end})
	}
	return out
}

// markManaged marks, in drop, the lines of sec that hold a managed key, with the sub-property lines that
// belong to such a key (indented "k = v" lines following a key whose value is empty, as the AWS SDKs read
// them). It returns the index of the first managed key line that is not indented, or -1.
func (d *document) markManaged(sec section, drop []bool) int {
	first := -1
	for i := sec.header + 1; i < sec.end; i++ {
		l := d.lines[i]
		if l.kind != kindKey || !isManaged(l.key) {
			continue
		}
		drop[i] = true
		if first < 0 && !l.indented {
			first = i
		}
		if !l.emptyValue {
			continue
		}
		for j := i + 1; j < sec.end; j++ {
			sub := d.lines[j]
			if sub.kind == kindBlank || sub.kind == kindComment {
				continue
			}
			if sub.kind != kindKey || !sub.indented {
				break
			}
			drop[j] = true
			i = j
		}
	}
	return first
}

// dropIfEmpty marks the whole of sec in drop when, apart from lines already dropped, it holds nothing but
// blank lines (no key, no comment, no comment on the header).
func (d *document) dropIfEmpty(sec section, drop []bool) bool {
	if d.lines[sec.header].headerComment {
		return false
	}
	for i := sec.header + 1; i < sec.end; i++ {
		if !drop[i] && d.lines[i].kind != kindBlank {
			return false
		}
	}
	for i := sec.header; i < sec.end; i++ {
		drop[i] = true
	}
	return true
}

// render writes the document back: kept lines exactly as read, inserted lines after the line whose
// index they are keyed by (-1: before the first line), and extra at the end. A line that had no
// terminator gets one if anything follows it.
func (d *document) render(drop []bool, insert map[int][]string, extra []string) []byte {
	var out []line
	add := func(texts []string) {
		for _, t := range texts {
			out = append(out, line{text: t, eol: d.eol, kind: kindKey})
		}
	}
	add(insert[-1])
	for i, l := range d.lines {
		if !drop[i] {
			out = append(out, l)
		}
		add(insert[i])
	}
	if len(d.lines) > 0 && drop[len(d.lines)-1] {
		// The file's tail was removed: drop the blank lines that separated it from what remains.
		for len(out) > 0 && out[len(out)-1].kind == kindBlank {
			out = out[:len(out)-1]
		}
	}
	if len(extra) > 0 && len(out) > 0 && out[len(out)-1].kind != kindBlank {
		extra = append([]string{""}, extra...)
	}
	add(extra)
	var b bytes.Buffer
	for i, l := range out {
		b.WriteString(l.text)
		if l.eol == "" && i < len(out)-1 {
			l.eol = d.eol
		}
		b.WriteString(l.eol)
	}
	return b.Bytes()
}

// Merge returns existing — the contents of an AWS shared credentials file, possibly empty — with profile's
// section holding c. Only that section's credential keys (aws_access_key_id, aws_secret_access_key,
// aws_session_token, x_security_token_expires, x_principal_arn) change; every other byte of the file is
// kept, including the section's other keys (region, …) and comments, other sections, comments, spacing and
// line endings (CRLF files stay CRLF). A missing section is appended at the end of the file. The one
// exception is a UTF-8 byte order mark, which is dropped: the AWS SDKs do not skip it, so it hides the
// first section from them.
//
// When the section appears more than once (the SDKs merge duplicates, later keys winning), the keys are
// written into the first one and removed from the others, so every reader sees the same credentials;
// a duplicate left with nothing in it is removed.
//
// Merge refuses, with a *ParseError naming the line, a file it cannot edit without risk of damage.
// An empty SessionToken, zero Expiration or empty AssumedRoleARN omits that key.
func Merge(existing []byte, profile string, c creds.Credentials) ([]byte, error) {
	if err := ValidateProfile(profile); err != nil {
		return nil, err
	}
	want, err := entries(c)
	if err != nil {
		return nil, err
	}
	d, err := parse(existing)
	if err != nil {
		return nil, err
	}
	block := make([]string, len(want))
	for i, e := range want {
		block[i] = e.key + " = " + e.value
	}
	drop := make([]bool, len(d.lines))
	insert := map[int][]string{}
	var extra []string
	secs := d.sections(profile)
	for k, sec := range secs {
		first := d.markManaged(sec, drop)
		if k > 0 {
			d.dropIfEmpty(sec, drop)
			continue
		}
		at := sec.header
		if first >= 0 {
			at = first - 1 // the line before the first managed key is kept or belongs to it
		}
		insert[at] = block
	}
	if len(secs) == 0 {
		extra = append([]string{"[" + profile + "]"}, block...)
	}
	out := d.render(drop, insert, extra)
	if err := verify(out, profile, want); err != nil {
		return nil, err
	}
	return out, nil
}

// Remove returns existing without profile's credential keys (the keys Merge writes), in every section
// named profile. A section left with nothing but blank lines is removed as well; one that still holds
// other keys or comments is kept. Everything else is kept byte for byte. Remove refuses a file Merge
// would refuse, with a *ParseError.
func Remove(existing []byte, profile string) ([]byte, error) {
	if err := ValidateProfile(profile); err != nil {
		return nil, err
	}
	d, err := parse(existing)
	if err != nil {
		return nil, err
	}
	secs := d.sections(profile)
	if len(secs) == 0 {
		return existing, nil
	}
	drop := make([]bool, len(d.lines))
	for _, sec := range secs {
		d.markManaged(sec, drop)
		d.dropIfEmpty(sec, drop)
	}
	out := d.render(drop, nil, nil)
	if err := verify(out, profile, nil); err != nil {
		return nil, err
	}
	return out, nil
}

type entry struct{ key, value string }

// entries validates c and returns the managed keys to write, in order.
func entries(c creds.Credentials) ([]entry, error) {
	exp := ""
	if !c.Expiration.IsZero() {
		exp = c.Expiration.UTC().Format(time.RFC3339)
	}
	all := []struct {
		entry
		what     string
		secret   bool
		required bool
	}{
		{entry{KeyAccessKeyID, c.AccessKeyID}, "access key id", false, true},
		{entry{KeySecretAccessKey, c.SecretAccessKey}, "secret access key", true, true},
		{entry{KeySessionToken, c.SessionToken}, "session token", true, false},
		{entry{KeyExpires, exp}, "expiration", false, false},
		{entry{KeyPrincipalARN, c.AssumedRoleARN}, "assumed role ARN", false, false},
	}
	var out []entry
	for _, e := range all {
		if e.value == "" {
			if e.required {
				return nil, fmt.Errorf("credfile: credentials have no %s", e.what)
			}
			continue
		}
		if bad := badValueChar(e.value); bad != 0 {
			if e.secret {
				return nil, fmt.Errorf("credfile: the %s contains a character that cannot be written to a credentials file", e.what)
			}
			return nil, fmt.Errorf("credfile: the %s %q contains %q, which cannot be written to a credentials file", e.what, e.value, bad)
		}
		out = append(out, e.entry)
	}
	return out, nil
}

// badValueChar returns the first character of v that some INI reader would not read back verbatim
// (comment markers, quotes, escapes, whitespace, control and non-ASCII characters), or 0. AWS key ids,
// secrets, tokens, timestamps and ARNs never contain one.
func badValueChar(v string) rune {
	for _, r := range v {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune("#;\"'`\\", r) {
			return r
		}
	}
	return 0
}

// ValidateProfile checks that name can be written as an INI section header the AWS SDKs read back as
// exactly name (the rule of package ininame, which the config applies too).
func ValidateProfile(name string) error {
	if err := ininame.Validate(name); err != nil {
		return fmt.Errorf("credfile: %w", err)
	}
	return nil
}

// verify re-reads out with this package's parser and with gopkg.in/ini.v1 and checks that profile's
// sections hold exactly want among the managed keys. It guards the file against bugs in Merge and Remove.
// Its error never includes the readers' messages, which may quote lines (and so secrets).
func verify(out []byte, profile string, want []entry) error {
	if _, err := ini.Load(out); err != nil {
		return errVerify
	}
	d, err := parse(out)
	if err != nil {
		return errVerify
	}
	got := map[string][]string{}
	for _, sec := range d.sections(profile) {
		for i := sec.header + 1; i < sec.end; i++ {
			if l := d.lines[i]; l.kind == kindKey && isManaged(l.key) {
				got[l.key] = append(got[l.key], l.value)
			}
		}
	}
	if len(got) != len(want) {
		return errVerify
	}
	for _, e := range want {
		if v := got[e.key]; len(v) != 1 || v[0] != e.value {
			return errVerify
		}
	}
	return nil
}
