package main

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/cmd/internal/clidocs"
)

var updateCLIDocs = flag.Bool("update-cli-docs", false, "regenerate docs/cli and docs/man instead of checking them")

// TestCLIReferenceIsCurrent fails when docs/cli or docs/man, generated from the commands with cobra's
// generator, do not match the commands as built: run go generate ./cmd/... and commit the result.
func TestCLIReferenceIsCurrent(t *testing.T) {
	problems, err := clidocs.Check(newRootCommand(io.Discard, io.Discard), "../..", *updateCLIDocs)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Fatalf("the CLI reference is not current:\n%s", strings.Join(problems, "\n"))
	}
}
