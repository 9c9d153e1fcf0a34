// Package ininame holds the one rule for the name of a profile section in an AWS shared credentials file.
// It is a leaf, so that the config (which validates) and the credentials-file sink (which writes) apply
// the same rule without config importing the sink.
package ininame

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// Validate checks that name can be written as an INI section header the AWS SDKs read back as exactly
// name: non-empty, printable, and without whitespace, '[', ']', '#' or ';'. (In a credentials file a
// name with a space is split into a "type" and a name by the SDKs, and "profile x" sections are ignored.)
func Validate(name string) error {
	if name == "" {
		return errors.New("empty profile name")
	}
	for _, r := range name {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) || strings.ContainsRune("[]#;", r) {
			return fmt.Errorf("profile name %q contains %q; whitespace, control characters, '[', ']', '#' and ';' are not allowed", name, r)
		}
	}
	return nil
}
