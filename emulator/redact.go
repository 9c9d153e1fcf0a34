package emulator

import (
	"strings"
)

// secretHeaders are the canonical-request header names whose values are credentials: the session token
// of SigV4 requests, and anything a client might sign that carries a bearer secret.
var secretHeaders = map[string]bool{
	"x-amz-security-token": true,
	"authorization":        true,
	"cookie":               true,
}

// secretQueryParams are query parameters (presigned SigV4) whose values are secrets or derived from them.
var secretQueryParams = map[string]bool{
	"x-amz-security-token": true,
	"x-amz-signature":      true,
}

// redactCanonical returns a canonical request (method, path, query, header lines, blank line, signed
// headers, payload hash) with every secret value replaced by "<redacted>", for the debug log of a
// signature mismatch: the layout stays, so a mismatch can still be diagnosed line by line against the
// client's own canonical request, but no log line ever holds a session token.
func redactCanonical(creq string) string {
	lines := strings.Split(creq, "\n")
	if len(lines) >= 3 {
		lines[2] = redactQuery(lines[2])
	}
	for i := 3; i < len(lines); i++ {
		if lines[i] == "" {
			break // end of the canonical headers
		}
		name, _, ok := strings.Cut(lines[i], ":")
		if ok && secretHeaders[strings.ToLower(name)] {
			lines[i] = name + ":<redacted>"
		}
	}
	return strings.Join(lines, "\n")
}

// redactQuery replaces the values of secret parameters in a canonical (already encoded) query string.
func redactQuery(q string) string {
	if q == "" {
		return q
	}
	parts := strings.Split(q, "&")
	for i, p := range parts {
		name, _, ok := strings.Cut(p, "=")
		if ok && secretQueryParams[strings.ToLower(uriDecode(name))] {
			parts[i] = name + "=<redacted>"
		}
	}
	return strings.Join(parts, "&")
}
