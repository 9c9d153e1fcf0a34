package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator"
)

// hclBlock matches a fenced ```hcl block of a Markdown file; the fence's info string may carry a second
// word ("```hcl emulator") naming another loader.
var hclBlock = regexp.MustCompile("(?ms)^```hcl([^\\n]*)\\n(.*?)^```")

// TestEveryConfigSnippetInTheDocsParses keeps the docs honest: every ```hcl block of the README, the
// examples' READMEs and docs/ must load with the real loader: a bridge config (```hcl), an emulator config
// (```hcl emulator, its files not read) or a SPIRE config (```hcl spire, HCL syntax only).
func TestEveryConfigSnippetInTheDocsParses(t *testing.T) {
	docs := []string{"../../README.md"}
	more, _ := filepath.Glob("../../examples/*/README.md")
	docs = append(docs, more...)
	more, _ = filepath.Glob("../../docs/*.md")
	docs = append(docs, more...)
	checked := 0
	for _, doc := range docs {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range hclBlock.FindAllStringSubmatch(string(data), -1) {
			name := fmt.Sprintf("%s#%d", filepath.Base(doc), i+1)
			var err error
			switch kind := strings.TrimSpace(m[1]); kind {
			case "":
				_, err = config.Parse([]byte(m[2]), name)
			case "emulator":
				_, err = emulator.DecodeConfig([]byte(m[2]), name)
			case "spire":
				_, diags := hclparse.NewParser().ParseHCL([]byte(m[2]), name)
				if diags.HasErrors() {
					err = diags
				}
			default:
				t.Errorf("%s: snippet %d: unknown kind %q (want hcl, hcl emulator or hcl spire)", doc, i+1, kind)
				continue
			}
			if err != nil {
				t.Errorf("%s: snippet %d does not parse: %v\n%s", doc, i+1, err, m[2])
			}
			checked++
		}
	}
	if checked < 2 {
		t.Fatalf("found only %d config snippets; the README has more", checked)
	}
}
