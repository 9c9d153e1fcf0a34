package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/config"
)

// hclBlock matches a fenced ```hcl block of a Markdown file; the fence's info string may carry a second
// word ("```hcl emulator") naming another loader.
var hclBlock = regexp.MustCompile("(?ms)^```hcl([^\\n]*)\\n(.*?)^```")

// TestEveryConfigSnippetInTheDocsParses keeps the docs honest: every ```hcl block of the README and of the
// examples' READMEs is a complete bridge config and must load with the real config loader.
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
			if kind := strings.TrimSpace(m[1]); kind != "" {
				continue // another loader's snippet (e.g. "hcl emulator"), checked with the examples
			}
			name := filepath.Base(doc) + "#" + string(rune('1'+i))
			if _, err := config.Parse([]byte(m[2]), name); err != nil {
				t.Errorf("%s: snippet %d does not parse: %v\n%s", doc, i+1, err, m[2])
			}
			checked++
		}
	}
	if checked < 2 {
		t.Fatalf("found only %d config snippets; the README has more", checked)
	}
}
