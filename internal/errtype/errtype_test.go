package errtype

import (
	"slices"
	"testing"
)

func TestLabelKeepsOnlyTheFixedSet(t *testing.T) {
	for _, s := range All() {
		if got := Label(s); got != s {
			t.Errorf("Label(%q) = %q, want it kept", s, got)
		}
	}
	for _, s := range []string{"", "SomethingNew", "accessdeniedexception", "ThrottlingException\n", "x{a=\"b\"}"} {
		if got := Label(s); got != Other {
			t.Errorf("Label(%q) = %q, want %q", s, got, Other)
		}
	}
	if n := len(slices.Compact(slices.Sorted(slices.Values(All())))); n != len(AWS)+len(Own) {
		t.Errorf("All() has %d distinct labels, want %d: a label is listed twice", n, len(AWS)+len(Own))
	}
}
