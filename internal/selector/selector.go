// Package selector holds the rule for a SPIRE workload selector as written, "type:value". The Delegated
// Identity API source (svid/delegated) sends selectors in this form and package config checks a file's
// workload_selectors with the same rule; it imports nothing of the project.
package selector

import (
	"fmt"
	"strings"
)

// Parse checks a SPIRE selector written "type:value" (split at the first colon, as SPIRE's CLI does:
// "unix:uid:1001" is type "unix", value "uid:1001") and returns its two parts.
func Parse(s string) (typ, value string, err error) {
	typ, value, ok := strings.Cut(s, ":")
	switch {
	case !ok || typ == "" || value == "":
		return "", "", fmt.Errorf("selector %q is not type:value (e.g. \"unix:uid:1001\", \"systemd:id:billing.service\")", s)
	case strings.TrimSpace(s) != s || strings.ContainsAny(typ, " \t"):
		return "", "", fmt.Errorf("selector %q has surrounding or inner spaces in its type", s)
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "", "", fmt.Errorf("selector %q contains control characters", s)
	}
	return typ, value, nil
}
